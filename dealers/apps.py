from django.apps import AppConfig


class DealersConfig(AppConfig):
    name = "dealers"
    default_auto_field = "django.db.models.BigAutoField"
