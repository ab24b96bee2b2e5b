"""Credit control of outside calls: a billed tenant's call goes out only when its credit pays
for it, and ends when the money held for it is used up (the "credit stop").

The Django side keeps each tenant's balance in Redis (``contract.CREDIT``: ``balance`` and
``limit``, MONEY_SCALE units; ``limit`` is how far below zero a postpaid balance may go, 0 for
prepaid). The engine holds money for each running call in ``contract.CREDIT_HELD`` (call id ->
units); what is free for a new call is ``balance + limit - every hold``. Each change goes
through one Lua script, so two calls (on one engine or several) can never both take the same
money: the sum of the holds never exceeds ``balance + limit``, and a call is cut before it costs
more than its hold, so a balance never goes below ``-limit`` however many calls run at once.

A call's life, three Redis round trips at most plus one per extension (none per SIP message):

1. **set-up** (:meth:`Credit.reserve`): the rate of the dialled number (its E.164 form, the
   CDR's ``number``; the tenant's ``BillingSnapshot.rate_for``) must be paid for at least its
   first interval and connection fee (``rate.cost(1)``; :meth:`Credit.first`); then the cost
   of :attr:`Credit.chunk` seconds is held, or all that is free when that is less. Not
   enough: the caller gets 402 Payment Required. A call routed out a second time (one hold
   per call id, the CDR's) replaces its hold.
2. **answer** (:meth:`Credit.answered`): the call may last ``rate.max_seconds(held)`` from the
   answer. A timer cuts it then (the caller's ``cut``: BYE both sides, end reason "credit");
   another, :attr:`Credit.lead` seconds earlier, asks for the next chunk (``extend``). The
   extension takes what is free, as at set-up; when it gets nothing (the other calls took the
   rest), the call ends exactly when its hold is used up. A top-up that lands before an
   extension lets the call go on.
3. **end** (:meth:`Credit.ended`): an answered call's hold becomes exactly
   ``rate.cost(billsec)``, what the Django side will charge; it stays reserved until the
   charge lands, when the Django side deletes the hold in the same step as it writes the new
   balance. An unanswered call's hold is deleted. The engine's billsec is counted as the
   CDR's: from the moment just after the ``call.answered`` event to the one just after
   ``call.ended`` (the CDR takes the events' timestamps), so both come to the same second;
   the cut comes :data:`CUT_MARGIN` after the last paid second, so that the CDR's billsec is
   the paid one, not one less (the call would lose a paid interval) nor one more (a timer
   late by nearly a second would be needed).

Holds expire, so an engine that dies does not keep a tenant's money forever: beside the hash,
a sorted set (``contract.CREDIT_HELD_EXPIRY``, read and written only by these scripts) gives
each hold's expiry time; every reservation and extension of the tenant first deletes the holds
whose time has passed. A running call's hold lasts until its chunk is used plus
:data:`HOLD_GRACE` (its extension renews it); an ended call's, :data:`SETTLED_TTL` (the Django
side charges within seconds; a day covers an outage of the CDR consumer). The hash keeps the
contract's plain integers, so the Django side sums and deletes holds without knowing of the
expiry.

Failures (the verdicts of :meth:`Credit.reserve`):

- **the tenant's CREDIT hash is missing**: 503 Service Unavailable and a warning. A billed
  tenant without it means the billing data was not published (a fault of the platform, not the
  tenant's empty account): 402 would tell the user the account is empty when it may not be, and
  letting the call through would spend money nobody checked. 503 refuses the call without
  blaming the account, and the log says what to fix.
- **Redis cannot be reached**: 503 as well, for the same reason (no check, no call); an
  extension that fails gets nothing (the call ends when its hold is used), a final write that
  fails leaves the hold to expire.

Emergency calls, tenants whose mode is ``none``, numbers without a rate and free rates are not
checked nor limited (the caller decides which: :meth:`Credit.billed`); a rate with a connection
fee and no price a minute holds the fee and does not limit the call. Only calls routed to the
``trunk`` destination are checked (dialled, or forwarded out); a blind transfer to an outside
number (``transfer.py``) is not.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from telephony.sip import contract
from telephony.sip.contract import BillingMode, Rate, TenantSnapshot

__all__ = [
    "EXTEND_LUA",
    "HOLD_GRACE",
    "SETTLED_TTL",
    "SETTLE_LUA",
    "Credit",
    "Grant",
]

log = logging.getLogger(__name__)

HOLD_GRACE = 3600.0  # seconds a running call's hold outlives its chunk (ringing included)
SETTLED_TTL = 86400.0  # seconds an ended call's hold waits for the Django side's charge
CHUNK_SECONDS = 300  # seconds of talk held at a time
EXTEND_LEAD = 10.0  # seconds before a chunk runs out that the next one is asked for
CUT_MARGIN = 0.02  # seconds after the last paid second that the call is cut

# Hold more money for one call. KEYS: the tenant's CREDIT hash, its CREDIT_HELD hash and the
# holds' expiry set. ARGV: the call id, now (epoch seconds), the units the call holds now (0 at
# set-up), the least extra worth holding, the extra wanted, the hold's new expiry time.
# Returns {granted, free}: the extra held (0: none, the call's hold unchanged), and what was
# free for the call before (-1: the CREDIT hash is missing, nothing done).
EXTEND_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, -1}
end
local now = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 200)
for _, id in ipairs(expired) do
  if id ~= ARGV[1] then
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
  end
end
local credit = redis.call('HMGET', KEYS[1], 'balance', 'limit')
local free = (tonumber(credit[1]) or 0) + (tonumber(credit[2]) or 0)
local holds = redis.call('HGETALL', KEYS[2])
for i = 1, #holds, 2 do
  if holds[i] ~= ARGV[1] then
    free = free - (tonumber(holds[i + 1]) or 0)
  end
end
local current = tonumber(ARGV[3])
free = free - current
local grant = math.min(tonumber(ARGV[5]), free)
if grant < tonumber(ARGV[4]) or grant <= 0 then
  return {0, string.format('%d', math.max(free, 0))}
end
redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', current + grant))
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[1])
return {string.format('%d', grant), string.format('%d', free)}
"""

