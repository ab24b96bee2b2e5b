"""The contact centre's figures in the API (host tenant):

- ``GET /queue-stats/?from=&to=&queue=&bucket=``: per queue (and per day or hour) offered,
  answered, abandoned, overflowed, callbacks, answered within the SLA, service level, waits
  and talk time; ``from``/``to`` are days (YYYY-MM-DD, ``to`` included, at most a year;
  default today) in the tenant's time zone;
- ``GET /agent-stats/?from=&to=&agent=``: per agent answered calls, talk time and seconds
  logged in, ready, not ready and in wrap-up;
- both as CSV with ``&format=csv``; they need ``tenant.settings`` like the call reports;
- ``GET /wallboard/``: the live wallboard (``callcenter.wallboard``): every queue for tenant
  admins, a supervisor's own queues for a supervisor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, tzinfo
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.reports import csv_download, tenant_today
from callcenter import stats
from callcenter.wallboard import viewer_queues, wallboard
from pbx.api.permissions import TenantPermission, host_permissions
from pbx.errors import ValidationFailed
from pbx.text import safe_cell
from tenants.choices import Permission


def _days(params, tenant) -> tuple[date, date]:
    today = tenant_today(tenant)
    errors: dict[str, list[str]] = {}
    days: dict[str, date] = {}
    for name in ("from", "to"):
        raw = params.get(name)
        try:
            days[name] = date.fromisoformat(raw) if raw else today
        except ValueError:
            errors[name] = ["a day, YYYY-MM-DD"]
    if not errors:
        if days["to"] < days["from"]:
            errors["to"] = ["must not be before from"]
        elif (days["to"] - days["from"]).days + 1 > stats.MAX_DAYS:
            errors["to"] = [f"at most {stats.MAX_DAYS} days"]
    if errors:
        raise ValidationFailed("The period is not valid.", fields=errors)
    return days["from"], days["to"]


def _format(params) -> str:
    fmt = params.get("format") or "json"
    if fmt not in ("json", "csv"):
        raise ValidationFailed("Unknown format.", fields={"format": ["json or csv"]})
    return fmt


def _table(rows: list[dict], columns: tuple[str, ...]):
    yield list(columns)
    for row in rows:
        yield [safe_cell("" if row.get(c) is None else str(row[c])) for c in columns]


@dataclass(frozen=True)
class _Period:
    """A statistics request's days (``from``, ``to``), answer format and time zone."""

    params: Any
    tenant: Any
    start: date
    end: date
    fmt: str
    tz: tzinfo

    @classmethod
    def of(cls, request) -> _Period:
        params = request.query_params
        tenant = request._request.tenant
        start, end = _days(params, tenant)
        fmt = _format(params)
        return cls(params, tenant, start, end, fmt, stats.tenant_zone(tenant))

    def answer(self, name: str, rows: list[dict], columns: tuple[str, ...], **extra):
        """``rows`` as a CSV download ``<name>-<from>-<to>`` of ``columns``, or as JSON (with
        ``extra`` before the rows)."""
        if self.fmt == "csv":
            filename = f"{name}-{self.start}-{self.end}"
            return csv_download(_table(rows, columns), filename, self.tenant)
        return Response(
            {"from": self.start, "to": self.end, "time_zone": str(self.tz), **extra, "rows": rows}
        )


PERIOD = [
    OpenApiParameter("from", str, description="First day, YYYY-MM-DD (default: today)"),
    OpenApiParameter("to", str, description="Last day, YYYY-MM-DD (default: today)"),
    OpenApiParameter("format", str, enum=["json", "csv"]),
]


class _StatsView(APIView):
    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)

    def perform_content_negotiation(self, request, force=False):
        # ``format=csv`` is this view's own download, not one of DRF's renderers.
        return JSONRenderer(), JSONRenderer.media_type


class QueueStatsView(_StatsView):
    """Queue statistics per queue (and per day or hour) over whole days."""

    @extend_schema(
        parameters=[
            *PERIOD,
            OpenApiParameter("queue", str, description="A queue's number"),
            OpenApiParameter("bucket", str, enum=list(stats.BUCKETS)),
        ],
        responses={200: OpenApiResponse(description="{from, to, time_zone, rows}")},
    )
    def get(self, request):
        period = _Period.of(request)
        bucket = period.params.get("bucket") or None
        if bucket is not None and bucket not in stats.BUCKETS:
            raise ValidationFailed("Unknown bucket.", fields={"bucket": ["day or hour"]})
        rows = stats.queue_stats(
            period.start,
            period.end,
            queue=period.params.get("queue") or None,
            bucket=bucket,
            tz=period.tz,
        )
        columns = ("queue", "name", *(("bucket",) if bucket else ()), *stats.QUEUE_COLUMNS)
        return period.answer("queue-stats", rows, columns, bucket=bucket)


class AgentStatsView(_StatsView):
    """Agent statistics over whole days."""

    @extend_schema(
        parameters=[*PERIOD, OpenApiParameter("agent", str, description="An extension number")],
        responses={200: OpenApiResponse(description="{from, to, time_zone, rows}")},
    )
    def get(self, request):
        period = _Period.of(request)
        agent = period.params.get("agent") or None
        rows = stats.agent_stats(period.start, period.end, agent=agent, tz=period.tz)
        return period.answer("agent-stats", rows, ("agent", "name", *stats.AGENT_COLUMNS))


class WallboardViewer(BasePermission):
    """Tenant admins (every queue) and queue supervisors (theirs); another tenant's user 404."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        host_permissions(request)  # 404 for another tenant's user
        view.queues = viewer_queues(request.user, request._request.tenant)
        return view.queues is None or bool(view.queues)


class WallboardView(APIView):
    """The live wallboard: callers waiting, today's figures and agents by state per queue."""

    permission_classes = (WallboardViewer,)
    queues: set[str] | None = None

    @extend_schema(responses={200: OpenApiResponse(description="The wallboard payload")})
    def get(self, request):
        return Response(wallboard(request._request.tenant, queues=self.queues))
