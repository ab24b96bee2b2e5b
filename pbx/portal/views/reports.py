"""The tenant admin's Reports: calls and cost per extension, trunk, DID or period over chosen
days, with charts (inline SVG drawn here) beside the table, CSV downloads of the report and of
the period's raw CDRs; and the reports mailed on a schedule (list, edit, delete). The figures
are ``billing.reports``', as the API's ``/reports/calls/`` gives them; every schedule write is
``billing.report_schedules``' action. Everything needs ``tenant.settings``."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.shortcuts import get_object_or_404

from billing import reports
from billing.models import ReportFrequency, ReportSchedule
from billing.report_schedules import (
    MAX_RECIPIENTS,
    SCHEDULE_GROUPS,
    do_create_report_schedule,
    do_delete_report_schedule,
    do_update_report_schedule,
)
from pbx.errors import ValidationFailed
from pbx.forms import add_action_errors
from pbx.portal import charts
from pbx.portal.access import host_tenant, tenant_permission_required
from tenants.choices import Permission

from .common import delete_page, edit_page, list_view, page

SECTION = "reports"


class ReportForm(forms.Form):
    start = forms.DateField(label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(label="To", widget=forms.DateInput({"type": "date"}))
    group_by = forms.ChoiceField(label="Group by", choices=list(reports.GROUPS.items()))
    direction = forms.ChoiceField(
        label="Direction",
        required=False,
        choices=[("", "Any direction"), *((d, d.capitalize()) for d in reports.DIRECTIONS)],
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            reports.parse_period(data["group_by"], data["start"], data["end"])
        except ValidationFailed as exc:
            add_action_errors(self, exc)
        return data


def _defaults(tenant) -> dict:
    """This month so far, in the tenant's time zone, per extension."""
    today = reports.tenant_today(tenant)
    return {"start": today.replace(day=1), "end": today, "group_by": "extension", "direction": ""}


@tenant_permission_required(Permission.TENANT_SETTINGS)
def report_page(request):
    tenant = host_tenant(request)
    data = (
        request.GET if "start" in request.GET else {k: str(v) for k, v in _defaults(tenant).items()}
    )
    form = ReportForm(data)
    ctx: dict = {"form": form, "result": None}
    if form.is_valid():
        c = form.cleaned_data
        start, end, group_by = c["start"], c["end"], c["group_by"]
        filters = {"direction": c["direction"]}
        export = request.GET.get("export")
        if export == "cdrs":
            cdrs = reports.period_cdrs(tenant, start, end, c["direction"])
            table = reports.cdr_table(cdrs, reports.time_zone(tenant))
            return reports.csv_download(table, f"cdrs-{start}-{end}", tenant)
        result = reports.report(tenant, group_by, start, end, filters)
        if export == "csv":
            table = reports.report_table(result)
            return reports.csv_download(table, f"calls-by-{group_by}-{start}-{end}", tenant)
        days = result if group_by == "day" else reports.report(tenant, "day", start, end, filters)
        query = {k: str(v) for k, v in c.items()}
        ctx.update(
            {
                "result": result,
                "group_label": reports.GROUPS[group_by],
                "calls_chart": charts.bars_chart(result.rows, "calls", unit="calls"),
                "cost_chart": charts.bars_chart(result.rows, "cost", unit=result.currency),
                "days_chart": charts.days_chart(days.rows),
                "query": query,
                "period_days": (end - start + timedelta(days=1)).days,
            }
        )
    return page(request, "portal/reports/report.html", ctx, section=SECTION)


# --- schedules ----------------------------------------------------------------------------------


class ScheduleForm(forms.Form):
    name = forms.CharField(max_length=120)
    frequency = forms.ChoiceField(choices=ReportFrequency.choices)
    group_by = forms.ChoiceField(
        label="Group by", choices=[(g, reports.GROUPS[g]) for g in SCHEDULE_GROUPS]
    )
    recipients = forms.CharField(
        widget=forms.Textarea({"rows": 3}),
        help_text=f"E-mail addresses, separated by commas or lines (at most {MAX_RECIPIENTS}).",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def fields_for_action(self) -> dict:
        return dict(self.cleaned_data)


def _initial(schedule: ReportSchedule | None) -> dict | None:
    if schedule is None:
        return None
    return {
        "name": schedule.name,
        "frequency": schedule.frequency,
        "group_by": schedule.group_by,
        "recipients": schedule.recipients,
        "enabled": schedule.enabled,
    }


@tenant_permission_required(Permission.TENANT_SETTINGS)
def schedule_list(request):
    tenant = host_tenant(request)
    return list_view(
        request,
        ReportSchedule.objects.filter(tenant=tenant),
        "portal/reports/schedules.html",
        section=SECTION,
        search=("name", "recipients"),
        sorts={"name": "name", "frequency": "frequency", "sent": "last_sent_at"},
        default="name",
    )


@tenant_permission_required(Permission.TENANT_SETTINGS)
def schedule_edit(request, pk=None):
    tenant = host_tenant(request)
    schedule = get_object_or_404(ReportSchedule, pk=pk, tenant=tenant) if pk else None
    form = ScheduleForm(request.POST or None, initial=_initial(schedule))
    return edit_page(
        request,
        form,
        schedule,
        create=lambda *, actor, fields: do_create_report_schedule(
            tenant, actor=actor, fields=fields
        ),
        update=do_update_report_schedule,
        saved=lambda fields: f"Report schedule {fields['name']} saved.",
        back="portal:report_schedules",
        template="portal/reports/schedule_form.html",
        section=SECTION,
    )


@tenant_permission_required(Permission.TENANT_SETTINGS)
def schedule_delete(request, pk):
    schedule = get_object_or_404(ReportSchedule, pk=pk, tenant=host_tenant(request))
    return delete_page(
        request,
        schedule,
        delete=do_delete_report_schedule,
        done=f"Report schedule {schedule.name} deleted.",
        back="portal:report_schedules",
        template="portal/reports/schedule_delete.html",
        section=SECTION,
        context=dict,
    )
