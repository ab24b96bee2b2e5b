"""Routing snapshots in memory, kept current from Redis.

Django publishes one JSON snapshot per tenant (``telephony/engine/snapshots.py``; the format is
:class:`contract.TenantSnapshot`): the key ``sip:snapshot:<domain>``, the set ``sip:domains``
and the channel ``sip:snapshot:changed`` that carries a domain whose snapshot changed.
:class:`Directory` loads every snapshot at start and reloads one when its domain is announced,
so a change in the API reaches the running engine in milliseconds. The hot path,
:meth:`Directory.tenant`, is a dict lookup: no I/O.

If the pub/sub connection drops, the directory reconnects and reloads everything, because changes
published while it was away are lost (Redis pub/sub does not queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis

from . import contract
from .contract import CarrierSnapshot, ExtensionSnapshot, TenantSnapshot, read_snapshot
from .follow import follow

__all__ = ["Directory", "ExtensionSnapshot", "TenantSnapshot"]

log = logging.getLogger(__name__)


class Directory:
    """Tenants by SIP domain, loaded from Redis and reloaded on ``sip:snapshot:changed``.

    ``prefix`` is put in front of every key and channel name (tests and benchmarks isolate
    themselves with it; production uses ""). ``on_change(domain)`` callbacks run after a reload.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.tenants: dict[str, TenantSnapshot] = {}
        # The trunks and the DID pool (one document, ``contract.CARRIERS``), reloaded whole
        # on ``contract.CARRIERS_CHANGED``.
        self.carriers = CarrierSnapshot()
        self.on_carriers: list[Callable[[CarrierSnapshot], None]] = []
        self.on_change: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self.reloads = 0
        self._schemas: dict[str, str] = {}  # schema -> domain, rebuilt on a miss (by_schema)

    # --- keys ----------------------------------------------------------------------------
    def snapshot_key(self, domain: str) -> str:
        return self.prefix + contract.SNAPSHOT.format(domain=domain)

    @property
    def domains_key(self) -> str:
        return self.prefix + contract.DOMAINS

    @property
    def channel(self) -> str:
        return self.prefix + contract.SNAPSHOT_CHANGED

    @property
    def carriers_channel(self) -> str:
        return self.prefix + contract.CARRIERS_CHANGED

    # --- hot path --------------------------------------------------------------------------
    def tenant(self, domain: str) -> TenantSnapshot | None:
        """The tenant whose SIP domain is ``domain`` (case-insensitive), or None."""
        t = self.tenants.get(domain)
        if t is None and not domain.islower():
            t = self.tenants.get(domain.lower())
        return t

    def by_schema(self, schema: str) -> TenantSnapshot | None:
        """The tenant whose schema name is ``schema``, or None (for messages that name a
        tenant by schema, such as ``VOICEMAIL_CHANGED``). The index is rebuilt when it misses,
        so a tenant added or renamed since is found."""
        domain = self._schemas.get(schema)
        t = self.tenants.get(domain) if domain is not None else None
        if t is None or t.schema != schema:
            self._schemas = {snap.schema: d for d, snap in self.tenants.items()}
            domain = self._schemas.get(schema)
            t = self.tenants.get(domain) if domain is not None else None
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
            snap = read_snapshot(domain, raw)
            if snap is not None:
                fresh[snap.domain] = snap
        self.tenants = fresh
        log.info("directory loaded %d tenants", len(fresh))
        await self.reload_carriers()

    async def reload_carriers(self) -> None:
        raw = await self.redis.get(self.prefix + contract.CARRIERS)
        self.carriers = CarrierSnapshot.from_json(raw)
        for cb in self.on_carriers:
            try:
                cb(self.carriers)
            except Exception:
                log.exception("directory on_carriers callback failed")

    async def reload(self, domain: str) -> None:
        domain = domain.lower()
        raw = await self.redis.get(self.snapshot_key(domain))
        snap = read_snapshot(domain, raw)
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

    async def _run(self) -> None:
        await follow(
            self.redis,
            (self.channel, self.carriers_channel),
            load=self.load_all,
            on_message=self._announced,
            ready=self._ready,
            name="directory",
        )

    async def _announced(self, channel: str, data: str) -> None:
        if channel == self.carriers_channel:
            await self.reload_carriers()
        else:
            await self.reload(data)
