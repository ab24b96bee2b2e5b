"""ASGI entry point: HTTP through Django, WebSockets through Channels (tenant-scoped groups)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.prod")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from pbx.asgi_http import http_application  # noqa: E402

# The web server serves the portal's own CSS/JS (/static/) itself: the stack has no reverse
# proxy or static server in front. A deployment with one may serve STATIC_ROOT there instead.
django_app = ASGIStaticFilesHandler(http_application())

from pbx.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
