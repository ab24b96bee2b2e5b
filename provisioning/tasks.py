"""Celery tasks of provisioning."""

from celery import shared_task
from celery.schedules import schedule
from django.conf import settings

from pbx.celery import app


@shared_task(name="provisioning.flush_fetches", ignore_result=True)
def flush_fetches() -> int:
    """Write the phones' last fetches noted in Redis to the database (see ``delivery``)."""
    from .delivery import flush_fetches as flush

    return flush()


# Registered on import (``CELERY_IMPORTS`` names this module).
app.conf.beat_schedule.setdefault(
    "provisioning.flush_fetches",
    {
        "task": "provisioning.flush_fetches",
        "schedule": schedule(settings.PBX_PROV_FETCH_FLUSH_SECONDS),
        "options": {"expires": settings.PBX_PROV_FETCH_FLUSH_SECONDS},
    },
)
