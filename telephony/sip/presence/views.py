"""The dialogs of every extension across all engines: this engine's own (from
:class:`~telephony.sip.calls.states.ExtensionStates`) merged with what the other engines
publish.

A phone registered on engine A may watch an extension whose calls run on engine B. Each
engine therefore publishes every change of its own views: one Lua script per changed resource
rewrites this engine's entry in the field ``<number>`` of ``DIALOG_STATE`` (JSON
``{engine_id: [dialogs]}``; the entry goes when it has none, the field when no engine has
any) and publishes ``{schema, number, engine, dialogs}`` on ``DIALOG_CHANGED``, atomically,
so that a reader of the hash never misses the message that follows. The writes go through one
task in batches: the local NOTIFYs never wait on Redis.

Every engine follows the channel (ignoring its own messages) and keeps the other engines'
views in memory; a new subscription reads the hash once (keeping only the engines whose
``ENGINE_ALIVE`` key exists), so it starts right even if messages were missed. The views of
an engine whose heartbeat stops are dropped at the next sweep. At start an engine removes its
entries left by a crash (same id), and at stop the ones it wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from telephony.sip import contract
from telephony.sip.calls.states import ExtensionStates
from telephony.sip.context import EngineContext
from telephony.sip.contract import DialogView

from .store import alive

__all__ = ["SharedViews"]

log = logging.getLogger(__name__)

Resource = tuple[str, str]  # (schema, number)

# KEYS: the tenant's DIALOG_STATE hash. ARGV: field (number), engine id, dialogs JSON ("" for
# none), channel, message.
_PUT_LUA = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local m = {}
if raw then
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then m = v end
end
if ARGV[3] == '' then m[ARGV[2]] = nil else m[ARGV[2]] = cjson.decode(ARGV[3]) end
if next(m) == nil then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m))
end
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
"""

# KEYS: one DIALOG_STATE hash. ARGV: engine id. Its entries removed from every field.
_CLEAR_LUA = """
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local ok, m = pcall(cjson.decode, all[i + 1])
  if ok and type(m) == 'table' and m[ARGV[1]] ~= nil then
    m[ARGV[1]] = nil
    n = n + 1
    if next(m) == nil then
      redis.call('HDEL', KEYS[1], all[i])
    else
      redis.call('HSET', KEYS[1], all[i], cjson.encode(m))
    end
  end
end
return n
"""


def _views(items: Any) -> tuple[DialogView, ...]:
    if not isinstance(items, list):
        return ()
    out = (DialogView.read(d) for d in items)
    return tuple(v for v in out if v is not None)


