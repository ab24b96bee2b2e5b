"""Settings for the test suite: same services as production, faster hashing."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "token": env("PBX_API_RATE_PER_TOKEN", "100000/min"),
        "address": env("PBX_API_RATE_PER_ADDRESS", "100000/min"),
        "signin": env("PBX_API_RATE_SIGNIN", "100000/min"),
    },
}
