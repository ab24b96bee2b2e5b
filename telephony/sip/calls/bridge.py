"""Bridging the two legs of an answered call: a request inside one dialog is re-issued in the
other (re-INVITE and UPDATE for hold, unhold and codec changes; INFO for DTMF and the like),
never proxied, so each side only ever sees our Call-ID, tags, Contact and SDP origin."""

from __future__ import annotations

from telephony.sip.transaction import ServerTransaction

from .call import Leg, sdp_body, sendrecv
from .services import CallServices

__all__ = ["Bridge"]


class Bridge:
    """Relays in-dialog offers and INFO between the legs of a call."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls

    async def offer(self, tx: ServerTransaction, leg: Leg) -> None:
        """re-INVITE or UPDATE (hold, unhold, codec change): re-offer on the other leg and
        answer with its answer."""
        call = leg.call
        server = self.calls.server(call.tenant)
        peer = call.peer(leg)
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[server])
            return
        if peer.busy:
            tx.respond(491, headers=[server])
            return
        method = tx.request.method
        sdp = sdp_body(tx.request)
        if sdp:
            leg.remote_sdp = sdp
        anchor = self.s.anchor
        if call.anchored and anchor.media is not None and sdp:
            anchored = await anchor.offer(sdp, call.media_id, leg.local_tag)
            sdp = sdp if anchored is None else anchored
        headers: list[tuple[str, str]] = []
        body = self.calls.sdp_for(peer, sdp)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        out = peer.dialog.create_request(method, headers=headers, body=body)
        peer.busy = True
        try:
            resp = await self.calls.send(peer, out).future
        finally:
            peer.busy = False
        if method == "INVITE" and 200 <= resp.status < 300:
            peer.dialog.refresh_target(resp)
            await self.calls.send_ack(peer, peer.dialog.ack_for_2xx(out.cseq.seq))
        if resp.status >= 300:
            tx.respond(resp.status, headers=[server])
            return
        answer = sdp_body(resp)
        if answer:
            peer.remote_sdp = answer
        if call.anchored and anchor.media is not None and answer:
            anchored = await anchor.answer(answer, call.media_id, leg.local_tag, peer.local_tag)
            answer = answer if anchored is None else anchored
        rh = [("Contact", leg.contact), server]
        rbody = self.calls.sdp_for(leg, answer)
        if rbody:
            rh.append(("Content-Type", "application/sdp"))
        tx.respond(resp.status, headers=rh, body=rbody)

    async def info(self, tx: ServerTransaction, leg: Leg) -> None:
        """INFO (SIP INFO DTMF, picture updates...) goes to the other party as it came."""
        peer = leg.call.peer(leg)
        server = self.calls.server(leg.call.tenant)
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[server])
            return
        req = tx.request
        headers = [(n, v) for n, v in req.headers if n in ("Content-Type", "Info-Package")]
        out = peer.dialog.create_request("INFO", headers=headers, body=req.body)
        resp = await self.calls.send(peer, out).future
        tx.respond(resp.status, headers=[server])

    async def reoffer(self, leg: Leg, sdp: bytes) -> None:
        """Send ``sdp`` to ``leg`` in a re-INVITE (its media now goes to someone else)."""
        if leg.dialog is None or not sdp:
            return
        out = leg.dialog.reinvite(self.calls.sdp_for(leg, sendrecv(sdp)))
        leg.busy = True
        try:
            resp = await self.calls.send(leg, out).future
        finally:
            leg.busy = False
        if 200 <= resp.status < 300:
            await self.calls.send_ack(leg, leg.dialog.ack_for_2xx(out.cseq.seq))
            answer = sdp_body(resp)
            if answer:
                leg.remote_sdp = answer
