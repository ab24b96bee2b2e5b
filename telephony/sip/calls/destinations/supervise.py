"""``supervise``: the supervision codes, ``*63`` (listen), ``*64`` (whisper), ``*65`` (barge)
+ the agent's extension (``Feature.LISTEN`` / ``WHISPER`` / ``BARGE``).

The supervisor's call is taken by the media server and joins the agent's current queue call
(``supervision.py``: the mechanism, the permission check and the mode keys). Refused (not a
supervisor of that call's queue, no queue call, another tenant's number, no media server to
carry it): the supervisor hears "feature-failed" and is hung up on, and nothing changes for
the agent's call. Only an extension's own phone supervises: a trunk's caller gets 403.
"""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.calls.supervision import Supervisions
from telephony.sip.contract import Feature, SupervisionMode

from .base import register
from .feature import handled_by

__all__ = ["MODES", "Supervise"]

log = logging.getLogger(__name__)

handled_by("supervise", Feature.LISTEN, Feature.WHISPER, Feature.BARGE)

MODES: dict[str, str] = {
    Feature.LISTEN: SupervisionMode.LISTEN,
    Feature.WHISPER: SupervisionMode.WHISPER,
    Feature.BARGE: SupervisionMode.BARGE,
}


@register("supervise")
class Supervise:
    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.supervisions = Supervisions(services)

    async def connect(self, call: Call, destination: Destination) -> None:
        mode = MODES.get(str(destination.data.get("feature")), SupervisionMode.LISTEN)
        supervisor, agent = call.caller.number, destination.target
        if call.inbound or call.tenant.extensions.get(supervisor) is None:
            self.s.router.connect(call, reject(403, reason="supervision from outside"))
            return
        target = self.supervisions.find(call.tenant, supervisor, agent)
        media = self.s.media
        session = await media.take(call)
        if session is None:
            if call.state != "ended":
                self.s.calls.fail(call, 480, reason="supervision needs the media server")
            return
        if target is None or not await self.supervisions.join(call, session, target, mode):
            log.info("call %s: %s may not supervise %s", call.id, supervisor, agent)
            await media.goodbye(call, "supervision refused", "feature-failed")
            return
        log.info("call %s: %s supervises %s's call %s (%s)", call.id, supervisor, agent,
                 target.id, mode)  # fmt: skip
