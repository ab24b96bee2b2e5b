"""The contact centre's actions on the Django side: call queues (with their agents and
supervisors), agents' skills and agents' states.

Queues are written like ring groups (``telephony.team``, whose validators this module reuses):
one action writes a queue with its agents and supervisors, audited, and the tenant's snapshot
is republished on commit (``callcenter.snapshot`` builds its queues). A queue's number shares
the tenant's dial plan with extensions, menus and groups; a queue that an inbound rule, an IVR
menu, a ring group's or another queue's overflow sends calls to is not deleted (409).

Agents' states are live state, not rows: they are written to the contract's ``AGENTS`` hash
exactly as the engine writes them for the feature codes, announced on ``AGENTS_CHANGED``, and
an ``agent.state`` event is appended to the events stream, so that the statistics and the
fan-out see a change made here like one made on a phone.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import IntegrityError, transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import CapabilityExceeded, Conflict, NotFound, QuotaExceeded, ValidationFailed
from pbx.tenancy import require_tenant
from telephony.engine.snapshots import publish_on_commit
from telephony.models import Extension
from telephony.sip import contract
from telephony.team import _bool, _Errors, _extensions, _int, _number, _overflow, _texts
from tenants.choices import RecordingPolicy

from .choices import AgentState, QueueStrategy
from .models import AgentSkill, Queue, QueueAgent

__all__ = [
    "ANNOUNCE_SECONDS",
    "MAX_AGENTS",
    "MAX_LISTED",
    "MAX_WAIT_SECONDS",
    "RING_SECONDS",
    "WRAP_UP_SECONDS",
    "do_create_queue",
    "do_delete_queue",
    "do_set_agent_skills",
    "do_set_agent_state",
    "do_supervise",
    "do_update_queue",
    "queue_references",
]

#: Bounds of the queue's seconds and counts (the contract's readers clamp to the same).
RING_SECONDS = (5, 300)
MAX_WAIT_SECONDS = (0, 86400)  # 0: no limit
WRAP_UP_SECONDS = (0, 3600)
ANNOUNCE_SECONDS = (0, 3600)  # 0: never
SLA_SECONDS = (1, 3600)
SLA_PERCENT = (0, 100)
MAX_CALLERS = (0, 1000)  # 0: no limit
MAX_AGENTS = 200
MAX_SUPERVISORS = 50
MAX_LISTED = 200  # entries of a VIP list or blacklist
MAX_SKILLS = 50
SKILL_LEVELS = (1, 10)
#: Who may be named as having set a state (``AgentStatus.by``).
SETTERS = ("api", "portal", "phone", "engine")

QUEUE_FIELDS = (
    "number", "name", "enabled", "strategy", "required_skills", "ring_seconds",
    "max_wait_seconds", "max_callers", "overflow", "wait_without_agents", "wrap_up_seconds",
    "music_class", "greeting", "announce_position", "announce_wait", "announce_seconds",
    "sla_seconds", "sla_percent", "sticky", "vip", "blacklist", "callback", "callback_prefix",
    "auto_ready", "recording", "caller_id_prefix",
)  # fmt: skip
INTS = {
    "ring_seconds": RING_SECONDS,
    "max_wait_seconds": MAX_WAIT_SECONDS,
    "max_callers": MAX_CALLERS,
    "wrap_up_seconds": WRAP_UP_SECONDS,
    "announce_seconds": ANNOUNCE_SECONDS,
    "sla_seconds": SLA_SECONDS,
    "sla_percent": SLA_PERCENT,
}
BOOLS = (
    "enabled", "wait_without_agents", "announce_position", "announce_wait", "sticky",
    "callback", "auto_ready",
)  # fmt: skip


def _tenant():
    return require_tenant("contact centre actions")


def _feature_on(tenant) -> None:
    if not getattr(tenant, "feature_queues", True):
        raise CapabilityExceeded(
            "Call queues are not enabled for this tenant.",
            fields={"number": ["call queues are not enabled for this tenant"]},
        )


# ------------------------------------------------------------------------------ lookups


def queue_references(number: str, *, exclude_queue: int | None = None) -> list[str]:
    """What sends calls to queue ``number``, in words: inbound rules, IVR menus, ring groups'
    and other queues' overflow (``routing.lookups.target_references``)."""
    from routing.lookups import target_references

    return target_references("queue", number, exclude_queue=exclude_queue)


