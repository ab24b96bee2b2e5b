from django.apps import AppConfig


class CallCenterConfig(AppConfig):
    name = "callcenter"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Contact centre: queues, agents, wallboards, supervision"

    def ready(self) -> None:
        # Registers the handlers of the engine's queue and agent events and the talk times
        # of queue calls (telephony.engine.requests), applied by the CDR drain.
        from . import engine  # noqa: F401
