"""Settings for a developer's machine (``make run``)."""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("PBX_DEBUG", True)
