"""The SIP face of the call layer: requests and stray responses in, handed to the call, the
router, the bridge or the transfer.

A new call (INVITE without To-tag): the caller authenticates with a 407 digest challenge in
its own domain (so it can only reach its own tenant), is refused 403 when it or its tenant is
disabled, 404 for a number of another tenant, 483 when Max-Forwards is spent and 503 beyond
its tenant's concurrent call limit (``limits.py``); otherwise the call and its A leg are made
and the router takes it to the dialled number's destination. Requests inside a dialog go to
the leg they belong to (481 for none).

White label: answers that belong to a tenant carry its snapshot ``product`` as Server;
answers before authentication carry the engine's product (the same for every domain, so
domains cannot be probed). Never a version.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import replace
from urllib.parse import unquote

from telephony.sip.contract import EventType
from telephony.sip.dialog import Dialog
from telephony.sip.message import Request, Response, SipURI
from telephony.sip.transaction import ServerTransaction
from telephony.sip.transport import Source, Target

from . import outbound
from .bridge import Bridge
from .call import Call, Leg, sdp_body
from .limits import CallLimits
from .services import CallServices
from .transfer import Transfer

__all__ = ["CallDispatcher"]

log = logging.getLogger(__name__)


def _nobody(_user: str) -> None:
    return None


class CallDispatcher:
    """The call layer's SIP handlers (see ``CallLayer.handlers``)."""

    def __init__(
        self, services: CallServices, limits: CallLimits, bridge: Bridge, transfer: Transfer
    ) -> None:
        self.s = services
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
        lookup = tenant.extensions.get if tenant is not None else _nobody
        sha256 = tenant is not None and tenant.sip_digest_sha256
        auth = self.ctx.auth
        result = auth.verify(req, realm, lookup, proxy=True, sha256=sha256)
        if not result.ok:
            if result.failed:
                self.ctx.guard.auth_failed(tx.source.remote[0])
            challenge = auth.challenge(realm, proxy=True, stale=result.stale, sha256=sha256)
            tx.respond(407, headers=[calls.server(), *challenge])
            return
        caller = result.extension
        assert tenant is not None
        assert caller is not None
        server = calls.server(tenant)
        # An emergency number is always allowed: from a suspended tenant and beyond its call
        # limit too (outbound.py routes it before anything else).
        emergency = outbound.is_emergency(tenant, unquote(ruri.user))
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
        if not await self.limits.admit(
            replace(tenant, max_concurrent_calls=0) if emergency else tenant
        ):
            # The tenant's capability "max concurrent calls": refused before anything rings.
            log.info("tenant %s at its %d concurrent calls: INVITE refused", tenant.schema,
                     tenant.max_concurrent_calls)  # fmt: skip
            tx.respond(
                503,
                "Too Many Calls",
                headers=[server, ("Warning", '399 pbx "concurrent call limit reached"')],
            )
            return
        tx.respond(100)
        number = unquote(ruri.user)
        call_id = secrets.token_hex(12)
        call = Call(
            id=call_id,
            tenant=tenant,
            caller=caller,
            callee=number,
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
            contact=calls.contact(number, tx.source.kind),
            server_tx=tx,
            invite=req,
            remote_sdp=sdp_body(req),
        )
        call.a = a
        try:
            a.dialog = Dialog.from_uas(req, tx.to_tag, contact=a.contact)
        except ValueError:
            self.limits.release(tenant.schema)
            tx.respond(400, headers=[server])
            return
        calls.add(call)
        calls.add_leg(a)
        tx.on_cancel = lambda _tx: calls.caller_cancelled(call)
        calls.emit(
            call,
            EventType.CALL_STARTED,
            direction="internal",
            caller=caller.caller_id_number,
            caller_name=caller.caller_id_name,
            callee=number,
        )
        calls.changed(call)
        await self.s.router.route(call, number)

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
        peer = call.peer(leg)
        if peer is not None:
            self.calls.bye(peer)
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
