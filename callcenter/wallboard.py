"""The wallboard: each queue's callers waiting, today's figures and its agents' states, as the
portal page and ``/api/v1/wallboard/`` render them, pushed live over Channels.

The payload (``wallboard(tenant)``)::

    {"at": epoch, "queues": [{"number", "name", "waiting", "longest_wait", "callers": [...],
      "answered", "abandoned", "overflowed", "service_level", "sla_percent", "sla_seconds",
      "alert", "alerts": [...], "agents": {state: n}, "agent_list": [...]}]}

- callers waiting come from the engines (``contract.QUEUE_LIVE``: one QueueLive per queue and
  engine, merged here); ``longest_wait`` is in seconds at ``at``;
- today's answered / abandoned / overflowed and the service level (answered within the
  queue's ``sla_seconds`` among answered + abandoned, in percent; None when there were none)
  are one aggregate query over ``QueueCall`` since the start of the tenant's local day;
- agents' states come from ``contract.AGENTS`` (``callcenter.agents.agent_states``: a missing
  field is the queue's default), and an agent ready or in wrap-up who rings or talks (the live
  call state the fan-out keeps, ``events.live``) counts as ``ringing`` / ``on_call``;
- ``alerts``: the service level below the queue's ``sla_percent``, and each caller waiting
  longer than ``sla_seconds`` (what the engine's ``queue.sla`` events announce).

The fan-out (:mod:`events.fanout`) calls :func:`push` after a batch that held queue events or
call events of agents: one ``wallboard.update`` frame per tenant per batch to the group
``tenant.<schema>.wallboard`` (:func:`group_name`), which the wallboard consumers relay. Today's
figures come from rows the CDR drain writes, usually after the fan-out's frame for the same
event went out: the drain sends a frame of its own after a batch that recorded a visit's
outcome (``callcenter.engine.push_wallboards``), else a caller's hang-up would show as
abandoned only on the next event or reload.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django_tenants.utils import schema_context

from telephony.sip.contract import QUEUE_LIVE, AgentState, QueueLive
from telephony.sip.contract import key as contract_key

from .agents import agent_states
from .choices import QueueOutcome
from .stats import OVERFLOWS, service_level, tenant_zone

log = logging.getLogger(__name__)

GROUP_NAME = "tenant.{schema}.wallboard"
ON_CALL = "on_call"
RINGING = "ringing"
AGENT_COUNTS = (
    AgentState.READY,
    AgentState.NOT_READY,
    AgentState.LOGGED_OUT,
    AgentState.WRAP_UP,
    ON_CALL,
    RINGING,
)


def group_name(schema: str) -> str:
    """The Channels group a tenant's wallboard updates go to."""
    return GROUP_NAME.format(schema=schema)


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _tenant(tenant_or_schema: Any):
    if not isinstance(tenant_or_schema, str):
        return tenant_or_schema
    from tenants.models import Tenant

    return Tenant.objects.get(schema_name=tenant_or_schema)


def day_start(tenant, at: float) -> datetime:
    """The start of the tenant's local day that holds ``at`` (an aware datetime)."""
    tz = tenant_zone(tenant)
    local = datetime.fromtimestamp(at, tz=tz)
    return datetime(local.year, local.month, local.day, tzinfo=tz)


