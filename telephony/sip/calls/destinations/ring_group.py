"""``ring_group``: a number that rings several members (``TenantSnapshot.team.ring_groups``).

Reached by dialling the group's number (a routing rule: an enabled group of the caller's own
tenant), by an inbound rule, an IVR option or another group's overflow. The members are rung
by the group's strategy (``RingStrategy``):

- ``ring_all``: every member's registered phones at once, for ``member_seconds``; the first
  answer wins and the other phones are CANCELled (``Reason: ... Call completed elsewhere``);
- ``hunt``: one member after the other in the group's order, each for ``member_seconds``; a
  member whose phones all refuse (486, 603...) is passed at once;
- ``round_robin``: as hunt, starting after the member last rung for this group (a pointer
  per (schema, group) in this engine's memory);
- ``longest_idle``: as hunt, the member idle longest first (``ExtensionStates.idle_since``;
  a member never seen busy on this engine first of all).

The group as a whole gives up after ``total_seconds``. Members are passed over when they are
a disabled or unknown extension, have no phone registered, or are the caller; and, when the
group skips busy members, when they are on a call or ringing (``ExtensionStates.busy``) or on
DND. Their phones show the caller's name after the group's ``caller_id_prefix`` (an
``Address``: quoted and escaped, never a header of its own). An ``external`` member is an
outside number dialled through the tenant's outbound rules as if the caller dialled it (a
trunk's caller: as the tenant would, with no extension's rules, barring or caller ID; the
trunk's or the tenant's is presented), by ``Trunk.dial``, in every strategy.

Nobody answers (or nobody could be rung): the group's ``overflow`` (any RouteTarget: an
extension, outside number or group is a forward step from the group, bounded by the call's
path as every forward is; voicemail, IVR... are connected), else 480. A caller a media
feature answered (an IVR's) hears ringback meanwhile; the member that answers is joined to it
by re-INVITE (``caller.answer_caller``). The answer's ``call.answered`` names the member as
callee; each ringing phone shows on its extension's BLF (``ExtensionStates``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from telephony.sip.calls import outbound, routing
from telephony.sip.calls.call import Call, Leg
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.profiles import Profile
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import (
    CallScope,
    EventType,
    ExtensionSnapshot,
    RecordingPolicy,
    RingGroup,
    RingMember,
    RingStrategy,
    TenantSnapshot,
)
from telephony.sip.message import Response
from telephony.sip.registrar import Binding

from .base import register
from .caller import prefixed, ring_caller, unavailable
from .extension import Extension
from .overflow import overflow
from .trunk import Trunk

__all__ = ["RingGroups", "after_last", "group_numbers"]

log = logging.getLogger(__name__)


class _Numbered(Protocol):
    @property
    def number(self) -> str: ...


N = TypeVar("N", bound=_Numbered)


def after_last(items: Sequence[N], last: str | None) -> list[N]:
    """Round robin: ``items`` in turn from the one after the item numbered ``last`` (as they
    are when ``last`` is none of them); a ring group's members, a queue's agents."""
    numbers = [i.number for i in items]
    if last not in numbers:
        return list(items)
    start = numbers.index(last) + 1
    return [*items[start:], *items[:start]]


@routing.rule
def group_numbers(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """An enabled ring group's number of the caller's own tenant."""
    group = tenant.team.ring_groups.get(number)
    if group is None or not group.enabled:
        return None
    return Destination("ring_group", number)


@dataclass(slots=True, eq=False)
class Round:
    """Members rung at once (one in a hunt, all of them for ring all): their phones' forks
    and the outside members still being dialled; ``done`` is True once one answered, False
    when all of them failed (or the call ended)."""

    done: asyncio.Future[bool]
    legs: set[Leg] = field(default_factory=set)
    dials: int = 0
    over: bool = False
    rang: bool = False

    def settle(self, answered: bool) -> None:
        if not self.done.done():
            self.done.set_result(answered)

    def check(self) -> None:
        if not self.legs and not self.dials:
            self.settle(False)


@register("ring_group")
class RingGroups:
    """Rings a group's members by its strategy; overflow when nobody answers."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls
        self.ext = Extension(services)  # its forks and its answer handling
        # Round robin: (schema, group number) -> the member last rung (this engine's memory).
        self.last_rung: dict[tuple[str, str], str] = {}
        self.rounds: dict[str, Round] = {}  # call id -> the round ringing now
        services.calls.observers.append(self)

    # --- the destination -----------------------------------------------------------------
    async def connect(self, call: Call, destination: Destination) -> None:
        number = destination.target
        group = call.tenant.team.ring_groups.get(number)
        if group is None or not group.enabled:
            warning = f"no ring group {number!r} in {call.tenant.schema}"
            await unavailable(self.s, call, warning, "ring group missing")
            return
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        if call.answered_a and call.state == "answered" and call.b is None:
            await self.s.media.hand_off(call)  # a taken caller: it hears ringback meanwhile
        members = self.order(call, group)
        bindings: dict[str, list[Binding]] = {}
        for m in members:
            if not m.external:
                bindings[m.number] = await self.s.ctx.locations.lookup(call.tenant.domain, m.number)
        if call.state == "ended":
            return  # the caller gave up meanwhile
        members = [m for m in members if m.external or bindings.get(m.number)]
        if not members:
            log.info("call %s: nobody of ring group %s can be rung", call.id, group.number)
            await self.overflow(call, group)
            return
        if not await self.prepare(call, members, bindings):
            return
        call.state = "ringing"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + group.total_seconds
        if group.strategy == RingStrategy.RING_ALL:
            seconds = min(group.member_seconds, group.total_seconds)
            if await self.ring(call, group, members, bindings, seconds):
                return
        else:
            for m in members:
                left = deadline - loop.time()
                if left <= 0 or call.state != "ringing" or call.b is not None:
                    break
                if not m.external and group.skip_busy and self.busy(call, m.number):
                    continue  # became busy while the others rang
                if group.strategy == RingStrategy.ROUND_ROBIN:
                    self.last_rung[(call.tenant.schema, group.number)] = m.number
                seconds = min(group.member_seconds, left)
                if await self.ring(call, group, [m], bindings, seconds):
                    return
        if call.state == "ringing" and call.b is None:
            await self.overflow(call, group)

    async def prepare(
        self, call: Call, members: list[RingMember], bindings: Mapping[str, list[Binding]]
    ) -> bool:
        """The offer the members get (rtpengine's when the call is anchored: always with an
        outside member, as for any trunk call). False: the call ended meanwhile."""
        a = call.a
        assert a is not None
        anchor = self.s.anchor
        extensions = call.tenant.extensions
        recorded = bool(anchor.config.recording_dir) and any(
            (ext := extensions.get(m.number)) is not None
            and ext.recording in (RecordingPolicy.ALWAYS, RecordingPolicy.ON_DEMAND)
            for m in members
        )
        outside = any(m.external for m in members)
        targets = [self.ext.profile(call, b, n) for n, found in bindings.items() for b in found]
        if outside:
            targets.append(Profile.RTP)  # a carrier
        # An outside member, or a member whose calls may be recorded (rtpengine records):
        # anchored whatever the phones.
        return await anchor.prepare(
            call,
            targets,
            force=recorded or outside,
            caller_host=a.target.host,
            bindings=[b for found in bindings.values() for b in found],
            failure="rtpengine offer for a ring group failed, media goes direct",
        )

    # --- who is rung, in which order -----------------------------------------------------
    def order(self, call: Call, group: RingGroup) -> list[RingMember]:
        """The members that may be rung now, in the order the strategy rings them."""
        schema = call.tenant.schema
        members = list(group.members)
        if group.strategy == RingStrategy.ROUND_ROBIN:
            members = after_last(members, self.last_rung.get((schema, group.number)))
        elif group.strategy == RingStrategy.LONGEST_IDLE:
            idle = self.s.states.idle_since
            # Never seen busy on this engine (no entry): idle the longest of all.
            members.sort(key=lambda m: (m.external, idle.get((schema, m.number), 0.0)))
        seen: set[str] = set()
        out = []
        for m in members:
            if m.number in seen or not self.eligible(call, group, m):
                continue
            seen.add(m.number)
            out.append(m)
        return out

    def eligible(self, call: Call, group: RingGroup, member: RingMember) -> bool:
        if member.external:
            return True
        ext = call.tenant.extensions.get(member.number)
        if ext is None or not ext.enabled:
            return False
        if not call.inbound and member.number == call.caller.number:
            return False  # the caller's own phones never ring for its call
        return not (group.skip_busy and (ext.dnd or self.busy(call, member.number)))

    def busy(self, call: Call, number: str) -> bool:
        return self.s.states.busy(call.tenant.schema, number)

    # --- one round of ringing ------------------------------------------------------------
    async def ring(
        self,
        call: Call,
        group: RingGroup,
        members: list[RingMember],
        bindings: Mapping[str, list[Binding]],
        seconds: float,
    ) -> bool:
        """Ring ``members`` at once for at most ``seconds``: True when one answered."""
        rnd = Round(asyncio.get_running_loop().create_future())
        self.rounds[call.id] = rnd
        shown = prefixed(call.caller, group.caller_id_prefix)
        for m in members:
            if m.external:
                rnd.dials += 1
                self.calls.spawn(self.dial_outside(call, rnd, m, shown))
                continue
            for binding in bindings.get(m.number, []):
                leg = self.ext.fork(
                    call,
                    binding,
                    user=m.number,
                    caller=shown,
                    on_response=lambda leg, resp: self.response(rnd, leg, resp),
                )
                rnd.legs.add(leg)
        self.calls.changed(call)  # the members' phones ring (BLF)
        rnd.check()
        try:
            answered = await asyncio.wait_for(asyncio.shield(rnd.done), seconds)
        except TimeoutError:
            answered = False
        finally:
            rnd.over = True
            if self.rounds.get(call.id) is rnd:
                del self.rounds[call.id]
        if not answered and call.state != "ended":
            # Nobody answered in time: every phone still ringing (an outside member's trunk
            # leg too) is CANCELled.
            for leg in list(call.forks):
                self.calls.cancel_fork(leg)
            call.forks = []
            self.calls.changed(call)
        return answered

    def response(self, rnd: Round, leg: Leg, resp: Response) -> None:
        call = leg.call
        status = resp.status
        if status < 200:
            if status in (180, 183):
                self.provisional(rnd, leg, resp)
            return
        if status < 300:
            self.calls.spawn(self.answered(rnd, leg, resp))
            return
        cancelled = self.calls.fork_failed(leg)
        rnd.legs.discard(leg)
        if not cancelled:
            call.statuses.append(status)
            self.calls.changed(call)  # that phone stopped ringing (BLF)
        rnd.check()

    def provisional(self, rnd: Round, leg: Leg, resp: Response) -> None:
        call = leg.call
        leg.provisional = True
        self.calls.early(leg, resp)
        if rnd.over or leg.gone or call.state != "ringing" or call.b is not None:
            return
        ring_caller(self.s, call, resp)
        if not rnd.rang:
            rnd.rang = True
            self.calls.emit(call, EventType.CALL_RINGING, leg=leg.name, callee=leg.user)

    async def answered(self, rnd: Round, leg: Leg, resp: Response) -> None:
        if not await self.ext.confirm(leg, resp):
            return
        call = leg.call
        call.target = leg.user  # the member who answered is the callee from now on
        rnd.settle(True)
        await self.ext.win(leg)

    # --- outside members -----------------------------------------------------------------
    def dialler(self, call: Call) -> ExtensionSnapshot:
        """Who dials an outside member: the calling extension, or for a trunk's caller the
        tenant (no extension's rules or barring; the tenant's caller ID)."""
        if not call.inbound:
            return call.caller
        return ExtensionSnapshot(number="", call_scope=CallScope.INTERNATIONAL)

    async def dial_outside(
        self, call: Call, rnd: Round, member: RingMember, shown: ExtensionSnapshot
    ) -> None:
        try:
            await self._dial_outside(call, rnd, member, shown)
        finally:
            rnd.dials -= 1
            rnd.check()

    async def _dial_outside(
        self, call: Call, rnd: Round, member: RingMember, shown: ExtensionSnapshot
    ) -> None:
        trunks = self.s.router.handler("trunk")
        if not isinstance(trunks, Trunk):
            log.warning("call %s: no trunk destination for outside member %s", call.id,
                        member.number)  # fmt: skip
            return
        dialler = self.dialler(call)
        found = outbound.decide(call.tenant, dialler, member.number, forwarded=True)
        if found is None or found.kind != "trunk":
            why = "no outbound rule" if found is None else found.data.get("reason")
            log.warning("call %s: outside member %s of %s cannot be dialled (%s)", call.id,
                        member.number, call.tenant.schema, why)  # fmt: skip
            return
        plan: outbound.Plan = found.data["plan"]
        tries = outbound.attempts(plan, self.s.ctx.directory.carriers, call.tenant.schema, dialler)
        if not tries:
            log.warning("call %s: no trunk carries outside member %s", call.id, member.number)
            return

        def wanted() -> bool:
            return not rnd.over and call.state == "ringing" and call.b is None

        dialled = await trunks.dial(
            call,
            plan,
            tries,
            call.offer,
            wanted=wanted,
            provisional=lambda leg, resp: self.provisional(rnd, leg, resp),
            tried=lambda attempt: trunks.routed(call, plan, attempt),
            diversions=False,
            caller_name=shown.caller_id_name,
        )
        leg, resp = dialled.leg, dialled.response
        if leg is None or resp is None:
            return
        if not wanted():
            self.calls.bye(leg)
            return
        call.target = member.number
        rnd.settle(True)
        call.b = leg
        for other in list(call.forks):
            if other is not leg:
                self.calls.cancel_fork(other, answered_elsewhere=True)
        await trunks.answered(leg, resp)

    # --- nobody answered -----------------------------------------------------------------
    async def overflow(self, call: Call, group: RingGroup) -> None:
        """Where the call goes when no member answered: the group's overflow, else 480."""
        await overflow(self.s, call, group.overflow, via=group.number, what="ring group")

    # --- observer ------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        if call.state != "ended":
            return
        rnd = self.rounds.pop(call.id, None)
        if rnd is not None:
            rnd.settle(False)
