"""``trunk``: an outside call, out through the carrier's trunks in failover order.

The plan (``outbound.decide``) and the carrier snapshot give the attempts (``outbound.attempts``:
only enabled trunks shared with the tenant). Each attempt is one B leg: an INVITE to the trunk
(its host, or its outbound proxy) for ``sip:<number>@<host>``, presenting the caller ID in the
header the trunk asks for (From, P-Asserted-Identity or Remote-Party-ID; From user and domain
rewritten when the trunk says so), anonymous with ``Privacy: id`` when withheld, with the
call's ``Diversion`` entries when a forward led here and the trunk sends them. The carrier's
401/407 is answered once per attempt (``auth.answer_challenge``, a new CSeq). The next trunk is
tried on 5xx, 408, no answer at all within :data:`TRUNK_TIMEOUT`, a refused challenge, or a
trunk at its ``max_channels``; any other refusal (busy, not found...) goes to the caller. When
every trunk failed the caller gets the best answer (503 if none could be tried).

180/183 (with early media) are relayed to the caller; the 2xx bridges the call (re-INVITE,
UPDATE, INFO and BYE are relayed by ``bridge.py`` and the dispatcher from then on). With an
rtpengine, every trunk call is anchored. When the carrier's 2xx asks us (the UAC) to refresh
the session (RFC 4028 ``Session-Expires: n;refresher=uac``), the same SDP is re-offered in a
re-INVITE at half the interval; a failed refresh ends the call.

The INVITE-with-failover part is :meth:`Trunk.dial` (an offer, a plan's attempts, a callback
for provisional answers; the answered leg or the final failure): this destination and a blind
transfer to an outside number (``transfer.py``) both use it. A call's channels and session
refreshes are held per leg, so a trunk leg a transfer lets go frees its channel.

Credit (``sip.credit``): before the first INVITE, a call of a billed tenant to a number with a
rate holds money for its first minutes (402 Payment Required when there is none, 503 when the
credit cannot be checked); once answered it is cut (BYE both sides, end reason "credit") when
what it holds is used up and no more could be held. Emergency numbers are never checked.

Channels: each engine counts its calls per trunk (the hot path) and publishes the count in the
trunk's hash ``sip:trunkcalls:<id>`` (engine id -> calls, like the tenants' call count); a
trunk with ``max_channels`` admits a call by one atomic script over the live engines' counts
(those whose heartbeat exists). Redis away: this engine's own count against the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from telephony.sip import contract
from telephony.sip.auth import answer_challenge
from telephony.sip.calls import outbound, routing
from telephony.sip.calls.call import Call, Leg
from telephony.sip.calls.limits import ADMIT_LUA
from telephony.sip.calls.outbound import Attempt, Plan
from telephony.sip.calls.profiles import Profile
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import CallerIdHeader, EventType, TrunkSnapshot
from telephony.sip.credit import Credit
from telephony.sip.message import Address, Request, Response, SipURI, parse_address
from telephony.sip.transaction import new_tag
from telephony.sip.trunks.client import TargetError, credentials, new_call_id, target_of

from .base import register
from .caller import answer_caller, ring_caller
from .extension import best_status

__all__ = ["TRUNK_TIMEOUT", "Dialled", "Trunk", "TrunkChannels", "session_refresh"]

log = logging.getLogger(__name__)
T = TypeVar("T")

TRUNK_TIMEOUT = 5.0  # seconds without any answer from a trunk before the next is tried
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY"
ANONYMOUS_FROM = '"Anonymous" <sip:anonymous@anonymous.invalid>'


def _failover(status: int) -> bool:
    """Whether the next trunk is tried after this answer (the trunk, not the callee, failed)."""
    return status >= 500 and status < 600 or status in (401, 403, 407, 408)


def session_refresh(resp: Response) -> float:
    """Seconds after which we must refresh the session the carrier's 2xx set up: half its
    ``Session-Expires`` when it names us (``refresher=uac``) the refresher, else 0."""
    value = resp.get("Session-Expires")
    if not value:
        return 0.0
    head, *params = (p.strip() for p in value.split(";"))
    refresher = next(
        (p.split("=", 1)[1].strip().lower() for p in params if p.lower().startswith("refresher=")),
        "",
    )
    try:
        seconds = int(head)
    except ValueError:
        return 0.0
    return seconds / 2 if refresher == "uac" and seconds > 0 else 0.0


class TrunkChannels:
    """This engine's calls per trunk, shared with the other engines through Redis."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.counts: dict[int, int] = {}
        p = services.ctx.config.redis_prefix
        self._prefix = contract.key(p, contract.TRUNK_CALLS, trunk="")
        self._alive = contract.key(p, contract.ENGINE_ALIVE, engine="")

    async def acquire(self, trunk: TrunkSnapshot) -> bool:
        """Count a call on ``trunk``; False (not counted) when it is at ``max_channels``."""
        own = self.counts.get(trunk.id, 0) + 1
        limit = trunk.max_channels
        if limit and own > limit:
            return False
        self.counts[trunk.id] = own
        if not limit:
            self.s.calls.spawn(self._write(trunk.id))
            return True
        try:
            admitted = bool(
                await self.s.ctx.redis.eval(
                    ADMIT_LUA,
                    1,
                    self._prefix + str(trunk.id),
                    self.s.ctx.engine_id,
                    own,
                    limit,
                    self._alive,
                )  # fmt: skip
            )
        except Exception as exc:
            log.warning("trunk channels: Redis unreachable (%s); counting this engine's", exc)
            admitted = True  # within the limit on this engine (checked above)
        if not admitted:
            self.release(trunk.id)
        return admitted

    def release(self, trunk_id: int) -> None:
        left = self.counts.get(trunk_id, 1) - 1
        if left > 0:
            self.counts[trunk_id] = left
        else:
            self.counts.pop(trunk_id, None)
        self.s.calls.spawn(self._write(trunk_id))

    async def _write(self, trunk_id: int) -> None:
        """This engine's count, absolute (a lost write is set right by the next)."""
        key = self._prefix + str(trunk_id)
        count = self.counts.get(trunk_id, 0)
        try:
            if count:
                await self.s.ctx.redis.hset(key, self.s.ctx.engine_id, count)
            else:
                await self.s.ctx.redis.hdel(key, self.s.ctx.engine_id)
        except Exception as exc:
            log.debug("trunk channels: count of trunk %d not written: %s", trunk_id, exc)


