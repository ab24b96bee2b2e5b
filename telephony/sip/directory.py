"""Routing snapshots in memory, kept current from Redis.

Django publishes one JSON snapshot per tenant (``telephony/snapshots.py``): the key
``sip:snapshot:<domain>``, the set ``sip:domains`` and the channel ``sip:snapshot:changed`` that
carries a domain whose snapshot changed. :class:`Directory` loads every snapshot at start and
reloads one when its domain is announced, so a change in the API reaches the running engine in
milliseconds. The hot path, :meth:`Directory.tenant`, is a dict lookup: no I/O.

If the pub/sub connection drops, the directory reconnects and reloads everything, because changes
published while it was away are lost (Redis pub/sub does not queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from . import contract

__all__ = ["Directory", "ExtensionSnapshot", "TenantSnapshot", "parse_snapshot"]

log = logging.getLogger(__name__)

ALL_TRANSPORTS = frozenset({"udp", "tcp", "tls", "ws", "wss"})


@dataclass(frozen=True, slots=True)
class ExtensionSnapshot:
    """What the engine knows of one extension: digest HA1s (never the password) and limits."""

    number: str
    display_name: str
    enabled: bool
    dnd: bool
    ha1_md5: str
    ha1_sha256: str
    max_contacts: int
    transports: frozenset[str]
    caller_id_name: str
    caller_id_number: str
    # Call forwarding: target extension numbers ("" = off) and the seconds of ringing before
    # "no answer" (0 = the engine's default).
    forward_always: str = ""
    forward_busy: str = ""
    forward_no_answer: str = ""
    no_answer_timeout: float = 0.0


@dataclass(frozen=True, slots=True)
class TenantSnapshot:
    """One tenant's routing data, keyed by its SIP domain."""

    tenant_id: int
    schema: str
    domain: str
    status: str
    anchor_media: bool
    extensions: dict[str, ExtensionSnapshot] = field(default_factory=dict)
    product: str = ""  # white-label product name ("" = the engine's own): Server, User-Agent
    max_calls: int = 0  # concurrent calls the tenant may have on one engine (0 = no limit)
    digest_sha256: bool = False  # challenges offer SHA-256 first, then MD5 (RFC 8760)

    @property
    def active(self) -> bool:
        return self.status == "active"


def _extension(number: str, d: Mapping[str, Any]) -> ExtensionSnapshot:
    transports = d.get("transports")
    return ExtensionSnapshot(
        number=number,
        display_name=_text(d.get("display_name")),
        enabled=bool(d.get("enabled", True)),
        dnd=bool(d.get("dnd", False)),
        ha1_md5=str(d.get("ha1_md5") or ""),
        ha1_sha256=str(d.get("ha1_sha256") or ""),
        max_contacts=int(d.get("max_contacts") or 1),
        transports=(
            frozenset(str(t).lower() for t in transports)
            if isinstance(transports, list)
            else ALL_TRANSPORTS
        ),
        caller_id_name=_text(d.get("caller_id_name") or d.get("display_name")),
        caller_id_number=_text(d.get("caller_id_number") or number),
        forward_always=_text(d.get("forward_always")),
        forward_busy=_text(d.get("forward_busy")),
        forward_no_answer=_text(d.get("forward_no_answer")),
        no_answer_timeout=_seconds(d.get("no_answer_timeout")),
    )


def _text(value: Any) -> str:
    """Snapshot text as the engine may put it in a header: printable characters only (no CR,
    LF or other control character, whatever the API let through), trimmed."""
    text = str(value or "")
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.strip()


def _seconds(value: Any) -> float:
    """A non-negative number of seconds from the snapshot; anything else is 0 (the default)."""
    try:
        seconds = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    # NaN and negatives mean the default; a day is more than any phone rings.
    return min(seconds, 86400.0) if seconds > 0 else 0.0


