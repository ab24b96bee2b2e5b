"""Settings for a developer's machine (``make dev``): DEBUG on unless ``PBX_DEBUG=0``.

Never for a PBX reachable by others: with DEBUG on, a 404 lists every URL and a 500 shows a
traceback with settings. ``make run`` uses ``pbx.settings.prod``.
"""

from .base import *  # noqa: F403
from .base import env_bool

DEBUG = env_bool("PBX_DEBUG", True)
