"""The portal's live WebSocket, ``/portal/ws/live/`` on a tenant's host.

It is the events consumer (:class:`events.consumers.EventsConsumer`: the host tenant's Channels
group only, the same frames) with two differences that suit a page rather than an API client:

- a portal session is the only credential: token sources (``?token=``, an Authorization
  header, the ``bearer`` subprotocol) are removed from the handshake before authentication;
- it subscribes to every topic on connect, so the page gets ``welcome``, ``subscribed``, a
  ``snapshot`` of the live state (which also covers anything that changed between the page's
  render and the socket's opening), then ``event`` frames.
"""

from __future__ import annotations

from events.auth import EventsAuthMiddleware
from events.choices import TOPICS
from events.consumers import EventsConsumer


class PortalLiveConsumer(EventsConsumer):
    async def connect(self) -> None:
        await super().connect()
        if self.group is not None:  # accepted and authorised
            await self._subscription("subscribe", sorted(TOPICS))


class SessionOnly:
    """ASGI middleware: drop every bearer-token source from a WebSocket handshake."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["query_string"] = b""
        headers = scope.get("headers", [])
        scope["headers"] = [(k, v) for k, v in headers if k.lower() != b"authorization"]
        scope["subprotocols"] = []
        return await self.inner(scope, receive, send)


def portal_live_app():
    return SessionOnly(EventsAuthMiddleware(PortalLiveConsumer.as_asgi()))