@dataclass(slots=True, eq=False)
class Dialled:
    """What dialling a plan came to. Answered: ``leg`` (its dialog made, the 2xx ACKed, its
    trunk's channel held for the call until the leg leaves it), the carrier's ``response`` and
    the ``attempt`` that took it. Otherwise ``leg`` is None and ``code`` is the answer for
    whoever asked (the best of ``statuses``; 503 when no trunk could be tried)."""

    leg: Leg | None = None
    response: Response | None = None
    attempt: Attempt | None = None
    statuses: list[int] = field(default_factory=list)
    code: int = 0


@register("trunk")
class Trunk:
    """Places outside calls on the trunks of the call's plan, one after the other.

    :meth:`dial` (the INVITE in failover order, challenges answered, channels counted) serves
    both this destination and a blind transfer to an outside number (``transfer.py``)."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls
        self.timeout = TRUNK_TIMEOUT
        self.channels = TrunkChannels(services)
        self.credit = Credit(
            services.ctx.redis, services.ctx.config.redis_prefix, services.calls.spawn
        )
        # call id -> {leg name: trunk}: the channels held by a call's answered trunk legs
        self.holding: dict[str, dict[str, int]] = {}
        self.dialling: dict[str, Leg] = {}  # call id -> the trunk leg being tried now
        self.refreshers: dict[str, dict[str, asyncio.TimerHandle]] = {}
        self.refreshed = 0  # sessions refreshed (RFC 4028), for the curious and the tests
        services.calls.observers.append(self)

    # --- the destination -----------------------------------------------------------------
    async def connect(self, call: Call, destination: Destination) -> None:
        plan: Plan = destination.data["plan"]
        tenant = call.tenant
        carriers = self.s.ctx.directory.carriers
        tries = outbound.attempts(plan, carriers, tenant.schema, call.caller)
        if not tries:
            code = 503 if plan.emergency else 480 if plan.forwarded else 404
            why = f"no trunk of tenant {tenant.schema} can carry {plan.dialled}"
            self.s.router.divert(call, routing.reject(code, reason="no usable trunk", warning=why))
            return
        if not await self.paid_for(call, plan):
            return
        a = call.a
        assert a is not None
        # A carrier takes plain RTP (its offer converted when the caller is a browser or an
        # SRTP phone), and never learns a phone's address.
        if not await self.s.anchor.prepare(
            call,
            [Profile.RTP],
            force=True,
            failure="rtpengine offer for a trunk call failed, media goes direct",
        ):
            return
        call.state = "ringing"
        dialled = await self.dial(
            call,
            plan,
            tries,
            call.offer,
            wanted=lambda: call.state == "ringing" and call.b is None,
            provisional=self.provisional,
            tried=lambda attempt: self.routed(call, plan, attempt),
        )
        if dialled.leg is not None and dialled.response is not None:
            await self.answered(dialled.leg, dialled.response)
        elif call.state == "ringing":
            reason = f"trunks: {dialled.statuses or 'no free channel'}"
            self.calls.fail(call, dialled.code, reason=reason)

    async def paid_for(self, call: Call, plan: Plan) -> bool:
        """The tenant's credit pays for the call (``sip.credit``: money held for it), or the
        caller is refused: 402 without credit, 503 when it cannot be checked. Emergency
        numbers, tenants not billed and numbers without a rate always pass."""
        number = plan.e164 or plan.routes[0].number
        rate = Credit.billed(call.tenant, number, emergency=plan.emergency)
        if rate is None:
            return True
        grant = await self.credit.reserve(call.id, call.tenant.schema, rate)
        if call.state == "ended":  # the caller gave up meanwhile
            self.credit.release(call.id, call.tenant.schema)
            return False
        if grant.code:
            why = f"{plan.dialled}: {grant.why}"
            if grant.code == 503:
                refusal = routing.reject(503, reason="credit not checked", warning=why)
            else:
                log.info("call %s: refused, %s", call.id, why)
                refusal = routing.reject(402)
            self.s.router.divert(call, refusal)
            return False
        return True

    def routed(self, call: Call, plan: Plan, attempt: Attempt) -> None:
        """The call's CDR facts for an outside leg on ``attempt`` (``call.routed``)."""
        if attempt.trunk.id not in call.trunks:
            call.trunks.append(attempt.trunk.id)
        self.calls.emit(
            call,
            EventType.CALL_ROUTED,
            direction="inbound" if call.inbound else "outbound",
            trunk=str(attempt.trunk.id),
            dialled=plan.dialled,
            number=plan.e164,
            presented=attempt.presented,
            callee=attempt.number,
        )

    # --- dialling a plan -----------------------------------------------------------------
    async def dial(
        self,
        call: Call,
        plan: Plan,
        tries: Sequence[Attempt],
        offer: bytes,
        *,
        wanted: Callable[[], bool],
        provisional: Callable[[Leg, Response], None] | None = None,
        tried: Callable[[Attempt], None] | None = None,
        leg_prefix: str = "b",
        diversions: bool = True,
        caller_name: str | None = None,
    ) -> Dialled:
        """INVITE ``offer`` to the trunks of ``tries`` in failover order, for ``call``: the
        answered leg, or why none answered. ``wanted()`` says whether an answer is still
        wanted (the next trunk is not tried, and a 2xx is hung up, once it is not);
        ``provisional(leg, resp)`` gets every 1xx but 100, ``tried(attempt)`` each attempt
        as its INVITE goes out; ``diversions``: the call's Diversion entries go along (a
        forward), when the trunk sends them; ``caller_name``: the name presented (None: the
        call's caller's)."""
        statuses: list[int] = []
        for attempt in tries:
            if not wanted():
                break
            trunk = attempt.trunk
            if not await self.channels.acquire(trunk):
                log.info("call %s: trunk %d at its channels", call.id, trunk.id)
                continue
            status, leg, resp = await self.attempt(
                call, plan, attempt, offer, wanted, provisional, tried,
                leg_prefix=leg_prefix, diversions=diversions, caller_name=caller_name,
            )  # fmt: skip
            if leg is not None and resp is not None:
                self.holding.setdefault(call.id, {})[leg.name] = trunk.id
                return Dialled(leg, resp, attempt, statuses + [status], status)
            self.channels.release(trunk.id)
            statuses.append(status)
            if not wanted() or not _failover(status):
                break
        code = best_status(statuses) if statuses else 503
        if statuses and code in (401, 407):
            code = 503  # our trunk's credentials: not the caller's business
        return Dialled(statuses=statuses, code=code)

    async def attempt(
        self,
        call: Call,
        plan: Plan,
        attempt: Attempt,
        offer: bytes,
        wanted: Callable[[], bool],
        provisional: Callable[[Leg, Response], None] | None,
        tried: Callable[[Attempt], None] | None,
        *,
        leg_prefix: str = "b",
        diversions: bool = True,
        caller_name: str | None = None,
    ) -> tuple[int, Leg | None, Response | None]:
        """One trunk: the final status of its INVITE (408 when it did not answer at all
        within :attr:`timeout`), and on 2xx the leg, its dialog made and the 2xx ACKed."""
        trunk = attempt.trunk
        try:
            target = await target_of(trunk)
        except TargetError as exc:
            log.warning("call %s: trunk %d: %s", call.id, trunk.id, exc)
            return 503, None, None
        if not wanted():
            return 503, None, None
        user = trunk.from_user or ("anonymous" if plan.withheld else attempt.caller_id)
        leg = Leg(
            call=call,
            name=call.next_leg_name(leg_prefix),
            user=attempt.number,
            target=target,
            local_tag=new_tag(),
            sip_call_id=new_call_id(),
            contact=self.calls.contact(user or "pbx", target.kind),
        )
        leg.invite = self.invite(
            call, leg, trunk, plan, attempt, offer, diversions=diversions, caller_name=caller_name
        )
        if leg_prefix == "b":
            call.forks.append(leg)  # a ringing call's fork: the caller's CANCEL reaches it
        self.dialling[call.id] = leg
        self.calls.add_leg(leg)
        if tried is not None:
            tried(attempt)
        kept = False
        try:
            authed = False
            while True:
                resp = await self.send(leg, provisional)
                if resp is None:
                    log.info("call %s: trunk %d did not answer", call.id, trunk.id)
                    return 408, None, None
                status = resp.status
                if status in (401, 407) and not authed and wanted():
                    again = self.authorize(leg, trunk, resp)
                    if again is not None:
                        authed = True
                        leg.invite = again
                        continue
                if status < 300:
                    kept = await self.established(leg, resp, wanted)
                    if not kept:
                        return 487, None, None
                    return status, leg, resp
                return status, None, None
        finally:
            if self.dialling.get(call.id) is leg:
                del self.dialling[call.id]
            if not kept:
                leg.gone = True
                if leg in call.forks:
                    call.forks.remove(leg)
                self.calls.drop_leg(leg)

    async def established(self, leg: Leg, resp: Response, wanted: Callable[[], bool]) -> bool:
        """The carrier's 2xx: the leg's dialog, our ACK; True when it is still wanted (else
        it is hung up: our CANCEL crossed the 2xx, or the call ended meanwhile)."""
        assert leg.invite is not None
        if leg.dialog is not None:
            return False  # a 2xx to a leg given up: ``late_2xx`` hangs it up
        if not await self.calls.confirm(leg, resp):
            log.warning("call %s: the carrier's 2xx cannot make a dialog", leg.call.id)
            return False
        if leg.gone or not wanted():
            leg.gone = False
            self.calls.bye(leg)
            return False
        return True

    async def send(
        self, leg: Leg, provisional: Callable[[Leg, Response], None] | None = None
    ) -> Response | None:
        """Send the leg's INVITE; its final answer, or None when nothing at all came back in
        time (the transaction is left to time out; a late 2xx is hung up)."""
        assert leg.invite is not None
        heard = False

        def on_response(resp: Response) -> None:
            nonlocal heard
            heard = True
            if resp.status < 200:
                if resp.status != 100 and not leg.gone and provisional is not None:
                    provisional(leg, resp)
            elif resp.status < 300 and (leg.gone or leg.dialog is not None):
                self.calls.spawn(self.late_2xx(leg, resp))

        tx = leg.client_tx = self.calls.send(leg, leg.invite, on_response=on_response)
        try:
            return await asyncio.wait_for(asyncio.shield(tx.future), self.timeout)
        except TimeoutError:
            if not heard:
                return None
        return await tx.future

    async def late_2xx(self, leg: Leg, resp: Response) -> None:
        """A 2xx after we moved on (or its retransmission): ACK it, and hang up a leg that is
        not the call's."""
        if leg.ack is not None and leg.dialog is not None:
            await self.calls.send_ack(leg, leg.ack)
            return
        if leg.dialog is not None or leg.invite is None:
            return
        if not await self.calls.confirm(leg, resp):
            return
        leg.gone = False
        self.calls.bye(leg)

    def authorize(self, leg: Leg, trunk: TrunkSnapshot, resp: Response) -> Request | None:
        """The INVITE again with our answer to the carrier's challenge (a new CSeq), or None
        when we cannot answer it."""
        invite = leg.invite
        assert invite is not None
        if not trunk.password:
            return None
        header = "Proxy-Authenticate" if resp.status == 407 else "WWW-Authenticate"
        answer = answer_challenge(
            resp.status, resp.get_all(header), "INVITE", str(invite.uri), credentials(trunk)
        )
        if answer is None:
            log.warning("trunk %d: cannot answer the carrier's challenge", trunk.id)
            return None
        seq = invite.cseq.seq + 1
        headers = [(n, v) for n, v in invite.headers if n not in ("Via", "CSeq") and n != answer[0]]
        headers.append(("CSeq", f"{seq} INVITE"))
        headers.append(answer)
        return Request("INVITE", invite.uri, headers, invite.body)

    def invite(
        self,
        call: Call,
        leg: Leg,
        trunk: TrunkSnapshot,
        plan: Plan,
        attempt: Attempt,
        offer: bytes,
        *,
        diversions: bool = True,
        caller_name: str | None = None,
    ) -> Request:
        domain = trunk.from_domain or trunk.host
        params: dict[str, str | None] = {}
        if trunk.transport != "udp":
            params["transport"] = trunk.transport
        ruri = SipURI(trunk.host, user=attempt.number, port=trunk.port or None, params=params)
        name = (call.caller.caller_id_name if caller_name is None else caller_name) or None
        identity = Address(SipURI(domain, user=attempt.caller_id), name)
        if plan.withheld:
            frm = ANONYMOUS_FROM
        else:
            frm = str(Address(SipURI(domain, user=trunk.from_user or attempt.caller_id), name))
        headers = [
            ("Max-Forwards", str(max(call.max_forwards - call.hops, 0))),
            ("From", f"{frm};tag={leg.local_tag}"),
            ("To", f"<{SipURI(trunk.host, user=attempt.number)}>"),
            ("Call-ID", leg.sip_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", leg.contact),
        ]
        choice = trunk.caller_id_header
        if choice == CallerIdHeader.PAI:
            headers.append(("P-Asserted-Identity", str(identity)))
        elif choice == CallerIdHeader.RPID:
            privacy = "full" if plan.withheld else "off"
            rpid = f"{identity};party=calling;screen=yes;privacy={privacy}"
            headers.append(("Remote-Party-ID", rpid))
        if plan.withheld:
            headers.append(("Privacy", "id"))
        if trunk.send_diversion and diversions:
            headers += [("Diversion", d) for d in self.diversions(call, domain)]
        headers += [("Allow", ALLOW), ("Supported", "replaces, timer")]
        body = self.calls.sdp_for(leg, offer)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request("INVITE", ruri, headers, body)

    @staticmethod
    def diversions(call: Call, domain: str) -> list[str]:
        """The call's Diversion entries as the carrier should see them: each forwarding
        extension as its outbound caller ID (a number the carrier knows) at the trunk's
        domain; an extension without one as it is."""
        out = []
        for entry in call.diversions:
            try:
                addr = parse_address(entry)
            except ValueError:
                continue
            uri = addr.uri
            ext = call.tenant.extensions.get(uri.user or "") if isinstance(uri, SipURI) else None
            if ext is not None and ext.outbound_caller_ids and isinstance(uri, SipURI):
                addr.uri = SipURI(domain, user=ext.outbound_caller_ids[0])
            out.append(str(addr))
        return out

    # --- the carrier's answers -----------------------------------------------------------
    def provisional(self, leg: Leg, resp: Response) -> None:
        call = leg.call
        if call.state != "ringing" or call.b is not None or resp.status not in (180, 183):
            return
        first = not leg.provisional
        leg.provisional = True
        ring_caller(self.s, call, resp)
        if first:
            self.calls.emit(call, EventType.CALL_RINGING, leg=leg.name, callee=call.target)

    async def answered(self, leg: Leg, resp: Response) -> None:
        """The destination's trunk leg answered (its dialog made): bridge it to the caller."""
        call = leg.call
        call.b = leg
        if await answer_caller(self.s, leg, failure="rtpengine answer for a trunk call failed"):
            self.session_timer(leg, resp)
            # Now, just after the call.answered event: the CDR's billsec counts from there.
            # Its credit used up, both sides get a BYE, end reason "credit".
            self.credit.answered(call.id, time.time(), lambda: self.calls.end(call, "credit"))

    # --- session timers (RFC 4028) -------------------------------------------------------
    def session_timer(self, leg: Leg, resp: Response) -> None:
        """Refresh the session of an answered trunk leg when the carrier's 2xx asks us to."""
        refresh = session_refresh(resp)
        if refresh:
            self.schedule_refresh(leg, refresh, resp.get("Session-Expires") or "")

    def schedule_refresh(self, leg: Leg, after: float, expires: str) -> None:
        call = leg.call
        loop = asyncio.get_running_loop()
        self.refreshers.setdefault(call.id, {})[leg.name] = loop.call_later(
            after, lambda: self.calls.spawn(self.refresh(leg, after, expires))
        )

    async def refresh(self, leg: Leg, after: float, expires: str) -> None:
        call = leg.call
        self._forget(self.refreshers, call.id, leg.name)
        if call.state != "answered" or leg.gone or leg.dialog is None:
            return
        if leg.busy:  # an offer is being relayed: it refreshes the session itself
            self.schedule_refresh(leg, after, expires)
            return
        sdp = self.calls.sdp_for(leg, _last_sdp(leg) if leg.last_sent else call.offer)
        headers = [
            ("Content-Type", "application/sdp"),
            ("Session-Expires", expires),
            ("Supported", "timer"),
        ]
        req = leg.dialog.create_request("INVITE", headers=headers, body=sdp)
        leg.busy = True
        try:
            resp = await self.calls.send(leg, req).future
        finally:
            leg.busy = False
        if 200 <= resp.status < 300:
            leg.dialog.refresh_target(resp)
            await self.calls.send_ack(leg, leg.dialog.ack_for_2xx(req.cseq.seq))
            self.refreshed += 1
            again = session_refresh(resp) or after
            if call.state == "answered" and not leg.gone:
                self.schedule_refresh(leg, again, resp.get("Session-Expires") or expires)
            return
        if resp.status in (408, 481) and call.state == "answered":
            log.info("call %s: session refresh refused (%d): call ended", call.id, resp.status)
            leg.gone = True
            peer = call.peer(leg)
            if peer is not None:
                self.calls.bye(peer)
            self.calls.finish(call, "answered", "session expired")
            return
        if call.state == "answered":  # 491 and the like: the session stands; try again
            self.schedule_refresh(leg, after, expires)

    # --- the channels and timers of legs ------------------------------------------------
    def leave(self, leg: Leg) -> None:
        """``leg`` left its call (a transfer let it go): its trunk channel is free and its
        session is no longer refreshed."""
        call = leg.call
        trunk = self._forget(self.holding, call.id, leg.name)
        if trunk is not None:
            self.channels.release(trunk)
        handle = self._forget(self.refreshers, call.id, leg.name)
        if handle is not None:
            handle.cancel()

    @staticmethod
    def _forget(table: dict[str, dict[str, T]], call_id: str, name: str) -> T | None:
        entries = table.get(call_id)
        if entries is None:
            return None
        found = entries.pop(name, None)
        if not entries:
            del table[call_id]
        return found

    # --- observer ------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        if call.state != "ended":
            return
        self.credit.ended(call.id)
        for trunk in self.holding.pop(call.id, {}).values():
            self.channels.release(trunk)
        for handle in self.refreshers.pop(call.id, {}).values():
            handle.cancel()
        leg = self.dialling.get(call.id)
        if leg is not None and not leg.gone:
            # The call ended while a trunk was being tried (the transferee hung up during a
            # transfer): the attempt is cancelled; a 2xx that crosses it is hung up.
            self.calls.cancel_fork(leg)


def _last_sdp(leg: Leg) -> bytes:
    """The SDP last sent on ``leg``, unchanged: ``sdp_for`` gives it the same origin and
    version again (``last_sent`` is kept without its origin line)."""
    lines = leg.last_sent.split(b"\n")
    if lines and lines[0].startswith(b"v="):
        lines.insert(1, b"o=- 0 0 IN IP4 0.0.0.0")
    return b"\r\n".join(lines)
