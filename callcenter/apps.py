from django.apps import AppConfig


class CallCenterConfig(AppConfig):
    name = "callcenter"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Contact centre: queues, agents, wallboards, supervision"
