"""BLF subscriptions kept in Redis, so that the engine itself after a restart (same engine id)
or another engine after a crash can go on notifying them without the phones subscribing again.

Desk phones refresh a BLF subscription once an hour or so; an engine that forgot them would
leave every lamp of the building dark for that long. So each accepted subscription is written
to this engine's hash ``SUBSCRIPTIONS`` (field ``"<call-id> <our tag>"``, value
:func:`record` JSON: the dialog, the resource, where NOTIFYs go, the expiry in wall-clock
time) and deleted when it ends. Writes are batched by one writer task (a pipeline per round),
never awaited on the SIP path; our NOTIFY CSeq is written at most once a
``seq_interval``, and a rebuilt dialog skips ahead by :data:`SEQ_MARGIN` so that its NOTIFYs
still rise above any the subscriber saw.

An engine loads its own hash at start (the restart case) and, at start and every sweep,
takes over the hash of each engine whose ``ENGINE_ALIVE`` key is gone: one Lua script reads
and deletes it atomically, so two engines never both adopt a dead engine's subscriptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from telephony.sip import contract
from telephony.sip.context import EngineContext
from telephony.sip.dialog import Dialog
from telephony.sip.message import parse_address, parse_uri
from telephony.sip.transport import Target

__all__ = ["SEQ_MARGIN", "Stored", "SubscriptionStore", "alive", "dialog_of", "record"]

log = logging.getLogger(__name__)

SEQ_MARGIN = 1000

# KEYS: a dead engine's hash. Everything in it, and it is gone (one adopter wins).
_TAKE_LUA = """
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all
"""


@dataclass(eq=False, slots=True)
class Stored:
    """What is stored of a BLF subscription, and read back (:class:`~.dialog.Watch` is this
    with the state of its NOTIFYs)."""

    event: str  # "dialog" or "presence"
    event_id: str | None  # the Event header's ``id``, echoed in every NOTIFY
    dialog: Dialog
    schema: str
    domain: str
    resource: str  # the watched extension or park slot
    subscriber: str  # the extension that subscribed
    contact: str  # the subscriber's Contact URI (the per-contact cap)
    target: Target  # where NOTIFYs go: where the last SUBSCRIBE came from (NAT)
    expires_at: float = 0.0  # wall clock, so that a rebuilt subscription keeps it
    version: int = 0  # of the last dialog-info document sent


def record(s: Stored) -> str:
    """The JSON a subscription is stored as."""
    dialog, target = s.dialog, s.target
    return json.dumps(
        {
            "event": s.event,
            "event_id": s.event_id,
            "call_id": dialog.call_id,
            "local_tag": dialog.local_tag,
            "remote_tag": dialog.remote_tag,
            "local_uri": str(dialog.local_uri),
            "remote_uri": str(dialog.remote_uri),
            "remote_target": str(dialog.remote_target),
            "route_set": [str(r) for r in dialog.route_set],
            "local_seq": dialog.local_seq,
            "remote_seq": dialog.remote_seq,
            "secure": dialog.secure,
            "schema": s.schema,
            "domain": s.domain,
            "resource": s.resource,
            "subscriber": s.subscriber,
            "contact": s.contact,
            "target": [target.kind, target.host, target.port],
            "expires_at": s.expires_at,
            "version": s.version,
        },
        separators=(",", ":"),
    )


def dialog_of(d: dict[str, Any]) -> Dialog:
    """The dialog of a stored record (ValueError/KeyError/TypeError when it is not one)."""
    remote_seq = d.get("remote_seq")
    return Dialog(
        call_id=str(d["call_id"]),
        local_tag=str(d["local_tag"]),
        remote_tag=str(d["remote_tag"]),
        local_uri=parse_address(str(d["local_uri"])),
        remote_uri=parse_address(str(d["remote_uri"])),
        remote_target=parse_uri(str(d["remote_target"])),
        local_seq=int(d["local_seq"]) + SEQ_MARGIN,
        remote_seq=int(remote_seq) if remote_seq is not None else None,
        route_set=[parse_address(str(r)) for r in d.get("route_set") or []],
        secure=bool(d.get("secure")),
    )


def read(raw: Any) -> Stored | None:
    """A stored record, or None when it is not one (logged)."""
    try:
        d = json.loads(raw)
        kind, host, port = d["target"]
        event_id = d.get("event_id")
        return Stored(
            event=str(d["event"]),
            event_id=str(event_id) if event_id is not None else None,
            dialog=dialog_of(d),
            schema=str(d["schema"]),
            domain=str(d["domain"]),
            resource=str(d["resource"]),
            subscriber=str(d["subscriber"]),
            contact=str(d["contact"]),
            target=Target(str(kind), str(host), int(port)),
            expires_at=float(d["expires_at"]),
            version=int(d.get("version") or 0),
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("BLF: ignoring a stored subscription that does not read (%s)", exc)
        return None


async def alive(ctx: EngineContext, engines: list[str]) -> set[str]:
    """Those of ``engines`` whose ``ENGINE_ALIVE`` key exists (one pipeline)."""
    prefix = contract.key(ctx.config.redis_prefix, contract.ENGINE_ALIVE, engine="")
    pipe = ctx.redis.pipeline(transaction=False)
    for e in engines:
        pipe.exists(prefix + e)
    found = await pipe.execute()
    return {e for e, n in zip(engines, found, strict=True) if n}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class SubscriptionStore:
    """This engine's subscriptions in Redis: batched writes, loading and adoption."""

    def __init__(self, ctx: EngineContext, *, seq_interval: float = 1.0) -> None:
        self.ctx = ctx
        self.seq_interval = seq_interval
        self.engine_id = ""
        self._pending: dict[str, str | None] = {}  # field -> JSON (None: delete)
        self._seq_due: dict[str, Any] = {}  # field -> a callable giving its JSON (deferred)
        self._writer: asyncio.Task[None] | None = None
        self._seq_timer: asyncio.TimerHandle | None = None
        self._take: Any = None

    @property
    def prefix(self) -> str:
        return self.ctx.config.redis_prefix

    @property
    def key(self) -> str:
        return contract.key(self.prefix, contract.SUBSCRIPTIONS, engine=self.engine_id)

    def start(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self._take = self.ctx.redis.register_script(_TAKE_LUA)

    async def stop(self) -> None:
        """Write what is pending (the subscriptions stay stored: a restart rebuilds them)."""
        if self._seq_timer is not None:
            self._seq_timer.cancel()
            self._seq_timer = None
        self._seq_flush()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
            self._writer.cancel()
            self._writer = None

    # --- writes --------------------------------------------------------------------------
    def put(self, field: str, value: str) -> None:
        self._seq_due.pop(field, None)
        self._pending[field] = value
        self._kick()

    def delete(self, field: str) -> None:
        self._seq_due.pop(field, None)
        self._pending[field] = None
        self._kick()

    def seq_changed(self, field: str, value: Any) -> None:
        """Our CSeq of ``field`` rose: write ``value()`` within ``seq_interval``."""
        if field in self._pending:
            return
        self._seq_due[field] = value
        if self._seq_timer is None:
            loop = asyncio.get_running_loop()
            self._seq_timer = loop.call_later(self.seq_interval, self._seq_flush)

    def _seq_flush(self) -> None:
        self._seq_timer = None
        due, self._seq_due = self._seq_due, {}
        for field, value in due.items():
            self._pending[field] = value()
        if self._pending:
            self._kick()

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            puts = {f: v for f, v in batch.items() if v is not None}
            dels = [f for f, v in batch.items() if v is None]
            try:
                pipe = self.ctx.redis.pipeline(transaction=False)
                if puts:
                    pipe.hset(self.key, mapping=puts)  # type: ignore[arg-type]
                if dels:
                    pipe.hdel(self.key, *dels)
                await pipe.execute()
            except Exception as exc:
                log.warning("BLF: could not store subscriptions (%s); retrying", exc)
                for f, v in batch.items():
                    self._pending.setdefault(f, v)
                await asyncio.sleep(1.0)

    # --- reads ---------------------------------------------------------------------------
    async def own(self) -> list[tuple[str, Stored]]:
        """This engine's stored subscriptions (after a restart with the same id)."""
        raw = await self.ctx.redis.hgetall(self.key)
        out = []
        for field, value in raw.items():
            stored = read(value)
            if stored is not None:
                out.append((_s(field), stored))
            else:
                self.delete(_s(field))
        return out

    async def adopt(self) -> list[tuple[str, Stored]]:
        """The subscriptions of every engine whose heartbeat key is gone, taken over."""
        prefix = contract.key(self.prefix, contract.SUBSCRIPTIONS, engine="")
        out: list[tuple[str, Stored]] = []
        keys = [_s(k) async for k in self.ctx.redis.scan_iter(match=prefix + "*", count=1000)]
        engines = [k[len(prefix) :] for k in keys if k[len(prefix) :] != self.engine_id]
        if not engines:
            return out
        living = await alive(self.ctx, engines)
        for engine in engines:
            if engine in living:
                continue
            flat = await self._take(keys=[prefix + engine])
            for field, value in zip(flat[::2], flat[1::2], strict=True):
                stored = read(value)
                if stored is not None:
                    out.append((_s(field), stored))
            if flat:
                log.info("BLF: adopted %d subscriptions of engine %s", len(flat) // 2, engine)
        return out
