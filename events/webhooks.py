"""Sending webhooks: URL safety, signatures, back-off, and the in-order delivery loop.

Signature: ``X-PBX-Signature: t=<unix seconds>,v1=<hex>`` where ``hex`` is
HMAC-SHA256(secret, ``"<t>." + body``). A receiver recomputes it over the raw body, compares in
constant time and rejects stale ``t`` (replays); :func:`verify_signature` does exactly that.

Order: per endpoint, the oldest pending delivery (by event id) is the head; nothing behind it is
sent until it is delivered or given up. One worker at a time works an endpoint (a Redis lock);
a worker that finds the head not yet due schedules one delayed run, not one per event.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import random
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.utils import timezone

from pbx.errors import ValidationFailed

from .choices import DeliveryState

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-PBX-Signature"
LOCK_KEY = "webhooks:lock:{schema}:{endpoint}"
SCHEDULED_KEY = "webhooks:scheduled:{schema}:{endpoint}"
ACTIVE_SET = "webhooks:active"  # "<schema>:<endpoint id>" of endpoints with pending deliveries
MAX_COUNTDOWN = 300.0  # longer Celery ETAs would outlive the Redis broker's visibility timeout


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


# ---------------------------------------------------------------------------- URL safety


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``PBX_WEBHOOK_ALLOWED_NETWORKS``: networks webhooks may reach although they are not
    public (an on-premise CRM on 10.1.2.0/24). Listing a network is the operator's decision;
    nothing private is reachable by default."""
    value = _setting("PBX_WEBHOOK_ALLOWED_NETWORKS", ())
    if isinstance(value, str):
        value = [v for v in value.replace(",", " ").split() if v]
    return [ipaddress.ip_network(str(v).strip(), strict=False) for v in value]


def _address_allowed(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in net for net in allowed_networks() if net.version == ip.version):
        return True
    if ip.is_loopback:
        return bool(_setting("PBX_WEBHOOK_ALLOW_LOOPBACK", False))
    if ip.is_private and not (ip.is_link_local or ip.is_reserved or ip.is_unspecified):
        return bool(_setting("PBX_WEBHOOK_ALLOW_PRIVATE", False))
    # Link-local holds the cloud metadata service; the rest are never a webhook receiver.
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> None:
    """Refuse what a tenant must not make the PBX call: other schemes, credentials in the URL,
    and (by literal or by name) loopback, private, link-local and reserved addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("Only http and https URLs.", fields={"url": ["http(s) only"]})
    if parts.username or parts.password:
        raise ValidationFailed("No credentials in the URL.", fields={"url": ["no user:password"]})
    resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))


def resolve(host: str, port: int) -> str:
    """An allowed address of ``host`` (every address it resolves to must be allowed)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ValidationFailed(
            f"The host {host} does not resolve.", fields={"url": ["unknown host"]}
        ) from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(_address_allowed(a) for a in addresses):
        raise ValidationFailed(
            "The URL points at an address the PBX does not call.",
            fields={"url": ["address not allowed"]},
        )
    return str(addresses[0])


# ---------------------------------------------------------------------------- signatures


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(secret: str, header: str, body: bytes, *, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, refuse stale timestamps."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    expected = sign(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


# ---------------------------------------------------------------------------- back-off


def backoff_seconds(attempt: int) -> float:
    """Delay before attempt ``attempt + 1``: exponential, capped, with ±25 % jitter so that
    endpoints failing together do not retry in lock-step."""
    base = float(_setting("PBX_WEBHOOK_RETRY_BASE", 10.0))
    cap = float(_setting("PBX_WEBHOOK_RETRY_CAP", 3600.0))
    delay = min(cap, base * (2 ** max(0, attempt - 1)))
    return delay * random.uniform(0.75, 1.25)


# ---------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    excerpt: str
    error: str


def envelope(event, tenant_slug: str) -> dict[str, Any]:
    """What every consumer of an event sees (webhook body, WebSocket frame, ``/events/``)."""
    return {
        "id": event.pk,
        "type": event.type,
        "topic": event.topic,
        "tenant": tenant_slug,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.payload,
    }


def _pinned_request(url: str) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, so DNS cannot change between the check and the
    connection (rebinding); Host and TLS SNI keep the original name."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = resolve(host, port)
    literal = f"[{address}]" if ":" in address else address
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), headers, extensions


def post(
    url: str, body: bytes, headers: dict[str, str], client: httpx.Client | None = None
) -> Outcome:
    """POST once; 2xx is success, anything else (redirects included) a failure."""
    try:
        target, host_header, extensions = _pinned_request(url)
    except ValidationFailed as exc:
        return Outcome(False, None, "", exc.message[:255])
    own = client is None
    client = client or httpx.Client(timeout=float(_setting("PBX_WEBHOOK_TIMEOUT", 10.0)))
    try:
        response = client.post(
            target,
            content=body,
            headers={**headers, **host_header},
            extensions=extensions,
            follow_redirects=False,
        )
        excerpt = response.text[:500]
        return Outcome(200 <= response.status_code < 300, response.status_code, excerpt, "")
    except httpx.HTTPError as exc:
        return Outcome(False, None, "", f"{type(exc).__name__}: {exc}"[:255])
    finally:
        if own:
            client.close()


