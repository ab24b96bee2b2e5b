"""``pickup``: answer a call that rings at another extension of the tenant.

Reached by the directed pickup code (``*97`` + extension: the longest-ringing call at that
extension), the group pickup code (``*98``: the longest-ringing call at any extension that
shares a pickup group with the picker, ``ExtensionSnapshot.pickup_groups``) and a BLF key
(a new INVITE with ``Replaces`` naming a ringing fork's dialog, RFC 3891; the dispatcher
finds the call and passes it as ``data["call"]``). Only calls of the picker's own tenant on
this engine are candidates, and only an extension picks up.

The ringing phones are CANCELled (``Reason: ... Call completed elsewhere``, so they do not
list a missed call), the caller is answered by the media server (``media_app.take``) and then
joined to the picker (``join.connect_waiting``: a re-INVITE with the picker's offer). The call
emits ``call.picked_up`` (``by``: the picker, ``extension``: where it rang) and
``call.answered``. Nothing ringing there (or no media server): 480, and a log line.
"""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.join import connect_waiting, offers
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType, ExtensionSnapshot, Feature

from .base import register
from .feature import handled_by

__all__ = ["Pickup", "directed_call", "group_call", "ringing_at"]

log = logging.getLogger(__name__)

handled_by("pickup", Feature.PICKUP, Feature.PICKUP_GROUP)


def ringing_at(s: CallServices, picker: Call, number: str) -> list[Call]:
    """The calls of the picker's tenant (not the picker's own) that ring a phone of
    extension ``number`` now: its early dialogs in ``services.states``, not a scan of
    every live call."""
    schema = picker.tenant.schema
    me = picker.caller.number
    found: list[Call] = []
    for view in s.states.of(schema, number):
        leg = s.calls.legs.get((view.call_id, view.remote_tag)) if view.state == "early" else None
        if leg is None or leg.gone:
            continue
        c = leg.call
        if (
            c is picker
            or c.state != "ringing"
            or c.b is not None
            or c.tenant.schema != schema
            or (c.caller.number == me and not c.inbound)
            or c in found
        ):
            continue
        found.append(c)
    return found


def directed_call(s: CallServices, picker: Call, number: str) -> Call | None:
    """The longest-ringing call with a phone of extension ``number`` ringing for it."""
    if number not in picker.tenant.extensions:
        return None
    return min(ringing_at(s, picker, number), key=lambda c: c.started_at, default=None)


def group_call(s: CallServices, picker: Call) -> tuple[Call, str] | None:
    """The longest-ringing call at an extension sharing a pickup group with the picker, and
    that extension (the first of its ringing phones' that does)."""
    tenant = picker.tenant
    me = tenant.extensions.get(picker.caller.number)
    if me is None or not me.pickup_groups:
        return None
    groups = set(me.pickup_groups)

    def shares(ext: ExtensionSnapshot | None) -> bool:
        return ext is not None and ext.number != me.number and bool(groups & set(ext.pickup_groups))

    found = {
        c.id: c
        for ext in tenant.extensions.values()
        if shares(ext)
        for c in ringing_at(s, picker, ext.number)
    }
    call = min(found.values(), key=lambda c: c.started_at, default=None)
    if call is None:
        return None
    for fork in call.forks:
        ext = tenant.extensions.get(fork.user)
        if not fork.gone and ext is not None and shares(ext):
            return call, ext.number
    return None


@register("pickup")
class Pickup:
    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls

    async def connect(self, call: Call, destination: Destination) -> None:
        picker = call.caller.number
        if call.inbound or call.tenant.extensions.get(picker) is None:
            self.s.router.connect(call, reject(403, reason="pickup from outside"))
            return
        if not offers(call):
            self.s.router.connect(call, reject(488, status="failed", reason="pickup without SDP"))
            return
        target: Call | None = destination.data.get("call")
        number = destination.target
        if target is None and destination.data.get("feature") == Feature.PICKUP_GROUP:
            found = group_call(self.s, call)
            target, number = found if found is not None else (None, "")
        elif target is None:
            target = directed_call(self.s, call, number)
        if target is None or target.state != "ringing" or not self.s.media.available:
            why = "no media server" if target is not None else "nothing rings there"
            log.info("call %s: %s cannot pick up %r: %s", call.id, picker, number or "a group",
                     why)  # fmt: skip
            self.s.router.connect(call, reject(480, status="failed", reason="nothing to pick up"))
            return
        await self.pick(call, target, number)

    async def pick(self, picker: Call, call: Call, number: str) -> None:
        """``picker`` answers ``call``, which rings at ``number``."""
        log.info("call %s: picked up by %s (rang at %s)", call.id, picker.caller.number, number)
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        # Not ringing any more: a phone's 200 that crosses our CANCEL is hung up.
        call.state = "routing"
        for fork in list(call.forks):
            self.calls.cancel_fork(fork, answered_elsewhere=True)
        call.forks = []
        self.calls.changed(call)
        if await self.s.media.take(call) is None:
            if call.state != "ended":
                self.calls.fail(call, 480, reason="pickup failed")
            self.s.router.connect(picker, reject(480, status="failed", reason="pickup failed"))
            return
        by = picker.caller.number
        await connect_waiting(
            self.s,
            call,
            picker,
            why=f"picked up {call.id}",
            announce=(EventType.CALL_PICKED_UP, {"by": by, "extension": number}),
        )
