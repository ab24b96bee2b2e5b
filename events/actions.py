"""Business writes for events and webhooks (run inside the tenant's schema).

Appending to the outbox is not audited (it is machine traffic, thousands an hour); webhook
configuration and replays are.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.crypto import encrypt
from pbx.errors import NotFound, ValidationFailed
from pbx.tenancy import current_schema, current_tenant
from pbx.text import require_single_line

from .choices import EVENT_TYPES, TOPICS, DeliveryState, matches, topic_of
from .models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from .webhooks import check_url


@dataclass(frozen=True)
class NewEvent:
    """An event to append: its type, JSON data, when it happened, and a de-duplication key."""

    type: str
    payload: dict[str, Any]
    occurred_at: datetime = field(default_factory=timezone.now)
    source_key: str | None = None


def _schema() -> str:
    name = current_schema()
    if name == "public":
        raise RuntimeError("event actions run inside a tenant's schema")
    return name


def _lock_outbox() -> None:
    # Serialises appends within the tenant until commit, so ids become visible in id order
    # (two racing transactions could otherwise commit 8 before 7, and a cursor reader at 8
    # would never see 7). Keyed by schema: tenants never wait for each other.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"outbox:{_schema()}"])


def _kick_on_commit(endpoint_ids: set[int]) -> None:
    from .tasks import kick

    schema = _schema()
    for endpoint_id in sorted(endpoint_ids):
        transaction.on_commit(partial(kick, schema, endpoint_id))


def do_append_events(events: list[NewEvent]) -> list[OutboxEvent]:
    """Append events to the tenant's outbox and queue them for every matching enabled webhook.

    Events whose ``source_key`` is already in the outbox are skipped (a re-read stream entry).
    Returns the events appended now.
    """
    if not events:
        return []
    with transaction.atomic():
        _lock_outbox()
        keys = [e.source_key for e in events if e.source_key]
        seen = set(
            OutboxEvent.objects.filter(source_key__in=keys).values_list("source_key", flat=True)
        )
        created = [
            OutboxEvent.objects.create(
                type=e.type,
                topic=topic_of(e.type),
                payload=e.payload,
                occurred_at=e.occurred_at,
                source_key=e.source_key,
            )
            for e in events
            if not (e.source_key and e.source_key in seen)
        ]
        endpoints = list(WebhookEndpoint.objects.filter(enabled=True).only("id", "event_types"))
        deliveries = [
            WebhookDelivery(endpoint_id=ep.pk, event=event)
            for event in created
            for ep in endpoints
            if matches(ep.event_types, event.type)
        ]
        WebhookDelivery.objects.bulk_create(deliveries)
        _kick_on_commit({d.endpoint_id for d in deliveries})
    return created


# ------------------------------------------------------------------------------ webhooks


def _validate_types(event_types: list[str]) -> None:
    allowed = {*EVENT_TYPES, *TOPICS, "*"}
    if (
        not isinstance(event_types, list)
        or not event_types
        or any(t not in allowed for t in event_types)
    ):
        raise ValidationFailed(
            "Unknown event types.",
            fields={"event_types": [f"choose from {', '.join(sorted(allowed))}"]},
        )


# The URL becomes a request line and Host header; the description is shown beside it.
_TEXTS = {"url": 500, "description": 255}


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def do_create_webhook(
    *,
    url: str,
    event_types: list[str],
    actor: Actor,
    description: str = "",
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it with its signing secret (shown once)."""
    require_single_line({"url": url, "description": description}, _TEXTS, "Invalid webhook.")
    check_url(url)
    _validate_types(event_types)
    secret = _new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.create(
            url=url,
            event_types=event_types,
            description=description,
            enabled=enabled,
            secret_encrypted=encrypt(secret),
        )
        audit.record(
            actor,
            "webhook.create",
            endpoint,
            tenant=current_tenant(),
            changes={"url": url, "event_types": event_types, "enabled": enabled},
        )
    return endpoint, secret


def do_update_webhook(
    endpoint: WebhookEndpoint, *, actor: Actor, rotate_secret: bool = False, **fields
) -> tuple[WebhookEndpoint, str | None]:
    """Change an endpoint; with ``rotate_secret`` a new secret is returned (shown once).
    Enabling it again resumes its waiting queue."""
    require_single_line(fields, _TEXTS, "Invalid webhook.")
    if "url" in fields:
        check_url(fields["url"])
    if "event_types" in fields:
        _validate_types(fields["event_types"])
    secret = None
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        changes = audit.diff(endpoint, fields)
        for name, value in fields.items():
            setattr(endpoint, name, value)
        update = [*fields, "updated_at"]
        if rotate_secret:
            secret = _new_secret()
            endpoint.secret_encrypted = encrypt(secret)
            update.append("secret_encrypted")
            changes["secret"] = "rotated"  # noqa: S105 - a note, not a secret
        endpoint.updated_at = timezone.now()
        endpoint.save(update_fields=update)
        audit.record(actor, "webhook.update", endpoint, tenant=current_tenant(), changes=changes)
        if endpoint.enabled:
            _kick_on_commit({endpoint.pk})
    return endpoint, secret


def do_delete_webhook(endpoint: WebhookEndpoint, *, actor: Actor) -> None:
    with transaction.atomic():
        audit.record(actor, "webhook.delete", endpoint, tenant=current_tenant())
        endpoint.delete()


def do_replay_webhook(endpoint: WebhookEndpoint, *, from_event_id: int, actor: Actor) -> int:
    """Send an endpoint every matching event with id >= ``from_event_id`` again, in order.

    Events already waiting for this endpoint are not queued twice. Returns how many were queued.
    """
    limit = int(getattr(settings, "PBX_WEBHOOK_REPLAY_MAX", 10_000))
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        if not OutboxEvent.objects.filter(pk=from_event_id).exists():
            raise NotFound("No such event.")
        waiting = WebhookDelivery.objects.filter(
            endpoint=endpoint, state=DeliveryState.PENDING
        ).values("event_id")
        events = (
            OutboxEvent.objects.filter(pk__gte=from_event_id)
            .exclude(pk__in=waiting)
            .order_by("id")
            .only("id", "type")
        )
        chosen = [e for e in events.iterator() if matches(endpoint.event_types, e.type)]
        if len(chosen) > limit:
            raise ValidationFailed(
                f"At most {limit} events per replay; replay from a later event.",
                fields={"from_event_id": ["too many events"]},
            )
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(endpoint=endpoint, event=e, replay=True) for e in chosen],
            batch_size=1000,
        )
        audit.record(
            actor,
            "webhook.replay",
            endpoint,
            tenant=current_tenant(),
            changes={"from_event_id": from_event_id, "queued": len(chosen)},
        )
        if chosen and endpoint.enabled:
            _kick_on_commit({endpoint.pk})
    return len(chosen)
