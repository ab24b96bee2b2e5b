"""``forward``: a forwarding step. The call's next CDR segment (kind ``forward``) starts,
``call.forwarded`` is emitted, the target will see one more ``Diversion`` entry, and the call is
routed on to the target (whether the step is allowed at all is ``forwarding.not_followed``,
decided by ``routing``)."""

from __future__ import annotations

from telephony.sip.calls.call import Call
from telephony.sip.calls.forwarding import diversion
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType

from .base import register

__all__ = ["Forward"]


@register("forward")
class Forward:
    """Sends a call on from the extension ``data["from"]`` to ``target``."""

    def __init__(self, services: CallServices) -> None:
        self.s = services

    def connect(self, call: Call, destination: Destination) -> None:
        reason = str(destination.data["reason"])
        number = str(destination.data["from"])
        target = destination.target
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.hops += 1
        call.segment += 1
        call.segment_kind = "forward"
        call.diversions.insert(0, diversion(call.tenant.domain, number, reason, call.hops))
        self.s.calls.emit(
            call,
            EventType.CALL_FORWARDED,
            reason=reason,
            callee=target,
            **{"from": number, "to": target},
        )
        self.s.calls.spawn(self.s.router.route(call, target))
