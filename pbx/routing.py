"""WebSocket routes (live status, pub/sub for API clients) — added as features arrive."""

from django.urls import path

from events.auth import EventsAuthMiddleware
from events.consumers import EventsConsumer

websocket_urlpatterns: list = [
    # Pub/sub for API clients and the portal's live pages (bearer token or portal session).
    path("api/v1/ws/events/", EventsAuthMiddleware(EventsConsumer.as_asgi())),
]
