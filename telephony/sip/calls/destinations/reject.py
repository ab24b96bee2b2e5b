"""``reject``: the caller is answered an error (unknown number, busy, unavailable...)."""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices

from .base import register

__all__ = ["Reject"]

log = logging.getLogger(__name__)


@register("reject")
class Reject:
    """Answers the caller ``data["code"]`` and ends the call."""

    def __init__(self, services: CallServices) -> None:
        self.s = services

    def connect(self, call: Call, destination: Destination) -> None:
        data = destination.data
        if data.get("warning"):
            # The caller hears "unavailable"; the admin reads why.
            log.warning("call %s: %s", call.id, data["warning"])
        code = int(data["code"])
        self.s.calls.fail(
            call, code, status=str(data.get("status", "")), reason=str(data.get("reason", ""))
        )
