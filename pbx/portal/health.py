"""The platform's health as the provider and dealer dashboards show it: each part checked for
real, cheaply, and the answer kept a few seconds so a dashboard reload does not re-ask.

- **SIP engines**: each running engine keeps a heartbeat key (``sip:engine:<id>``, with a TTL,
  :mod:`telephony.sip.calls.limits`); none left means no engine is handling calls.
- **Media**: an ng ``ping`` to rtpengine on the address the engines use (``SIP_RTPENGINE_NG``).
- **Background workers**: beat queues :func:`worker_heartbeat` every ``HEARTBEAT_EVERY`` seconds
  and a worker runs it, stamping ``HEARTBEAT_KEY``; a stale stamp means beat or every worker is
  gone (the queue's length tells which). No ``inspect`` broadcast: that costs a second or more.
- **Queue backlog**: the length of the broker's Redis list for the default queue.
- **TLS certificate**: the days left on the certificate of the SIP TLS transport
  (``SIP_TLS_CERT``, made by ``make run`` under ``var/tls``).

Every check answers a :class:`Check` (ok, warning or down, with a sentence) and never raises:
a dashboard must render when what it reports on is broken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from celery import shared_task
from django.conf import settings

from pbx.celery import every

OK, WARNING, DOWN = "ok", "warning", "down"
STATUS_LABELS = {OK: "OK", WARNING: "Warning", DOWN: "Down"}

CACHE_SECONDS = 5.0  # how long one process reuses a check's answer
HEARTBEAT_EVERY = 20.0  # seconds between two worker heartbeats
HEARTBEAT_STALE = 90.0  # a heartbeat older than this: the workers (or beat) are gone
BACKLOG_WARNING = 100  # tasks waiting in the broker's queue
BACKLOG_DOWN = 5000
CERT_WARNING_DAYS = 21
NG_TIMEOUT = 0.5  # seconds to wait for rtpengine's pong (two sends)


@dataclass(frozen=True)
class Check:
    """One part's health: ``status`` is ok, warning or down; ``message`` says it in words."""

    key: str
    label: str
    status: str
    message: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def ok(self) -> bool:
        return self.status == OK


T = TypeVar("T")

_cache: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every remembered answer (tests, after breaking or mending a part)."""
    with _lock:
        _cache.clear()


def _cached(key: str, run: Callable[[], T]) -> T:
    now = time.monotonic()
    with _lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = run()
    with _lock:
        _cache[key] = (now + CACHE_SECONDS, value)
    return value


def platform_checks() -> list[Check]:
    """Everything, for the system admin."""
    return [sip_engines(), media(), workers(), queue_backlog(), certificate()]


def dealer_checks() -> list[Check]:
    """What a dealer's tenants feel (calls and media), without the platform's internals."""
    return [sip_engines(dealer=True), media(dealer=True)]


def _redis():
    """The shared Redis (engines' heartbeats, the worker heartbeat), with short timeouts."""
    from telephony.engine.store import client

    return client(timeout=1.0)


# ------------------------------------------------------------------------------ SIP engines


def running_engines() -> int:
    """How many SIP engines have a live heartbeat key."""
    from telephony.engine.store import redis_key
    from telephony.sip.contract import ENGINE_ALIVE

    client = _redis()
    try:
        return sum(
            1 for _ in client.scan_iter(match=redis_key(ENGINE_ALIVE, engine="*"), count=1000)
        )
    finally:
        client.close()


def sip_engines(*, dealer: bool = False) -> Check:
    label = "Calls and registrations" if dealer else "SIP engines"
    return _cached(f"engines:{dealer}", lambda: _sip_engines(label, dealer))


def _sip_engines(label: str, dealer: bool) -> Check:
    try:
        count = running_engines()
    except Exception:
        if dealer:
            return Check("engines", label, DOWN, "The call service cannot be reached.")
        return Check(
            "engines", label, DOWN, "Redis cannot be reached, so the SIP engines cannot be seen."
        )
    if count == 0:
        if dealer:
            return Check(
                "engines", label, DOWN, "The call service is not running: phones cannot call."
            )
        return Check(
            "engines",
            label,
            DOWN,
            "No SIP engine is running (no heartbeat in Redis): phones can neither register nor "
            "call.",
        )
    if dealer:
        return Check("engines", label, OK, "The call service is running.")
    noun = "engine is" if count == 1 else "engines are"
    return Check("engines", label, OK, f"{count} SIP {noun} running.")


def ban_count() -> int | None:
    """How many source addresses the engines have banned now; None when Redis is away."""

    def count() -> int | None:
        from telephony.engine.state import current_bans

        try:
            return len(current_bans())
        except Exception:
            return None

    return _cached("bans", count)


# ------------------------------------------------------------------------------------ media


def ng_address() -> tuple[str, int] | None:
    """rtpengine's ng address as the engines are given it; None when media is never anchored."""
    raw = (settings.SIP_RTPENGINE_NG or "").strip()
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def ng_ping(address: tuple[str, int], timeout: float = NG_TIMEOUT) -> bool:
    """rtpengine's answer to an ng ``ping``, asked with the engine's own ng client
    (:class:`telephony.sip.media.RtpEngine`: cookies, retransmits, the answer's decoding)."""
    import asyncio

    from telephony.sip.media import MediaError, RtpEngine

    async def ping() -> bool:
        client = RtpEngine(*address, timeout=timeout, retransmit=timeout / 2)
        try:
            return await client.ping()
        except (MediaError, OSError):
            return False
        finally:
            client.close()

    return asyncio.run(ping())


def media(*, dealer: bool = False) -> Check:
    return _cached(f"media:{dealer}", lambda: _media(dealer))


def _media(dealer: bool) -> Check:
    label = "Call audio" if dealer else "Media relay (rtpengine)"
    address = ng_address()
    if address is None:
        return Check("media", label, OK, "Not used: call audio flows directly between the phones.")
    try:
        answered = ng_ping(address)
    except (OSError, RuntimeError):  # RuntimeError: called inside a running event loop
        answered = False
    if answered:
        if dealer:
            return Check("media", label, OK, "The media relay is answering.")
        return Check("media", label, OK, f"rtpengine at {address[0]}:{address[1]} answers ping.")
    if dealer:
        return Check(
            "media",
            label,
            DOWN,
            "The media relay is not answering: calls through it have no audio.",
        )
    return Check(
        "media",
        label,
        DOWN,
        f"rtpengine at {address[0]}:{address[1]} does not answer ping: calls that need the "
        "relay (NAT, anchored media) have no audio.",
    )


# ----------------------------------------------------------------------- background workers


def heartbeat_key() -> str:
    from telephony.engine.store import redis_key

    return redis_key("pbx:worker:heartbeat")


@shared_task(name="pbx.worker_heartbeat", ignore_result=True)
def worker_heartbeat() -> None:
    """Stamp the time: proof that beat schedules and a worker runs tasks."""
    client = _redis()
    try:
        client.set(heartbeat_key(), f"{time.time():.3f}")
    finally:
        client.close()


# Run on the beat schedule once this module is imported (``CELERY_IMPORTS`` names it).
every(HEARTBEAT_EVERY, "pbx.worker_heartbeat")


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} seconds ago"
    if seconds < 7200:
        return f"{int(seconds // 60)} minutes ago"
    if seconds < 172800:
        return f"{int(seconds // 3600)} hours ago"
    return f"{int(seconds // 86400)} days ago"