def _in_use(number: str, exclude_queue: int | None) -> None:
    used = queue_references(number, exclude_queue=exclude_queue)
    if used:
        raise Conflict(
            f"Queue {number} is in use by {'; '.join(used)}: change them first.",
            fields={"number": [f"in use by {'; '.join(used)}"]},
        )


# ------------------------------------------------------------------------------ validators


def _queue_number(errors: _Errors, tenant, number: str, queue: Queue | None) -> None:
    """A free number of the tenant's dial plan: no extension, menu, group, park slot nor
    another queue has it (``routing.lookups.number_user``)."""
    _number(errors, tenant, number, ("queue", queue.pk) if queue is not None else None)


def _skills(errors: _Errors, name: str, value: Any) -> dict[str, int] | None:
    """``{slug: level 1..10}``."""
    from django.core.validators import validate_slug

    if not isinstance(value, dict):
        errors.add(name, "an object {skill: level 1..10}")
        return None
    if len(value) > MAX_SKILLS:
        errors.add(name, f"at most {MAX_SKILLS} skills")
        return None
    out: dict[str, int] = {}
    lo, hi = SKILL_LEVELS
    for skill, level in value.items():
        try:
            validate_slug(skill)
        except Exception:
            errors.add(name, f"{str(skill)[:40]!r}: a skill is a slug (letters, digits, - and _)")
            continue
        if len(skill) > 40:
            errors.add(name, f"{skill[:40]}...: at most 40 characters")
            continue
        if not isinstance(level, int) or isinstance(level, bool) or not lo <= level <= hi:
            errors.add(name, f"{skill}: a level from {lo} to {hi}")
            continue
        out[skill.lower()] = level
    return out


def _listed(errors: _Errors, fields: dict, name: str) -> None:
    """A VIP list or blacklist: numbers (``+`` and digits) or dial patterns."""
    if name not in fields:
        return
    value = fields[name]
    if value is None:
        fields[name] = []
        return
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(name, "a list of numbers or dial patterns")
        return
    if len(value) > MAX_LISTED:
        errors.add(name, f"at most {MAX_LISTED} entries")
        return
    out: list[str] = []
    for raw in value:
        entry = raw.strip()
        number = entry[1:] if entry.startswith("+") else entry
        if not (number.isdigit() and number.isascii() and len(entry) <= 32):
            try:
                contract.compile_pattern(entry)
            except ValueError as exc:
                errors.add(name, f"{entry[:40]!r}: not a number nor a dial pattern ({exc})")
                continue
        if entry not in out:
            out.append(entry)
    fields[name] = out


def _foreign(errors: _Errors, fields: dict, name: str, model) -> None:
    """``music_class`` / ``greeting``: the id of one of the tenant's rows, or None."""
    if name not in fields:
        return
    value = fields[name]
    if value in (None, ""):
        fields[name] = None
        return
    if isinstance(value, model):
        return
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        errors.add(name, "an id or null")
        return
    row = model.objects.filter(pk=value).first()
    if row is None:
        errors.add(name, f"no such {model._meta.verbose_name}")
        return
    fields[name] = row


