"""``speed_dial``: an extension's speed dials (PortSIP's "speed dial 8" and "speed dial 100").

Dialling one of the caller's own codes ("2".."9", "00".."99") calls the number stored under it,
routed as if the caller had dialled it (its forwards, call barring and outbound rules apply).
A code is only a speed dial when it is exactly one of the caller's codes and no extension or
IVR menu of the tenant has that number: the tenant's numbers always win.

The feature codes ``*74<d><number>`` / ``*75<dd><number>`` set one, ``*74<d>*`` / ``*75<dd>*``
clear it: a ``feature.set`` request to the Django side (``number``: ``<code>:<target>``, an
empty target clears), which validates, audits and republishes the snapshot; the caller hears
the confirmation (or "feature failed" for a malformed request, which is never sent).
"""

from __future__ import annotations

import logging
import re

from telephony.sip.calls import routing
from telephony.sip.calls.call import Call
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType, ExtensionSnapshot, Feature, TenantSnapshot

from .base import register
from .feature import handled_by

__all__ = ["SpeedDial", "parse_setting", "speed_dials"]

log = logging.getLogger(__name__)

#: What a speed dial may call: digits, * and an optional leading + (a feature code, an
#: extension, an outside number), as the Django action accepts it.
TARGET = re.compile(r"\+?[0-9*]{1,32}")
CODE_LENGTH = {Feature.SPEED_DIAL_8: 1, Feature.SPEED_DIAL_100: 2}
CODE = {Feature.SPEED_DIAL_8: re.compile(r"[2-9]"), Feature.SPEED_DIAL_100: re.compile(r"\d\d")}


def parse_setting(feature: str, arg: str) -> tuple[str, str] | None:
    """(code, target; "" clears) of what was dialled after ``*74``/``*75``; None when it is
    not a speed dial setting."""
    size = CODE_LENGTH.get(Feature(feature)) if feature in CODE_LENGTH else None
    if size is None or len(arg) <= size:
        return None
    code, rest = arg[:size], arg[size:]
    if not CODE[Feature(feature)].fullmatch(code):
        return None
    if rest == "*":
        return code, ""
    if not TARGET.fullmatch(rest):
        return None
    return code, rest


@routing.rule
def speed_dials(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """A number dialled (not forwarded to) that is one of the caller's speed-dial codes."""
    if path.hops or len(path.visited) > 1 or not caller.speed_dials:
        return None
    target = caller.speed_dials.get(number)
    if not target or number in tenant.extensions or number in tenant.media.ivrs:
        return None
    return Destination("speed_dial", target, {"code": number})


@register("speed_dial")
class SpeedDial:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        feature = destination.data.get("feature")
        if feature is not None:
            await self.setting(call, str(feature), destination.target)
            return
        log.info("call %s: speed dial %s -> %s", call.id, destination.data.get("code"),
                 destination.target)  # fmt: skip
        await self.s.router.route(call, destination.target)

    async def setting(self, call: Call, feature: str, arg: str) -> None:
        """``*74``/``*75``: ask Django to set or clear the caller's speed dial, confirm it."""
        parsed = parse_setting(feature, arg)
        caller = call.caller.number
        if parsed is None or parsed[1] == caller:
            log.info("call %s: %s with a bad setting %r", call.id, feature, arg)
            prompt = "feature-failed"
        else:
            code, target = parsed
            self.s.media.request(
                call,
                EventType.FEATURE_SET,
                extension=caller,
                feature=feature,
                number=f"{code}:{target}",
            )
            prompt = "goodbye"
        media = self.s.media
        if await media.take(call) is None:
            self.s.calls.fail(call, 480, reason="feature code without confirmation")
            return
        await media.goodbye(call, f"feature {feature}", prompt)


handled_by("speed_dial", Feature.SPEED_DIAL_8, Feature.SPEED_DIAL_100)