def workers() -> Check:
    return _cached("workers", _workers)


def _workers() -> Check:
    label = "Background workers"
    try:
        client = _redis()
        try:
            raw = client.get(heartbeat_key())
        finally:
            client.close()
        waiting = _backlog()
    except Exception:
        return Check("workers", label, DOWN, "Redis cannot be reached: background work stops.")
    age = time.time() - float(raw) if raw is not None else None
    if age is not None and age <= HEARTBEAT_STALE:
        return Check(
            "workers", label, OK, f"A worker ran the heartbeat task {_ago(max(0.0, age))}."
        )
    when = "has never run" if age is None else f"last ran {_ago(age)}"
    if waiting == 1:
        why = "1 task is waiting: no worker is taking it."
    elif waiting:
        why = f"{waiting} tasks are waiting: no worker is taking them."
    else:
        why = "The queue is empty: the scheduler (beat) is probably not running."
    return Check(
        "workers",
        label,
        DOWN,
        f"The heartbeat task {when}. {why} CDRs, imports, e-mail and webhooks are held up.",
    )


# ---------------------------------------------------------------------------- queue backlog


def broker_backlog() -> int | None:
    """Tasks waiting in the default queue of the broker; None when the broker is not Redis."""
    url = settings.CELERY_BROKER_URL or ""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    from pbx.celery import app

    queue = app.conf.task_default_queue or "celery"
    import redis

    client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    try:
        return int(client.llen(queue))
    finally:
        client.close()


def _backlog() -> int | None:
    """:func:`broker_backlog`, asked once for both the workers' and the queue's check."""
    return _cached("broker_backlog", broker_backlog)


def queue_backlog() -> Check:
    return _cached("backlog", _queue_backlog)


def _queue_backlog() -> Check:
    label = "Task queue"
    try:
        waiting = _backlog()
    except Exception:
        return Check("backlog", label, DOWN, "The task broker cannot be reached.")
    if waiting is None:
        return Check("backlog", label, WARNING, "Not measured: the broker is not Redis.")
    if waiting >= BACKLOG_DOWN:
        return Check(
            "backlog", label, DOWN, f"{waiting} tasks are waiting: background work is far behind."
        )
    if waiting >= BACKLOG_WARNING:
        return Check(
            "backlog", label, WARNING, f"{waiting} tasks are waiting: background work is behind."
        )
    noun = "task is" if waiting == 1 else "tasks are"
    return Check("backlog", label, OK, f"{waiting} {noun} waiting.")


# ---------------------------------------------------------------------------- certificate


def certificate_expiry(path: str) -> datetime:
    """When the first certificate in the PEM file ``path`` expires (UTC)."""
    from cryptography import x509

    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    return cert.not_valid_after_utc


def certificate() -> Check:
    return _cached("certificate", _certificate)


def _certificate() -> Check:
    label = "SIP TLS certificate"
    path = settings.SIP_TLS_CERT
    if not path:
        return Check(
            "certificate", label, WARNING, "None configured: SIP over TLS and WSS are off."
        )
    try:
        expires = certificate_expiry(path)
    except FileNotFoundError:
        return Check(
            "certificate",
            label,
            WARNING,
            f"No certificate at {path}: SIP over TLS and WSS are off.",
        )
    except (OSError, ValueError):
        return Check("certificate", label, DOWN, f"The certificate at {path} cannot be read.")
    left = expires - datetime.now(tz=UTC)
    days = left.days
    on = f"{expires:%Y-%m-%d %H:%M} UTC"
    if left.total_seconds() <= 0:
        return Check(
            "certificate",
            label,
            DOWN,
            f"Expired on {on}: phones using TLS refuse to connect. Renew it now.",
        )
    if days < CERT_WARNING_DAYS:
        return Check(
            "certificate", label, WARNING, f"Expires in {days} days ({on}). Renew it soon."
        )
    return Check("certificate", label, OK, f"Valid for {days} more days (until {on}).")
