from django.apps import AppConfig


class PbxConfig(AppConfig):
    name = "pbx"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from pbx.api import schema  # noqa: F401 - registers the OpenAPI auth extensions
