from django.apps import AppConfig


class CallCenterConfig(AppConfig):
    name = "callcenter"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Contact centre: queues, agents, wallboards, supervision"

    def ready(self) -> None:
        from routing.destinations import DestinationKind, register

        from .destinations import queue_check, queue_choices

        # Inbound rules, IVR keys, ring groups' and queues' overflow and the portal's
        # pickers offer the tenant's queues from here on.
        register(DestinationKind("queue", "Call queue", queue_check, queue_choices))

        # Registers the handlers of the engine's queue and agent events and the talk times
        # of queue calls (telephony.engine.requests), applied by the CDR drain.
        from . import engine  # noqa: F401
