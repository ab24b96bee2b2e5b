"""What a destination that rings someone (an extension's phones, a carrier's trunk) tells the
caller: the callee rings (180, or 183 with its early media through the anchor) and the callee
answered (the 200 with the answer, through the anchor). One copy for every such destination."""

from __future__ import annotations

import dataclasses
import logging
import time

from telephony.sip.calls.call import Call, Leg, sdp_body
from telephony.sip.calls.routing import reject
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType, ExtensionSnapshot
from telephony.sip.message import Response

__all__ = ["answer_caller", "prefixed", "ring_caller", "unavailable"]

log = logging.getLogger(__name__)


def prefixed(caller: ExtensionSnapshot, prefix: str) -> ExtensionSnapshot:
    """The caller as a ring group's members or a queue's agents see it: its name (or number)
    after the group's or queue's ``caller_id_prefix``."""
    if not prefix:
        return caller
    name = caller.caller_id_name or caller.caller_id_number
    return dataclasses.replace(caller, caller_id_name=f"{prefix} {name}".strip())


def ring_caller(s: CallServices, call: Call, resp: Response) -> None:
    """Relay a callee's 180/183 to the caller: a 183 with SDP as early media, else a 180."""
    a = call.a
    assert a is not None
    if call.answered_a:
        s.media.ringback(call)  # a caller a media feature answered hears ringback from it
        return
    assert a.server_tx is not None
    sdp = sdp_body(resp)
    if sdp and resp.status == 183:
        s.calls.spawn(_relay_early(s, call, resp, sdp))
    else:
        a.server_tx.respond(180, headers=[("Contact", a.contact), s.calls.server(call.tenant)])


async def _relay_early(s: CallServices, call: Call, resp: Response, sdp: bytes) -> None:
    a = call.a
    assert a is not None
    assert a.server_tx is not None
    if call.anchored and s.anchor.media is not None:
        tag = resp.from_.tag or ""
        fork = next((leg for leg in call.forks if leg.local_tag == tag), None)
        media_id = s.anchor.media_id_of(fork) if fork is not None else call.media_id
        anchored = await s.anchor.answer(sdp, media_id, a.local_tag, tag, to=a.profile)
        if anchored is None and s.anchor.must(a.profile, fork.profile if fork else a.profile):
            return  # early media it could not take: the caller waits for the answer
        sdp = sdp if anchored is None else anchored
    a.server_tx.respond(
        183,
        headers=[
            ("Contact", a.contact),
            s.calls.server(call.tenant),
            ("Content-Type", "application/sdp"),
        ],
        body=s.calls.sdp_for(a, sdp),
    )


async def answer_caller(s: CallServices, leg: Leg, *, failure: str) -> bool:
    """``leg`` (already the call's B leg) answered: make the call answered and send the caller
    the 200 with the callee's SDP (``failure``: the log line when rtpengine will not anchor
    it). False when the caller cancelled at the same moment (the call is ended then)."""
    call = leg.call
    s.anchor.adopt(call, leg)  # its pairing is the call's now (forks of mixed profiles)
    call.forks = [leg]
    call.state = "answered"
    call.answered_at = time.time()
    s.calls.stats["answered"] += 1
    a = call.a
    assert a is not None
    answer = leg.remote_sdp
    if call.answered_a:
        # A media feature answered the caller (or it never sent us an INVITE: a callback, a
        # transferee): it is re-INVITEd to the phone instead.
        if not await s.media.join(call, leg, answer):
            return False
        s.calls.emit(call, EventType.CALL_ANSWERED, leg=leg.name, callee=call.target)
        s.calls.changed(call)
        return True
    assert a.server_tx is not None
    if call.anchored and s.anchor.media is not None and answer:
        anchored = await s.anchor.answer(
            answer, call.media_id, a.local_tag, leg.local_tag, to=a.profile, failure=failure
        )
        if anchored is None and s.anchor.must(a.profile, leg.profile):
            # Their media cannot meet without rtpengine: both are let go, not left silent.
            s.calls.bye(leg)
            s.anchor.refuse(call, f"rtpengine answer failed ({leg.profile} to {a.profile})")
            return False
        answer = answer if anchored is None else anchored
    headers = [("Contact", a.contact), s.calls.server(call.tenant)]
    body = s.calls.sdp_for(a, answer)
    if body:
        headers.append(("Content-Type", "application/sdp"))
    if a.server_tx.respond(200, headers=headers, body=body) is None:
        # The caller cancelled at the same moment: hang the answered callee up.
        s.calls.end(call, "cancelled", 487)
        return False
    s.calls.emit(call, EventType.CALL_ANSWERED, leg=leg.name, callee=call.target)
    s.calls.changed(call)
    return True


async def unavailable(
    s: CallServices, call: Call, warning: str, reason: str, *prompts: str
) -> None:
    """A destination that cannot take the call (a menu or DISA entry that was deleted, a
    mailbox that takes no messages): a caller a media feature answered already hears
    ``prompts`` and goodbye, any other gets 480; ``warning`` is logged (``reason``: the
    CDR's)."""
    if call.media is not None:
        log.warning("call %s: %s", call.id, warning)
        await s.media.goodbye(call, reason, *prompts)
    else:
        s.router.connect(call, reject(480, reason=reason, warning=warning))
