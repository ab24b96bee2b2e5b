"""Dashboard figures from a tenant's CDRs: calls per hour, answered vs missed, busiest
extensions over a period. The API (``/api/v1/stats/calls/``) and the portal's dashboard show
the same figures."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q
from django.db.models.functions import TruncHour

from .models import Cdr, Extension

MISSED = ("no_answer", "busy", "cancelled", "unavailable")


def _counts(qs) -> dict[str, int]:
    return qs.aggregate(
        total=Count("id"),
        answered=Count("id", filter=Q(status="answered")),
        missed=Count("id", filter=Q(status__in=MISSED)),
        failed=Count("id", filter=Q(status="failed")),
        in_progress=Count("id", filter=Q(status="in_progress")),
    )


def call_stats(tenant, since: datetime, until: datetime, top: int = 10) -> dict:
    """The figures (the caller is in the tenant's schema)."""
    tz = zoneinfo.ZoneInfo(tenant.time_zone or "UTC")
    cdrs = Cdr.objects.filter(started_at__gte=since, started_at__lt=until)
    rows = (
        cdrs.annotate(hour=TruncHour("started_at", tzinfo=tz))
        .values("hour")
        .annotate(
            total=Count("id"),
            answered=Count("id", filter=Q(status="answered")),
            missed=Count("id", filter=Q(status__in=MISSED)),
        )
        .order_by("hour")
    )
    by_hour: dict[datetime, Mapping[str, Any]] = {row["hour"]: row for row in rows}
    # Every hour of the period, empty ones too: a chart needs no gap-filling of its own.
    hour = since.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    per_hour = []
    while hour < until:
        row = by_hour.get(hour, {})
        per_hour.append(
            {
                "hour": hour.isoformat(),
                "total": row.get("total", 0),
                "answered": row.get("answered", 0),
                "missed": row.get("missed", 0),
            }
        )
        hour = (hour + timedelta(hours=1)).astimezone(tz)
    numbers = set(Extension.objects.values_list("number", flat=True))
    made = Counter(
        dict(
            cdrs.filter(caller_number__in=numbers)
            .values_list("caller_number")
            .annotate(n=Count("id"))
        )
    )
    received = Counter(
        dict(
            cdrs.filter(callee_number__in=numbers)
            .values_list("callee_number")
            .annotate(n=Count("id"))
        )
    )
    busiest = sorted((made + received).items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "time_zone": str(tz),
        "totals": _counts(cdrs),
        "per_hour": per_hour,
        "busiest_extensions": [
            {"extension": n, "calls": c, "made": made.get(n, 0), "received": received.get(n, 0)}
            for n, c in busiest
        ],
    }
