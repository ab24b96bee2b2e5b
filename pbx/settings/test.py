"""Settings for the test suite: same services as production, faster hashing."""

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK, env, env_bool, env_int

# A run of its own (e.g. two engineers testing at once) can pick its test database name.
DATABASES["default"]["TEST"] = {"NAME": env("PBX_TEST_DB_NAME", "test_pbx")}  # noqa: F405
# pytest-django rolls each test's transaction back, so no commit ever invalidates the host cache
# (tenants.hosts) and a host name reused by the next test would find the last test's tenant.
# Off here; the tests of the cache itself (tests/api/test_error_pages.py) turn it on.
PBX_HOST_CACHE_SECONDS = env_int("PBX_HOST_CACHE_SECONDS", 0)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The test client and the browser tests' server speak plain HTTP; the HTTPS tests
# (tests/e2e/test_https.py) start servers with PBX_HTTPS=1.
PBX_HTTPS = env_bool("PBX_HTTPS", False)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = PBX_HTTPS or PBX_TRUST_X_FORWARDED_PROTO  # noqa: F405
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {
        "token": env("PBX_API_RATE_PER_TOKEN", "100000/min"),
        "address": env("PBX_API_RATE_PER_ADDRESS", "100000/min"),
        "signin": env("PBX_API_RATE_SIGNIN", "100000/min"),
    },
}

# The world's users sign in with wrong passwords in many tests of one run; the lock-out tests set
# a small threshold of their own.
PBX_AUTH_LOCKOUT_FAILURES = int(env("PBX_AUTH_LOCKOUT_FAILURES", "1000"))

# Each pytest-xdist worker gets a Redis database of its own, so engine locations, snapshots,
# throttles and channel groups of parallel tests never meet. Two runs at once on one machine give
# each its own Redis server (PBX_TEST_REDIS, e.g. redis://127.0.0.1:6390): pub/sub channels are
# per server, not per database.
_worker = env("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0"
TEST_REDIS = env("PBX_TEST_REDIS", "redis://127.0.0.1:6379").rstrip("/")
REDIS_URL = f"{TEST_REDIS}/{1 + int(_worker) % 15}"
CACHES["default"]["LOCATION"] = REDIS_URL  # noqa: F405
CACHES["security"]["LOCATION"] = REDIS_URL  # noqa: F405
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [channel_layer_host(REDIS_URL)]  # noqa: F405
CELERY_BROKER_URL = REDIS_URL

# The browser tests' server (tests/e2e/conftest.py) writes its e-mail to files in this directory,
# where the test reads them (pytest-django's own tests use Django's in-memory outbox).
if env("PBX_TEST_MAIL_DIR", ""):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env("PBX_TEST_MAIL_DIR")
