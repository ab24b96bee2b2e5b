"""The tenant's call queues as the engine reads them (``TenantSnapshot.callcenter``):
read from the models only (``telephony.engine.snapshots`` builds the snapshot with it; the
actions in ``callcenter.actions`` publish it), so this module imports no publisher."""

from __future__ import annotations

from audio.models import media_path
from telephony.sip import contract

from .models import AgentSkill, Queue

__all__ = ["callcenter_snapshot"]


def callcenter_snapshot() -> contract.CallCenterSnapshot:
    """Every queue with its agents (in hunt order, each with its skill levels), its
    supervisors, its music class (the id, as ``MediaSnapshot.moh_classes`` keys classes) and
    its greeting (the prompt's file, as the engine plays prompts). Run inside the tenant's
    schema."""
    skills: dict[int, dict[str, int]] = {}
    for ext_id, skill, level in AgentSkill.objects.values_list("extension_id", "skill", "level"):
        skills.setdefault(ext_id, {})[skill] = level
    queues = Queue.objects.order_by("number").select_related("greeting")
    queues = queues.prefetch_related("agents__extension", "supervisors")
    rows = []
    for q in queues:
        rows.append(
            {
                "number": q.number,
                "name": q.name,
                "enabled": q.enabled,
                "strategy": q.strategy,
                "agents": [
                    {"number": a.extension.number, "skills": skills.get(a.extension_id, {})}
                    for a in q.agents.all()
                ],
                "required_skills": q.required_skills,
                "ring_seconds": q.ring_seconds,
                "max_wait_seconds": q.max_wait_seconds,
                "max_callers": q.max_callers,
                "overflow": q.overflow,
                "wait_without_agents": q.wait_without_agents,
                "wrap_up_seconds": q.wrap_up_seconds,
                "music_class": str(q.music_class_id) if q.music_class_id else "",
                "greeting": media_path(q.greeting.file) if q.greeting is not None else "",
                "announce_position": q.announce_position,
                "announce_wait": q.announce_wait,
                "announce_seconds": q.announce_seconds,
                "sla_seconds": q.sla_seconds,
                "sla_percent": q.sla_percent,
                "sticky": q.sticky,
                "vip": q.vip,
                "blacklist": q.blacklist,
                "callback": q.callback,
                "callback_prefix": q.callback_prefix,
                "auto_ready": q.auto_ready,
                "supervisors": sorted(e.number for e in q.supervisors.all()),
                "recording": q.recording,
                "caller_id_prefix": q.caller_id_prefix,
            }
        )
    return contract.CallCenterSnapshot.read({"queues": rows})
