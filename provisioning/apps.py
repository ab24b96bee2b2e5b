from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "phones" CSV importer into pbx.imports.REGISTRY.
        from . import imports  # noqa: F401
        from .layers import connect_signals

        connect_signals()