def _send(delivery, tenant_slug: str, product: str, client: httpx.Client) -> Outcome:
    body = json.dumps(envelope(delivery.event, tenant_slug), separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"{product} webhooks",
        SIGNATURE_HEADER: sign(delivery.endpoint.secret, body),
        "X-PBX-Event-Id": str(delivery.event_id),
        "X-PBX-Event-Type": delivery.event.type,
        "X-PBX-Delivery-Id": str(delivery.pk),
        "X-PBX-Attempt": str(delivery.attempt + 1),
    }
    return post(delivery.endpoint.url, body, headers, client)


def _record(delivery, outcome: Outcome) -> float | None:
    """Write an attempt's outcome; returns the delay before the next attempt (None: settled)."""
    from .models import WebhookDelivery

    now = timezone.now()
    attempt = delivery.attempt + 1
    fields: dict[str, Any] = {
        "attempt": attempt,
        "status_code": outcome.status_code,
        "response_excerpt": outcome.excerpt,
        "error": outcome.error,
        "last_attempt_at": now,
    }
    delay: float | None = None
    if outcome.ok:
        fields.update(state=DeliveryState.DELIVERED, delivered_at=now)
    elif attempt >= int(_setting("PBX_WEBHOOK_MAX_ATTEMPTS", 15)) or outcome.status_code == 410:
        fields.update(state=DeliveryState.FAILED)  # given up; a replay can send it again
    else:
        delay = backoff_seconds(attempt)
        fields.update(next_attempt_at=now + timedelta(seconds=delay))
    # Conditional: a replay or a delete meanwhile must not be overwritten.
    WebhookDelivery.objects.filter(pk=delivery.pk, state=DeliveryState.PENDING).update(**fields)
    return delay


def _head(endpoint_id: int):
    from .models import WebhookDelivery

    return (
        WebhookDelivery.objects.filter(endpoint_id=endpoint_id, state=DeliveryState.PENDING)
        .select_related("event", "endpoint")
        .order_by("event_id", "id")
        .first()
    )


def work_endpoint(tenant, endpoint_id: int, *, max_sends: int = 200) -> float | None:
    """Send an endpoint's due deliveries in order (caller is in the tenant's schema).

    Returns the seconds until the head is due, 0 when more are due now, None when the queue is
    empty or another worker holds the endpoint (that worker will carry on).
    """
    from branding.effective import brand_for_tenant

    from .models import WebhookEndpoint

    r = _redis()
    lock = r.lock(
        LOCK_KEY.format(schema=tenant.schema_name, endpoint=endpoint_id),
        timeout=float(_setting("PBX_WEBHOOK_TIMEOUT", 10.0)) * 3 + 30,
        blocking=False,
    )
    if not lock.acquire(blocking=False):
        return None
    product = brand_for_tenant(tenant).product_name
    result: float | None = None
    try:
        with httpx.Client(timeout=float(_setting("PBX_WEBHOOK_TIMEOUT", 10.0))) as client:
            for _ in range(max_sends):
                if not WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).exists():
                    break
                head = _head(endpoint_id)
                if head is None:
                    break
                due = (head.next_attempt_at - timezone.now()).total_seconds()
                if due > 0:
                    result = due
                    break
                delay = _record(head, _send(head, tenant.slug, product, client))
                if delay is not None:
                    result = delay
                    break
            else:
                result = 0.0
    finally:
        lock.release()
    member = f"{tenant.schema_name}:{endpoint_id}"
    if result is None:
        r.srem(ACTIVE_SET, member)
        # A delivery added while we held the lock had its kick refused: look once more.
        head = _head(endpoint_id)
        if (
            head is not None
            and WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).exists()
        ):
            r.sadd(ACTIVE_SET, member)
            result = max(0.0, (head.next_attempt_at - timezone.now()).total_seconds())
    return result


def claim_schedule(schema: str, endpoint_id: int, delay: float) -> bool:
    """Whether the caller should schedule a run in ``delay`` s: not if one is already due by
    then (so a long outage with many new events keeps one delayed run, not one per event)."""
    r = _redis()
    key = SCHEDULED_KEY.format(schema=schema, endpoint=endpoint_id)
    due = time.time() + delay
    current = r.get(key)
    if current is not None and float(current) <= due + 0.5:
        return False
    r.set(key, f"{due:.3f}", ex=int(delay + MAX_COUNTDOWN + 60))
    return True


def release_schedule(schema: str, endpoint_id: int) -> None:
    _redis().delete(SCHEDULED_KEY.format(schema=schema, endpoint=endpoint_id))
