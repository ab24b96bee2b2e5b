"""``feature``: a feature access code dialled by a phone (``media.codes``; ``data``: the
``feature`` and the number after the code, ``arg``).

The voicemail codes lead to the mailbox menu (the caller's own mailbox) or straight to a
mailbox to leave a message. The codes that change the caller's own settings (do not disturb,
forwarding to a number or to voicemail, on and off) are requests to the Django side
(``feature.set``: the change is audited and the phones' snapshot follows), confirmed to the
caller by a prompt. Only an extension's own phones use codes: a trunk's caller never does.
"""

from __future__ import annotations

import logging
import re

from telephony.sip.calls import routing
from telephony.sip.calls.call import Call
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import (
    FEATURE_IN_CALL,
    EventType,
    ExtensionSnapshot,
    Feature,
    TenantSnapshot,
)

from .base import register

__all__ = ["HANDLED_BY", "FeatureCode", "feature_codes", "handled_by", "taken_by"]

#: Features taken by a destination type of their own (pickup, park, ...): feature -> kind.
#: The call goes to ``Destination(kind, <the number after the code>, {"feature": ...})``.
HANDLED_BY: dict[str, str] = {}


def handled_by(kind: str, *features: str) -> None:
    """Calls to the codes of ``features`` go to destination type ``kind``."""
    for feature in features:
        HANDLED_BY[str(feature)] = kind


def taken_by(feature: str, arg: str, **data: object) -> Destination | None:
    """The destination a code of ``feature`` (``arg``: the number after it) is taken by when
    a destination type of its own takes it (direct voicemail, pickup, park...), with ``data``
    added; None for the codes this module answers itself (settings, ``*57``)."""
    if feature == Feature.VOICEMAIL_DIRECT:
        return Destination("voicemail", arg, {"reason": "unavailable"})
    kind = HANDLED_BY.get(feature)
    if kind is None:
        return None
    return Destination(kind, arg, {"feature": feature, **data})


log = logging.getLogger(__name__)

_TARGET = re.compile(r"\+?[0-9*#]{1,32}")  # a forward target keyed on a phone


def _confirmation(feature: str) -> str | None:
    """The prompt that confirms a settings code ("dnd-on", "forward-off", "voicemail-on"...,
    from the feature's name); None for a feature that is no setting."""
    kind, state = feature.split("_", 1)[0], feature.rsplit("_", 1)[-1]
    if kind in ("dnd", "forward", "voicemail") and state in ("on", "off"):
        return f"{kind}-{state}"
    return None


@routing.rule
def feature_codes(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """A number that starts with one of the tenant's codes (dialled, not forwarded to)."""
    if path.hops or not number.startswith(("*", "#")):
        return None
    found = tenant.media.feature(number)
    if found is None:
        return None
    feature, arg = found
    return Destination("feature", number, {"feature": str(feature), "arg": arg})


@register("feature")
class FeatureCode:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        feature, arg = str(destination.data["feature"]), str(destination.data["arg"])
        caller = call.caller.number
        if call.inbound or call.tenant.extensions.get(caller) is None:
            self.s.router.connect(call, reject(403, reason="feature code from outside"))
            return
        if feature == Feature.VOICEMAIL:
            await self._to(call, Destination("mailbox", caller))
            return
        taken = taken_by(feature, arg)
        if taken is not None:
            await self._to(call, taken)
            return
        if feature in FEATURE_IN_CALL:
            # A recording code is keyed during a call, never dialled as one.
            self.s.router.connect(call, reject(404, reason="in-call code dialled as a call"))
            return
        prompt = _confirmation(feature)
        if prompt is None:
            self.s.router.connect(call, reject(404))
            return
        if arg and (not _TARGET.fullmatch(arg) or arg == caller):
            log.info("call %s: %s with a bad number %r", call.id, feature, arg)
            prompt = "feature-failed"
        else:
            self.s.media.request(
                call, EventType.FEATURE_SET, extension=caller, feature=feature, number=arg
            )
        media = self.s.media
        if await media.take(call) is None:
            # No media server to confirm it: the change is made all the same.
            self.s.calls.fail(call, 480, reason="feature code without confirmation")
            return
        await media.goodbye(call, f"feature {feature}", prompt)

    async def _to(self, call: Call, destination: Destination) -> None:
        pending = self.s.router.connect(call, destination)
        if pending is not None:
            await pending
