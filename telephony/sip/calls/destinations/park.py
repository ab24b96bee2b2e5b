"""``park``: call park slots (``tenant.team.park``: ``count`` numbers from ``first``).

A caller is parked by the park code (``*68``: the first free slot; ``*68`` + slot: that one),
by dialling a free slot's number, or (the usual way) by a blind transfer to either
(``transfer.py`` routes the transferee as if the transferor had dialled the number, and
names the transferor ``data["by"]``). The media server takes the parked caller, says the
slot's digits and plays the tenant's music on hold. The retrieve code (``*88`` + slot), a
call to an occupied slot's number, or a BLF key (INVITE with ``Replaces`` naming the parked
leg) connects the retriever to it (``join.connect_waiting``). Only an extension of the tenant
parks (itself, by dialling) or retrieves; a transfer by an extension parks anyone.

While parked, the slot shows ``confirmed`` on BLF (``ExtensionStates.put``) and the tenant's
``PARKED`` hash holds ``{call_id, caller, caller_name, by, at, engine}`` (claimed with
HSETNX, so two engines never park in one slot). The slot is freed when the call is
retrieved, when the parked caller hangs up, and on timeout (``ParkSettings.timeout``): the
call then rings its parker (the transferor), routed as any call to it (its do-not-disturb
and forwards apply; unanswered, its no-answer fallback: forward or mailbox). A caller that
parked itself by dialling has nobody else to ring: it hears goodbye and is hung up. A call
is retrieved only on the engine that holds it (a slot another engine holds is taken, but
its call answers 404 here). Events: ``call.parked`` (slot, by) and ``call.unparked``
(slot, reason: retrieved (by), timeout or hangup).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass

from telephony.sip import contract
from telephony.sip.calls import routing
from telephony.sip.calls.call import Call
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.join import connect_waiting, offers
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices, Router
from telephony.sip.calls.states import dialog_view
from telephony.sip.contract import (
    EventType,
    ExtensionSnapshot,
    Feature,
    TenantSnapshot,
)

from .base import register
from .feature import handled_by

__all__ = ["Park", "Parked", "park_handler", "park_slots"]

log = logging.getLogger(__name__)

handled_by("park", Feature.PARK, Feature.RETRIEVE)


@routing.rule
def park_slots(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """A park slot's number (an extension of the same number wins)."""
    if tenant.team.park.is_slot(number) and number not in tenant.extensions:
        return Destination("park", number, {"slot": number})
    return None


@dataclass(slots=True, eq=False)
class Parked:
    """A call parked in ``slot`` by extension ``by``."""

    call: Call
    slot: str
    by: str
    timer: asyncio.TimerHandle | None = None


def park_handler(router: Router) -> Park | None:
    """The engine's park destination (for the dispatcher)."""
    handler = router.handler("park")
    return handler if isinstance(handler, Park) else None


