"""Celery application: tasks take schema names and ids, never model instances."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.prod")

app = Celery("pbx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
