from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "extensions" CSV importer (pbx.imports.REGISTRY).
        from . import imports  # noqa: F401
