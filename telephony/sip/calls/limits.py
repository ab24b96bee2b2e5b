"""The per-tenant concurrent call limit, shared by every engine through Redis.

Each engine keeps its own count of each tenant's calls in progress (exact: it starts and ends
them) and publishes it as its field of the tenant's hash ``sip:callcount:<schema>``. A call of a
tenant with a limit is admitted by one Lua script, atomically: the sum of the fields of the live
engines (those whose heartbeat key ``sip:engine:<id>`` exists; a dead engine's field is deleted
on the way) plus this engine's count with the new call must stay within the limit. So a crashed
engine's calls stop counting once its heartbeat expires (``engine_heartbeat_ttl``), and an
engine clears its own fields when it starts (its id is the same after a restart) and stops.

Every write goes through one task, in order, in pipelined batches: an admission costs one
round trip on call set-up (only for tenants with a limit; a tenant without one costs no wait),
a call's end none on the call path. A count changed otherwise (a call without a limit starts,
a call ends) is written at most ``FLUSH_DELAY`` later, or with the next admission, so the
counts of many calls go in one write; other engines see it that much later. Absolute counts
are written, never increments, so a write that was lost (Redis away) or a field another engine
removed (this engine looked dead while its loop stalled) is set right by the next write; the
heartbeat rewrites them all.

If Redis cannot be reached, each engine falls back to its own count against the limit, as
before the counter was shared, and says so in the log; the counts are written once Redis is
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from telephony.sip import contract
from telephony.sip.config import CallConfig
from telephony.sip.context import EngineContext
from telephony.sip.contract import TenantSnapshot

from .call import Call

__all__ = ["ADMIT_LUA", "CallLimits"]

log = logging.getLogger(__name__)

# One engine-count admission, for the tenants' call limit and the trunks' channel limit alike.
# KEYS: the count hash (engine id -> calls) and, optionally, a set to add ARGV[5] to (the set
# of tenants with a count hash). ARGV: this engine's id, its count with the new call, the
# limit, the heartbeat key prefix[, the member for KEYS[2]]. 1: admitted (and this engine's
# count written); dead engines' fields are deleted on the way.
ADMIT_LUA = """
local total = tonumber(ARGV[2])
local counts = redis.call('HGETALL', KEYS[1])
for i = 1, #counts, 2 do
  local engine = counts[i]
  if engine ~= ARGV[1] then
    if redis.call('EXISTS', ARGV[4] .. engine) == 1 then
      total = total + tonumber(counts[i + 1])
    else
      redis.call('HDEL', KEYS[1], engine)
    end
  end
end
if total > tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if #KEYS > 1 then
  redis.call('SADD', KEYS[2], ARGV[5])
