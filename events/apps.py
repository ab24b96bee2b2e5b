from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Live events: the fan-out of engine events, pub/sub over WebSocket, webhooks (tenant)."""

    name = "events"
    default_auto_field = "django.db.models.BigAutoField"
