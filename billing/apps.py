from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The scheduled reports' task and its beat entry register on import.
        from . import report_tasks  # noqa: F401
