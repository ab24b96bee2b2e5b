"""Celery tasks for webhooks: given a schema name and ids, idempotent, safe to overlap.

``deliver_webhooks`` works one endpoint's queue (in order) and schedules its own next run when
the head is waiting for its back-off. ``sweep_webhooks`` (beat) re-kicks every endpoint with
pending deliveries, so a lost task (broker restart) delays deliveries but never loses them.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone
from django_tenants.utils import schema_context

from pbx.celery import every

from . import webhooks

log = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 60.0


def _tenant(schema_name: str):
    from tenants.choices import TenantStatus
    from tenants.models import Tenant

    return (
        Tenant.objects.filter(schema_name=schema_name, status=TenantStatus.ACTIVE)
        .exclude(schema_name="public")
        .first()
    )


def run_endpoint(schema_name: str, endpoint_id: int) -> float | None:
    """Work an endpoint now (what the task does, callable without Celery)."""
    tenant = _tenant(schema_name)
    if tenant is None:
        return None  # suspended tenants send nothing; their queue waits
    with schema_context(schema_name):
        return webhooks.work_endpoint(tenant, endpoint_id)


@shared_task(name="events.deliver_webhooks", acks_late=True, ignore_result=True)
def deliver_webhooks(schema_name: str, endpoint_id: int, scheduled: bool = False) -> None:
    if scheduled:
        webhooks.release_schedule(schema_name, endpoint_id)
    delay = run_endpoint(schema_name, endpoint_id)
    if delay is not None:
        countdown = min(delay, webhooks.MAX_COUNTDOWN)
        if webhooks.claim_schedule(schema_name, endpoint_id, countdown):
            deliver_webhooks.apply_async((schema_name, endpoint_id, True), countdown=countdown)


def kick(schema_name: str, endpoint_id: int) -> None:
    """Queue a run for an endpoint (called on commit of new deliveries)."""
    try:
        webhooks._redis().sadd(webhooks.ACTIVE_SET, f"{schema_name}:{endpoint_id}")
        deliver_webhooks.delay(schema_name, endpoint_id)
    except Exception:
        # The deliveries are committed; the sweep will find them.
        log.exception("could not queue webhook delivery for %s:%s", schema_name, endpoint_id)


@shared_task(name="events.sweep_webhooks", ignore_result=True)
def sweep_webhooks() -> int:
    """Kick every endpoint that has pending deliveries."""
    members = webhooks._redis().smembers(webhooks.ACTIVE_SET)
    for member in members:
        schema_name, _, endpoint = (
            member.decode() if isinstance(member, bytes) else member
        ).rpartition(":")
        if endpoint.isdigit():
            deliver_webhooks.delay(schema_name, int(endpoint))
    return len(members)


@shared_task(name="events.prune_outbox", ignore_result=True)
def prune_outbox(days: int | None = None) -> int:
    """Drop outbox events (and their delivery log) older than the retention period."""
    from django.conf import settings

    from tenants.access import live_tenants

    from .models import OutboxEvent

    keep = days if days is not None else int(getattr(settings, "PBX_EVENTS_RETENTION_DAYS", 30))
    cutoff = timezone.now() - timedelta(days=keep)
    total = 0
    for schema_name in live_tenants().values_list("schema_name", flat=True):
        with schema_context(schema_name):
            total += OutboxEvent.objects.filter(created_at__lt=cutoff).delete()[0]
    return total


every(SWEEP_EVERY_SECONDS, "events.sweep_webhooks")
every(86400.0, "events.prune_outbox")
