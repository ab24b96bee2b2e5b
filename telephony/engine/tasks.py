"""Celery side of CDRs: a periodic task drains the engine's call events into tenant schemas.

The task is idempotent and safe to overlap: the consumer group hands each entry to one consumer,
entries are acknowledged only after their transaction commits, and a Redis lock keeps one
drainer at a time so that one call's events are applied in stream order in the common case.
The worker and beat import this module through ``CELERY_IMPORTS`` (it is not an app's
``tasks.py``, which autodiscovery would find); the beat entry below is registered when they do.
"""

import contextlib

from celery import shared_task

from pbx.celery import every
from telephony.sip.contract import CDR_LOCK

from .cdr import CdrConsumer
from .store import client, redis_key

# How often beat runs the drain; a drain that finds work keeps going until the stream is dry.
DRAIN_EVERY_SECONDS = 2.0


@shared_task(name="telephony.consume_call_events", acks_late=True, ignore_result=True)
def consume_call_events(max_batches: int = 1000) -> int:
    """Write CDRs for every call event not yet acknowledged. Returns entries acknowledged."""
    r = client(timeout=5.0)
    lock = r.lock(redis_key(CDR_LOCK), timeout=300, blocking=False)
    if not lock.acquire(blocking=False):
        return 0  # another worker is draining; the next beat tick will look again
    try:
        return CdrConsumer(r).drain(max_batches=max_batches)
    finally:
        with contextlib.suppress(Exception):  # the lock expired under us: nothing to release
            lock.release()


# Registered when the module is imported (autodiscovery happens before beat builds its
# scheduler), so the schedule lives next to the task it runs.
every(DRAIN_EVERY_SECONDS, "telephony.consume_call_events", expires=DRAIN_EVERY_SECONDS * 5)
