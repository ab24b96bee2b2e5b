"""Supervision: a queue supervisor listens to an agent's queue call, whispers to the agent or
barges in (PortSIP's supervisor role).

rtpengine cannot mix, so the media server does. When a supervisor first joins a call, its two
parties (the caller, leg A, and the agent, leg B, bridged directly or through rtpengine) are
each moved to a media-server session of their own by a re-INVITE carrying the media server's
offer, and the two sessions *follow* each other (``Sa.follow(Sb)``, ``Sb.follow(Sa)``): the
parties still talk, now through the media server. The supervisor's own call (a dialled code,
or the call the engine places for the wallboard's button) is taken by the media server:
session ``Ss``.

Through rtpengine: when the call is anchored, the caller stays on the call's own rtpengine
pairing (``call.media_id``) and ``Sa`` takes the agent's place in it (re-offered under the
agent's tag, as music on hold takes the holder's place: ``bridge.Bridge.hold``); only the
agent moves, to a new pairing with ``Sb``. So the caller's phone keeps the very address it
sent to (nothing for it to latch back onto), and a recording (rtpengine's, of that pairing:
``recording.py``) goes on whole: what the caller says, and what the caller hears — the agent,
and the supervisor too once it barges in — from ``Sa``. The agent's old side of the pairing
now leads to ``Sa``: its phone, re-INVITEd at the same time, receives nothing more from it.
A call that is not anchored has each party moved to a new pairing (when the engine has
rtpengine) or straight to its session.

- listen: ``Ss.follow(Sa, Sb)`` (the supervisor hears both, nobody hears the supervisor);
- whisper: also ``Sb.follow(Sa, Ss)`` (the agent hears the supervisor, the caller does not);
- barge: also ``Sa.follow(Sb, Ss)`` (both hear the supervisor).

The supervisor's keys 1, 2 and 3 (``contract.SUPERVISION_KEYS``) switch the mode. When the
supervisor hangs up, the parties follow each other only again (they stay on the media server
until their call ends: a re-INVITE or UPDATE of theirs is answered by their own session,
``Supervision.reanswer``, called by the bridge); when a party hangs up, the supervisor's call
ends too. Each change is a ``queue.supervision`` event (mode, or "ended").

Only an extension listed as a supervisor of the call's queue (``Call.queue``, set once a
queue's agent answered) may join, and only calls of its own tenant are ever looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from telephony.media.client import MediaError, MediaSession
from telephony.sip.contract import (
    SUPERVISION_KEYS,
    EventType,
    SuperviseCall,
    SupervisionMode,
    TenantSnapshot,
)

from .call import Call, Calls, Leg
from .originate import ring_phones
from .profiles import Profile
from .services import CallServices

# The supervisor's phones ring this long for the wallboard's button.
RING_SECONDS = 30.0

__all__ = ["Pairing", "Supervision", "Supervisions", "supervisions_of"]

log = logging.getLogger(__name__)

ENDED = "ended"


@dataclass(slots=True, frozen=True)
class Pairing:
    """The rtpengine pairing a party's session is in: its call-id, the session's tag there
    (the agent's, in the call's own pairing), and whether the supervision made it (ended
    with it) rather than the call (ended with the call: the recorder reads it)."""

    media_id: str
    tag: str
    own: bool = True


@dataclass(eq=False)
class Supervision:
    """A supervised call: its parties' media-server sessions (and their rtpengine pairings),
    and the supervisor's call and mode while one is in it."""

    s: CallServices
    call: Call
    a: Leg
    b: Leg
    sa: MediaSession
    sb: MediaSession
    pairings: dict[str, Pairing] = field(default_factory=dict)  # leg name -> its pairing
    supervisor_call: Call | None = None
    supervisor: str = ""
    mode: str = ""

    def holds(self, leg: Leg) -> bool:
        """``leg`` is one of the parties the media server carries."""
        return leg is self.a or leg is self.b

    def session_of(self, leg: Leg) -> MediaSession:
        return self.sa if leg is self.a else self.sb

    async def reanswer(self, leg: Leg, offer: bytes) -> bytes | None:
        """A party re-offered (hold, a session refresh, a codec change): its own session's
        answer (through its rtpengine pairing when it has one); None when it cannot."""
        session = self.session_of(leg)
        if session.closed:
            return None
        anchor = self.s.anchor
        pairing = self.pairings.get(leg.name)
        try:
            if pairing is not None and anchor.media is not None:
                media_id = pairing.media_id
                anchored = await anchor.offer(offer, media_id, leg.local_tag, to=Profile.RTP)
                if anchored is None:
                    return None
                answer = await session.update(anchored)
                return await anchor.answer(
                    answer, media_id, leg.local_tag, pairing.tag, to=leg.profile
                )
            return await session.update(offer)
        except MediaError as exc:
            log.warning("call %s: supervised party's re-offer failed: %s", self.call.id, exc)
            return None


