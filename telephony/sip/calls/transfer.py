"""Call transfer (REFER, RFC 3515): blind, and attended (Refer-To with Replaces, RFC 3891).

Blind: a new leg from us to the Refer-To number; once it answers, the transferee is re-offered
its media and the transferor is let go. Attended: Replaces names the transferor's dialog of its
consultation call; the consultation call ends and its far party moves into this call opposite
the transferee. The transferor hears the progress in NOTIFYs (``message/sipfrag``). An anchored
call stays anchored: the parties that remain are a new rtpengine pairing under its own call-id,
so neither phone is ever given the other's address.

A blind transfer to a number that is no extension of the tenant is an outside call, decided
as if the transferor had dialled it (``outbound.decide`` with the tenant's current snapshot and
the transferor's extension: its rules, call barring, blocked destinations, allowed countries;
a suspended tenant transfers only to emergency numbers) and dialled through the trunks in
failover order (``Trunk.dial``: challenges answered, the trunk's channel counted for the call
until the leg leaves it, session refresh when the carrier asks). No rule for the number: 404,
as for any unknown number; refused by the rules: their answer (403) in the NOTIFY, and the
parties stay connected. Only an extension transfers out: a REFER from a carrier's leg never
makes us call out (toll fraud). Media always goes through rtpengine when the engine has one.
The call's ``call.routed`` event (CDR fields) names the trunk that answered, on the new
segment; ``direction`` becomes ``outbound``, except for a call that came in on a trunk, which
stays ``inbound``.

A blind transfer to a number the router takes that is neither an extension nor an outside
number (a park code or slot, the direct-voicemail code, an IVR, a ring group...) is routed as
if the transferor had dialled it (its extension's view of the tenant; a feature code that a
destination type takes goes to that type, naming the transferor as ``by``): the transferee,
answered already, is taken to the media server with a re-INVITE and becomes the call's caller
(its A leg, ``call.answered_a``), the transferor is let go (NOTIFY 200, BYE) and the router
takes the call on. A destination type may refuse up front (``refusal(tenant, destination)``:
a full park answers 486), and the parties stay connected.

The caller ID the far end is shown is that of the party it will talk to, the transferee,
when that party is an outside caller (the number its carrier gave us; withheld when that came
anonymous): what most PBXs present, and the callee can call back the person on the line. An
extension transferee has no number of its own outside, so the caller ID is the one the rules
give the transferor (rule, the transferor's outbound caller ID, trunk, tenant), with the
transferor's name. An emergency number always presents its emergency caller ID; the privacy
code in front of the number withholds the caller ID as for a dialled call.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from dataclasses import replace
from urllib.parse import unquote

from telephony.sip.contract import EventType, ExtensionSnapshot, TenantSnapshot
from telephony.sip.dialog import Dialog
from telephony.sip.message import REASONS, Response, SipURI, parse_address
from telephony.sip.transaction import ServerTransaction, new_tag

from . import outbound, profiles, routing
from .bridge import Bridge
from .call import Call, Leg, sdp_body, sendrecv
from .destinations.feature import taken_by
from .destinations.trunk import Trunk
from .forwarding import Path
from .outbound import Attempt, Plan
from .profiles import Profile
from .routing import Destination
from .services import CallServices

__all__ = ["Transfer", "presented"]

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"\+?[0-9]{2,32}")  # an outside caller's number we may present


def presented(call: Call, transferee: Leg, plan: Plan) -> tuple[Plan, str, str]:
    """(the plan, the caller ID that replaces the rules' ("" = theirs), the name shown ("" =
    the transferor's)) for a blind transfer of ``transferee`` out: an outside caller's own
    number (withheld when it came anonymous); an extension's: the rules'; an emergency
    number's: always the emergency caller ID."""
    outside = transferee.name == "a" and call.inbound
    if plan.emergency or not outside:
        return plan, "", ""
    number = call.caller.caller_id_number
    if not _NUMBER.fullmatch(number):
        return replace(plan, withheld=True), "", call.caller.caller_id_name
    return plan, number, call.caller.caller_id_name


# Destinations a transferee is not routed to (an extension or an outside number has its own
# path here; the rest is refused as an unknown number).
_NOT_ROUTED = frozenset({"extension", "forward", "trunk", "reject", "feature"})


def _party(number: str) -> ExtensionSnapshot:
    """A transferee that is no extension (a carrier's party) as the call layer knows
    callers."""
    safe = number[:32]
    return ExtensionSnapshot.from_dict(safe, {"caller_id_number": safe, "caller_id_name": ""})


def _frag(code: int, reason: str = "") -> str:
    """A sipfrag status line."""
    return f"SIP/2.0 {code} {reason or REASONS.get(code, 'Unknown')}"


class Transfer:
    """The REFER handler of an answered call's leg."""

    def __init__(self, services: CallServices, bridge: Bridge) -> None:
        self.s = services
        self.calls = services.calls
        self.bridge = bridge

    async def refer(self, tx: ServerTransaction, leg: Leg) -> None:
        call = leg.call
        server = self.calls.server(call.tenant)
        transferee = call.peer(leg)
        refer_to = tx.request.get("Refer-To")
        if transferee is None or call.state != "answered" or not refer_to:
            tx.respond(400 if not refer_to else 603, headers=[server])
            return
        try:
            addr = parse_address(refer_to)
        except ValueError:
            tx.respond(400, headers=[server])
            return
        uri = addr.uri
        if not isinstance(uri, SipURI) or not uri.user:
            tx.respond(400, headers=[server])
            return
        tx.respond(202, headers=[("Contact", leg.contact), server])
        # URI headers are stored unescaped: Replaces reads "call-id;to-tag=..;from-tag=..".
        replaces = next((v for k, v in uri.headers.items() if k.lower() == "replaces"), None)
        await self.notify(leg, "SIP/2.0 100 Trying", active=True)
        if replaces:
            await self.attended(call, leg, transferee, replaces)
            return
        leg.transferring = True
        try:
            await self.blind(call, leg, transferee, unquote(uri.user))
        finally:
            leg.transferring = False
        if leg.gone and leg in call.legs() and call.state == "answered":
            # The transferor hung up on the 202 and the transfer failed: the transferee would
            # be left alone on a dead call.
            self.calls.end(call, "transfer failed after the transferor left")

    async def notify(self, leg: Leg, frag: str, *, active: bool) -> None:
        if leg.dialog is None or leg.gone:
            return  # a transferor that hung up hears no more
        state = "active;expires=60" if active else "terminated;reason=noresource"
        req = leg.dialog.create_request(
            "NOTIFY",
            headers=[
                ("Event", "refer"),
                ("Subscription-State", state),
                ("Content-Type", "message/sipfrag;version=2.0"),
            ],
            body=(frag + "\r\n").encode(),
        )
        with contextlib.suppress(Exception):
            await self.calls.send(leg, req).future

    async def blind(self, call: Call, transferor: Leg, transferee: Leg, number: str) -> None:
        """A new leg from us to ``number``; once it answers, the transferee is re-offered its
        media and the transferor is let go."""
        tenant = call.tenant
        ext = tenant.extensions.get(number)
        if ext is None and await self.to_router(call, transferor, transferee, number):
            return
        if ext is None and await self.outside(call, transferor, transferee, number):
            return
        locations = self.s.ctx.locations
        bindings = (
            await locations.lookup(tenant.domain, number)
            if ext is not None and ext.enabled and not ext.dnd
            else []
        )
        if not bindings:
            code = 486 if ext is not None and ext.dnd else 404 if ext is None else 480
            await self.notify(transferor, f"SIP/2.0 {code} Unavailable", active=False)
            return
        caller = tenant.extensions.get(transferee.user) or call.caller
        target, _flow = locations.target_for(bindings[0])
        new = Leg(
            call=call,
            name=f"t{call.segment + 1}",
            user=number,
            target=target,
            local_tag=new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=self.calls.contact(caller.caller_id_number, target.kind),
        )
        new.profile = profiles.of_binding(bindings[0], ext, tenant)
        offer = sendrecv(transferee.remote_sdp)
        anchor = self.s.anchor
        must = anchor.must(transferee.profile, new.profile)
        if must and anchor.media is None:
            log.warning("call %s: no rtpengine to transfer a %s party to a %s phone", call.id,
                        transferee.profile, new.profile)  # fmt: skip
            await self.notify(transferor, "SIP/2.0 488 Not Acceptable Here", active=False)
            return
        anchored_call = (call.anchored or must) and anchor.media is not None
        media_id = f"{call.id}-{call.segment + 1}" if anchored_call else ""
        if media_id:
            anchored = await anchor.offer(
                offer,
                media_id,
                transferee.local_tag,
                to=new.profile,
                failure="rtpengine offer for a transfer failed",
            )
            if anchored is None:
                await self.notify(transferor, "SIP/2.0 503 Service Unavailable", active=False)
                return
            offer = anchored
        new.invite = self.calls.invite(new, bindings[0].contact, caller, offer)
        self.calls.add_leg(new)
        new.client_tx = self.calls.send(new, new.invite)
        resp = await new.client_tx.future
        if resp.status >= 300 or call.state == "ended":
            self.calls.drop_leg(new)
            anchor.delete(media_id)
            await self.notify(transferor, f"SIP/2.0 {resp.status} {resp.reason}", active=False)
            return
        new.dialog = Dialog.from_uac(new.invite, resp)
        new.dialog.contact = new.contact
        new.ack = new.dialog.ack_for_2xx(new.invite.cseq.seq)
        await self.calls.send_ack(new, new.ack)
        new.remote_sdp = sdp_body(resp)
        answer = new.remote_sdp
        if media_id and answer:
            anchored = await anchor.answer(
                answer,
                media_id,
                transferee.local_tag,
                new.local_tag,
                to=transferee.profile,
                failure="rtpengine answer for a transfer failed",
            )
            answer = answer if anchored is None else anchored
        await self.notify(transferor, "SIP/2.0 200 OK", active=False)
        self.swap(call, transferor, transferee, new, kind="blind")
        old_media = anchor.switch(call, media_id)
        await self.bridge.reoffer(transferee, answer)
        anchor.delete(old_media)

    # --- blind transfer to a destination of the router ----------------------------------
    def routed(
        self, tenant: TenantSnapshot, by: ExtensionSnapshot, number: str
    ) -> Destination | None:
        """Where ``number`` leads when ``by`` dials it, for a transferee: None for what is
        not the router's to take here (an extension, an outside number, an unknown one, a
        feature code that changes someone's settings). A feature code that another
        destination type takes becomes that type's destination, naming the transferor
        (``by``: a parked transferee rings it again on timeout)."""
        path = Path((number,), 0, self.s.config.max_forward_hops)
        found = routing.route(tenant, by, number, path)
        if found.kind == "feature":
            feature, arg = str(found.data["feature"]), str(found.data.get("arg") or "")
            return taken_by(feature, arg, by=by.number)
        if found.kind in _NOT_ROUTED:
            return None
        return Destination(found.kind, found.target, {**found.data, "by": by.number}, found.notes)

    async def to_router(self, call: Call, transferor: Leg, transferee: Leg, number: str) -> bool:
        """Blind transfer to a number the router takes (park, voicemail, an IVR, a ring
        group...): the transferee is taken to the media server (a re-INVITE: it is answered
        already), becomes the call's caller (its A leg), the transferor is let go and the
        router takes the call on. False: not such a number (``routed``)."""
        tenant = self.s.ctx.directory.tenant(call.tenant.domain) or call.tenant
        by = self.extension_of(call, transferor, tenant)
        if by is None:
            return False
        destination = self.routed(tenant, by, number)
        if destination is None:
            return False
        refusal = getattr(self.s.router.handler(destination.kind), "refusal", None)
        code = refusal(tenant, destination) if refusal is not None else 0
        if code:
            log.info("call %s: transfer to %s refused: %d", call.id, number, code)
            await self.notify(transferor, _frag(code), active=False)
            return True
        if await self.s.media.retake(call, transferee) is None:
            await self.notify(transferor, _frag(503), active=False)
            return True
        await self.notify(transferor, _frag(200), active=False)
        self.let_go(transferor)
        if call.a is not transferee:
            # The transferee was the callee: it becomes the caller (a caller the media server
            # answered, so nothing answers an INVITE of its: it sent us none).
            call.a = transferee
            call.caller = tenant.extensions.get(transferee.user) or _party(transferee.user)
        call.b = None
        call.forks = []
        call.segment += 1
        call.segment_kind = "blind"
        self.calls.emit(
            call, EventType.CALL_TRANSFERRED, kind="blind",
            **{"from": transferee.user, "to": number},
        )  # fmt: skip
        self.calls.emit(call, EventType.CALL_ANSWERED, leg="media")
        call.callee = call.target = number
        call.visited.append(number)
        call.statuses = []
        self.calls.changed(call)
        log.info("call %s: blind transfer by %s to %s (%s)", call.id, by.number, number,
                 destination.kind)  # fmt: skip
        pending = self.s.router.connect(call, destination)
        if pending is not None:
            await pending
        return True

    # --- blind transfer to an outside number --------------------------------------------
    def trunks(self) -> Trunk | None:
        """The engine's trunk destination (it dials outside numbers)."""
        handler = self.s.router.handler("trunk")
        return handler if isinstance(handler, Trunk) else None

    def extension_of(
        self, call: Call, leg: Leg, tenant: TenantSnapshot
    ) -> ExtensionSnapshot | None:
        """The (enabled) extension at the far end of ``leg``; None for a carrier's leg: the
        caller of a call that came in on a trunk, or a leg we placed on a trunk."""
        if leg.name == "a" and call.inbound:
            return None
        trunks = self.trunks()
        if trunks is not None and leg.name in trunks.holding.get(call.id, {}):
            return None
        ext = tenant.extensions.get(leg.user)
        return ext if ext is not None and ext.enabled else None

    async def outside(self, call: Call, transferor: Leg, transferee: Leg, number: str) -> bool:
        """Blind transfer to ``number``, no extension of the tenant, out through the trunks.
        False when no outbound rule knows the number (it is then an unknown number)."""
        trunks = self.trunks()
        if trunks is None:
            return False
        tenant = self.s.ctx.directory.tenant(call.tenant.domain) or call.tenant
        by = self.extension_of(call, transferor, tenant)
        if by is None:
            log.warning("call %s: a carrier's leg asked for a transfer to %r: refused",
                        call.id, number)  # fmt: skip
            await self.notify(transferor, _frag(403), active=False)
            return True
        destination = outbound.decide(tenant, by, number)
        if destination is None:
            return False
        if destination.kind != "trunk":
            code = int(destination.data.get("code") or 403)
            log.info("call %s: transfer by %s to %s refused: %s", call.id, by.number, number,
                     destination.data.get("reason") or code)  # fmt: skip
            await self.notify(transferor, _frag(code), active=False)
            return True
        plan: Plan = destination.data["plan"]
        if not tenant.active and not plan.emergency:
            await self.notify(transferor, _frag(403), active=False)
            return True
        plan, caller_id, name = presented(call, transferee, plan)
        tries = outbound.attempts(plan, self.s.ctx.directory.carriers, tenant.schema, by)
        if caller_id:
            shown = outbound.ANONYMOUS if plan.withheld else caller_id
            tries = [replace(t, caller_id=caller_id, presented=shown) for t in tries]
        if not tries:
            code = 503 if plan.emergency else 404
            log.info("call %s: no trunk of %s can carry a transfer to %s", call.id,
                     tenant.schema, number)  # fmt: skip
            await self.notify(transferor, _frag(code), active=False)
            return True
        await self.dial_out(call, transferor, transferee, trunks, plan, tries,
                            name or by.caller_id_name)  # fmt: skip
        return True

    async def dial_out(
        self,
        call: Call,
        transferor: Leg,
        transferee: Leg,
        trunks: Trunk,
        plan: Plan,
        tries: list[Attempt],
        name: str,
    ) -> None:
        """Dial ``tries`` for the transferee; on answer, the transferor is let go."""
        anchor = self.s.anchor
        offer = sendrecv(transferee.remote_sdp)
        media_id = ""
        if anchor.media is None and transferee.profile is not Profile.RTP:
            log.warning("call %s: no rtpengine to transfer a %s party to a trunk", call.id,
                        transferee.profile)  # fmt: skip
            await self.notify(transferor, _frag(488), active=False)
            return
        if anchor.media is not None:
            media_id = f"{call.id}-{call.segment + 1}"
            anchored = await anchor.offer(
                offer, media_id, transferee.local_tag, to=Profile.RTP,
                failure="rtpengine offer for a transfer to a trunk failed",
            )  # fmt: skip
            if anchored is None:
                await self.notify(transferor, _frag(503), active=False)
                return
            offer = anchored

        def provisional(leg: Leg, resp: Response) -> None:
            if resp.status in (180, 183) and not leg.provisional:
                leg.provisional = True
                frag = _frag(resp.status, resp.reason)
                self.calls.spawn(self.notify(transferor, frag, active=True))

        dialled = await trunks.dial(
            call, plan, tries, offer,
            wanted=lambda: call.state == "answered" and call.peer(transferee) is transferor,
            provisional=provisional, leg_prefix="t", diversions=False, caller_name=name,
        )  # fmt: skip
        new, attempt, resp = dialled.leg, dialled.attempt, dialled.response
        if new is None or attempt is None or resp is None:
            anchor.delete(media_id)
            await self.notify(transferor, _frag(dialled.code), active=False)
            return
        answer = new.remote_sdp
        if media_id and answer:
            anchored = await anchor.answer(
                answer, media_id, transferee.local_tag, new.local_tag, to=transferee.profile,
                failure="rtpengine answer for a transfer to a trunk failed",
            )  # fmt: skip
            answer = answer if anchored is None else anchored
        if call.state != "answered" or call.peer(transferee) is not transferor:
            self.calls.bye(new)  # the transferee (or transferor) left meanwhile
            trunks.leave(new)
            self.calls.drop_leg(new)
            anchor.delete(media_id)
            return
        await self.notify(transferor, _frag(200), active=False)
        self.swap(call, transferor, transferee, new, kind="blind")
        trunks.routed(call, plan, attempt)  # the new segment's CDR facts
        old_media = anchor.switch(call, media_id)
        await self.bridge.reoffer(transferee, answer)
        anchor.delete(old_media)
        trunks.session_timer(new, resp)

    # --- both kinds ----------------------------------------------------------------------
    def let_go(self, transferor: Leg) -> None:
        """The transferor's leg leaves the call: hung up and forgotten (a trunk leg frees
        its channel)."""
        self.calls.bye(transferor)
        self.calls.drop_leg(transferor)
        trunks = self.trunks()
        if trunks is not None:
            trunks.leave(transferor)

    def swap(self, call: Call, gone: Leg, stays: Leg, new: Leg, *, kind: str) -> None:
        """The transferor's leg leaves, ``new`` takes its place opposite ``stays``."""
        self.let_go(gone)
        if call.a is gone:
            call.a = new
        else:
            call.b = new
        new.call = call
        call.segment += 1
        call.segment_kind = kind
        self.calls.emit(
            call,
            EventType.CALL_TRANSFERRED,
            kind=kind,
            **{"from": stays.user, "to": new.user},
        )
        self.calls.emit(call, EventType.CALL_ANSWERED, leg=new.name)
        call.callee = call.target = new.user
        self.calls.changed(call)

    async def attended(self, call: Call, transferor: Leg, transferee: Leg, replaces: str) -> None:
        """Refer-To names (through Replaces) the transferor's dialog of its consultation call:
        join the transferee with the consultation call's other party."""
        other_leg, _params = self.calls.replaced(replaces)
        if (
            other_leg is None
            or other_leg.call is call
            or other_leg.call.tenant.schema != call.tenant.schema
        ):
            await self.notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
        consult = other_leg.call
        target = consult.peer(other_leg)
        if target is None or consult.state != "answered":
            await self.notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
        # Anchored if either call was: a new rtpengine pairing of transferee and target, set
        # up before anything changes (if rtpengine fails, nothing has).
        to_transferee, to_target = target.remote_sdp, b""
        media_id = ""
        anchor = self.s.anchor
        must = anchor.must(transferee.profile, target.profile)
        if (call.anchored or consult.anchored or must) and anchor.media is not None:
            media_id = f"{call.id}-{call.segment + 1}"
            offer = await anchor.offer(
                sendrecv(transferee.remote_sdp),
                media_id,
                transferee.local_tag,
                to=target.profile,
                failure="rtpengine offer for a transfer failed",
            )
            answer = None
            if offer is None:
                log.warning("attended transfer: media not anchored: offer failed")
            else:
                answer = await anchor.answer(
                    sendrecv(target.remote_sdp),
                    media_id,
                    transferee.local_tag,
                    target.local_tag,
                    to=transferee.profile,
                    failure="attended transfer: media not anchored",
                )
            if offer is None or answer is None:
                media_id, to_transferee = "", target.remote_sdp
            else:
                to_transferee, to_target = answer, offer
        if must and not media_id:
            # A browser and a desk phone (or SRTP and plain RTP) never meet directly.
            log.warning("call %s: attended transfer of a %s party to a %s one needs rtpengine",
                        call.id, transferee.profile, target.profile)  # fmt: skip
            anchor.delete(f"{call.id}-{call.segment + 1}")
            await self.notify(transferor, "SIP/2.0 488 Not Acceptable Here", active=False)
            return
        # The consultation call ends; its far party moves into this call.
        if consult.a is target:
            consult.a = None
        else:
            consult.b = None
        self.calls.drop_leg(target)
        self.calls.bye(other_leg)
        self.calls.finish(consult, "answered", "attended transfer")
        self.calls.add_leg(target)
        await self.notify(transferor, "SIP/2.0 200 OK", active=False)
        self.swap(call, transferor, transferee, target, kind="attended")
        old_media = anchor.switch(call, media_id)
        # One after the other: the transferee's fresh answer is what the target is offered
        # (anchored: rtpengine's side of the pairing, set up above).
        await self.bridge.reoffer(transferee, to_transferee)
        await self.bridge.reoffer(target, to_target or transferee.remote_sdp)
        anchor.delete(old_media)
