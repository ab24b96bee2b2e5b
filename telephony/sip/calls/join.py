"""Joining a new caller to a party the media server holds: a ringing caller that is picked up,
a parked caller that is retrieved.

The newcomer's INVITE is still waiting for its answer and carries its offer; the held party
(``call.a``, answered by the media server: ``call.answered_a``) is re-INVITEd with that offer
(rtpengine's side of a new pairing when the engine has one, so neither phone learns the
other's address), and its answer answers the newcomer's INVITE: offer/answer stays correct
on both dialogs, and no phone is asked to take a second offer. The newcomer's leg then
becomes the call's B leg; the newcomer's own call ends (its call-limit slot given back, its
CDR closed as a call that joined another) and the held party's media server session closes.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from telephony.sip.contract import EventType

from .call import Call, sdp_body, sendrecv
from .services import CallServices

__all__ = ["connect_waiting", "offers"]

log = logging.getLogger(__name__)


def offers(newcomer: Call) -> bool:
    """Whether the newcomer's INVITE carries the offer a join needs (an INVITE without SDP
    is refused before anything changes for the held party)."""
    leg = newcomer.a
    return leg is not None and leg.server_tx is not None and bool(leg.remote_sdp)


async def connect_waiting(
    s: CallServices,
    call: Call,
    newcomer: Call,
    *,
    why: str,
    announce: tuple[EventType, dict[str, Any]] | None = None,
) -> bool:
    """Answer ``newcomer``'s INVITE with ``call``'s held party and move its leg into ``call``
    (``why``: the newcomer's CDR end reason; ``announce``: an event of ``call`` sent just
    before its ``call.answered``). False: the join failed (rtpengine refused, the held party
    refused or left, the newcomer gave up): ``call`` is ended then (its phones were
    cancelled or its slot freed already, nobody would ever reach it), and the newcomer is
    answered 480 or 503 when it still waits."""
    calls = s.calls
    a, leg = call.a, newcomer.a
    if a is None or leg is None or leg.server_tx is None or call.state == "ended":
        if newcomer.state != "ended":
            calls.fail(newcomer, 480, status="failed", reason="nothing to join")
        return False
    anchor = s.anchor
    offer = sendrecv(leg.remote_sdp)
    if not offer:  # the destinations check ``offers`` first: nothing changed yet
        calls.fail(newcomer, 488, status="failed", reason="join without SDP")
        return False
    media_id = ""
    if anchor.media is None and anchor.must(a.profile, leg.profile):
        log.warning("call %s: no rtpengine to join a %s party to a %s one", call.id,
                    leg.profile, a.profile)  # fmt: skip
        calls.fail(newcomer, 488, status="failed", reason="media profiles differ")
        return False
    if anchor.media is not None:
        media_id = f"{call.id}-j{secrets.token_hex(3)}"
        anchored = await anchor.offer(
            offer, media_id, leg.local_tag, to=a.profile, failure="join: offer failed"
        )
        if anchored is None:
            calls.fail(newcomer, 503, status="failed", reason="rtpengine refused")
            calls.end(call, "join failed")
            return False
        offer = anchored
    resp = await calls.reoffer(a, offer)
    if resp is None or not 200 <= resp.status < 300 or call.state == "ended":
        anchor.delete(media_id)
        log.info("call %s: the held party refused the join (%s)", call.id,
                 resp.status if resp is not None else "no re-INVITE")  # fmt: skip
        calls.fail(newcomer, 480, status="failed", reason="join refused")
        calls.end(call, "join refused")
        return False
    answer = sdp_body(resp) or a.remote_sdp
    if media_id:
        anchored = await anchor.answer(
            answer,
            media_id,
            leg.local_tag,
            a.local_tag,
            to=leg.profile,
            failure="join: answer failed",
        )
        answer = answer if anchored is None else anchored
    headers = [("Contact", leg.contact), calls.server(call.tenant)]
    body = calls.sdp_for(leg, answer)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    if newcomer.state == "ended" or leg.server_tx.respond(200, headers=headers, body=body) is None:
        # The newcomer cancelled meanwhile: the held party now talks to nobody.
        anchor.delete(media_id)
        calls.end(call, "the newcomer left")
        return False
    # The leg moves: the newcomer's call ends without it (nothing to hang up there).
    newcomer.a = None
    calls.finish(newcomer, "answered", why)
    leg.call = call
    leg.name = call.next_leg_name()
    call.b = leg
    call.forks = []
    call.target = leg.user
    old = anchor.switch(call, media_id)
    anchor.delete(old)
    await s.media.release(call)  # and the hand-off's pairing, when there was one
    call.state = "answered"
    call.answered_at = call.answered_at or time.time()
    if announce is not None:
        calls.emit(call, announce[0], **announce[1])
    calls.emit(call, EventType.CALL_ANSWERED, leg=leg.name, callee=leg.user)
    calls.changed(call)
    return True
