"""Settings for ``make run`` and production: DEBUG is off whatever the environment says.

Error pages are the portal's own (templates/400.html, 403.html, 404.html, 500.html): no URL
list, no traceback, no settings. The developer mode with DEBUG on is ``make dev``
(``pbx.settings.dev``).
"""

from .base import *  # noqa: F403

DEBUG = False
