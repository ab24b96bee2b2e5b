from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the "extensions" CSV importer (pbx.imports.REGISTRY) and the feature.set
        # request handler (telephony.engine.requests).
        from . import features, imports  # noqa: F401
