"""Whether a call may be recorded: the strongest recording policy among its parties (the
tenant's, the caller's and callee's extensions', the trunks it went through). Pure: anchoring
asks it before the phones ring (a call that may be recorded later is anchored from the start),
the recorder at the answer."""

from __future__ import annotations

from collections.abc import Mapping

from telephony.sip.contract import RecordingPolicy, TrunkSnapshot, strongest_policy

from .call import Call

__all__ = ["effective_policy"]

_NONE: Mapping[int, TrunkSnapshot] = {}


def effective_policy(call: Call, trunks: Mapping[int, TrunkSnapshot] = _NONE) -> str:
    """The call's RecordingPolicy: the strongest of the tenant's, its extensions' (the caller,
    unless it came in on a trunk; the extension rung and the one that answered) and its
    trunks' (``call.trunks``, looked up in ``trunks``). An extension's or trunk's "" inherits."""
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
    return strongest_policy(*policies) or RecordingPolicy.NEVER
