from django.apps import AppConfig


class TrunksConfig(AppConfig):
    name = "trunks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Trunks and numbers"
