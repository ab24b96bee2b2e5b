from django.apps import AppConfig


class AudioConfig(AppConfig):
    name = "audio"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Prompts, music on hold and voicemail"

    def ready(self) -> None:
        # Registers the handlers of the engine's voicemail and voicemail feature-code requests
        # (telephony.engine.requests), and of the engine's finished call recordings.
        from . import engine, recording_requests  # noqa: F401