class Supervisions:
    """The engine's supervisions: finding the call a supervisor may join, joining, the mode
    keys, and the ends (a call observer)."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls: Calls = services.calls
        self.by_supervisor: dict[str, Supervision] = {}  # the supervisor's call id -> it
        services.calls.observers.append(self)

    # --- who may supervise what ----------------------------------------------------------
    def find(self, tenant: TenantSnapshot, supervisor: str, agent: str) -> Call | None:
        """The queue call that extension ``agent`` of ``tenant`` answered, if ``supervisor``
        (an extension of the same tenant) supervises its queue; None otherwise (logged). Only
        the agent's dialogs in this tenant are looked at (``services.states``)."""
        schema = tenant.schema
        if supervisor not in tenant.extensions or agent not in tenant.extensions:
            log.info("supervision refused: %r or %r is no extension of %s", supervisor, agent,
                     schema)  # fmt: skip
            return None
        for view in self.s.states.of(schema, agent):
            leg = self.calls.legs.get((view.call_id, view.remote_tag))
            if leg is None or leg.gone:
                continue
            call = leg.call
            if call.tenant.schema != schema or call.state != "answered" or leg is not call.b:
                continue
            if not call.queue:
                log.info("supervision refused: %s's call %s is no queue call", agent, call.id)
                return None
            queue = tenant.callcenter.queues.get(call.queue)
            if queue is None or supervisor not in queue.supervisors:
                log.info("supervision refused: %s does not supervise queue %s (call %s)",
                         supervisor, call.queue, call.id)  # fmt: skip
                return None
            return call
        log.info("supervision refused: %s of %s is on no call here", agent, schema)
        return None

    # --- joining -------------------------------------------------------------------------
    async def join(self, sup_call: Call, session: MediaSession, call: Call, mode: str) -> bool:
        """The supervisor's call (taken: ``session``) joins ``call`` in ``mode``. False: the
        call has a supervisor already, is on hold, or its parties cannot be moved."""
        sv: Supervision | None = call.supervision
        if sv is not None and sv.supervisor_call is not None:
            log.info("call %s: supervised by %s already", call.id, sv.supervisor)
            return False
        if sv is None:
            sv = await self.move(call)
            if sv is None:
                return False
        if sup_call.state == "ended" or call.state == "ended":
            return False
        sv.supervisor_call = sup_call
        sv.supervisor = sup_call.caller.number
        self.by_supervisor[sup_call.id] = sv
        await self.switch(sv, mode, session)
        self.calls.spawn(self.keys(sv, sup_call, session))
        return True

    async def move(self, call: Call) -> Supervision | None:
        """Move both parties of ``call`` to media-server sessions that follow each other.

        The agent's session and its new pairing are made first, then the caller's (when the
        call is anchored, ``Sa`` takes the agent's place in the call's pairing: from then on
        the caller's audio goes to ``Sa``); both re-INVITEs go out at once. A party that
        refuses its re-INVITE ends the call (its media is gone)."""
        a, b, client = call.a, call.b, self.s.media.client
        if a is None or b is None or client is None or not self.s.media.available:
            return None
        if call.hold is not None or a.busy or b.busy:
            log.info("call %s: not supervised while on hold or re-negotiating", call.id)
            return None
        offers: list[tuple[MediaSession, bytes, Pairing | None]] = []
        for leg in (b, a):
            prepared = await self.prepare(call, leg, b)
            if prepared is None:
                await self.discard(offers)
                return None
            offers.append(prepared)
        offers.reverse()  # (a's, b's)
        if call.state == "ended":
            await self.discard(offers)
            return None
        results = await asyncio.gather(
            *(self.finish(call, leg, *o) for leg, o in zip((a, b), offers, strict=True))
        )
        pairings = {leg.name: o[2] for leg, o in zip((a, b), offers, strict=True) if o[2]}
        sa, sb = results
        if sa is None or sb is None or call.state == "ended":
            await self.discard(offers)
            log.warning("call %s: a party refused to be moved for supervision", call.id)
            self.calls.end(call, "supervision failed")
            return None
        sv = Supervision(self.s, call, a, b, sa, sb, pairings)
        call.supervision = sv
        try:
            await sa.follow(sb)
            await sb.follow(sa)
        except MediaError as exc:
            log.warning("call %s: the parties cannot follow each other: %s", call.id, exc)
        return sv

    async def discard(self, offers: list[tuple[MediaSession, bytes, Pairing | None]]) -> None:
        """Close prepared sessions and end the pairings made for them (not the call's)."""
        for session, _, pairing in offers:
            await session.close()
            if pairing is not None and pairing.own:
                self.s.anchor.delete(pairing.media_id)

    async def prepare(
        self, call: Call, leg: Leg, agent: Leg
    ) -> tuple[MediaSession, bytes, Pairing | None] | None:
        """A session for one party and the offer to send it, through rtpengine when the
        engine has it: the caller of an anchored call stays in the call's pairing (the
        session in ``agent``'s place), any other party gets a new one. (session, offer, the
        pairing or None)."""
        client = self.s.media.client
        assert client is not None
        sid = f"{call.id}-sv{leg.name}"
        try:
            session, offer = await client.open(sid, tenant=call.tenant.schema)
        except MediaError as exc:
            log.warning("call %s: no media session for supervision: %s", call.id, exc)
            return None
        anchor = self.s.anchor
        if anchor.media is None:
            if leg.profile is not Profile.RTP:  # the media server speaks plain RTP only
                log.warning("call %s: no rtpengine to supervise a %s party", call.id, leg.profile)
                await session.close()
                return None
            return session, offer, None
        if leg is not agent and call.anchored and call.media_id:
            pairing = Pairing(call.media_id, agent.local_tag, own=False)
        else:
            pairing = Pairing(sid, sid)
        anchored = await anchor.offer(
            offer,
            pairing.media_id,
            pairing.tag,
            to=leg.profile,
            failure="rtpengine offer (supervision)",
        )
        if anchored is None:
            await session.close()
            if pairing.own:
                anchor.delete(pairing.media_id)
            return None
        return session, anchored, pairing

    async def finish(
        self, call: Call, leg: Leg, session: MediaSession, offer: bytes, pairing: Pairing | None
    ) -> MediaSession | None:
        """The party's re-INVITE with ``offer``; its answer to the session. None: refused."""
        resp = await self.calls.reoffer(leg, offer)
        answer = leg.remote_sdp
        ok = resp is not None and 200 <= resp.status < 300 and bool(answer)
        anchor = self.s.anchor
        if ok and pairing is not None:
            anchored = await anchor.answer(
                answer,
                pairing.media_id,
                pairing.tag,
                leg.local_tag,
                to=Profile.RTP,
                failure="rtpengine answer",
            )
            answer = anchored or b""
            ok = bool(answer)
        if ok:
            try:
                await session.answer(answer)
            except MediaError as exc:
                log.warning("call %s: the media server refused the answer: %s", call.id, exc)
                ok = False
        return session if ok else None

    # --- the wallboard's button ----------------------------------------------------------
    async def ring(self, cmd: SuperviseCall) -> bool:
        """``SuperviseCall``: the supervisor's phones ring with a call from the agent (the
        media server's offer); the one that answers joins the agent's queue call in
        ``cmd.mode``. The same checks as the codes, first (nothing rings when refused)."""
        media = self.s.media
        tenant = self.s.ctx.directory.by_schema(cmd.schema)
        if tenant is None or not media.available:
            return False
        target = self.find(tenant, cmd.supervisor, cmd.agent)
        if target is None:
            return False
        supervisor = tenant.extensions[cmd.supervisor]
        agent = tenant.extensions[cmd.agent]
        from .destinations.hotdesk import phones_of  # the destinations build on this module

        bindings = await phones_of(self.s.ctx.locations, tenant, cmd.supervisor)
        call = await ring_phones(
            self.s, tenant, supervisor, bindings, shown=agent, callee=cmd.agent,
            seconds=RING_SECONDS, name="ss",
        )  # fmt: skip
        if call is None:
            log.info("supervision: %s did not answer (or has no phone)", cmd.supervisor)
            return False
        # From here on the supervisor's call is a caller the media server answered.
        if target.state == "ended" or not await self.join(call, call.media, target, cmd.mode):
            await media.goodbye(call, "supervision failed", "feature-failed")
            return False
        return True

    # --- modes ---------------------------------------------------------------------------
    async def switch(self, sv: Supervision, mode: str, session: MediaSession) -> None:
        """Who hears whom in ``mode``."""
        sa, sb = sv.sa, sv.sb
        to_agent = (sa, session) if mode != SupervisionMode.LISTEN else (sa,)
        to_caller = (sb, session) if mode == SupervisionMode.BARGE else (sb,)
        try:
            await session.follow(sa, sb)
            await sb.follow(*to_agent)
            await sa.follow(*to_caller)
        except MediaError as exc:
            log.warning("call %s: supervision mode %s failed: %s", sv.call.id, mode, exc)
            return
        sv.mode = mode
        self.event(sv, mode)

    async def keys(self, sv: Supervision, sup_call: Call, session: MediaSession) -> None:
        """The supervisor's keys switch the mode while it is in the call."""
        while not session.closed and sv.supervisor_call is sup_call:
            digit = await session.next_digit(3600.0)
            if digit is None or sv.supervisor_call is not sup_call:
                if session.closed:
                    return
                continue
            mode = SUPERVISION_KEYS.get(digit)
            if mode is not None and mode != sv.mode:
                await self.switch(sv, mode, session)

    def event(self, sv: Supervision, mode: str) -> None:
        call = sv.call
        self.s.ctx.events.emit(
            EventType.QUEUE_SUPERVISION,
            call_id=call.id,
            schema=call.tenant.schema,
            tenant_id=call.tenant.tenant_id,
            queue=call.queue,
            supervisor=sv.supervisor,
            agent=sv.b.user,
            mode=mode,
        )

    # --- the ends ------------------------------------------------------------------------
    async def leave(self, sv: Supervision) -> None:
        """The supervisor left: the parties hear each other only."""
        sv.supervisor_call = None
        if sv.call.state != "ended":
            with contextlib.suppress(MediaError):
                await sv.sa.follow(sv.sb)
                await sv.sb.follow(sv.sa)
        self.event(sv, ENDED)
        sv.supervisor, sv.mode = "", ""

    async def close(self, sv: Supervision) -> None:
        """The supervised call is over (or its parties moved on: a transfer)."""
        sup_call = sv.supervisor_call
        if sup_call is not None:
            self.by_supervisor.pop(sup_call.id, None)
            sv.supervisor_call = None
            self.event(sv, ENDED)
            if sup_call.state != "ended":
                await self.s.media.goodbye(sup_call, "supervised call ended")
        for session in (sv.sa, sv.sb):
            await session.close()
        for pairing in sv.pairings.values():
            if pairing.own:
                self.s.anchor.delete(pairing.media_id)

    def call_changed(self, call: Call) -> None:
        sv: Supervision | None = self.by_supervisor.get(call.id)
        if sv is not None and call.state == "ended":
            del self.by_supervisor[call.id]
            if sv.supervisor_call is call:
                self.calls.spawn(self.leave(sv))
            return
        sv = call.supervision
        if sv is None:
            return
        if call.state == "ended" or call.a is not sv.a or call.b is not sv.b:
            # Ended, or a transfer replaced a party: the supervision is over; a party that
            # stays was re-INVITEd away from its session by the transfer.
            call.supervision = None
            self.calls.spawn(self.close(sv))


def supervisions_of(calls: Calls) -> Supervisions | None:
    """The engine's :class:`Supervisions` (registered as a call observer by the
    ``supervise`` destination type), for the control channel."""
    return next((o for o in calls.observers if isinstance(o, Supervisions)), None)
