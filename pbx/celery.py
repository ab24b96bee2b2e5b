"""Celery application: tasks take schema names and ids, never model instances."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.prod")

app = Celery("pbx")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def every(seconds: float, task: str, *, expires: float | None = None) -> None:
    """Run ``task`` (a registered task name) every ``seconds`` from beat. A run still queued
    after ``expires`` seconds (default: the period) is dropped: the next one does its work."""
    from celery.schedules import schedule

    app.conf.beat_schedule.setdefault(
        task,
        {
            "task": task,
            "schedule": schedule(seconds),
            "options": {"expires": seconds if expires is None else expires},
        },
    )
