"""The SIP face of the call layer: requests and stray responses in, handed to the call, the
router, the bridge or the transfer.

A new call (INVITE without To-tag): the caller authenticates with a 407 digest challenge in
its own domain (so it can only reach its own tenant), is refused 403 when it or its tenant is
disabled, 404 for a number of another tenant, 483 when Max-Forwards is spent and 503 beyond
its tenant's concurrent call limit (``limits.py``); otherwise the call and its A leg are made
and the router takes it to the dialled number's destination. Requests inside a dialog go to
the leg they belong to (481 for none).

A new INVITE from a carrier's trunk (by its source address, never its From: ``inbound.py``)
is taken first, without a challenge: its DID picks the tenant and the tenant's inbound rules
the destination. One from no trunk whose From domain is no tenant's is refused 403 and
counted by the guard.

White label: answers that belong to a tenant carry its snapshot ``product`` as Server;
answers before authentication carry the engine's product (the same for every domain, so
domains cannot be probed). Never a version.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote

from telephony.sip.contract import (
    CallScope,
    EventType,
    ExtensionSnapshot,
    Feature,
    RouteTarget,
    SrtpMode,
    TenantSnapshot,
    TrunkKind,
    TrunkSnapshot,
)
from telephony.sip.dialog import Dialog
from telephony.sip.message import Address, Request, Response, SipURI, TelURI, parse_address
from telephony.sip.transaction import ServerTransaction
from telephony.sip.transport import BROWSER, Source, Target

from . import inbound, outbound, profiles, routing
from .bridge import Bridge
from .call import Call, Leg, sdp_body
from .destinations.hotdesk import acting_as
from .destinations.park import park_handler
from .limits import CallLimits
from .profiles import Profile
from .routing import Destination
from .services import CallServices, Router
from .transfer import Transfer

if TYPE_CHECKING:
    from telephony.sip.trunks.index import TrunkDirectory

__all__ = ["CallDispatcher"]

log = logging.getLogger(__name__)


class CallDispatcher:
    """The call layer's SIP handlers (see ``CallLayer.handlers``)."""

    def __init__(
        self,
        services: CallServices,
        limits: CallLimits,
        bridge: Bridge,
        transfer: Transfer,
        trunks: TrunkDirectory | None = None,
    ) -> None:
        self.s = services
        self.trunks = trunks
        self.ctx = services.ctx
        self.calls = services.calls
        self.limits = limits
        self.bridge = bridge
        self.transfer = transfer
        self._tag_key = secrets.token_bytes(16)

    def _caller_tag(self, req: Request) -> str:
        """A To-tag derived from the call's Call-ID and From-tag with a secret key:
        unpredictable and unique per call, yet the same for each INVITE of one call."""
        material = f"{req.call_id}\n{req.from_.tag or ''}".encode()
        return hmac.new(self._tag_key, material, hashlib.sha256).hexdigest()[:16]

    # --- new calls -----------------------------------------------------------------------
    async def on_invite(self, tx: ServerTransaction) -> None:
        req = tx.request
        if req.to.tag:
            leg = self._leg_for(tx)
            if leg is not None:
                await self.bridge.offer(tx, leg)
            return
        # The caller's dialog gets the same To-tag in the 407 and in the answer to its
        # authenticated retry (same Call-ID and From-tag): some UACs (SIPp among them) keep the
        # first tag they saw and would send their BYE with the 407's.
        tx.to_tag = self._caller_tag(req)
        if await self._trunk_invite(tx):
            return  # a trunk's call, or refused as coming from nowhere we know
        calls = self.calls
        frm = req.from_.uri
        ruri = req.uri
        if not isinstance(frm, SipURI) or not isinstance(ruri, SipURI) or not ruri.user:
            tx.respond(404, headers=[calls.server()])
            return
        # The caller's tenant is the one of its own domain; it is authenticated there, so it
        # can only ever reach extensions of that tenant.
        directory = self.ctx.directory
        tenant = directory.tenant(frm.host)
        realm = tenant.domain if tenant is not None else frm.host.lower()
        result = self.ctx.auth.authenticate(
            tx, tenant, realm, proxy=True, server=calls.server(), failed=self.ctx.guard.auth_failed
        )
        if result is None:
            return
        caller = result.extension
        assert tenant is not None
        assert caller is not None
        server = calls.server(tenant)
        # An emergency number is always allowed: from a suspended tenant and beyond its call
        # limit too (outbound.py routes it before anything else). Looked for only when it
        # could change the answer.
        emergency = (
            not tenant.active or tenant.max_concurrent_calls > 0
        ) and outbound.is_emergency(tenant, unquote(ruri.user))
        if not caller.enabled or not (tenant.active or emergency):
            tx.respond(403, headers=[server])
            return
        if ruri.host.lower() != tenant.domain and directory.tenant(ruri.host):
            tx.respond(404, headers=[server])  # another tenant: as if it did not exist
            return
        max_forwards = req.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            tx.respond(483, headers=[server])  # a loop through other servers
            return
        if not self._encrypted_enough(tx, tenant, caller):
            return
        if not await self._admit(tx, tenant, "INVITE", emergency=emergency):
            return
        tx.respond(100)
        number = unquote(ruri.user)
        # Hot desking: a desk phone where a user is logged in calls as that user.
        caller = acting_as(tenant, caller, number)
        call = self._new_call(tx, tenant, caller, number, max_forwards)
        if call is None:
            return
        calls.emit(
            call,
            EventType.CALL_STARTED,
            direction="internal",
            caller=caller.caller_id_number,
            caller_name=caller.caller_id_name,
            callee=number,
        )
        calls.changed(call)
        replaces = req.get("Replaces")
        if replaces is not None:
            await self._replaces(call, replaces, number)
            return
        await self.s.router.route(call, number)

    def _encrypted_enough(
        self, tx: ServerTransaction, tenant: TenantSnapshot, caller: ExtensionSnapshot
    ) -> bool:
        """An extension that requires SRTP may not offer plain RTP (no keys at all): 488 with a
        Warning, before the call takes a slot. SDES, keys offered on RTP/AVP and DTLS (a
        browser) are encrypted; an INVITE without SDP is let through (its offer comes later,
        from us)."""
        sdp = sdp_body(tx.request)
        if not sdp or caller.srtp_mode(tenant) != SrtpMode.REQUIRED:
            return True
        if profiles.of_sdp(sdp) is not Profile.RTP:
            return True
        log.warning("extension %s of %s requires SRTP and offered plain RTP: 488",
                    caller.number, tenant.schema)  # fmt: skip
        tx.respond(
            488,
            headers=[self.calls.server(tenant), ("Warning", '399 pbx "SRTP required"')],
        )
        return False

    async def _replaces(self, call: Call, replaces: str, number: str) -> None:
        """A new INVITE with ``Replaces`` (RFC 3891) from an authenticated extension: a BLF
        key's pickup of a ringing phone's early dialog (the dialog of one of our forks,
        named by its Call-ID and our tag: ``DialogView``), or the retrieval of a parked
        call (its caller's dialog, as the slot's BLF shows it). A dialog of another tenant,
        or none, is 481; an answered call's with ``early-only`` 486; any other answered
        call's: the request is routed to its number as any call."""
        leg, params = self.calls.replaced(replaces)
        router = self.s.router
        foreign = leg is not None and leg.call.tenant.schema != call.tenant.schema
        if leg is None or leg.gone or leg.call is call or foreign:
            log.info("call %s: Replaces names no dialog of %s", call.id, call.tenant.schema)
            router.connect(call, routing.reject(481, status="failed", reason="replaces: no dialog"))
            return
        target = leg.call
        ringing = target.state == "ringing" and leg in target.forks
        if ringing and leg.user in target.tenant.extensions:  # a phone's, not a carrier's
            destination = Destination("pickup", leg.user, {"call": target})
        elif (slot := _parked(router, target)) is not None:
            destination = Destination("park", slot, {"feature": Feature.RETRIEVE})
        elif "early-only" in params:
            router.connect(call, routing.reject(486, status="busy", reason="replaces: answered"))
            return
        else:
            await router.route(call, number)
            return
        pending = router.connect(call, destination)
        if pending is not None:
            await pending

    # --- calls from trunks ----------------------------------------------------------------
    async def _trunk_invite(self, tx: ServerTransaction) -> bool:
        """A new INVITE that comes from a trunk (by its source: ``inbound.TrunkIndex``) is
        taken here, whatever its From says; one from no trunk whose From domain is no
        tenant's is refused (403, the same for every such domain) and counted by the guard.
        False: an extension's call, for the rest of :meth:`on_invite`."""
        req = tx.request
        ip, port = tx.source.remote
        ruri = req.uri
        ruri_user = unquote(ruri.user) if isinstance(ruri, SipURI) and ruri.user else ""
        trunk = self.trunks.index.identify(ip, port, ruri_user) if self.trunks else None
        if trunk is None:
            frm = req.from_.uri
            if isinstance(frm, SipURI) and self.ctx.directory.tenant(frm.host) is not None:
                return False
            self.ctx.guard.unknown_source(ip)
            log.info("INVITE from %s:%s: no trunk, no tenant's domain: refused", ip, port)
            tx.respond(403, headers=[self.calls.server()])
            return True
        return await self._trunk_call(tx, trunk, ruri_user)

    async def _trunk_call(self, tx: ServerTransaction, trunk: TrunkSnapshot, user: str) -> bool:
        """Take a call from ``trunk``: True once answered here. False for a request to no DID
        of the trunk's tenants whose From names a tenant's domain: a phone behind the
        carrier's address (an office sharing one public IP with its carrier's SBC, a trunk
        network drawn too wide) goes on to the extension path and its digest check, so a
        trunk's addresses can never take other tenants' phones off the air."""
        req = tx.request
        calls = self.calls
        if trunk.kind == TrunkKind.REGISTER and user == inbound.contact_user(trunk):
            to = req.to.uri
            user = unquote(to.user or "") if isinstance(to, SipURI) else ""
        did = inbound.e164(user, trunk.country)
        domain = self.ctx.directory.carriers.numbers.get(did) if did else None
        tenant = self.ctx.directory.tenant(domain) if domain else None
        if tenant is None or tenant.schema not in trunk.tenants:
            # Not in the DID pool, or a number of a tenant that may not use this trunk: the
            # same answer, so a carrier cannot learn whose numbers exist.
            frm = req.from_.uri
            if isinstance(frm, SipURI) and self.ctx.directory.tenant(frm.host) is not None:
                return False
            if tenant is not None:
                log.warning("trunk %s: DID %s belongs to %s, which may not use it",
                            trunk.id, did, tenant.schema)  # fmt: skip
            tx.respond(404, headers=[calls.server()])
            return True
        server = calls.server(tenant)
        if not tenant.active:
            tx.respond(403, headers=[server])
            return True
        max_forwards = req.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            tx.respond(483, headers=[server])
            return True
        assert did is not None
        raw, name = _caller_identity(req)
        number = inbound.e164(raw, trunk.country) if raw else None
        decision = inbound.decide(tenant.routing, did, (number or "", raw), datetime.now(UTC))
        if decision.target is None:
            log.info("trunk %s call to %s from %r: %d (%s)", trunk.id, did, raw, decision.code,
                     decision.why)  # fmt: skip
            tx.respond(decision.code, headers=[server])
            return True
        if not await self._admit(tx, tenant, "trunk call"):
            return True
        tx.respond(100)
        caller = _outside_caller(number or raw or "anonymous", name)
        call = self._new_call(tx, tenant, caller, did, max_forwards)
        if call is None:
            return True
        call.inbound = True
        call.trunks.append(trunk.id)
        calls.emit(
            call,
            EventType.CALL_STARTED,
            direction="inbound",
            caller=caller.caller_id_number,
            caller_name=caller.caller_id_name,
            callee=did,
        )
        calls.emit(
            call,
            EventType.CALL_ROUTED,
            direction="inbound",
            trunk=str(trunk.id),
            did=did,
            dialled=user,
            number=number or "",
            presented=caller.caller_id_number,
        )
        calls.changed(call)
        await self._anchor(call)
        if call.state == "ended":
            return True  # the carrier cancelled while rtpengine answered
        await self._route_inbound(call, decision.target)
        return True

    async def _admit(
        self, tx: ServerTransaction, tenant: TenantSnapshot, what: str, *, emergency: bool = False
    ) -> bool:
        """The tenant's capability "max concurrent calls": a call beyond it is refused (503)
        before anything rings. An emergency call is counted but never refused."""
        if await self.limits.admit(tenant, always=emergency):
            return True
        log.info("tenant %s at its %d concurrent calls: %s refused", tenant.schema,
                 tenant.max_concurrent_calls, what)  # fmt: skip
        tx.respond(
            503,
            "Too Many Calls",
            headers=[
                self.calls.server(tenant),
                ("Warning", '399 pbx "concurrent call limit reached"'),
            ],
        )
        return False

    def _new_call(
        self,
        tx: ServerTransaction,
        tenant: TenantSnapshot,
        caller: ExtensionSnapshot,
        callee: str,
        max_forwards: int | None,
    ) -> Call | None:
        """The call of an admitted INVITE (an extension's, or a trunk's to ``callee``, its
        DID) with its A leg, in the live calls. None: its dialog could not be made (the 400
        is sent and the tenant's call slot given back)."""
        req = tx.request
        call_id = secrets.token_hex(12)
        call = Call(
            id=call_id,
            tenant=tenant,
            caller=caller,
            callee=callee,
            media_id=call_id,
            max_forwards=min(70, 70 if max_forwards is None else max_forwards - 1),
        )
        a = Leg(
            call=call,
            name="a",
            user=caller.number,
            target=Target(tx.source.kind, *tx.source.remote),
            local_tag=tx.to_tag,
            sip_call_id=req.call_id,
            contact=self.calls.contact(callee, tx.source.kind),
            server_tx=tx,
            invite=req,
            remote_sdp=sdp_body(req),
        )
        a.profile = profiles.of_sdp(a.remote_sdp)
        if not a.remote_sdp and tx.source.kind.upper() in BROWSER:
            a.profile = Profile.WEBRTC  # a browser's late offer: it answers ours as WebRTC
        call.offer_profile = a.profile
        call.a = a
        try:
            a.dialog = Dialog.from_uas(req, tx.to_tag, contact=a.contact)
        except ValueError:
            self.limits.release(tenant.schema)
            tx.respond(400, headers=[self.calls.server(tenant)])
            return None
        self.calls.add(call)
        self.calls.add_leg(a)
        tx.on_cancel = lambda _tx: self.calls.caller_cancelled(call)
        return call

    async def _anchor(self, call: Call) -> None:
        """Every trunk call's media goes through rtpengine (when the engine has one): the
        carrier never learns a phone's address, nor a phone the carrier's."""
        a = call.a
        anchor = self.s.anchor
        if anchor.media is None or a is None or not a.remote_sdp:
            return
        # Towards plain RTP for now; a phone of another profile gets its own offer when the
        # call rings it (``Anchor.prepare``).
        await anchor.prepare(
            call, [Profile.RTP], force=True, failure="rtpengine offer failed (trunk call)"
        )

    async def _route_inbound(self, call: Call, target: RouteTarget) -> None:
        router = self.s.router
        kind, number = target.kind, target.target
        if kind == "extension":
            ext = call.tenant.extensions.get(number)
            if ext is None or not ext.enabled:
                warning = f"inbound target extension {number!r} of {call.tenant.schema} is gone"
                router.connect(call, routing.reject(480, warning=warning))
                return
            await router.route(call, number)  # its forwards and DND apply
            return
        if kind == "external":
            await router.route(call, number)
            return
        if kind == "reject":
            code = int(number) if number.isdigit() and 400 <= int(number) < 700 else 603
            router.connect(call, routing.reject(code))
            return
        call.target = number
        call.visited.append(number)
        pending = router.connect(call, Destination(kind, number))
        if pending is not None:
            await pending

    # --- in-dialog requests --------------------------------------------------------------
    def _leg_for(self, tx: ServerTransaction) -> Leg | None:
        req = tx.request
        leg = self.calls.legs.get((req.call_id, req.to.tag or ""))
        if leg is None or leg.dialog is None or leg.gone:
            tx.respond(481, headers=[self.calls.server()])
            return None
        if not leg.dialog.receive_request(req):
            tx.respond(500, headers=[self.calls.server(leg.call.tenant)])
            return None
        return leg

    async def on_bye(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is None:
            return
        tx.respond(200, headers=[self.calls.server(leg.call.tenant)])
        leg.gone = True
        call = leg.call
        if leg.on_bye is not None:
            leg.on_bye(leg)  # a feature's own leg (a page's listener) leaves alone
            return
        if leg.transferring:
            log.info("call %s: the transferor hung up; the blind transfer goes on", call.id)
            return
        peer = call.peer(leg)
        if peer is not None:
            self.calls.bye(peer)
        self.calls.cancel_forks(call)  # a caller a media feature answered, while phones ring
        self.calls.finish(call, "answered", "bye " + ("caller" if leg is call.a else "callee"))

    async def on_update(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is not None:
            await self.bridge.offer(tx, leg)

    async def on_info(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is not None:
            await self.bridge.info(tx, leg)

    async def on_refer(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is not None:
            await self.transfer.refer(tx, leg)

    async def on_notify(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is not None:
            tx.respond(200, headers=[self.calls.server(leg.call.tenant)])

    def on_ack(self, ack: Request, source: Source) -> None:
        """ACKs for our 2xx need nothing more: the server transaction already stopped
        retransmitting it."""

    def on_stray_response(self, resp: Response, source: Source) -> None:
        """A response matching no client transaction (RFC 3261 17.1.3, 18.1.2: discard it),
        except a retransmitted 2xx to an INVITE of a leg we hold: our ACK was lost, send it
        again. Nothing else is answered: an ACK and a BYE to whoever sent a stray 200 would
        make the engine a reflector for spoofed sources."""
        if resp.cseq.method != "INVITE" or not 200 <= resp.status < 300:
            return
        leg = self.calls.legs.get((resp.call_id, resp.from_.tag or ""))
        if leg is None or leg.ack is None or leg.dialog is None:
            return
        if leg.dialog.remote_tag == resp.to.tag:
            self.calls.spawn(self.calls.send_ack(leg, leg.ack))


def _parked(router: Router, call: Call) -> str | None:
    """The park slot ``call`` waits in (None: not parked)."""
    park = park_handler(router)
    return park.slot_of(call) if park is not None else None


def _caller_identity(req: Request) -> tuple[str, str]:
    """The caller's number and name as the carrier asserts them: P-Asserted-Identity (RFC
    3325: the network's word) when present, else From."""
    found: Address | None = None
    pai = req.get("P-Asserted-Identity")
    if pai:
        try:
            found = parse_address(pai.split(",", 1)[0].strip())
        except ValueError:
            found = None
    address = found or req.from_
    uri = address.uri
    number = ""
    if isinstance(uri, SipURI):
        number = unquote(uri.user or "")
    elif isinstance(uri, TelURI):
        number = uri.number
    name = address.display_name or (req.from_.display_name if found else None) or ""
    return number.split(";", 1)[0], name


def _outside_caller(number: str, name: str) -> ExtensionSnapshot:
    """The caller of a trunk call as the call layer knows callers: an extension-like record
    with its number and name, made safe for headers (no control characters, bounded)."""
    return ExtensionSnapshot.from_dict(
        number[:32],
        {
            "display_name": name[:64],
            "caller_id_name": name[:64],
            "caller_id_number": number[:32],
            "call_scope": CallScope.INTERNATIONAL,
        },
    )