class SharedViews:
    """This engine's views published, the other engines' views followed and merged."""

    def __init__(
        self,
        ctx: EngineContext,
        states: ExtensionStates,
        changed: Callable[[str, str], None],
    ) -> None:
        self.ctx = ctx
        self.states = states
        self.changed = changed  # told of a remote change: (schema, number)
        self.engine_id = ""
        # (schema, number) -> engine id -> its views.
        self.remote: dict[Resource, dict[str, tuple[DialogView, ...]]] = {}
        self.published: set[Resource] = set()  # resources with an entry of ours in Redis
        self._dirty: dict[Resource, None] = {}
        self._writer: asyncio.Task[None] | None = None
        self._put: Any = None
        self._clear: Any = None
        self.stopping = False  # our views are being withdrawn: publish none
        # Resources whose other engines' views were read since the channel was subscribed.
        self.known: set[Resource] = set()
        self._fetching: dict[Resource, asyncio.Future[None]] = {}
        self._reader: asyncio.Future[None] | None = None

    @property
    def prefix(self) -> str:
        return self.ctx.config.redis_prefix

    @property
    def channel(self) -> str:
        return contract.key(self.prefix, contract.DIALOG_CHANGED)

    def hash_key(self, schema: str) -> str:
        return contract.key(self.prefix, contract.DIALOG_STATE, schema=schema)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self._put = self.ctx.redis.register_script(_PUT_LUA)
        self._clear = self.ctx.redis.register_script(_CLEAR_LUA)
        pattern = contract.key(self.prefix, contract.DIALOG_STATE, schema="*")
        try:
            async for key in self.ctx.redis.scan_iter(match=pattern, count=1000, _type="HASH"):
                await self._clear(keys=[key], args=[engine_id])
        except Exception as exc:
            log.warning("BLF: could not clear this engine's old dialog views (%s)", exc)

    async def stop(self) -> None:
        """Our views go: the calls of this engine end with it."""
        for res in list(self.published):
            self._dirty[res] = None
        self.stopping = True
        if self._dirty:
            self._kick()
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
            self._writer.cancel()
            self._writer = None

    # --- reading -------------------------------------------------------------------------
    def merged(self, schema: str, number: str) -> list[DialogView]:
        """The dialogs of ``number`` on every engine: ours first, then the others' by id."""
        out = self.states.of(schema, number)
        others = self.remote.get((schema, number))
        if others:
            for engine in sorted(others):
                out.extend(others[engine])
        return out

    def reset(self) -> None:
        """The channel was (re)subscribed: messages may have been missed, so every resource's
        views are read from the hash again by its next subscription."""
        self.known.clear()

    async def fetch(self, schema: str, number: str) -> None:
        """Make sure the other live engines' views of ``number`` are known: read from Redis
        once per resource while the channel is followed (it keeps them current after). The
        reads of the subscriptions that arrive together (a building's phones booting at once)
        go in one pipeline: one connection, however many resources."""
        res = (schema, number)
        if res in self.known:
            return
        pending = self._fetching.get(res)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._fetching[res] = pending
            if self._reader is None or self._reader.done():
                self._reader = asyncio.ensure_future(self._read())
        await asyncio.shield(pending)

    async def _read(self) -> None:
        while self._fetching:
            batch = [r for r, f in self._fetching.items() if not f.done()][:1000]
            if not batch:
                return
            try:
                pipe = self.ctx.redis.pipeline(transaction=False)
                for schema, number in batch:
                    pipe.hget(self.hash_key(schema), number)
                raws = await pipe.execute()
                found: dict[Resource, dict[str, tuple[DialogView, ...]]] = {}
                for res, raw in zip(batch, raws, strict=True):
                    found[res] = self._entries(raw)
                engines = sorted({e for m in found.values() for e in m})
                living = await alive(self.ctx, engines) if engines else set()
                for res, entries in found.items():
                    entries = {e: v for e, v in entries.items() if e in living and v}
                    if entries:
                        self.remote[res] = entries
                    else:
                        self.remote.pop(res, None)
                    self.known.add(res)
                    self._settle(res, None)
            except Exception as exc:
                for res in batch:
                    self._settle(res, exc)

    def _settle(self, res: Resource, exc: Exception | None) -> None:
        fut = self._fetching.pop(res, None)
        if fut is not None and not fut.done():
            if exc is None:
                fut.set_result(None)
            else:
                fut.set_exception(exc)
                fut.exception()  # retrieved: a waiter that went away does not warn

    def _entries(self, raw: Any) -> dict[str, tuple[DialogView, ...]]:
        if not raw:
            return {}
        try:
            m = json.loads(raw)
        except (ValueError, TypeError):
            return {}
        if not isinstance(m, dict):
            return {}
        return {str(e): _views(v) for e, v in m.items() if e != self.engine_id}

    async def sweep(self) -> None:
        """Drop the views of engines whose heartbeat key is gone (they crashed)."""
        engines = sorted({e for m in self.remote.values() for e in m})
        if not engines:
            return
        dead = set(engines) - await alive(self.ctx, engines)
        if not dead:
            return
        for res, m in list(self.remote.items()):
            if dead & set(m):
                for e in dead:
                    m.pop(e, None)
                if not m:
                    del self.remote[res]
                self.changed(*res)

    # --- this engine's changes -----------------------------------------------------------
    def local_changed(self, schema: str, number: str) -> None:
        """Our views of ``number`` changed: publish them (soon, batched)."""
        self._dirty[(schema, number)] = None
        self._kick()

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        while self._dirty:
            batch = list(self._dirty)
            self._dirty.clear()
            try:
                pipe = self.ctx.redis.pipeline(transaction=False)
                for schema, number in batch:
                    views = [] if self.stopping else self.states.of(schema, number)
                    dialogs = [v.to_dict() for v in views]
                    message = json.dumps(
                        {
                            "schema": schema,
                            "number": number,
                            "engine": self.engine_id,
                            "dialogs": dialogs,
                        },
                        separators=(",", ":"),
                    )
                    arg = json.dumps(dialogs, separators=(",", ":")) if dialogs else ""
                    await self._put(
                        keys=[self.hash_key(schema)],
                        args=[number, self.engine_id, arg, self.channel, message],
                        client=pipe,
                    )
                    if dialogs:
                        self.published.add((schema, number))
                    else:
                        self.published.discard((schema, number))
                await pipe.execute()
            except Exception as exc:
                log.warning("BLF: could not publish dialog views (%s); retrying", exc)
                for res in batch:
                    self._dirty.setdefault(res, None)
                await asyncio.sleep(1.0)

    # --- the other engines' changes ------------------------------------------------------
    def received(self, data: Any) -> None:
        """A ``DIALOG_CHANGED`` message of another engine."""
        try:
            m = json.loads(data)
            schema, number, engine = str(m["schema"]), str(m["number"]), str(m["engine"])
            dialogs = _views(m.get("dialogs"))
        except (ValueError, KeyError, TypeError):
            log.warning("BLF: ignoring malformed %s message", contract.DIALOG_CHANGED)
            return
        if engine == self.engine_id:
            return
        res = (schema, number)
        mine = self.remote.get(res)
        if dialogs:
            if mine is None:
                mine = self.remote[res] = {}
            if mine.get(engine) == dialogs:
                return
            mine[engine] = dialogs
        else:
            if mine is None or mine.pop(engine, None) is None:
                return
            if not mine:
                del self.remote[res]
        self.changed(schema, number)
