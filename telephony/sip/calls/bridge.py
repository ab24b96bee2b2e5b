"""Bridging the two legs of an answered call: a request inside one dialog is re-issued in the
other (re-INVITE and UPDATE for hold, unhold and codec changes; INFO for DTMF and the like),
never proxied, so each side only ever sees our Call-ID, tags, Contact and SDP origin."""

from __future__ import annotations

from collections.abc import Callable

from telephony.sip.transaction import ServerTransaction

from .call import Leg, sdp_body
from .media_app import is_hold
from .profiles import Profile
from .recording import dtmf_from_info
from .services import CallServices

__all__ = ["Bridge"]


class Bridge:
    """Relays in-dialog offers and INFO between the legs of a call."""

    def __init__(self, services: CallServices, on_key: Callable[[Leg, str], None]) -> None:
        self.s = services
        self.calls = services.calls
        self.on_key = on_key  # a DTMF key in an INFO (the in-call codes: recording.py)

    async def offer(self, tx: ServerTransaction, leg: Leg) -> None:
        """re-INVITE or UPDATE (hold, unhold, codec change): re-offer on the other leg and
        answer with its answer."""
        call = leg.call
        server = self.calls.server(call.tenant)
        peer = call.peer(leg)
        sdp = sdp_body(tx.request)
        if peer is None and call.media is not None and leg is call.a and sdp:
            await self.media_offer(tx, leg, sdp)  # the caller talks to the media server
            return
        if call.supervision is not None and call.supervision.holds(leg):
            await self.media_offer(tx, leg, sdp)  # supervised: its own session answers
            return
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[server])
            return
        if peer.busy:
            tx.respond(491, headers=[server])
            return
        method = tx.request.method
        if sdp:
            leg.remote_sdp = sdp
        media = self.s.media
        if call.hold is not None and call.hold.holder is leg:
            await media.unhold(call)  # taken off hold: the offer goes to the peer again
        elif (
            call.hold is None
            and is_hold(sdp)
            and method == "INVITE"
            and media.available
            and leg.profile is Profile.RTP  # the silent sink answers the holder itself
        ):
            held = await media.hold(call, leg, sdp)
            if held is not None:
                music_offer, holder_answer = held
                await self.hold(tx, leg, peer, music_offer, holder_answer)
                return
        anchor = self.s.anchor
        if call.anchored and anchor.media is not None and sdp:
            anchored = await anchor.offer(sdp, call.media_id, leg.local_tag, to=peer.profile)
            if anchored is None and anchor.must(leg.profile, peer.profile):
                tx.respond(488, headers=[server, ("Warning", '399 pbx "media not converted"')])
                return
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
            anchored = await anchor.answer(
                answer, call.media_id, leg.local_tag, peer.local_tag, to=leg.profile
            )
            answer = answer if anchored is None else anchored
        rh = [("Contact", leg.contact), server]
        rbody = self.calls.sdp_for(leg, answer)
        if rbody:
            rh.append(("Content-Type", "application/sdp"))
        tx.respond(resp.status, headers=rh, body=rbody)

    async def media_offer(self, tx: ServerTransaction, leg: Leg, sdp: bytes) -> None:
        """A re-offer of a caller that hears the media server (or of a supervised call's
        party, which has a session of its own): the media server answers. An UPDATE without
        SDP (a session refresh) is simply accepted."""
        call = leg.call
        server = self.calls.server(call.tenant)
        if not sdp and tx.request.method == "UPDATE":
            tx.respond(200, headers=[("Contact", leg.contact), server])
            return
        sv = call.supervision
        if sv is not None and sv.holds(leg):
            answer = await sv.reanswer(leg, sdp) if sdp else None
        else:
            answer = await self.s.media.reanswer(call, sdp)
        if answer is None:
            tx.respond(488, headers=[server])
            return
        leg.remote_sdp = sdp
        headers = [("Contact", leg.contact), server, ("Content-Type", "application/sdp")]
        tx.respond(200, headers=headers, body=self.calls.sdp_for(leg, answer))

    async def hold(
        self, tx: ServerTransaction, holder: Leg, held: Leg, music: bytes, answer: bytes
    ) -> None:
        """``holder`` put ``held`` on hold: ``held`` is re-INVITEd to the music (through
        rtpengine, in the holder's place, when anchored) and the holder's offer is answered
        by the silent session (so nothing it sends reaches the held party)."""
        call = holder.call
        server = self.calls.server(call.tenant)
        anchor = self.s.anchor
        offer = music
        if call.anchored and anchor.media is not None:
            anchored = await anchor.offer(music, call.media_id, holder.local_tag, to=held.profile)
            offer = music if anchored is None else anchored
        resp = await self.calls.reoffer(held, offer)
        if resp is None or not 200 <= resp.status < 300:
            await self.s.media.unhold(call)
            tx.respond(resp.status if resp is not None else 481, headers=[server])
            return
        held_answer = sdp_body(resp)
        if held_answer:
            if call.anchored and anchor.media is not None:
                anchored = await anchor.answer(
                    held_answer, call.media_id, holder.local_tag, held.local_tag, to=Profile.RTP
                )
                held_answer = held_answer if anchored is None else anchored
            await self.s.media.music_answered(call, held_answer)
        headers = [("Contact", holder.contact), server, ("Content-Type", "application/sdp")]
        tx.respond(200, headers=headers, body=self.calls.sdp_for(holder, answer))

    async def info(self, tx: ServerTransaction, leg: Leg) -> None:
        """INFO (SIP INFO DTMF, picture updates...) goes to the other party as it came; a
        DTMF key in it is also told to ``on_key``."""
        peer = leg.call.peer(leg)
        server = self.calls.server(leg.call.tenant)
        req = tx.request
        if req.body:
            key = dtmf_from_info(req.content_type or "", req.body)
            if key:
                self.on_key(leg, key)
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[server])
            return
        headers = [(n, v) for n, v in req.headers if n in ("Content-Type", "Info-Package")]
        out = peer.dialog.create_request("INFO", headers=headers, body=req.body)
        resp = await self.calls.send(peer, out).future
        tx.respond(resp.status, headers=[server])

    async def reoffer(self, leg: Leg, sdp: bytes) -> None:
        """Send ``sdp`` to ``leg`` in a re-INVITE (its media now goes to someone else)."""
        await self.calls.reoffer(leg, sdp)
