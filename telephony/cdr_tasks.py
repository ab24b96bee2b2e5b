"""Celery side of CDRs: a periodic task drains the engine's call events into tenant schemas.

The task is idempotent and safe to overlap: the consumer group hands each entry to one consumer,
entries are acknowledged only after their transaction commits, and a Redis lock keeps one
drainer at a time so that one call's events are applied in stream order in the common case.
The worker must import this module (``app.autodiscover_tasks(related_name="cdr_tasks")`` or
``CELERY_IMPORTS``); the beat entry below is registered when it does.
"""

import contextlib

from celery import shared_task
from celery.schedules import schedule
from django.conf import settings

from pbx.celery import app

from .cdr import CdrConsumer

LOCK_KEY = "sip:cdr:lock"
# How often beat runs the drain; a drain that finds work keeps going until the stream is dry.
DRAIN_EVERY_SECONDS = 2.0


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


@shared_task(name="telephony.consume_call_events", acks_late=True, ignore_result=True)
def consume_call_events(max_batches: int = 1000) -> int:
    """Write CDRs for every call event not yet acknowledged. Returns entries acknowledged."""
    r = _redis()
    lock = r.lock(LOCK_KEY, timeout=300, blocking=False)
    if not lock.acquire(blocking=False):
        return 0  # another worker is draining; the next beat tick will look again
    try:
        return CdrConsumer(r).drain(max_batches=max_batches)
    finally:
        with contextlib.suppress(Exception):  # the lock expired under us: nothing to release
            lock.release()


# Registered when the module is imported (autodiscovery happens before beat builds its
# scheduler), so the schedule lives next to the task it runs.
app.conf.beat_schedule.setdefault(
    "telephony.consume_call_events",
    {
        "task": "telephony.consume_call_events",
        "schedule": schedule(DRAIN_EVERY_SECONDS),
        "options": {"expires": DRAIN_EVERY_SECONDS * 5},
    },
)
