"""Whether a call may be recorded: the strongest recording policy among its parties (the
tenant's, the caller's and callee's extensions', the trunks it went through, the queue whose
agent answered it). Pure: anchoring asks it before the phones ring (a call that may be
recorded later is anchored from the start; a queue asks :func:`queue_policy` before its agents
ring), the recorder at the answer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from telephony.sip.contract import Queue, RecordingPolicy, TrunkSnapshot, strongest_policy

from .call import Call

__all__ = ["effective_policy", "queue_policy"]

_NONE: Mapping[int, TrunkSnapshot] = {}


def effective_policy(call: Call, trunks: Mapping[int, TrunkSnapshot] = _NONE) -> str:
    """The call's RecordingPolicy: the strongest of the tenant's, its extensions' (the caller,
    unless it came in on a trunk; the extension rung and the one that answered), its trunks'
    (``call.trunks``, looked up in ``trunks``) and, once a queue's agent answered it
    (``call.queue``), the queue's. An extension's, trunk's or queue's "" inherits."""
    tenant = call.tenant
    extensions = tenant.extensions
    policies = [tenant.recording.policy]
    if not call.inbound and (caller := extensions.get(call.caller.number)) is not None:
        policies.append(caller.recording)
    b = call.b
    for number in (call.target, b.user if b is not None else ""):
        ext = extensions.get(number) if number else None
        if ext is not None:
            policies.append(ext.recording)
    for trunk_id in call.trunks:
        trunk = trunks.get(trunk_id)
        if trunk is not None:
            policies.append(trunk.recording)
    queue = tenant.callcenter.queues.get(call.queue) if call.queue else None
    if queue is not None:
        policies.append(queue.recording)
    return strongest_policy(*policies) or RecordingPolicy.NEVER


def queue_policy(call: Call, queue: Queue, agents: Iterable[str]) -> str:
    """The strongest policy ``call`` may have once one of ``agents`` (extension numbers)
    answers it for ``queue``: its own so far, the queue's and the agents' extensions'. Asked
    before the agents ring (the offer they get keeps only recordable codecs)."""
    extensions = call.tenant.extensions
    agent_policies = [ext.recording for n in agents if (ext := extensions.get(n)) is not None]
    policy = strongest_policy(effective_policy(call), queue.recording, *agent_policies)
    return policy or RecordingPolicy.NEVER
