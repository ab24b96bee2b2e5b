"""``agent``: the queue agents' feature codes (``*38`` log in, ``*39`` log out, ``*36`` ready,
``*37`` not ready; each optionally followed by a queue's number).

With a queue number the change is the caller's state in that queue (it must be one of its
agents, else "feature not available"); without one, in every queue the caller is an agent
of. Ready also ends a wrap-up; not ready from a phone has the reason "phone". The change is
stored by the engine's agent book (``AGENTS``, ``agent.state`` events, ``by="phone"``) and
confirmed by a prompt, then the PBX hangs up.
"""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination, reject
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import AgentState, Feature, Queue

from .base import register
from .feature import handled_by

__all__ = ["AgentCodes"]

log = logging.getLogger(__name__)

STATES = {
    Feature.AGENT_LOGIN: (AgentState.READY, "agent-logged-in"),
    Feature.AGENT_LOGOUT: (AgentState.LOGGED_OUT, "agent-logged-out"),
    Feature.AGENT_READY: (AgentState.READY, "agent-ready"),
    Feature.AGENT_NOT_READY: (AgentState.NOT_READY, "agent-not-ready"),
}


@register("agent")
class AgentCodes:
    """Changes the calling extension's agent state by a feature code."""

    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        feature = str(destination.data.get("feature") or "")
        tenant, caller = call.tenant, call.caller.number
        if call.inbound or tenant.extensions.get(caller) is None or feature not in STATES:
            self.s.router.connect(call, reject(403, reason="agent code from outside"))
            return
        state, prompt = STATES[Feature(feature)]
        number = destination.target
        centre = tenant.callcenter
        queues: tuple[Queue, ...]
        if number:
            queue = centre.queues.get(number)
            queues = (queue,) if queue is not None and queue.agent(caller) is not None else ()
        else:
            queues = centre.queues_of(caller)
        if not queues:
            log.info("call %s: %s is no agent of %r", call.id, caller, number or "any queue")
            prompt = "feature-failed"
        for queue in queues:
            await self.s.agents.set(
                tenant,
                queue,
                caller,
                state,
                reason="phone" if state == AgentState.NOT_READY else "",
                by="phone",
            )
        media = self.s.media
        if await media.take(call) is None:
            self.s.calls.fail(call, 480, reason="feature code without confirmation")
            return
        await media.goodbye(call, f"feature {feature}", prompt)


handled_by(
    "agent",
    Feature.AGENT_LOGIN,
    Feature.AGENT_LOGOUT,
    Feature.AGENT_READY,
    Feature.AGENT_NOT_READY,
)
