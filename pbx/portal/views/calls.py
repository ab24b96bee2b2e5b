"""A tenant's calls: the dashboard's charts, active calls (live, with hang-up), the call
history (CDRs) and the phones registered now. Everything read here is what the REST API
offers (``/stats/calls/``, ``/active-calls/``, ``/cdrs/``, ``/registrations/``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django import forms
from django.contrib import messages
from django.db.models import Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from audio.models import Recording
from pbx.portal import charts
from pbx.portal.access import held_permissions, host_tenant, tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.lists import list_page, paged
from pbx.portal.live import live_state
from pbx.portal.live import request_hangup as send_hangup
from telephony.engine.state import tenant_registrations
from telephony.models import CallDirection, CallStatus, Cdr, CdrSegment
from telephony.stats import call_stats
from tenants.access import expiring_certificates
from tenants.choices import Permission

from .common import actor, page

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


# --- dashboard --------------------------------------------------------------------------------


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def dashboard(request):
    """Calls per hour, answered versus missed, busiest extensions (``/api/v1/stats/calls/``)."""
    tenant = host_tenant(request)
    period = request.GET.get("period", "24h")
    if period not in PERIODS:
        period = "24h"
    until = timezone.now()
    stats = call_stats(tenant, until - PERIODS[period], until, top=8)
    state = live_state(tenant)
    ctx = {
        "period": period,
        "periods": list(PERIODS),
        "stats": stats,
        "hours": charts.hours_chart(stats["per_hour"]),
        "outcome": charts.outcome_chart(stats["totals"]),
        "busiest": charts.busiest_chart(stats["busiest_extensions"]),
        "online_count": sum(1 for e in state["extensions"].values() if e["online"]),
        "extension_count": len(state["extensions"]),
        "active_count": len(state["calls"]),
        "parked_count": len(state["parked"]),
    }
    if Permission.TENANT_SETTINGS in held_permissions(request):
        ctx["expiring"] = list(expiring_certificates(tenant))
    return page(request, "portal/dashboard.html", ctx, section="dashboard")


# --- active calls -----------------------------------------------------------------------------


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def active_calls(request):
    """Calls in progress and parked calls, rendered from the live-state cache (and the
    engines' park slots) and kept current over the portal's WebSocket."""
    state = live_state(host_tenant(request))
    if wants_csv(request):
        return csv_response(request, state["calls"], ACTIVE_CALL_COLUMNS, name="active-calls")
    ctx = {
        "calls": state["calls"],
        "parked": state["parked"],
        "groups": state.get("groups", {}),
        "unavailable": state.get("unavailable", False),
        "can_hangup": Permission.EXTENSIONS_MANAGE in held_permissions(request),
    }
    return page(request, "portal/calls/active.html", ctx, section="calls")


ACTIVE_CALL_COLUMNS: list[Column] = [
    ("Call id", "call_id"),
    ("From", "caller"),
    ("From name", "caller_name"),
    ("To", "callee"),
    ("Ring group", "group"),
    ("State", "state"),
    ("Picked up by", "picked_up_by"),
    ("Started", "started"),
]


@require_POST
@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def call_hangup(request, call_id):
    """Ask the engine to end a call (the page's script posts here and waits for call.ended)."""
    tenant = host_tenant(request)
    sent = send_hangup(tenant, call_id, actor(request))
    if request.headers.get("X-Requested-With") == "fetch":
        status = 202 if sent else 404
        return JsonResponse({"call_id": call_id, "sent": sent}, status=status)
    if sent:
        messages.success(request, "Hang-up sent.")
    else:
        messages.error(request, "That call is no longer in progress.")
    return redirect("portal:active_calls")


# --- call history -----------------------------------------------------------------------------


class CdrFilterForm(forms.Form):
    extension = forms.CharField(required=False, max_length=16)
    direction = forms.ChoiceField(required=False, choices=[("", "Any direction")])
    status = forms.ChoiceField(required=False, choices=[("", "Any outcome")])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    recorded = forms.BooleanField(required=False, label="Recorded only")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["direction"].choices += CallDirection.choices
        self.fields["status"].choices += CallStatus.choices

    def apply(self, queryset):
        if not self.is_valid():
            return queryset
        data = self.cleaned_data
        if data.get("extension"):
            queryset = involving(queryset, data["extension"].strip())
        if data["direction"]:
            queryset = queryset.filter(direction=data["direction"])
        if data["status"]:
            queryset = queryset.filter(status=data["status"])
        if data["since"]:
            queryset = queryset.filter(started_at__date__gte=data["since"])
        if data["until"]:
            queryset = queryset.filter(started_at__date__lte=data["until"])
        if data.get("recorded"):
            queryset = queryset.filter(pk__in=Recording.objects.values("cdr_id"))
        return queryset

    def kept(self) -> dict[str, str]:
        if not self.is_valid():
            return {}
        return {k: str(v) for k, v in self.cleaned_data.items() if v}


def involving(queryset, number: str):
    """Calls an extension made, received, or took part in through a transfer (as the API's
    ``?extension=`` filter)."""
    segments = CdrSegment.objects.filter(Q(from_number=number) | Q(to_number=number))
    return queryset.filter(
        Q(caller_number=number) | Q(callee_number=number) | Q(pk__in=segments.values("cdr_id"))
    )


CDR_SORTS = {
    "started": "started_at",
    "caller": "caller_number",
    "callee": "callee_number",
    "duration": "duration",
    "status": "status",
}


def cdr_page(request, queryset, *, filters: CdrFilterForm | None = None) -> dict:
    if filters is not None:
        queryset = filters.apply(queryset)
    ctx = list_page(
        request,
        queryset,
        search=("caller_number", "callee_number", "caller_name", "call_id"),
        sorts=CDR_SORTS,
        default="-started",
        keep=filters.kept() if filters is not None else None,
    )
    ctx["filters"] = filters
    return ctx


CDR_COLUMNS: list[Column] = [
    ("Started", "started_at"),
    ("Answered", "answered_at"),
    ("Ended", "ended_at"),
    ("From", "caller_number"),
    ("From name", "caller_name"),
    ("To", "callee_number"),
    ("Direction", "get_direction_display"),
    ("Outcome", "get_status_display"),
    ("End reason", "end_reason_text"),
    ("Duration (s)", "duration"),
    ("Talk time (s)", "billsec"),
    ("Call id", "call_id"),
]


def cdr_export(request, ctx: dict, *, name: str):
    """The call history as the page filters it: every page, as CSV."""
    return csv_response(request, ctx["queryset"], CDR_COLUMNS, name=name)


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def cdr_list(request):
    filters = CdrFilterForm(request.GET or None)
    ctx = cdr_page(request, Cdr.objects.prefetch_related("recordings"), filters=filters)
    if wants_csv(request):
        return cdr_export(request, ctx, name="call-history")
    return page(request, "portal/calls/cdr_list.html", ctx, section="cdrs")


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def cdr_detail(request, pk):
    cdr = get_object_or_404(Cdr.objects.prefetch_related("segments", "recordings"), pk=pk)
    ctx = {"cdr": cdr, "can_delete": Permission.EXTENSIONS_MANAGE in held_permissions(request)}
    return page(request, "portal/calls/cdr_detail.html", ctx, section="cdrs")


# --- registrations ----------------------------------------------------------------------------


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def registration_list(request):
    """Phones registered to the tenant's extensions now (from the engines' location store)."""
    tenant = host_tenant(request)
    q = request.GET.get("q", "").strip()[:100]
    try:
        items = tenant_registrations(tenant.sip_domain or "")
        unavailable = False
    except Exception:
        items, unavailable = [], True
    if q:
        needle = q.lower()
        items = [
            i
            for i in items
            if needle in i["extension"]
            or needle in i["source_address"]
            or needle in (i["user_agent"] or "").lower()
        ]
    for item in items:
        item["registered"] = datetime.fromisoformat(item["registered_at"])
    if wants_csv(request):
        return csv_response(request, items, REGISTRATION_COLUMNS, name="registrations")
    ctx = {**paged(request, items, q=q), "unavailable": unavailable}
    return page(request, "portal/calls/registrations.html", ctx, section="registrations")


REGISTRATION_COLUMNS: list[Column] = [
    ("Extension", "extension"),
    ("Contact", "contact"),
    ("Transport", lambda i: (i["transport"] or "").upper()),
    ("Address", "source_address"),
    ("Port", "source_port"),
    ("User agent", "user_agent"),
    ("Registered", "registered"),
    ("Expires", lambda i: datetime.fromisoformat(i["expires_at"])),
]
