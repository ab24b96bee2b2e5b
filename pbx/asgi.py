"""ASGI entry point: HTTP through Django, WebSockets through Channels (tenant-scoped groups)."""

import logging
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.prod")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from pbx.asgi_http import http_application  # noqa: E402

# The web server serves the portal's own CSS/JS (/static/) itself: the stack has no reverse
# proxy or static server in front. A deployment with one may serve STATIC_ROOT there instead.
django_app = ASGIStaticFilesHandler(http_application())

from django.conf import settings  # noqa: E402

from pbx.routing import websocket_urlpatterns  # noqa: E402

log = logging.getLogger("pbx")


def _proxied_https(scope) -> bool:
    """A trusted proxy in front says the browser's connection was HTTPS
    (``SECURE_PROXY_SSL_HEADER``, set by ``PBX_TRUST_X_FORWARDED_PROTO``)."""
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not header:
        return False
    name, value = header[0].removeprefix("HTTP_").lower().replace("_", "-").encode(), header[1]
    return any(k == name and v.decode("latin1") == value for k, v in scope.get("headers", ()))


def https_websockets_only(app):
    """With HTTPS on (``PBX_HTTPS``), a WebSocket opened on the plain-HTTP listener is refused
    (its handshake answers 403): a browser cannot follow a redirect there as it does for a
    page, and neither the portal's session (its cookie is sent over HTTPS only) nor an API
    client's bearer token should cross the network in clear text."""

    async def guard(scope, receive, send):
        if settings.PBX_HTTPS and scope.get("scheme") == "ws" and not _proxied_https(scope):
            log.info("WebSocket %r over plain HTTP refused: use wss://", scope.get("path"))
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            return
        await app(scope, receive, send)

    return guard


application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": https_websockets_only(URLRouter(websocket_urlpatterns)),
    }
)