def _validated(tenant, fields: dict, queue: Queue | None) -> tuple[dict, list | None, list | None]:
    """(the queue's fields, its agents or None, its supervisors or None when not being
    changed), or ValidationFailed with a field error for each bad value."""
    from audio.models import MusicClass, Prompt

    agents, supervisors = fields.get("agents"), fields.get("supervisors")
    has_agents, has_supervisors = "agents" in fields, "supervisors" in fields
    fields = {k: v for k, v in fields.items() if k in QUEUE_FIELDS}
    errors = _Errors()
    _texts(
        errors,
        fields,
        queue,
        {"number": 64, "name": 120, "caller_id_prefix": 16, "callback_prefix": 8},
        ("number", "name"),
    )
    number = fields.get("number")
    changed = number is not None and (queue is None or number != queue.number)
    if changed and "number" not in errors:
        _queue_number(errors, tenant, str(number), queue)
    own = str(number if number is not None else getattr(queue, "number", ""))
    if "callback_prefix" in fields and "callback_prefix" not in errors:
        prefix = fields["callback_prefix"]
        if prefix and not all(ch.isdigit() or ch in "+*#" for ch in prefix):
            errors.add("callback_prefix", "digits, + * or # only")
    if "strategy" in fields and fields["strategy"] not in QueueStrategy.values:
        errors.add("strategy", f"one of {', '.join(QueueStrategy.values)}")
    if "recording" in fields:
        if fields["recording"] is None:
            fields["recording"] = ""
        if fields["recording"] not in RecordingPolicy.values:
            errors.add("recording", f"one of {', '.join(repr(v) for v in RecordingPolicy.values)}")
    for name, bounds in INTS.items():
        _int(errors, fields, name, bounds)
    _bool(errors, fields, *BOOLS)
    if "required_skills" in fields:
        skills = _skills(errors, "required_skills", fields["required_skills"] or {})
        if skills is not None:
            fields["required_skills"] = skills
    _listed(errors, fields, "vip")
    _listed(errors, fields, "blacklist")
    _foreign(errors, fields, "music_class", MusicClass)
    _foreign(errors, fields, "greeting", Prompt)
    _overflow(tenant, errors, fields, own, kind="queue", model=Queue, label="queue")
    chosen = _extensions(errors, "agents", agents, MAX_AGENTS, "") if has_agents else None
    watching = (
        _extensions(errors, "supervisors", supervisors, MAX_SUPERVISORS, "")
        if has_supervisors
        else None
    )
    if queue is not None and number is not None and number != queue.number and not errors:
        _in_use(queue.number, queue.pk)
    if errors:
        raise ValidationFailed("The queue has invalid fields.", fields=dict(errors))
    return fields, chosen, watching


# ---------------------------------------------------------------------------------- queues


def queue_agents(queue: Queue) -> list[str]:
    """The queue's agents' numbers in hunt order (as the API shows them)."""
    return [a.extension.number for a in queue.agents.all()]


def queue_supervisors(queue: Queue) -> list[str]:
    return sorted(e.number for e in queue.supervisors.all())


def _set_agents(queue: Queue, agents: list[Extension]) -> None:
    QueueAgent.objects.filter(queue=queue).delete()
    QueueAgent.objects.bulk_create(
        QueueAgent(queue=queue, extension=ext, position=i) for i, ext in enumerate(agents)
    )


def _quota(tenant) -> None:
    from tenants.models import Tenant

    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if Queue.objects.count() >= locked.max_queues:
        raise QuotaExceeded(
            f"The tenant may have at most {locked.max_queues} call queues.",
            fields={"number": [f"quota of {locked.max_queues} queues reached"]},
        )


def _taken(number: str) -> Conflict:
    return Conflict(
        f"A queue has the number {number}.", fields={"number": ["another queue has this number"]}
    )


def _audited(values: dict) -> dict:
    out = dict(values)
    for name in ("music_class", "greeting"):
        if name in out:
            out[name] = getattr(out[name], "pk", out[name])
    return out


