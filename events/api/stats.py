"""Dashboard figures from the host tenant's CDRs: calls per hour, answered vs missed, busiest
extensions over a period (``extensions.view``, like the CDRs themselves)."""

from __future__ import annotations

import zoneinfo
from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantPermission
from tenants.choices import Permission

MAX_PERIOD = timedelta(days=31)
MISSED = ("no_answer", "busy", "cancelled", "unavailable")


class StatsQuerySerializer(serializers.Serializer):
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    top = serializers.IntegerField(required=False, min_value=1, max_value=100, default=10)

    def validate(self, attrs):
        until = attrs.get("until") or timezone.now()
        try:
            since = attrs.get("since") or until - timedelta(hours=24)
        except OverflowError:  # until within a day of year 1
            raise serializers.ValidationError({"until": ["too early"]}) from None
        if since >= until:
            raise serializers.ValidationError({"since": ["must be before until"]})
        if until - since > MAX_PERIOD:
            raise serializers.ValidationError({"since": ["the period is at most 31 days"]})
        return {**attrs, "since": since, "until": until}


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
    from telephony.models import Cdr, Extension

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
    by_hour = {row["hour"]: row for row in rows}
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


class CallStatsView(APIView):
    """Calls per hour (in the tenant's time zone), answered vs missed, busiest extensions.

    ``?since=&until=`` (ISO 8601; default the last 24 hours, at most 31 days), ``?top=10``.
    """

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_VIEW)

    @extend_schema(
        parameters=[StatsQuerySerializer], responses={200: OpenApiResponse(description="Stats")}
    )
    def get(self, request):
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(
            call_stats(request._request.tenant, data["since"], data["until"], data["top"])
        )