# A call's last word on its hold. KEYS: the CREDIT_HELD hash and the expiry set. ARGV: the
# call id, the units to hold (0: delete the hold), the hold's expiry time. A hold the Django
# side deleted already (its charge landed first) is not made again.
SETTLE_LUA = """
if tonumber(ARGV[2]) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
"""


@dataclass(frozen=True, slots=True)
class Grant:
    """The verdict of a reservation: ``code`` 0 when the call may go out (``held`` units held,
    ``seconds`` of talk they pay for; None: no limit), else the SIP answer for the caller
    (402: no credit, 503: the credit could not be checked) and ``why`` for the log."""

    code: int = 0
    held: int = 0
    seconds: int | None = None
    why: str = ""


@dataclass(slots=True, eq=False)
class _Hold:
    """What the engine holds for one running call, and its timers once answered."""

    schema: str
    rate: Rate
    held: int
    answered_at: float | None = None
    cut: Callable[[], None] | None = None
    cut_timer: asyncio.TimerHandle | None = None
    extend_timer: asyncio.TimerHandle | None = None
    extensions: int = 0  # successful extensions (for the curious and the tests)
    done: bool = False  # an extension got nothing: the cut stands
    final: int | None = None  # the call ended: what its hold became

    @property
    def seconds(self) -> int | None:
        return self.rate.max_seconds(self.held)

    def cancel(self) -> None:
        for handle in (self.cut_timer, self.extend_timer):
            if handle is not None:
                handle.cancel()
        self.cut_timer = self.extend_timer = None


