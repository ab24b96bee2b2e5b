"""Dashboard figures from the host tenant's CDRs: calls per hour, answered vs missed, busiest
extensions over a period (``extensions.view``, like the CDRs themselves)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantPermission
from telephony.stats import call_stats
from tenants.choices import Permission

MAX_PERIOD = timedelta(days=31)


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
