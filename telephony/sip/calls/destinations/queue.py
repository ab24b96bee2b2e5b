"""``queue``: a call queue (``TenantSnapshot.callcenter.queues``, ``contract.Queue``).

Reached by dialling the queue's number (a routing rule: an enabled queue of the caller's own
tenant), by an inbound rule, an IVR option or an overflow (``{"kind": "queue", ...}``).

A blacklisted caller is refused (603). A caller that finds the queue full (``max_callers``),
or nobody logged in with a phone registered (unless ``wait_without_agents``), goes to the
queue's overflow at once.
Any other caller is taken by the media server and waits: the greeting, then the queue's music,
interrupted every ``announce_seconds`` by its position and the estimated wait (the average wait
of the queue's recently answered calls, in minutes). VIP callers wait before the others (first
come, first served inside each class).

The dispatcher offers the head caller(s) to the available agents (``AgentBook.available``:
ready, not on a call or ringing, not on DND) whenever a caller joins, an agent's state or
calls change, or an offer fails: ring all offers every available agent at once, the other
strategies one agent at a time for ``ring_seconds`` (hunt: the queue's order; longest idle;
round robin: after the agent offered last; fewest calls: the fewest answered today; skills:
qualifying agents only, most skilled first, then longest idle); a sticky queue offers first
the agent that last answered the caller's number from it (``QUEUE_STICKY``). While an agent
rings the caller keeps hearing the music (``media.hand_off``: the caller stays on the media
server until the agent answers); the agent that answers is joined to it (``media.join``),
``call.queue`` is set, and when the call ends the agent wraps up. A call the queue's recording
policy (``Queue.recording``) or its agents' may record is recorded by rtpengine from the answer
(``record_policy.py``): the caller was anchored when the media server took it, and the agents
are offered only what a recording is decoded from (G.711).

A caller waiting ``max_wait_seconds`` leaves to the overflow; one waiting ``sla_seconds`` is
told once (``queue.sla``). With ``callback`` a caller keys 3, then the number to be called on
(just #: its own), and hangs up keeping its place; when its turn comes an agent is rung first
(an engine-originated call) and once it answers the number is dialled as the agent would
(``callback_prefix`` before it: the tenant's outbound rules, or an extension) and joined to
it. This engine's waiting callers of each queue are written to ``QUEUE_LIVE`` after every change
(once for all the changes of one pass of the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from telephony.media.client import MediaError, MediaSession
from telephony.sip import contract
from telephony.sip.calls import routing
from telephony.sip.calls.anchor import recordable_codecs
from telephony.sip.calls.call import Call, Leg, sendrecv
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.originate import ring_phones
from telephony.sip.calls.record_policy import queue_policy
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import (
    EventType,
    ExtensionSnapshot,
    Queue,
    QueueExit,
    QueueLive,
    QueueStrategy,
    RecordingPolicy,
    TenantSnapshot,
    WaitingCaller,
    number_listed,
)
from telephony.sip.message import Response
from telephony.sip.registrar import Binding

from .base import register
from .caller import prefixed, unavailable
from .extension import Extension
from .hotdesk import phones_of
from .overflow import overflow
from .ring_group import after_last

__all__ = ["Queues", "Waiter", "queue_numbers"]

log = logging.getLogger(__name__)

RECENT = 20  # answered calls whose waits make the estimate
RETRY_SECONDS = 5.0  # an agent that let an offer go is not offered again before this
CALLBACK_DIGITS = 20


@routing.rule
def queue_numbers(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """An enabled queue's number of the caller's own tenant."""
    queue = tenant.callcenter.queues.get(number)
    if queue is None or not queue.enabled:
        return None
    return Destination("queue", number)


@dataclass(slots=True, eq=False)
class Waiter:
    """A caller waiting in a queue: its call, or once it hung up for a callback, the number
    it is called back on (``callback``)."""

    call: Call | None
    call_id: str
    schema: str  # its tenant's
    queue: str
    caller: str
    caller_name: str
    vip: bool
    seq: int
    since: float = field(default_factory=time.time)
    callback: str = ""
    sticky: str = ""  # the agent that last answered this caller (sticky queues)
    # The agents offered it in this round of the line (one at a time: the next is another,
    # until every available agent had its turn).
    tried: set[str] = field(default_factory=set)
    offering: bool = False
    done: bool = False  # answered or left
    exit: str = ""  # why the waiting loop should end (max_wait)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    def waited(self) -> float:
        return time.time() - self.since

    def view(self) -> WaitingCaller:
        return WaitingCaller(
            call_id=self.call_id,
            caller=self.caller,
            caller_name=self.caller_name,
            since=self.since,
            vip=self.vip,
            callback=self.callback,
        )


@dataclass(slots=True, eq=False)
class Line:
    """One queue's callers on this engine, in queue order, and its recent answer waits."""

    waiting: list[Waiter] = field(default_factory=list)
    waits: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT))
    scheduled: bool = False  # a dispatch is due (``dispatch_soon``)
    live_due: bool = False  # a ``QUEUE_LIVE`` write is due (``live``)

    def insert(self, w: Waiter) -> int:
        self.waiting.append(w)
        self.waiting.sort(key=lambda x: (not x.vip, x.seq))
        return self.waiting.index(w) + 1