class Credit:
    """The engine's credit holds for its outside calls (one per engine, kept by the trunk
    destination). ``spawn`` runs the Redis writes that nobody waits for (the call layer's
    task set)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        prefix: str,
        spawn: Callable[[Awaitable[Any]], None],
        *,
        chunk: int = CHUNK_SECONDS,
        lead: float = EXTEND_LEAD,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.spawn = spawn
        self.chunk = chunk
        self.lead = lead
        self.holds: dict[str, _Hold] = {}  # call id -> its hold

    # --- names ---------------------------------------------------------------------------
    def keys(self, schema: str) -> tuple[str, str, str]:
        """The tenant's CREDIT hash, CREDIT_HELD hash and the holds' expiry set."""
        return (
            contract.key(self.prefix, contract.CREDIT, schema=schema),
            contract.key(self.prefix, contract.CREDIT_HELD, schema=schema),
            contract.key(self.prefix, contract.CREDIT_HELD_EXPIRY, schema=schema),
        )

    @staticmethod
    def billed(tenant: TenantSnapshot, number: str, *, emergency: bool = False) -> Rate | None:
        """The rate a call of ``tenant`` to ``number`` (E.164) is checked against; None when
        it is not checked: an emergency call, a tenant not billed, a number without a rate, a
        rate that costs nothing."""
        if emergency or not number:
            return None
        if tenant.billing.mode not in (BillingMode.PREPAID, BillingMode.POSTPAID):
            return None
        rate = tenant.billing.rate_for(number)
        if rate is None or rate.per_minute == 0 and rate.connection_fee == 0:
            return None
        return rate

    @staticmethod
    def first(rate: Rate) -> int:
        """What a call must be able to pay to go out: its first charged second (the first
        interval and the connection fee; after the grace seconds, if any)."""
        return rate.cost(max(1, rate.grace_seconds))

    # --- set-up --------------------------------------------------------------------------
    async def reserve(self, call_id: str, schema: str, rate: Rate) -> Grant:
        """Hold money for a new call of tenant ``schema`` at ``rate``: at least the first
        interval (``rate.cost(1)``), the cost of :attr:`chunk` seconds when it is free."""
        old = self.holds.pop(call_id, None)
        if old is not None:  # routed out again (one hold per call): the script replaces it
            old.cancel()
        least = self.first(rate)
        want = max(least, rate.cost(self.chunk))
        unlimited = rate.per_minute == 0
        ttl = SETTLED_TTL if unlimited else self.chunk + HOLD_GRACE
        try:
            granted, free = await self._extend(call_id, schema, 0, least, want, ttl)
        except Exception as exc:
            why = f"credit of {schema} not checked, Redis unreachable: {exc}"
            return Grant(503, why=why)
        if old is not None and not granted:
            self.spawn(self._settle(call_id, schema, 0, 0.0))  # the old hold goes too
        if free < 0:
            where = self.keys(schema)[0]
            why = f"tenant {schema} is billed but its credit is not published ({where})"
            return Grant(503, why=why)
        if not granted:
            why = f"tenant {schema} has {free} units free, the first interval costs {least}"
            return Grant(402, why=why)
        hold = _Hold(schema, rate, granted)
        self.holds[call_id] = hold
        return Grant(0, granted, hold.seconds)

    async def _extend(
        self, call_id: str, schema: str, current: int, least: int, want: int, ttl: float
    ) -> tuple[int, int]:
        now = time.time()
        raw = await self.redis.eval(
            EXTEND_LUA, 3, *self.keys(schema),
            call_id, f"{now:.3f}", current, least, want, f"{now + ttl:.3f}",
        )  # fmt: skip
        granted, free = (int(v) for v in raw)
        return granted, free

    # --- answer, extension and cut -------------------------------------------------------
    def answered(self, call_id: str, answered_at: float, cut: Callable[[], None]) -> None:
        """The call was answered at ``answered_at`` (epoch seconds, just after its
        ``call.answered`` event): ``cut()`` ends it when its hold is used up, unless an
        extension holds more in time."""
        hold = self.holds.get(call_id)
        if hold is None:
            return
        hold.answered_at = answered_at
        hold.cut = cut
        self._schedule(call_id, hold)

    def _schedule(self, call_id: str, hold: _Hold) -> None:
        hold.cancel()
        seconds = hold.seconds
        if seconds is None or hold.answered_at is None:
            return  # a free rate: the connection fee is held, the call is not limited
        loop = asyncio.get_running_loop()
        left = hold.answered_at + seconds + CUT_MARGIN - time.time()
        hold.cut_timer = loop.call_later(max(0.0, left), self._cut, call_id)
        if not hold.done:
            early = left - min(self.lead, seconds / 2)
            hold.extend_timer = loop.call_later(
                max(0.0, early), lambda: self.spawn(self._more(call_id))
            )

    def _cut(self, call_id: str) -> None:
        hold = self.holds.get(call_id)
        if hold is None or hold.cut is None:
            return
        hold.cut_timer = None
        log.info(
            "call %s: credit of %s used up after %s s, call ended", call_id, hold.schema,
            hold.seconds,
        )  # fmt: skip
        hold.cut()

    async def _more(self, call_id: str) -> None:
        """Ask for the next chunk: the cost of :attr:`chunk` more seconds, at least of one
        more interval."""
        hold = self.holds.get(call_id)
        if hold is None or hold.done:
            return
        hold.extend_timer = None
        rate, seconds = hold.rate, hold.seconds
        assert seconds is not None
        least = max(1, rate.cost(seconds + rate.next_interval) - hold.held)
        want = max(least, rate.cost(seconds + self.chunk) - hold.held)
        ttl = self.chunk + seconds + HOLD_GRACE
        try:
            granted, _ = await self._extend(call_id, hold.schema, hold.held, least, want, ttl)
        except Exception as exc:
            log.warning("call %s: credit not extended, Redis unreachable: %s", call_id, exc)
            granted = 0
        if self.holds.get(call_id) is not hold:
            # The call ended while we asked: its last word may have landed before this
            # extension did, which then held more; the last word is written again.
            if granted and hold.final is not None:
                self.spawn(self._settle(call_id, hold.schema, hold.final, SETTLED_TTL))
            return
        if not granted:
            hold.done = True
            log.info(
                "call %s: no more credit for %s, the call ends after %s s", call_id,
                hold.schema, seconds,
            )  # fmt: skip
            return
        hold.held += granted
        hold.extensions += 1
        self._schedule(call_id, hold)

    # --- the end -------------------------------------------------------------------------
    def ended(self, call_id: str, ended_at: float | None = None) -> None:
        """The call ended (just now, after its ``call.ended`` event, or at ``ended_at``): its
        hold becomes what its talk costs (none unanswered)."""
        hold = self.holds.pop(call_id, None)
        if hold is None:
            return
        hold.cancel()
        cost = 0
        if hold.answered_at is not None:
            billsec = max(0, int((ended_at or time.time()) - hold.answered_at))
            cost = hold.rate.cost(billsec)
        hold.final = cost
        self.spawn(self._settle(call_id, hold.schema, cost, SETTLED_TTL))

    def release(self, call_id: str, schema: str) -> None:
        """Give a hold back that its call no longer needs (it ended during the reservation)."""
        self.holds.pop(call_id, None)
        self.spawn(self._settle(call_id, schema, 0, 0.0))

    async def _settle(self, call_id: str, schema: str, units: int, ttl: float) -> None:
        _, held, expiry = self.keys(schema)
        try:
            await self.redis.eval(
                SETTLE_LUA, 2, held, expiry, call_id, units, f"{time.time() + ttl:.3f}"
            )
        except Exception as exc:
            log.warning(
                "call %s: hold of %s not written (%s); it expires by itself", call_id,
                schema, exc,
            )  # fmt: skip