end
return 1
"""

# KEYS: the set of tenants with a count hash. ARGV: this engine's id, the count hash prefix.
_RESET_LUA = """
for _, schema in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('HDEL', ARGV[2] .. schema, ARGV[1])
end
return 1
"""

FLUSH_DELAY = 0.05  # seconds a changed count may wait to be written with others

Admission = tuple[str, int, int, "asyncio.Future[bool | None]"]


class CallLimits:
    """Admits calls within their tenant's limit and keeps this engine's counts in Redis."""

    def __init__(self, ctx: EngineContext, config: CallConfig) -> None:
        self.ctx = ctx
        self.config = config
        self.counts: dict[str, int] = {}  # schema -> calls in progress on this engine
        self.engine_id = ""
        p = ctx.config.redis_prefix
        self._tenants_key = contract.key(p, contract.CALL_COUNT_TENANTS)
        self._count_prefix = contract.key(p, contract.CALL_COUNT, schema="")
        self._alive_prefix = contract.key(p, contract.ENGINE_ALIVE, engine="")
        self._admissions: list[Admission] = []
        self._dirty: set[str] = set()
        self._beat_due = False
        self._writer: asyncio.Future[None] | None = None
        self._flush: asyncio.TimerHandle | None = None
        self._beat: asyncio.Task[None] | None = None
        self._away_until = 0.0  # monotonic time before which Redis is not tried for admission

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.engine_id = self.ctx.engine_id
        try:
            await self._clear()
        except Exception as exc:
            log.warning("call limits: Redis unreachable at start (%s); counting on", exc)
        self._beat = asyncio.create_task(self._heartbeat(), name="call-limits-heartbeat")

    async def stop(self) -> None:
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._beat
            self._beat = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self._dirty:
            self._kick()
        if self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._writer), 1.0)
            self._writer.cancel()
        try:
            await asyncio.wait_for(self._clear(alive=False), 1.0)
        except Exception as exc:
            log.warning("call limits: could not clear this engine's counts: %s", exc)

    async def _clear(self, *, alive: bool = True) -> None:
        """Remove this engine's fields from every tenant's count; then announce it alive (at
        start) or gone (at stop)."""
        await self.ctx.redis.eval(
            _RESET_LUA, 1, self._tenants_key, self.engine_id, self._count_prefix
        )
        key = self._alive_prefix + self.engine_id
        if alive:
            await self.ctx.redis.set(key, "1", px=self._ttl_ms)
        else:
            await self.ctx.redis.delete(key)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.config.engine_heartbeat_ttl * 1000))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.engine_heartbeat_ttl / 3)
            self._beat_due = True
            self._dirty.update(self.counts)  # rewritten: a field lost meanwhile comes back
            self._kick()

    # --- admission and release -----------------------------------------------------------
    async def admit(self, tenant: TenantSnapshot, *, always: bool = False) -> bool:
        """Count a new call of ``tenant``; False (and not counted) when that would exceed the
        tenant's limit over every live engine. ``always``: counted, never refused (an
        emergency call)."""
        schema = tenant.schema
        own = self.counts.get(schema, 0) + 1
        self.counts[schema] = own
        limit = 0 if always else tenant.max_concurrent_calls
        if not limit:
            self._mark(schema)
            return True
        verdict: bool | None = None
        if time.monotonic() >= self._away_until:
            fut: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
            self._admissions.append((schema, own, limit, fut))
            self._kick()
            verdict = await fut
        if verdict is None:
            verdict = own <= limit  # Redis away: this engine's own calls only
        if not verdict:
            self.release(schema)
        return verdict

    def release(self, schema: str) -> None:
        """One call of the tenant ``schema`` less on this engine."""
        left = self.counts.get(schema, 1) - 1
        if left > 0:
            self.counts[schema] = left
        else:
            self.counts.pop(schema, None)
        self._mark(schema)

    def call_changed(self, call: Call) -> None:
        if call.state == "ended":
            self.release(call.tenant.schema)

    # --- the writer ----------------------------------------------------------------------
    def _mark(self, schema: str) -> None:
        self._dirty.add(schema)
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush_due)

    def _flush_due(self) -> None:
        self._flush = None
        self._kick()

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        redis = self.ctx.redis
        engine = self.engine_id
        while self._admissions or self._dirty or self._beat_due:
            if self._flush is not None:
                self._flush.cancel()  # what it would write goes in this batch
                self._flush = None
            admissions, self._admissions = self._admissions, []
            dirty, self._dirty = self._dirty, set()
            beat, self._beat_due = self._beat_due, False
            pipe = redis.pipeline(transaction=False)
            for schema, own, limit, _fut in admissions:
                # EVAL, not EVALSHA: a script registered on a pipeline costs a SCRIPT EXISTS
                # round trip per batch; Redis caches the compiled script either way.
                pipe.eval(
                    ADMIT_LUA, 2, self._count_prefix + schema, self._tenants_key,
                    engine, own, limit, self._alive_prefix, schema,
                )  # fmt: skip
            for schema in dirty:
                count = self.counts.get(schema, 0)
                if count:
                    pipe.hset(self._count_prefix + schema, engine, count)
                    pipe.sadd(self._tenants_key, schema)
                else:
                    pipe.hdel(self._count_prefix + schema, engine)
            if beat:
                pipe.set(self._alive_prefix + engine, "1", px=self._ttl_ms)
            try:
                results = await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "call limits: Redis unreachable (%s); each engine counts only its own "
                    "calls against a tenant's limit until it is back",
                    exc,
                )
                for *_, fut in admissions:
                    if not fut.done():
                        fut.set_result(None)
                self._dirty |= dirty
                self._beat_due |= beat
                self._away_until = time.monotonic() + 1.0
                await asyncio.sleep(1.0)
                continue
            self._away_until = 0.0
            for (*_, fut), result in zip(admissions, results, strict=False):
                if not fut.done():
                    fut.set_result(bool(result))
            if not (self._admissions or self._beat_due):
                break
        if self._dirty and self._flush is None:
            # Changed while the last batch was out: written with others, a little later.
            self._flush = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._flush_due)
