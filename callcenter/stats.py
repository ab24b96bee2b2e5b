"""Queue and agent statistics over a period, from the rows the engine's events left
(``QueueCall``, ``AgentStateChange``; :mod:`callcenter.engine`). Run in the tenant's schema.

A period is whole days ``start``..``end`` (``date``\\ s, ``end`` included) in the tenant's time
zone, or two aware datetimes [start, end). A queue call counts in the period it joined; an
agent's answered calls in the period they were answered; state time is clipped to the period
(and to now).

- :func:`queue_stats` — per queue (and per ``bucket``, "day" or "hour" in the tenant's time
  zone): offered (callers who joined), answered, abandoned, overflowed (max wait, queue full,
  no agents), callbacks (callers who asked to be called back), answered_within_sla,
  service_level (percent answered within the SLA among answered + abandoned; None when none),
  avg_wait / max_wait (seconds waited by callers answered or gone), avg_talk (answered calls);
- :func:`agent_stats` — per agent: answered, talk_seconds, avg_talk, and seconds logged in,
  ready, not ready and in wrap-up. An agent in several queues is logged in while logged in to
  any, ready while ready in any, in wrap-up while in wrap-up in one and ready in none, else not
  ready; an agent with no recorded state in a queue counts as logged out of it there.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Avg, Count, Max, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from telephony.sip.contract import AgentState

from .choices import QueueOutcome
from .models import AgentStateChange, Queue, QueueCall

BUCKETS = {"day": TruncDay, "hour": TruncHour}
MAX_DAYS = 366
OVERFLOWS = (QueueOutcome.MAX_WAIT, QueueOutcome.MAX_CALLERS, QueueOutcome.NO_AGENTS)
GONE = (QueueOutcome.ANSWERED, QueueOutcome.ABANDONED, *OVERFLOWS, QueueOutcome.CALLBACK)

QUEUE_COLUMNS = (
    "offered",
    "answered",
    "abandoned",
    "overflowed",
    "callbacks",
    "answered_within_sla",
    "service_level",
    "avg_wait",
    "max_wait",
    "avg_talk",
)
AGENT_COLUMNS = (
    "answered",
    "talk_seconds",
    "avg_talk",
    "logged_in_seconds",
    "ready_seconds",
    "not_ready_seconds",
    "wrap_up_seconds",
)


def tenant_zone(tenant: Any = None) -> zoneinfo.ZoneInfo:
    """The time zone of ``tenant`` (default: the connection's tenant)."""
    tenant = tenant if tenant is not None else getattr(connection, "tenant", None)
    try:
        return zoneinfo.ZoneInfo(getattr(tenant, "time_zone", "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def period(
    start: date | datetime, end: date | datetime, tz: zoneinfo.ZoneInfo
) -> tuple[datetime, datetime]:
    """[from, to) of a period: whole days in ``tz`` (``end`` included) or aware datetimes."""
    lo = start if isinstance(start, datetime) else datetime.combine(start, time(), tzinfo=tz)
    hi = (
        end
        if isinstance(end, datetime)
        else datetime.combine(end + timedelta(days=1), time(), tzinfo=tz)
    )
    return lo, hi


def _round(value: Any, digits: int = 1) -> float | None:
    return None if value is None else round(float(value), digits)


def service_level(within: int, answered: int, abandoned: int) -> float | None:
    offered = answered + abandoned
    return round(100.0 * within / offered, 1) if offered else None


def queue_stats(
    start: date | datetime,
    end: date | datetime,
    *,
    queue: str | None = None,
    bucket: str | None = None,
    tz: zoneinfo.ZoneInfo | None = None,
) -> list[dict[str, Any]]:
    """Rows per queue (and bucket), ordered by queue number then bucket."""
    tz = tz or tenant_zone()
    lo, hi = period(start, end, tz)
    calls = QueueCall.objects.filter(joined_at__gte=lo, joined_at__lt=hi)
    if queue:
        calls = calls.filter(queue_number=queue)
    keys = ["queue_number"]
    if bucket:
        calls = calls.annotate(bucket=BUCKETS[bucket]("joined_at", tzinfo=tz))
        keys.append("bucket")
    rows = (
        calls.values(*keys)
        .annotate(
            offered=Count("id"),
            answered=Count("id", filter=Q(outcome=QueueOutcome.ANSWERED)),
            abandoned=Count("id", filter=Q(outcome=QueueOutcome.ABANDONED)),
            overflowed=Count("id", filter=Q(outcome__in=OVERFLOWS)),
            callbacks=Count("id", filter=~Q(callback_number="") | Q(outcome=QueueOutcome.CALLBACK)),
            answered_within_sla=Count(
                "id", filter=Q(outcome=QueueOutcome.ANSWERED, within_sla=True)
            ),
            avg_wait=Avg("waited_seconds", filter=Q(outcome__in=GONE)),
            max_wait=Max("waited_seconds", filter=Q(outcome__in=GONE)),
            avg_talk=Avg("talk_seconds", filter=Q(outcome=QueueOutcome.ANSWERED)),
        )
        .order_by(*keys)
    )
    names = dict(Queue.objects.values_list("number", "name"))
    out = []
    for r in rows:
        row: dict[str, Any] = {"queue": r["queue_number"], "name": names.get(r["queue_number"], "")}
        if bucket:
            row["bucket"] = r["bucket"].astimezone(tz).isoformat()
        row.update(
            {
                "offered": r["offered"],
                "answered": r["answered"],
                "abandoned": r["abandoned"],
                "overflowed": r["overflowed"],
                "callbacks": r["callbacks"],
                "answered_within_sla": r["answered_within_sla"],
                "service_level": service_level(
                    r["answered_within_sla"], r["answered"], r["abandoned"]
                ),
                "avg_wait": _round(r["avg_wait"]),
                "max_wait": _round(r["max_wait"]),
                "avg_talk": _round(r["avg_talk"]),
            }
        )
        out.append(row)
    return out


def _state_seconds(lo: datetime, hi: datetime, agent: str | None) -> dict[str, dict[str, float]]:
    """Agent -> seconds logged in / ready / not ready / wrap-up in [lo, hi)."""
    before = AgentStateChange.objects.filter(at__lt=lo)
    within = AgentStateChange.objects.filter(at__gte=lo, at__lt=hi)
    if agent:
        before, within = before.filter(extension=agent), within.filter(extension=agent)
    # Each agent's state in each queue when the period starts (PostgreSQL's DISTINCT ON).
    first = (
        before.order_by("extension", "queue_number", "-at", "-id")
        .distinct("extension", "queue_number")
        .values_list("extension", "queue_number", "state")
    )
    changes: dict[str, list[tuple[datetime, int, str, str]]] = defaultdict(list)
    for ext, queue, state in first:
        changes[ext].append((lo, 0, queue, state))
    for ext, queue, state, at, pk in within.order_by("at", "id").values_list(
        "extension", "queue_number", "state", "at", "id"
    ):
        changes[ext].append((at, pk, queue, state))
    out: dict[str, dict[str, float]] = {}
    for ext, points in changes.items():
        points.sort(key=lambda p: (p[0], p[1]))
        states: dict[str, str] = {}
        sums = {"logged_in": 0.0, "ready": 0.0, "not_ready": 0.0, "wrap_up": 0.0}
        for i, (at, _pk, queue, state) in enumerate(points):
            states[queue] = state
            until = points[i + 1][0] if i + 1 < len(points) else hi
            seconds = (min(until, hi) - max(at, lo)).total_seconds()
            if seconds <= 0:
                continue
            held = set(states.values())
            if held <= {AgentState.LOGGED_OUT}:
                continue
            sums["logged_in"] += seconds
            if AgentState.READY in held:
                sums["ready"] += seconds
            elif AgentState.WRAP_UP in held:
                sums["wrap_up"] += seconds
            else:
                sums["not_ready"] += seconds
        out[ext] = {k: round(v, 1) for k, v in sums.items()}
    return out


def agent_stats(
    start: date | datetime,
    end: date | datetime,
    *,
    agent: str | None = None,
    tz: zoneinfo.ZoneInfo | None = None,
) -> list[dict[str, Any]]:
    """Rows per agent (extension number) who answered or had a state in the period."""
    from telephony.models import Extension

    tz = tz or tenant_zone()
    lo, hi = period(start, end, tz)
    hi_state = min(hi, max(lo, timezone.now()))  # the future holds no time yet
    calls = QueueCall.objects.filter(
        outcome=QueueOutcome.ANSWERED, answered_at__gte=lo, answered_at__lt=hi
    ).exclude(agent="")
    if agent:
        calls = calls.filter(agent=agent)
    answered = {
        r["agent"]: r
        for r in calls.values("agent")
        .annotate(n=Count("id"), talk=Sum("talk_seconds"), avg=Avg("talk_seconds"))
        .order_by()
    }
    states = _state_seconds(lo, hi_state, agent)
    numbers = sorted(set(answered) | set(states))
    names = dict(Extension.objects.filter(number__in=numbers).values_list("number", "display_name"))
    zero = {"logged_in": 0.0, "ready": 0.0, "not_ready": 0.0, "wrap_up": 0.0}
    out = []
    for number in numbers:
        a = answered.get(number) or {"n": 0, "talk": 0.0, "avg": None}
        s = states.get(number, zero)
        out.append(
            {
                "agent": number,
                "name": names.get(number, ""),
                "answered": a["n"],
                "talk_seconds": _round(a["talk"] or 0.0),
                "avg_talk": _round(a["avg"]),
                "logged_in_seconds": s["logged_in"],
                "ready_seconds": s["ready"],
                "not_ready_seconds": s["not_ready"],
                "wrap_up_seconds": s["wrap_up"],
            }
        )
    return out