def parse_snapshot(raw: bytes | str) -> TenantSnapshot:
    """Build a :class:`TenantSnapshot` from its published JSON. Raises ValueError/KeyError."""
    d = json.loads(raw)
    return TenantSnapshot(
        tenant_id=int(d["tenant_id"]),
        schema=str(d["schema"]),
        domain=str(d["domain"]).lower(),
        status=str(d.get("status") or "active"),
        anchor_media=bool(d.get("anchor_media", False)),
        product=_product(d.get("product")),
        max_calls=max(0, int(d.get("max_concurrent_calls") or 0)),
        digest_sha256=d.get("sip_digest_sha256") is True,
        extensions={str(n): _extension(str(n), e) for n, e in (d.get("extensions") or {}).items()},
    )


def _product(value: Any) -> str:
    """The white-label name as a header value: one line, no control characters, bounded."""
    text = "".join(ch for ch in str(value or "") if ch.isprintable()).strip()
    return text[:64]


class Directory:
    """Tenants by SIP domain, loaded from Redis and reloaded on ``sip:snapshot:changed``.

    ``prefix`` is put in front of every key and channel name (tests and benchmarks isolate
    themselves with it; production uses ""). ``on_change(domain)`` callbacks run after a reload.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.tenants: dict[str, TenantSnapshot] = {}
        self.on_change: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.reloads = 0

    # --- keys ----------------------------------------------------------------------------
    def snapshot_key(self, domain: str) -> str:
        return self.prefix + contract.SNAPSHOT.format(domain=domain)

    @property
    def domains_key(self) -> str:
        return self.prefix + contract.DOMAINS

    @property
    def channel(self) -> str:
        return self.prefix + contract.SNAPSHOT_CHANGED

    # --- hot path --------------------------------------------------------------------------
    def tenant(self, domain: str) -> TenantSnapshot | None:
        """The tenant whose SIP domain is ``domain`` (case-insensitive), or None."""
        t = self.tenants.get(domain)
        if t is None and not domain.islower():
            t = self.tenants.get(domain.lower())
        return t

    # --- loading ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe, then load every snapshot; returns when the first full load is done."""
        self._task = asyncio.create_task(self._run(), name="directory")
        waiter = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            self._task.result()  # the listener died before the first load: raise its error

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def load_all(self) -> None:
        raw_domains = await self.redis.smembers(self.domains_key)
        domains = sorted(d.decode() if isinstance(d, bytes) else str(d) for d in raw_domains)
        values = await self.redis.mget([self.snapshot_key(d) for d in domains]) if domains else []
        fresh: dict[str, TenantSnapshot] = {}
        for domain, raw in zip(domains, values, strict=True):
            snap = self._parse(domain, raw)
            if snap is not None:
                fresh[snap.domain] = snap
        self.tenants = fresh
        log.info("directory loaded %d tenants", len(fresh))

    async def reload(self, domain: str) -> None:
        domain = domain.lower()
        raw = await self.redis.get(self.snapshot_key(domain))
        snap = self._parse(domain, raw) if raw is not None else None
        if snap is None:
            self.tenants.pop(domain, None)
        else:
            self.tenants[snap.domain] = snap
        self.reloads += 1
        for cb in self.on_change:
            try:
                cb(domain)
            except Exception:
                log.exception("directory on_change callback failed")

    @staticmethod
    def _parse(domain: str, raw: bytes | str | None) -> TenantSnapshot | None:
        if raw is None:
            return None
        try:
            return parse_snapshot(raw)
        except (ValueError, KeyError, TypeError):
            log.exception("bad routing snapshot for %s", domain)
            return None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                # Subscribe first, then load: a change published during the load is not lost.
                await pubsub.subscribe(self.channel)
                await self.load_all()
                self._ready.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = message["data"]
                    domain = data.decode() if isinstance(data, bytes) else str(data)
                    await self.reload(domain)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("directory listener lost Redis (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