@dataclass(slots=True, eq=False)
class Round:
    """Agents rung at once for one caller; ``done``: True once one answered."""

    done: asyncio.Future[bool]
    legs: set[Leg] = field(default_factory=set)
    over: bool = False
    rang: bool = False

    def settle(self, answered: bool) -> None:
        if not self.done.done():
            self.done.set_result(answered)


@dataclass(slots=True)
class Answered:
    """A queue call an agent answered: who wraps up after it."""

    domain: str
    queue: str
    agent: str
    callback: str = ""  # a callback call: the number dialled
    waiter_id: str = ""
    reached: bool = False


@register("queue")
class Queues:
    """The queues' waiting callers and the dispatcher that offers them to agents."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls
        self.agents = services.agents
        self.ext = Extension(services)
        self.lines: dict[tuple[str, str], Line] = {}  # (schema, queue) -> its line
        self.queues_of: dict[str, list[str]] = {}  # schema -> its queues with a line
        self.by_call: dict[str, Waiter] = {}  # a waiting caller's call id -> it
        self.rounds: dict[str, Round] = {}
        self.reserved: dict[str, set[str]] = {}  # schema -> agents being offered a call
        # (schema, agent) -> the loop time until which it is not offered again (``rest``).
        self.resting: dict[tuple[str, str], float] = {}
        self.answered: dict[str, Answered] = {}  # call id -> the queue call's agent
        self._seq = 0
        services.calls.observers.append(self)
        services.states.listeners.append(self.state_changed)
        services.agents.listeners.append(self.agents_changed)
        services.agents.on_stop.append(self.stop)

    # --- the destination -----------------------------------------------------------------
    async def connect(self, call: Call, destination: Destination) -> None:
        tenant = call.tenant
        queue = tenant.callcenter.queues.get(destination.target)
        if queue is None or not queue.enabled:
            warning = f"no queue {destination.target!r} in {tenant.schema}"
            await unavailable(self.s, call, warning, "queue missing")
            return
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        number = call.caller.caller_id_number
        if number_listed(queue.blacklist, number):
            log.info("call %s: %s is on queue %s's blacklist", call.id, number, queue.number)
            self.event(tenant, queue, EventType.QUEUE_LEFT, call.id,
                       reason=QueueExit.BLACKLISTED, waited="0.0", position=0)  # fmt: skip
            if call.answered_a:
                await self.s.media.goodbye(call, "queue blacklist")
            else:
                self.s.router.connect(call, reject(603, reason="queue blacklist"))
            return
        await self.agents.ensure(tenant.schema)
        line = self.line(tenant, queue)
        full = queue.max_callers and len(line.waiting) >= queue.max_callers
        nobody = not queue.wait_without_agents and not await self.reachable(tenant, queue)
        if full or nobody:
            reason = QueueExit.MAX_CALLERS if full else QueueExit.NO_AGENTS
            self.event(tenant, queue, EventType.QUEUE_LEFT, call.id,
                       reason=reason, waited="0.0", position=0)  # fmt: skip
            await self.overflow(call, queue)
            return
        session = await self.s.media.take(call)
        if session is None:
            if call.state != "ended":
                self.event(tenant, queue, EventType.QUEUE_LEFT, call.id,
                           reason=QueueExit.FAILED, waited="0.0", position=0)  # fmt: skip
                self.calls.fail(call, 480, reason="queue without media server")
            return
        call.visited.append(queue.number)
        self._seq += 1
        w = Waiter(
            call=call,
            call_id=call.id,
            schema=tenant.schema,
            queue=queue.number,
            caller=number,
            caller_name=call.caller.caller_id_name,
            vip=number_listed(queue.vip, number),
            seq=self._seq,
        )
        if queue.sticky and number:
            w.sticky = await self.sticky_agent(tenant, queue, number)
        if call.state == "ended":
            return
        position = line.insert(w)
        self.by_call[call.id] = w
        self.event(tenant, queue, EventType.QUEUE_JOINED, call.id, caller=number,
                   caller_name=w.caller_name, position=position,
                   vip="1" if w.vip else "0")  # fmt: skip
        loop = asyncio.get_running_loop()
        if queue.max_wait_seconds > 0:
            w.timers.append(loop.call_later(queue.max_wait_seconds, self.max_wait, w))
        w.timers.append(loop.call_later(queue.sla_seconds, self.sla, w, queue))
        self.live(tenant.schema, queue.number)
        self.dispatch_soon(tenant.schema, queue.number)
        await self.hold(w, queue, session)

    async def reachable(self, tenant: TenantSnapshot, queue: Queue) -> bool:
        """Whether an agent of ``queue`` is logged in with a phone registered: an agent whose
        phones are all off cannot take a caller, so it counts as logged out here (as a
        phone's registration logs an agent in on PBXs that tie the two)."""
        for number in self.agents.logged_in(tenant.schema, queue):
            if await phones_of(self.s.ctx.locations, tenant, number):
                return True
        return False

    def line(self, tenant: TenantSnapshot, queue: Queue) -> Line:
        key = (tenant.schema, queue.number)
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = Line()
            self.queues_of.setdefault(tenant.schema, []).append(queue.number)
        return line

    # --- waiting -------------------------------------------------------------------------
    async def hold(self, w: Waiter, queue: Queue, session: MediaSession) -> None:
        """The caller's time in the queue: greeting, music, announcements, the callback key;
        ends when it is answered, leaves, or must overflow (``w.exit``)."""
        call = w.call
        assert call is not None
        media = self.s.media
        tenant = call.tenant
        loop = asyncio.get_running_loop()
        try:
            if queue.greeting:
                item = (
                    {"file": queue.greeting}
                    if queue.greeting.startswith("/")
                    else media.prompt(tenant, queue.greeting)
                )
                await self.interruptible(w, session.play([item]))
            announce = queue.announce_seconds > 0 and (
                queue.announce_position or queue.announce_wait
            )
            every = queue.announce_seconds if announce else 3600.0
            while self.waiting(w, session):
                await session.start_play(media.music(tenant, queue.music_class), loop=True)
                deadline = loop.time() + every
                digit: str | None = None
                while self.waiting(w, session) and (left := deadline - loop.time()) > 0:
                    digit = await self.interruptible(w, session.next_digit(left))
                    if digit == "3" and queue.callback:
                        break
                if not self.waiting(w, session):
                    break
                if digit == "3" and queue.callback:
                    await self.ask_callback(w, queue, session)
                    return
                if announce:
                    await session.play(self.announcement(tenant, queue, w))
        except MediaError as exc:
            log.warning("call %s: queue %s media failed: %s", call.id, queue.number, exc)
        if w.exit and not w.done and call.state != "ended":
            await self.leave(w, w.exit)
            with contextlib.suppress(MediaError):
                await session.stop()
            await self.overflow(call, queue)

    def waiting(self, w: Waiter, session: MediaSession) -> bool:
        call = w.call
        return (
            not w.done
            and not w.exit
            and call is not None
            and call.state != "ended"
            and not session.closed
        )

    async def interruptible(self, w: Waiter, aw: Any) -> Any:
        """``aw``'s result, or None when the waiter is woken first (answered, max wait)."""
        task = asyncio.ensure_future(aw)
        waker = asyncio.ensure_future(w.wake.wait())
        try:
            await asyncio.wait({task, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, MediaError):
            await task
        return None

    def announcement(self, tenant: TenantSnapshot, queue: Queue, w: Waiter) -> list[dict[str, Any]]:
        media = self.s.media
        items: list[dict[str, Any]] = []
        line = self.lines.get((tenant.schema, queue.number))
        if queue.announce_position and line is not None and w in line.waiting:
            items += media.prompts(tenant, "queue-position")
            items += media.digits(tenant, str(line.waiting.index(w) + 1))
        if queue.announce_wait and line is not None and line.waits:
            minutes = max(1, math.ceil(sum(line.waits) / len(line.waits) / 60.0))
            items += media.prompts(tenant, "queue-wait")
            items += media.digits(tenant, str(minutes))
            items += media.prompts(tenant, "queue-minutes")
        return items

    def max_wait(self, w: Waiter) -> None:
        if w.done or w.call is None:
            return
        w.exit = QueueExit.MAX_WAIT
        rnd = self.rounds.get(w.call_id)
        if rnd is not None:
            rnd.settle(False)
        w.wake.set()

    def sla(self, w: Waiter, queue: Queue) -> None:
        if w.done:
            return
        tenant = self.s.ctx.directory.by_schema(w.schema)
        if tenant is not None:
            self.event(tenant, queue, EventType.QUEUE_SLA, w.call_id,
                       waited=f"{w.waited():.1f}")  # fmt: skip

    async def leave(self, w: Waiter, reason: str) -> None:
        """``w`` left unanswered (``reason``: a QueueExit)."""
        if w.done:
            return
        position = self.remove(w)
        tenant = self.s.ctx.directory.by_schema(w.schema)
        queue = tenant.callcenter.queues.get(w.queue) if tenant is not None else None
        if tenant is not None and queue is not None:
            self.event(tenant, queue, EventType.QUEUE_LEFT, w.call_id, reason=reason,
                       waited=f"{w.waited():.1f}", position=position)  # fmt: skip

    def remove(self, w: Waiter) -> int:
        """Take ``w`` off its line: its position (0 when it was not on it)."""
        w.done = True
        w.wake.set()
        for timer in w.timers:
            timer.cancel()
        w.timers.clear()
        self.by_call.pop(w.call_id, None)
        schema = w.schema
        line = self.lines.get((schema, w.queue))
        position = 0
        if line is not None and w in line.waiting:
            position = line.waiting.index(w) + 1
            line.waiting.remove(w)
        self.live(schema, w.queue)
        self.dispatch_soon(schema, w.queue)
        return position

    # --- callback ------------------------------------------------------------------------
    async def ask_callback(self, w: Waiter, queue: Queue, session: MediaSession) -> None:
        """The caller keyed 3: the number to call it back on (# alone: its own), then it
        hangs up keeping its place."""
        call = w.call
        assert call is not None
        media = self.s.media
        session.flush_digits()
        await session.play(media.prompts(call.tenant, "queue-callback-number"), barge=True)
        typed = await session.collect(CALLBACK_DIGITS, timeout=5.0, first_timeout=10.0)
        if w.done or call.state == "ended":
            return
        number = typed or w.caller
        if not number:
            await session.start_play(media.music(call.tenant, queue.music_class), loop=True)
            return
        w.callback = number
        w.call = None
        for timer in w.timers:
            timer.cancel()
        w.timers.clear()
        self.by_call.pop(call.id, None)
        line = self.lines.get((call.tenant.schema, queue.number))
        position = line.waiting.index(w) + 1 if line is not None and w in line.waiting else 0
        self.event(call.tenant, queue, EventType.QUEUE_LEFT, w.call_id, reason=QueueExit.CALLBACK,
                   waited=f"{w.waited():.1f}", position=position)  # fmt: skip
        self.event(call.tenant, queue, EventType.QUEUE_CALLBACK, w.call_id, number=number,
                   state="requested")  # fmt: skip
        self.live(call.tenant.schema, queue.number)
        await media.goodbye(call, "queue callback", "queue-callback-ok")
        self.dispatch_soon(call.tenant.schema, queue.number)

    # --- dispatching ---------------------------------------------------------------------
    def dispatch_soon(self, schema: str, number: str) -> None:
        line = self.lines.get((schema, number))
        if line is None or line.scheduled or not line.waiting:
            return
        line.scheduled = True
        asyncio.get_running_loop().call_soon(self.dispatch, schema, number)

    def state_changed(self, schema: str, number: str) -> None:
        """An extension's calls changed: the queues it is an agent of look again."""
        for queue in self.queues_of.get(schema, ()):
            self.dispatch_soon(schema, queue)

    def agents_changed(self, schema: str) -> None:
        self.state_changed(schema, "")

    def dispatch(self, schema: str, number: str) -> None:
        """Offer the head callers of a queue to its available agents."""
        line = self.lines.get((schema, number))
        if line is None:
            return
        line.scheduled = False
        tenant = self.s.ctx.directory.by_schema(schema)
        queue = tenant.callcenter.queues.get(number) if tenant is not None else None
        if tenant is None or queue is None or not line.waiting:
            return
        reserved = self.reserved.setdefault(schema, set())
        for w in list(line.waiting):
            if w.offering or w.done or w.exit:
                continue
            agents = self.candidates(tenant, queue, w, reserved)
            if not agents:
                break
            if queue.strategy != QueueStrategy.RING_ALL:
                agents = agents[:1]
                self.agents.last_offered[(schema, number)] = agents[0]
            w.offering = True
            w.tried.update(agents)
            reserved.update(agents)
            self.calls.spawn(self.offer(tenant, queue, w, agents))

    def candidates(
        self, tenant: TenantSnapshot, queue: Queue, w: Waiter, reserved: set[str]
    ) -> list[str]:
        """The agents that may be offered ``w`` now, in the strategy's order."""
        schema = tenant.schema
        own = w.caller if w.call is not None and not w.call.inbound else ""
        strategy = queue.strategy
        pool = queue.agents
        if strategy == QueueStrategy.ROUND_ROBIN:  # the agent after the one offered last
            pool = tuple(after_last(pool, self.agents.last_offered.get((schema, queue.number))))
        agents = [
            a
            for a in pool
            if a.number not in reserved
            and a.number != own
            and not self.resting_now(schema, a.number)
            and self.agents.available(tenant, queue, a.number)
        ]
        idle = self.s.states.idle_since
        if strategy == QueueStrategy.LONGEST_IDLE:
            agents.sort(key=lambda a: idle.get((schema, a.number), 0.0))
        elif strategy == QueueStrategy.FEWEST_CALLS:
            agents.sort(key=lambda a: self.agents.answered_today(schema, queue.number, a.number))
        elif strategy == QueueStrategy.SKILLS:
            need = queue.required_skills
            agents = [a for a in agents if a.qualifies(need)]
            agents.sort(key=lambda a: (-a.level(need), idle.get((schema, a.number), 0.0)))
        numbers = [a.number for a in agents]
        fresh = [n for n in numbers if n not in w.tried]
        if not fresh:
            w.tried.clear()
        else:
            numbers = fresh
        if queue.sticky and w.sticky in numbers:
            numbers.remove(w.sticky)
            numbers.insert(0, w.sticky)
        return numbers

    async def offer(
        self, tenant: TenantSnapshot, queue: Queue, w: Waiter, agents: list[str]
    ) -> None:
        answered = False
        try:
            if w.call is None:
                answered = await self.offer_callback(tenant, queue, w, agents[0])
            else:
                answered = await self.ring(tenant, queue, w, agents)
        finally:
            w.offering = False
            self.reserved.get(tenant.schema, set()).difference_update(agents)
            if not answered:
                if not (w.done or w.exit):
                    self.rest(tenant.schema, queue.number, agents)  # they did not take it
                self.dispatch_soon(tenant.schema, queue.number)

    def rest(self, schema: str, number: str, agents: list[str]) -> None:
        """Agents that let an offer go (no answer, refused, no phone registered) are not
        offered again for :data:`RETRY_SECONDS` (not at once, again and again, while the
        caller waits); the queue looks again when the rest is over."""
        loop = asyncio.get_running_loop()
        until = loop.time() + RETRY_SECONDS
        for agent in agents:
            self.resting[(schema, agent)] = until
        loop.call_later(RETRY_SECONDS, self.dispatch_soon, schema, number)

    def resting_now(self, schema: str, agent: str) -> bool:
        until = self.resting.get((schema, agent))
        if until is None:
            return False
        if until <= asyncio.get_running_loop().time():
            del self.resting[(schema, agent)]
            return False
        return True

    # --- ringing agents for a waiting caller ---------------------------------------------
    async def ring(
        self, tenant: TenantSnapshot, queue: Queue, w: Waiter, agents: list[str]
    ) -> bool:
        call = w.call
        assert call is not None
        bindings: dict[str, list[Binding]] = {}
        for agent in agents:
            bindings[agent] = await phones_of(self.s.ctx.locations, tenant, agent)
        if w.done or w.exit or call.state == "ended" or w.call is not call:
            return False
        if not any(bindings.values()):
            return False
        # The caller stays on the music meanwhile; the agents are offered only what a
        # recording is decoded from when the call may be recorded once answered.
        await self.s.media.hand_off(call, codec=self.recordable(call, queue, agents))
        if w.done or w.exit or call.state == "ended":
            return False
        a = call.a
        assert a is not None
        targets = [self.ext.profile(call, b, n) for n, found in bindings.items() for b in found]
        if not await self.s.anchor.prepare(
            call, targets, source=sendrecv(a.remote_sdp), failure="rtpengine offer (agents)"
        ):
            return False
        call.state = "ringing"
        rnd = Round(asyncio.get_running_loop().create_future())
        self.rounds[call.id] = rnd
        shown = prefixed(call.caller, queue.caller_id_prefix)
        for agent, found in bindings.items():
            for binding in found:
                leg = self.ext.fork(
                    call,
                    binding,
                    user=agent,
                    caller=shown,
                    on_response=lambda leg, resp: self.response(rnd, w, queue, leg, resp),
                )
                rnd.legs.add(leg)
        self.calls.changed(call)
        try:
            answered = await asyncio.wait_for(asyncio.shield(rnd.done), queue.ring_seconds)
        except TimeoutError:
            answered = False
        finally:
            rnd.over = True
            if self.rounds.get(call.id) is rnd:
                del self.rounds[call.id]
        if not answered and call.state != "ended":
            for leg in list(call.forks):
                self.calls.cancel_fork(leg)
            call.forks = []
            if call.b is None:
                call.state = "answered"  # back to waiting, the media server's
            self.calls.changed(call)
        return answered

    def recordable(
        self, call: Call, queue: Queue, agents: list[str]
    ) -> dict[str, list[str]] | None:
        """The codec manipulation of the agents' offer when the call may be recorded once one
        of ``agents`` answers it (the queue's policy, the agents', the call's own): rtpengine
        records it, so the caller must be anchored (``media.take`` anchored it when the
        engine has rtpengine)."""
        anchor = self.s.anchor
        a = call.a
        if not anchor.config.recording_dir or a is None:
            return None
        if queue_policy(call, queue, agents) == RecordingPolicy.NEVER:
            return None
        if not call.anchored:
            log.warning("call %s: queue %s may record it, but its media is not anchored",
                        call.id, queue.number)  # fmt: skip
            return None
        return recordable_codecs(a.remote_sdp)

    def response(self, rnd: Round, w: Waiter, queue: Queue, leg: Leg, resp: Response) -> None:
        status = resp.status
        if status < 200:
            if status in (180, 183):
                leg.provisional = True
                self.calls.early(leg, resp)  # the caller keeps its music: no ringback
                if not rnd.rang and not rnd.over:
                    rnd.rang = True  # the agent rings (the wallboard, the live calls page)
                    self.calls.emit(leg.call, EventType.CALL_RINGING, leg=leg.name,
                                    callee=leg.user)  # fmt: skip
            return
        if status < 300:
            self.calls.spawn(self.agent_answered(rnd, w, queue, leg, resp))
            return
        cancelled = self.calls.fork_failed(leg)
        rnd.legs.discard(leg)
        if not cancelled:
            self.calls.changed(leg.call)
        if not rnd.legs:
            rnd.settle(False)

    async def agent_answered(
        self, rnd: Round, w: Waiter, queue: Queue, leg: Leg, resp: Response
    ) -> None:
        if rnd.over or w.done or w.exit:
            if await self.calls.confirm(leg, resp):
                self.calls.bye(leg)
            return
        if not await self.ext.confirm(leg, resp):
            return
        call = leg.call
        agent = leg.user
        waited = w.waited()
        self.remove(w)
        rnd.settle(True)
        call.queue = queue.number
        call.target = agent
        tenant = call.tenant
        self.note_answer(tenant, queue, agent, waited)
        self.answered[call.id] = Answered(tenant.domain, queue.number, agent)
        self.event(tenant, queue, EventType.QUEUE_ANSWERED, call.id, agent=agent,
                   waited=f"{waited:.1f}",
                   sla="1" if waited <= queue.sla_seconds else "0")  # fmt: skip
        if queue.sticky and w.caller:
            self.calls.spawn(self.store_sticky(tenant, queue, w.caller, agent))
        await self.ext.win(leg)

    def note_answer(self, tenant: TenantSnapshot, queue: Queue, agent: str, waited: float) -> None:
        line = self.lines.get((tenant.schema, queue.number))
        if line is not None:
            line.waits.append(waited)
        self.agents.count_answer(tenant.schema, queue.number, agent)

    # --- callback calls ------------------------------------------------------------------
    async def offer_callback(
        self, tenant: TenantSnapshot, queue: Queue, w: Waiter, agent: str
    ) -> bool:
        """Ring ``agent`` for a caller that asked for a callback; once it answers, dial the
        caller's number and join it."""
        media = self.s.media
        ext = tenant.extensions.get(agent)
        bindings = await phones_of(self.s.ctx.locations, tenant, agent)
        if ext is None or not bindings or w.done:
            return False
        shown = ExtensionSnapshot(
            number="",
            caller_id_number=w.callback,
            caller_id_name=f"{queue.caller_id_prefix} {w.caller_name or w.callback}".strip(),
        )
        call = await ring_phones(
            self.s, tenant, ext, bindings, shown=shown, callee=w.callback,
            seconds=queue.ring_seconds, name="qcb", wanted=lambda: not w.done,
        )  # fmt: skip
        if call is None:
            return False
        waited = w.waited()
        self.remove(w)
        call.queue = queue.number
        self.note_answer(tenant, queue, agent, waited)
        self.answered[call.id] = Answered(
            tenant.domain, queue.number, agent, callback=w.callback, waiter_id=w.call_id
        )
        sla = "1" if waited <= queue.sla_seconds else "0"
        self.event(tenant, queue, EventType.QUEUE_ANSWERED, w.call_id, agent=agent,
                   waited=f"{waited:.1f}", sla=sla)  # fmt: skip
        self.event(tenant, queue, EventType.QUEUE_CALLBACK, w.call_id, number=w.callback,
                   state="calling", agent=agent)  # fmt: skip
        await media.hand_off(call)
        media.ringback(call)
        await self.s.router.route(call, queue.callback_prefix + w.callback)
        return True

    # --- overflow ------------------------------------------------------------------------
    async def overflow(self, call: Call, queue: Queue) -> None:
        """The caller leaves to the queue's overflow (None: goodbye and hang-up, or 480)."""
        await overflow(self.s, call, queue.overflow, via=queue.number, what="queue")

    # --- shared state --------------------------------------------------------------------
    def event(
        self, tenant: TenantSnapshot, queue: Queue, kind: EventType, call_id: str, **fields: Any
    ) -> None:
        self.s.ctx.events.emit(
            kind,
            schema=tenant.schema,
            tenant_id=tenant.tenant_id,
            queue=queue.number,
            call_id=call_id,
            **fields,
        )

    def live(self, schema: str, number: str) -> None:
        """Write this engine's callers of the queue to ``QUEUE_LIVE`` soon: the changes of
        one pass of the loop are written once (as ``dispatch_soon`` dispatches once)."""
        line = self.lines.get((schema, number))
        if line is None or line.live_due:
            return
        line.live_due = True
        asyncio.get_running_loop().call_soon(self._write_live, schema, number, line)

    def _write_live(self, schema: str, number: str, line: Line) -> None:
        line.live_due = False
        waiting = tuple(w.view() for w in line.waiting)
        value = QueueLive(waiting=waiting, at=time.time()).to_json()
        key = contract.key(self.prefix, contract.QUEUE_LIVE, schema=schema)
        self.calls.spawn(self._write(key, f"{number}|{self.s.ctx.engine_id}", value))

    async def _write(self, key: str, name: str, value: str) -> None:
        try:
            await self.s.ctx.redis.hset(key, name, value)
        except Exception as exc:
            log.warning("queue live state not written: %s", exc)

    @property
    def prefix(self) -> str:
        return self.s.ctx.config.redis_prefix

    async def sticky_agent(self, tenant: TenantSnapshot, queue: Queue, number: str) -> str:
        key = contract.key(self.prefix, contract.QUEUE_STICKY, schema=tenant.schema)
        try:
            raw = await self.s.ctx.redis.hget(key, f"{queue.number}:{number}")
        except Exception as exc:
            log.warning("sticky agent unreadable: %s", exc)
            return ""
        return raw.decode() if isinstance(raw, bytes) else str(raw or "")

    async def store_sticky(
        self, tenant: TenantSnapshot, queue: Queue, number: str, agent: str
    ) -> None:
        key = contract.key(self.prefix, contract.QUEUE_STICKY, schema=tenant.schema)
        try:
            await self.s.ctx.redis.hset(key, f"{queue.number}:{number}", agent)
        except Exception as exc:
            log.warning("sticky agent not stored: %s", exc)

    async def stop(self) -> None:
        """The engine stops: its fields of ``QUEUE_LIVE`` go."""
        me = f"|{self.s.ctx.engine_id}"
        for schema, number in list(self.lines):
            key = contract.key(self.prefix, contract.QUEUE_LIVE, schema=schema)
            with contextlib.suppress(Exception):
                await self.s.ctx.redis.hdel(key, number + me)

    # --- observer ------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        if call.state != "ended":
            if call.id in self.answered:
                done = self.answered[call.id]
                reached = call.b is not None and call.state == "answered"
                if done.callback and not done.reached and reached:
                    done.reached = True
                    self._callback_state(call, done, "answered")
            return
        rnd = self.rounds.pop(call.id, None)
        if rnd is not None:
            rnd.settle(False)
        w = self.by_call.get(call.id)
        if w is not None and w.call is call and not w.done:
            self.calls.spawn(self.leave(w, QueueExit.ABANDONED))
        over = self.answered.pop(call.id, None)
        if over is None:
            return
        if over.callback and not over.reached:
            self._callback_state(call, over, "failed")
        tenant = self.s.ctx.directory.tenant(over.domain) or call.tenant
        queue = tenant.callcenter.queues.get(over.queue)
        if queue is not None:
            self.calls.spawn(self.agents.wrap_up(tenant, queue, over.agent))

    def _callback_state(self, call: Call, done: Answered, state: str) -> None:
        queue = call.tenant.callcenter.queues.get(done.queue)
        if queue is not None:
            self.event(call.tenant, queue, EventType.QUEUE_CALLBACK, done.waiter_id,
                       number=done.callback, state=state, agent=done.agent)  # fmt: skip
