"""Celery tasks of provisioning."""

from celery import shared_task
from django.conf import settings

from pbx.celery import every


@shared_task(name="provisioning.flush_fetches", ignore_result=True)
def flush_fetches() -> int:
    """Write the phones' last fetches noted in Redis to the database (see ``delivery``)."""
    from .delivery import flush_fetches as flush

    return flush()


# Registered on import (``CELERY_IMPORTS`` names this module).
every(settings.PBX_PROV_FETCH_FLUSH_SECONDS, "provisioning.flush_fetches")
