"""WebSocket routes (live status, pub/sub for API clients) — added as features arrive."""

from django.urls import path

from callcenter.consumers import wallboard_app
from events.auth import EventsAuthMiddleware
from events.consumers import EventsConsumer
from pbx.portal.consumers import portal_live_app

websocket_urlpatterns: list = [
    # Pub/sub for API clients and the portal's live pages (bearer token or portal session).
    path("api/v1/ws/events/", EventsAuthMiddleware(EventsConsumer.as_asgi())),
    # The portal's live pages (extensions, active calls): the portal session only.
    path("portal/ws/live/", portal_live_app()),
    # The contact centre's wallboard (tenant admins, queue supervisors): the portal session.
    path("ws/portal/wallboard/", wallboard_app()),
]
