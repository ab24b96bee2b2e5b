"""The host tenant's call reports in the API.

- ``GET /reports/calls/?group_by=&start=&end=&direction=``: calls and cost per extension,
  trunk, DID, day, week or month over whole days (``start``..``end``, at most a year; by
  default the month so far) in the tenant's time zone; ``&format=csv`` streams it as CSV,
  ``&format=csv&rows=cdrs`` the period's raw CDRs.
- ``/report-schedules/``: reports mailed every day, week or month.

Both need ``tenant.settings`` (the tenant admin's): costs are the tenant's business figures.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import reports
from billing.models import ReportSchedule
from billing.report_schedules import (
    MAX_RECIPIENTS,
    do_create_report_schedule,
    do_delete_report_schedule,
    do_update_report_schedule,
    split_recipients,
)
from pbx.api.permissions import TenantPermission
from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import ActionViewSet
from pbx.errors import ValidationFailed
from tenants.choices import Permission


class CallReportView(APIView):
    """Calls, answered, missed, talk seconds and cost per group, and the totals."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)

    def perform_content_negotiation(self, request, force=False):
        # ``format=csv`` is this view's own download, not one of DRF's renderers; errors
        # are JSON whatever the format asked.
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        parameters=[
            OpenApiParameter("group_by", str, enum=list(reports.GROUPS)),
            OpenApiParameter("start", str, description="First day, YYYY-MM-DD (default: the 1st)"),
            OpenApiParameter("end", str, description="Last day, YYYY-MM-DD (default: today)"),
            OpenApiParameter("direction", str, enum=list(reports.DIRECTIONS)),
            OpenApiParameter("format", str, enum=["json", "csv"]),
            OpenApiParameter("rows", str, enum=["groups", "cdrs"]),
        ],
        responses={200: OpenApiResponse(description="The report")},
    )
    def get(self, request):
        params = request.query_params
        tenant = request._request.tenant
        group_by, start, end = reports.parse_period(
            params.get("group_by"),
            params.get("start"),
            params.get("end"),
            today=reports.tenant_today(tenant),
        )
        fmt = params.get("format") or "json"
        if fmt not in ("json", "csv"):
            raise ValidationFailed("Unknown format.", fields={"format": ["json or csv"]})
        rows = params.get("rows") or "groups"
        if rows not in ("groups", "cdrs"):
            raise ValidationFailed("Unknown rows.", fields={"rows": ["groups or cdrs"]})
        direction = params.get("direction") or ""
        if rows == "cdrs":
            if fmt != "csv":
                raise ValidationFailed(
                    "Raw CDRs are a CSV download.", fields={"rows": ["cdrs needs format=csv"]}
                )
            if direction and direction not in reports.DIRECTIONS:
                raise ValidationFailed("Unknown direction.", fields={"direction": ["unknown"]})
            cdrs = reports.period_cdrs(tenant, start, end, direction)
            table = reports.cdr_table(cdrs, reports.time_zone(tenant))
            return reports.csv_download(table, f"cdrs-{start}-{end}", tenant)
        result = reports.report(tenant, group_by, start, end, {"direction": direction})
        if fmt == "csv":
            table = reports.report_table(result)
            return reports.csv_download(table, f"calls-by-{group_by}-{start}-{end}", tenant)
        return Response(result.as_dict())


class RecipientsField(serializers.Field):
    """A list of addresses (or one text with commas); the action checks them."""

    def to_internal_value(self, data):
        if isinstance(data, list):
            return [str(v) for v in data]
        if isinstance(data, str):
            return data
        raise serializers.ValidationError("a list of e-mail addresses")

    def to_representation(self, value):
        return split_recipients(value)


class ReportScheduleSerializer(ActionJudgesValues, serializers.ModelSerializer):
    recipients = RecipientsField(help_text=f"At most {MAX_RECIPIENTS} e-mail addresses.")

    class Meta:
        model = ReportSchedule
        fields = (
            "id",
            "name",
            "frequency",
            "group_by",
            "recipients",
            "enabled",
            "last_sent_at",
            "last_period_start",
            "created_at",
        )
        read_only_fields = ("last_sent_at", "last_period_start", "created_at")
        extra_kwargs = {
            "frequency": {"required": False},
            "group_by": {"required": False},
            "enabled": {"required": False},
        }

    def get_validators(self):
        return []


class ReportScheduleViewSet(ActionViewSet):
    """The host tenant's scheduled call reports."""

    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)
    serializer_class = ReportScheduleSerializer
    update_action = staticmethod(do_update_report_schedule)
    delete_action = staticmethod(do_delete_report_schedule)
    search_fields = ("name",)
    ordering_fields = ("name", "id", "created_at")
    ordering = ("name",)

    def create_action(self, *, actor, fields):
        return do_create_report_schedule(self.tenant, actor=actor, fields=fields)

    def get_queryset(self):
        return ReportSchedule.objects.filter(tenant=self.tenant).order_by("name", "id")
