from django.apps import AppConfig


class BrandingConfig(AppConfig):
    """White label: the platform's and each dealer's brand (public schema)."""

    name = "branding"
    default_auto_field = "django.db.models.BigAutoField"
