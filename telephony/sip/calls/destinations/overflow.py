"""Where a call goes when a ring group's members or a queue's agents did not take it: the
group's or queue's ``overflow`` (any RouteTarget), for a caller still waiting for its answer
or one a media feature answered (a queue's caller, a ring group reached from an IVR).

An extension, outside number, ring group or queue is a forward step (bounded by the call's
path as every forward is: a loop ends the call); voicemail, an IVR and the other kinds are
connected; "reject" answers a waiting caller with its SIP code (a taken caller hears
goodbye); none, or "hangup", gives up: goodbye for a taken caller, else 480.
"""

from __future__ import annotations

import logging

from telephony.sip.calls import routing
from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import RouteTarget

from .ivr import FORWARD_KINDS, forward_taken

__all__ = ["give_up", "overflow"]

log = logging.getLogger(__name__)


async def overflow(
    s: CallServices, call: Call, target: RouteTarget | None, *, via: str, what: str
) -> None:
    """Send ``call`` to ``target``, the overflow of ``via`` (a group's or queue's number);
    ``what`` ("ring group", "queue") names it in the end reasons and the log."""
    if call.state == "ended":
        return
    if target is None or target.kind == "hangup":
        await give_up(
            s, call, f"{what} no answer" if target is None else f"{what} overflow hang-up"
        )
        return
    kind, number = target.kind, target.target
    if kind == "reject":
        if call.answered_a:
            await give_up(s, call, f"{what} overflow")  # answered already: no SIP code now
            return
        code = int(number) if number.isdigit() and 400 <= int(number) < 700 else 480
        s.router.connect(call, routing.reject(code, reason=f"{what} overflow"))
        return
    if kind in FORWARD_KINDS:
        path = call.path(s.config.max_forward_hops)
        if number in path.visited or path.hops >= path.max_hops:
            log.warning("call %s: overflow of %s %s to %s not followed (loop or too many steps)",
                        call.id, what, via, number)  # fmt: skip
            await give_up(s, call, f"{what} overflow loop")
            return
        if call.answered_a:
            await forward_taken(s, call, number, reason="no_answer", via=via)
            return
        s.router.connect(call, Destination("forward", number, {"reason": "no_answer", "from": via}))
        return
    extra: dict[str, object] = {"reason": "unavailable", "code": 480}
    pending = s.router.connect(
        call, Destination(kind, number, extra if kind == "voicemail" else {})
    )
    if pending is not None:
        await pending


async def give_up(s: CallServices, call: Call, reason: str) -> None:
    """Nobody takes the call: goodbye to a taken caller, 480 to a waiting one."""
    if call.answered_a and call.media is not None:
        await s.media.goodbye(call, reason)
    else:
        s.calls.fail(call, 480, status="no_answer", reason=reason)