def waiting_callers(redis: Any, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Queue number -> its waiting callers over every engine, VIPs first, then by arrival."""
    merged: dict[str, list[Any]] = {}
    raw = redis.hgetall(contract_key(settings.SIP_REDIS_PREFIX, QUEUE_LIVE, schema=schema))
    for name, value in raw.items():
        queue = _s(name).split("|", 1)[0]
        merged.setdefault(queue, []).extend(QueueLive.read(value).waiting)
    return {
        queue: [
            {
                "caller": w.caller,
                "caller_name": w.caller_name,
                "since": w.since,
                "vip": w.vip,
                "callback": w.callback,
            }
            for w in sorted(callers, key=lambda w: (not w.vip, w.since))
        ]
        for queue, callers in merged.items()
    }


def today_counts(numbers: Iterable[str], since: datetime) -> dict[str, dict]:
    """Queue number -> answered, abandoned, overflowed, answered within SLA since ``since``:
    one aggregate query for every queue."""
    from .models import QueueCall

    rows = (
        QueueCall.objects.filter(queue_number__in=list(numbers), joined_at__gte=since)
        .values("queue_number")
        .annotate(
            answered=Count("id", filter=Q(outcome=QueueOutcome.ANSWERED)),
            abandoned=Count("id", filter=Q(outcome=QueueOutcome.ABANDONED)),
            overflowed=Count("id", filter=Q(outcome__in=OVERFLOWS)),
            within=Count("id", filter=Q(outcome=QueueOutcome.ANSWERED, within_sla=True)),
        )
        .order_by()
    )
    return {r["queue_number"]: dict(r) for r in rows}


def wallboard(
    tenant_or_schema: Any,
    *,
    queues: Iterable[str] | None = None,
    redis: Any = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The tenant's wallboard (every queue, or only ``queues``' numbers)."""
    from events.live import LiveState, call_statuses
    from telephony.engine import store

    tenant = _tenant(tenant_or_schema)
    schema = tenant.schema_name
    at = time.time() if now is None else now
    own = redis is None
    client = store.client() if redis is None else redis
    try:
        with schema_context(schema):
            payload = _build(tenant, schema, client, at, queues, LiveState, call_statuses)
    finally:
        if own:
            client.close()
    return payload


def _build(tenant, schema, redis, at, only, live_state, call_statuses) -> dict[str, Any]:
    from .models import Queue

    rows = Queue.objects.order_by("number").prefetch_related("agents__extension")
    if only is not None:
        rows = rows.filter(number__in=list(only))
    queues = list(rows)
    if not queues:
        return {"at": round(at, 3), "queues": []}
    counts = today_counts([q.number for q in queues], day_start(tenant, at))
    callers = waiting_callers(redis, schema)
    statuses = agent_states(queues, redis=redis)
    on_calls = call_statuses(live_state(redis).calls(schema, at))
    out = []
    for q in queues:
        c = counts.get(q.number, {})
        answered, abandoned = c.get("answered", 0), c.get("abandoned", 0)
        level = service_level(c.get("within", 0), answered, abandoned)
        waiting = callers.get(q.number, [])
        longest = max((max(0.0, at - w["since"]) for w in waiting), default=0.0)
        alerts = []
        if level is not None and level < q.sla_percent:
            alerts.append(f"Service level {level:g}% is below the {q.sla_percent}% target.")
        for w in waiting:
            waited = at - w["since"]
            if q.sla_seconds and waited > q.sla_seconds:
                who = w["caller_name"] or w["caller"] or "A caller"
                alerts.append(f"{who} has waited {int(waited)} s (over {q.sla_seconds} s).")
        agents = {str(s): 0 for s in AGENT_COUNTS}
        agent_list = []
        for member in sorted(q.agents.all(), key=lambda a: (a.position, a.pk)):
            ext = member.extension
            status = statuses[(q.number, ext.number)]
            state = status.effective(at)
            call = on_calls.get(ext.number, "")
            if call and state in (AgentState.READY, AgentState.WRAP_UP):
                state = call
            agents[state] = agents.get(state, 0) + 1
            agent_list.append(
                {
                    "number": ext.number,
                    "name": ext.display_name,
                    "state": state,
                    "reason": status.reason,
                    "since": status.since or None,
                }
            )
        out.append(
            {
                "number": q.number,
                "name": q.name,
                "waiting": len(waiting),
                "longest_wait": round(longest, 1),
                "callers": waiting,
                "answered": answered,
                "abandoned": abandoned,
                "overflowed": c.get("overflowed", 0),
                "service_level": level,
                "sla_percent": q.sla_percent,
                "sla_seconds": q.sla_seconds,
                "alert": bool(alerts),
                "alerts": alerts,
                "agents": agents,
                "agent_list": agent_list,
            }
        )
    return {"at": round(at, 3), "queues": out}


def only_queues(payload: dict[str, Any], numbers: set[str] | None) -> dict[str, Any]:
    """The payload cut to ``numbers`` (a supervisor's queues); None keeps every queue."""
    if numbers is None:
        return payload
    return {**payload, "queues": [q for q in payload["queues"] if q["number"] in numbers]}


def agent_numbers(schema: str) -> frozenset[str]:
    """The extensions that are agents of some queue of the tenant."""
    from .models import QueueAgent

    with schema_context(schema):
        return frozenset(
            QueueAgent.objects.values_list("extension__number", flat=True).order_by().distinct()
        )


def push(layer: Any, schemas: Iterable[str], *, redis: Any = None) -> int:
    """Send each tenant's current wallboard to its group (one frame per tenant); returns the
    frames sent. Best effort: a failure is logged, the next batch sends a fresh one."""
    from asgiref.sync import async_to_sync

    frames = []
    for schema in sorted(set(schemas)):
        try:
            frames.append((schema, wallboard(schema, redis=redis)))
        except Exception:
            log.exception("could not build the wallboard of %s", schema)

    async def send_all() -> None:
        for schema, payload in frames:
            await layer.group_send(
                group_name(schema), {"type": "wallboard.update", "wallboard": payload}
            )

    if frames:
        try:
            async_to_sync(send_all)()
        except Exception:
            log.exception("could not send %d wallboard updates", len(frames))
            return 0
    return len(frames)


def viewer_queues(user, tenant) -> set[str] | None:
    """The queues ``user`` may watch in ``tenant``: None = all of them (who holds
    ``tenant.settings``, as for the call reports, or ``routing.view``, as for the queues'
    settings), else the queues whose supervisor is the user's own extension (an empty set:
    none)."""
    from tenants.access import tenant_permissions
    from tenants.choices import Permission

    from .models import Queue

    held = tenant_permissions(user, tenant)
    if held is None:
        return set()
    view_all = {Permission.TENANT_SETTINGS, Permission.ROUTING_VIEW}
    if view_all & set(held):
        return None
    with schema_context(tenant.schema_name):
        return set(
            Queue.objects.filter(supervisors__user_id=user.pk)
            .values_list("number", flat=True)
            .order_by()
        )
