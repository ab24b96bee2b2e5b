"""WebSocket routes (live status, pub/sub for API clients) — added as features arrive."""

websocket_urlpatterns: list = []