@register("park")
class Park:
    """The engine's parked calls, by (schema, slot); an observer of the calls (a parked
    caller that hangs up frees its slot)."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls
        self.slots: dict[tuple[str, str], Parked] = {}
        self.by_call: dict[str, Parked] = {}
        # Slots claimed for a call being parked now (its caller not yet taken).
        self.claimed: set[tuple[str, str]] = set()
        services.calls.observers.append(self)

    # --- reading -------------------------------------------------------------------------
    def slot_of(self, call: Call) -> str | None:
        entry = self.by_call.get(call.id)
        return entry.slot if entry is not None else None

    def _key(self, schema: str) -> str:
        return contract.key(self.s.ctx.config.redis_prefix, contract.PARKED, schema=schema)

    async def _taken(self, schema: str) -> set[str]:
        """Slots in use: this engine's, and other engines' in the shared hash."""
        taken = {slot for (s, slot) in (*self.slots, *self.claimed) if s == schema}
        try:
            shared = await self.s.ctx.redis.hgetall(self._key(schema))
        except Exception:
            log.warning("park: the shared slot table cannot be read", exc_info=True)
            return taken
        me = self.s.ctx.engine_id
        for raw_slot, raw in shared.items():
            slot = raw_slot.decode() if isinstance(raw_slot, bytes) else str(raw_slot)
            if (schema, slot) in self.slots or (schema, slot) in self.claimed:
                continue
            try:
                engine = json.loads(raw).get("engine")
            except (ValueError, AttributeError):
                engine = None
            if engine != me:  # ours but not held here: left by a restart, free again
                taken.add(slot)
        return taken

    def refusal(self, tenant: TenantSnapshot, destination: Destination) -> int:
        """The answer a blind transfer to ``destination`` gets before the transferee is let
        go (0: it can be parked): 404 for no slot, 486 for a full park or taken slot."""
        park = tenant.team.park
        feature = destination.data.get("feature")
        slot = destination.target
        if feature == Feature.RETRIEVE:
            return 403  # a transferee does not retrieve calls
        if feature == Feature.PARK and not slot:
            free = [n for n in park.slots() if (tenant.schema, n) not in self.slots]
            return 0 if free else 486
        if not park.is_slot(slot):
            return 404
        return 486 if (tenant.schema, slot) in self.slots else 0

    # --- routing -------------------------------------------------------------------------
    async def connect(self, call: Call, destination: Destination) -> None:
        tenant = call.tenant
        park = tenant.team.park
        feature = destination.data.get("feature")
        slot = destination.target
        by = str(destination.data.get("by") or "")
        internal = not call.inbound and tenant.extensions.get(call.caller.number) is not None
        if not by and not internal:
            self.s.router.connect(call, reject(403, reason="park from outside"))
            return
        if feature == Feature.RETRIEVE or (
            feature is None and not by and (tenant.schema, slot) in self.slots
        ):
            await self.retrieve(call, slot)
            return
        if slot and not park.is_slot(slot):
            self.s.router.connect(call, reject(404, reason=f"no park slot {slot}"))
            return
        taken = await self._taken(tenant.schema)
        if slot:
            if slot in taken:
                self.s.router.connect(call, reject(486, reason=f"park slot {slot} taken"))
                return
            candidates = [slot]
        else:
            candidates = [n for n in park.slots() if n not in taken]
        for candidate in candidates:
            if await self._claim(call, candidate, by or call.caller.number):
                await self.park(call, candidate, by or call.caller.number)
                return
        self.s.router.connect(call, reject(486, reason="no free park slot"))

    async def _claim(self, call: Call, slot: str, by: str) -> bool:
        """Take ``slot`` for ``call`` in the shared table (HSETNX: another engine's park
        cannot take it at the same time); held in :attr:`claimed` until parked."""
        res = (call.tenant.schema, slot)
        if res in self.slots or res in self.claimed:
            return False
        self.claimed.add(res)
        if not await self._claim_shared(call, slot, by):
            self.claimed.discard(res)
            return False
        return True

    async def _claim_shared(self, call: Call, slot: str, by: str) -> bool:
        record = {
            "call_id": call.id,
            "caller": call.caller.caller_id_number,
            "caller_name": call.caller.caller_id_name,
            "by": by,
            "at": time.time(),
            "engine": self.s.ctx.engine_id,
        }
        key = self._key(call.tenant.schema)
        redis = self.s.ctx.redis
        try:
            if await redis.hsetnx(key, slot, json.dumps(record)):
                return True
            raw = await redis.hget(key, slot)
            stale = raw is not None and json.loads(raw).get("engine") == self.s.ctx.engine_id
            if stale:  # a slot this engine held before a restart
                await redis.hset(key, slot, json.dumps(record))
            return bool(stale)
        except Exception:
            log.warning("park: the shared slot table cannot be written", exc_info=True)
            return True  # this engine's own table still keeps its slots apart

    # --- parking -------------------------------------------------------------------------
    async def park(self, call: Call, slot: str, by: str) -> None:
        tenant = call.tenant
        media = self.s.media
        session = await media.take(call)
        self.claimed.discard((tenant.schema, slot))
        if session is None or call.state == "ended":
            self._unclaim(tenant.schema, slot)
            if call.state != "ended":
                self.calls.fail(call, 480, reason="park unavailable")
            return
        entry = Parked(call, slot, by)
        self.slots[(tenant.schema, slot)] = entry
        self.by_call[call.id] = entry
        a = call.a
        assert a is not None
        view = dialog_view(call, a, "confirmed", "recipient", f"park-{call.id}")
        self.s.states.put(tenant.schema, slot, call.id, view)
        self.calls.emit(call, EventType.CALL_PARKED, slot=slot, by=by)
        log.info("call %s: parked in %s of %s by %s", call.id, slot, tenant.schema, by)
        entry.timer = asyncio.get_running_loop().call_later(
            tenant.team.park.timeout, self.timed_out, entry
        )
        session.flush_digits()
        with contextlib.suppress(Exception):
            await session.play(media.digits(tenant, slot))
            if self.by_call.get(call.id) is entry and not session.closed:
                await session.start_play(media.music(tenant), loop=True)

    def _unclaim(self, schema: str, slot: str) -> None:
        self.calls.spawn(self._hdel(schema, slot))

    async def _hdel(self, schema: str, slot: str) -> None:
        with contextlib.suppress(Exception):
            await self.s.ctx.redis.hdel(self._key(schema), slot)

    def free(self, entry: Parked, reason: str, by: str = "") -> None:
        """The slot is free again (``reason``: retrieved, timeout, hangup)."""
        call = entry.call
        schema = call.tenant.schema
        if self.by_call.get(call.id) is not entry:
            return
        del self.by_call[call.id]
        self.slots.pop((schema, entry.slot), None)
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        self.s.states.put(schema, entry.slot, call.id, None)
        self._unclaim(schema, entry.slot)
        fields = {"slot": entry.slot, "reason": reason}
        if by:
            fields["by"] = by
        self.calls.emit(call, EventType.CALL_UNPARKED, **fields)

    def call_changed(self, call: Call) -> None:
        if call.state == "ended":
            entry = self.by_call.get(call.id)
            if entry is not None:
                self.free(entry, "hangup")

    # --- leaving the slot ----------------------------------------------------------------
    async def retrieve(self, call: Call, slot: str) -> None:
        """``call`` (an extension's INVITE to the retrieve code or the slot) takes the call
        parked in ``slot``."""
        entry = self.slots.get((call.tenant.schema, slot))
        if entry is None or entry.call.state == "ended":
            log.info("call %s: %s retrieves %s of %s: nothing parked there", call.id,
                     call.caller.number, slot, call.tenant.schema)  # fmt: skip
            self.s.router.connect(call, reject(404, status="failed", reason="nothing parked"))
            return
        if not offers(call):
            self.s.router.connect(call, reject(488, status="failed", reason="retrieve without SDP"))
            return
        by = call.caller.number
        self.free(entry, "retrieved", by)
        await connect_waiting(self.s, entry.call, call, why=f"retrieved {entry.call.id}")

    def timed_out(self, entry: Parked) -> None:
        entry.timer = None
        call = entry.call
        if call.state == "ended" or self.by_call.get(call.id) is not entry:
            return
        self.free(entry, "timeout")
        tenant = self.s.ctx.directory.tenant(call.tenant.domain) or call.tenant
        parker = tenant.extensions.get(entry.by)
        if parker is None or not parker.enabled or entry.by == call.caller.number:
            log.info("call %s: parked too long in %s; nobody to return to", call.id, entry.slot)
            self.calls.spawn(self.s.media.goodbye(call, "park timeout"))
            return
        log.info("call %s: parked too long in %s; rings %s", call.id, entry.slot, parker.number)
        self.calls.spawn(self._ring(call, parker))

    async def _ring(self, call: Call, parker: ExtensionSnapshot) -> None:
        """The parked caller rings its parker, routed as any call to it (its do-not-disturb
        and forwards apply; unanswered, its no-answer fallback)."""
        await self.s.media.hand_off(call)
        if call.state != "ended":
            await self.s.router.route(call, parker.number)