def do_create_queue(*, actor: Actor, fields: dict) -> Queue:
    """A new call queue with its agents (``fields["agents"]``: extension numbers in hunt
    order) and supervisors (extension numbers)."""
    tenant = _tenant()
    _feature_on(tenant)
    values, agents, supervisors = _validated(tenant, dict(fields), None)
    with transaction.atomic():
        _quota(tenant)
        try:
            with transaction.atomic():
                queue = Queue.objects.create(**values)
        except IntegrityError as exc:  # a queue of that number made meanwhile
            raise _taken(values["number"]) from exc
        _set_agents(queue, agents or [])
        queue.supervisors.set(supervisors or [])
        changes = {
            **_audited(values),
            "agents": [e.number for e in agents or []],
            "supervisors": sorted(e.number for e in supervisors or []),
        }
        audit.record(actor, "queue.create", queue, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return queue


def do_update_queue(queue: Queue, *, actor: Actor, fields: dict) -> Queue:
    """Change a queue (only the fields given); ``agents`` / ``supervisors``, when given,
    replace the queue's."""
    tenant = _tenant()
    _feature_on(tenant)
    values, agents, supervisors = _validated(tenant, dict(fields), queue)
    with transaction.atomic():
        queue = Queue.objects.select_for_update().get(pk=queue.pk)
        changes = audit.diff(queue, _audited(values))
        for name, value in values.items():
            setattr(queue, name, value)
        try:
            with transaction.atomic():
                queue.save()
        except IntegrityError as exc:
            raise _taken(queue.number) from exc
        if agents is not None:
            before, after = queue_agents(queue), [e.number for e in agents]
            if before != after:
                changes["agents"] = [before, after]
                _set_agents(queue, agents)
        if supervisors is not None:
            before, after = queue_supervisors(queue), sorted(e.number for e in supervisors)
            if before != after:
                changes["supervisors"] = [before, after]
                queue.supervisors.set(supervisors)
        audit.record(actor, "queue.update", queue, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return queue


def do_delete_queue(queue: Queue, *, actor: Actor) -> None:
    """Delete a queue nothing sends calls to; else Conflict (409) naming what does. Its
    agents' and supervisors' rows go with it; its call history stays (``QueueCall``)."""
    tenant = _tenant()
    with transaction.atomic():
        queue = Queue.objects.select_for_update().get(pk=queue.pk)
        _in_use(queue.number, queue.pk)
        audit.record(actor, "queue.delete", queue, tenant=tenant)
        queue.delete()
        publish_on_commit(tenant)


# ---------------------------------------------------------------------------------- skills


def agent_skills(extension: Extension) -> dict[str, int]:
    return dict(AgentSkill.objects.filter(extension=extension).values_list("skill", "level"))


def do_set_agent_skills(extension: Extension, *, actor: Actor, skills: dict[str, int]) -> None:
    """Replace ``extension``'s skills (``{skill: level 1..10}``; {} removes them all)."""
    tenant = _tenant()
    errors = _Errors()
    cleaned = _skills(errors, "skills", skills)
    if errors or cleaned is None:
        raise ValidationFailed("The skills are invalid.", fields=dict(errors))
    with transaction.atomic():
        extension = Extension.objects.select_for_update().get(pk=extension.pk)
        before = agent_skills(extension)
        AgentSkill.objects.filter(extension=extension).delete()
        AgentSkill.objects.bulk_create(
            AgentSkill(extension=extension, skill=skill, level=level)
            for skill, level in sorted(cleaned.items())
        )
        if before != cleaned:
            changes = {"skills": [before, cleaned]}
            audit.record(actor, "agent.skills", extension, tenant=tenant, changes=changes)
        publish_on_commit(tenant)


# ---------------------------------------------------------------------------- agent states


def settable_states() -> tuple[str, ...]:
    """The states an agent may be put in by hand (wrap-up is the engine's)."""
    return tuple(s for s in AgentState.values if s != AgentState.WRAP_UP)


def do_set_agent_state(
    *,
    actor: Actor,
    extension: str,
    state: str,
    queue: str | None = None,
    reason: str = "",
    by: str = "api",
) -> dict[str, contract.AgentStatus]:
    """Put agent ``extension`` (a number) in ``state`` in queue ``queue`` (a number), or in
    every queue it is an agent of (``queue`` None). Written to the ``AGENTS`` hash,
    announced on ``AGENTS_CHANGED`` and appended as ``agent.state`` events to the events
    stream. Returns queue number -> the status written. NotFound for an unknown extension or
    queue; ValidationFailed when the extension is not the queue's agent (or nobody's)."""
    from telephony.engine.store import client, redis_key

    tenant = _tenant()
    _feature_on(tenant)
    errors = _Errors()
    if state not in settable_states():
        errors.add("state", f"one of {', '.join(settable_states())}")
    if not isinstance(reason, str) or contract.clean_reason(reason) != reason.strip():
        errors.add("reason", f"printable text, at most {contract.AGENT_REASON_MAX} characters")
    if by not in SETTERS:
        errors.add("by", f"one of {', '.join(SETTERS)}")
    if errors:
        raise ValidationFailed("The agent state is invalid.", fields=dict(errors))
    ext = Extension.objects.filter(number=extension).first()
    if ext is None:
        raise NotFound(f"No extension {extension}.")
    rows = QueueAgent.objects.filter(extension=ext).select_related("queue")
    if queue is not None:
        if not Queue.objects.filter(number=queue).exists():
            raise NotFound(f"No queue {queue}.")
        rows = rows.filter(queue__number=queue)
    numbers = sorted({row.queue.number for row in rows})
    if not numbers:
        where = f"queue {queue}" if queue is not None else "any queue"
        raise ValidationFailed(
            f"Extension {extension} is not an agent of {where}.",
            fields={"agent": [f"not an agent of {where}"]},
        )
    now = time.time()
    status = contract.AgentStatus(
        state=state,
        reason=contract.clean_reason(reason) if state == AgentState.NOT_READY else "",
        since=now,
        by=by,
    )
    schema = tenant.schema_name
    with client() as r:
        pipe = r.pipeline(transaction=True)
        agents_key = redis_key(contract.AGENTS, schema=schema)
        for number in numbers:
            pipe.hset(agents_key, contract.agent_field(number, extension), status.to_json())
        for number in numbers:
            pipe.xadd(
                redis_key(contract.EVENTS),
                {
                    "type": contract.EventType.AGENT_STATE,
                    "ts": f"{now:.3f}",
                    "schema": schema,
                    "tenant_id": str(tenant.pk),
                    "queue": number,
                    "agent": extension,
                    "state": status.state,
                    "reason": status.reason,
                    "by": by,
                },
            )
        pipe.publish(redis_key(contract.AGENTS_CHANGED), schema)
        pipe.execute()
    audit.record(
        actor,
        "agent.state",
        ext,
        tenant=tenant,
        changes={"state": state, "reason": status.reason, "queues": numbers, "by": by},
    )
    return dict.fromkeys(numbers, status)


# ----------------------------------------------------------------------------- supervision


class _Supervision:
    """The audit's target of a supervision request (it lives in the engine, not a row)."""

    def __init__(self, queue: Queue, agent: str) -> None:
        self.pk = queue.pk
        self._label = f"queue {queue.number} agent {agent}"

    def __str__(self) -> str:
        return self._label


def do_supervise(queue: Queue, *, actor: Actor, supervisor: str, agent: str, mode: str) -> None:
    """Ask the engines to ring ``supervisor`` (one of the queue's supervisors) and join it to
    ``agent``'s (one of the queue's agents) current call in ``mode`` (listen, whisper,
    barge): ``contract.SuperviseCall`` on the control channel. ValidationFailed naming the
    field that is not the queue's."""
    from telephony.engine.state import send_control

    tenant = _tenant()
    _feature_on(tenant)
    errors = _Errors()
    if mode not in contract.SupervisionMode._value2member_map_:
        errors.add("mode", f"one of {', '.join(contract.SupervisionMode)}")
    if not queue.supervisors.filter(number=supervisor).exists():
        errors.add("supervisor", f"not a supervisor of queue {queue.number}")
    if not queue.agents.filter(extension__number=agent).exists():
        errors.add("agent", f"not an agent of queue {queue.number}")
    if errors:
        raise ValidationFailed("The supervision request is invalid.", fields=dict(errors))
    send_control(
        contract.SuperviseCall(
            schema=tenant.schema_name, supervisor=supervisor, agent=agent, mode=mode
        )
    )
    audit.record(
        actor,
        "queue.supervise",
        _Supervision(queue, agent),
        tenant=tenant,
        changes={"supervisor": supervisor, "agent": agent, "mode": mode},
    )
