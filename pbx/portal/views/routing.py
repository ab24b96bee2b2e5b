"""A tenant's call routing on its host (``routing.manage``): inbound and outbound rules, office
hours and holidays, the blacklist, emergency numbers and the routing settings. The pages run in
the tenant's schema (the host's); every write goes through ``routing.actions``, whose field
errors are shown on the fields."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import host_tenant, tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.lists import list_page
from pbx.portal.routing_forms import (
    BlacklistForm,
    EmergencyForm,
    HolidayForm,
    InboundRuleForm,
    OfficeHoursForm,
    OutboundRuleForm,
    RoutingSettingsForm,
    destination_options,
    hours_initial,
    inbound_initial,
    outbound_initial,
)
from routing import actions
from routing.destinations import KINDS
from routing.models import (
    BlacklistEntry,
    EmergencyNumber,
    Holiday,
    InboundRule,
    OutboundRule,
    RoutingSettings,
)
from tenants.choices import Permission
from trunks.access import usable_trunks
from trunks.models import DidNumber

from .common import actor, button_action, page

routing_admin = tenant_permission_required(Permission.ROUTING_MANAGE)


def destination_label(value) -> str:
    if not value:
        return ""
    kind = KINDS.get(value.get("kind", ""))
    return f"{kind.label if kind else value.get('kind')} {value.get('target', '')}".strip()


def _trunks(request):
    return list(usable_trunks(host_tenant(request)).order_by("name", "id"))


# --------------------------------------------------------------------------- inbound rules

INBOUND_COLUMNS: list[Column] = [
    ("Priority", "priority"),
    ("Name", "name"),
    ("Match", "match"),
    ("Number", "number"),
    ("Last number", "number_end"),
    ("Caller", "caller"),
    ("Office hours", "use_hours"),
    ("When open", lambda r: destination_label(r.in_hours)),
    ("Out of hours", lambda r: destination_label(r.out_of_hours)),
    ("Holidays", lambda r: destination_label(r.holiday)),
    ("Enabled", "enabled"),
]


@routing_admin
def inbound_list(request):
    ctx = list_page(
        request,
        InboundRule.objects.all(),
        search=("name", "number", "caller"),
        sorts={"priority": "priority", "name": "name", "number": "number"},
        default="priority",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], INBOUND_COLUMNS, name="inbound-rules")
    ctx["rows"] = [
        {
            "rule": r,
            "in_hours": destination_label(r.in_hours),
            "out_of_hours": destination_label(r.out_of_hours),
            "holiday": destination_label(r.holiday),
        }
        for r in ctx["page"]
    ]
    ctx["has_numbers"] = DidNumber.objects.filter(tenant=host_tenant(request)).exists()
    return page(request, "portal/routing/inbound_list.html", ctx, section="inbound")


def _inbound_form(request, initial):
    tenant = host_tenant(request)
    numbers = [
        (n, n) for n in DidNumber.objects.filter(tenant=tenant).values_list("number", flat=True)
    ]
    return InboundRuleForm(
        request.POST or None,
        initial=initial,
        targets=destination_options(tenant),
        numbers=numbers,
    )


@routing_admin
def inbound_edit(request, pk=None):
    rule = get_object_or_404(InboundRule, pk=pk) if pk else None
    if rule is not None:
        initial = inbound_initial(rule)
    else:
        initial = {"number": request.GET.get("number", "")[:64], "in_hours_kind": "extension"}
        if initial["number"]:
            initial["name"] = f"Calls to {initial['number']}"
    form = _inbound_form(request, initial)
    if request.method == "POST" and form.is_valid():
        fields = form.fields_for_action()
        try:
            if rule is None:
                rule = actions.do_create("inbound", actor=actor(request), fields=fields)
            else:
                actions.do_update(rule, actor=actor(request), fields=fields)
        except PbxError as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, f"Inbound rule {fields['name']} saved.")
            return redirect("portal:inbound_list")
    ctx = {"form": form, "object": rule}
    return page(request, "portal/routing/inbound_form.html", ctx, section="inbound")


def _delete(request, model, pk, *, label, back):
    obj = get_object_or_404(model, pk=pk)
    button_action(request, lambda who: actions.do_delete(obj, actor=who), f"{label(obj)} deleted.")
    return redirect(back)


@require_POST
@routing_admin
def inbound_delete(request, pk):
    return _delete(
        request,
        InboundRule,
        pk,
        label=lambda r: f"Inbound rule {r.name}",
        back="portal:inbound_list",
    )


# --------------------------------------------------------------------------- outbound rules


@routing_admin
def outbound_list(request):
    trunks = {t.pk: t for t in _trunks(request)}
    rules = list(OutboundRule.objects.order_by("priority", "id"))
    rows = [
        {
            "rule": r,
            "trunks": [trunks[i].name if i in trunks else f"(gone: {i})" for i in r.trunks],
        }
        for r in rules
    ]
    if wants_csv(request):
        columns: list[Column] = [
            ("Priority", "rule.priority"),
            ("Name", "rule.name"),
            ("Prefix", "rule.prefix"),
            ("Pattern", "rule.pattern"),
            ("Shortest", "rule.min_length"),
            ("Longest", "rule.max_length"),
            ("Extensions", "rule.extensions"),
            ("Trunks", "trunks"),
            ("Strip", "rule.strip"),
            ("Prepend", "rule.prepend"),
            ("Caller ID", "rule.caller_id"),
            ("Enabled", "rule.enabled"),
        ]
        return csv_response(request, rows, columns, name="outbound-rules")
    ctx = {"rows": rows, "has_trunks": bool(trunks)}
    return page(request, "portal/routing/outbound_list.html", ctx, section="outbound")


@routing_admin
def outbound_edit(request, pk=None):
    rule = get_object_or_404(OutboundRule, pk=pk) if pk else None
    initial = outbound_initial(rule) if rule is not None else None
    trunks = _trunks(request)
    form = OutboundRuleForm(request.POST or None, initial=initial, trunks=trunks)
    if request.method == "POST" and form.is_valid():
        fields = form.fields_for_action()
        try:
            if rule is None:
                rule = actions.do_create("outbound", actor=actor(request), fields=fields)
            else:
                actions.do_update(rule, actor=actor(request), fields=fields)
        except PbxError as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, f"Outbound rule {fields['name']} saved.")
            return redirect("portal:outbound_list")
    ctx = {"form": form, "object": rule, "has_trunks": bool(trunks)}
    return page(request, "portal/routing/outbound_form.html", ctx, section="outbound")


@require_POST
@routing_admin
def outbound_delete(request, pk):
    return _delete(
        request,
        OutboundRule,
        pk,
        label=lambda r: f"Outbound rule {r.name}",
        back="portal:outbound_list",
    )


# --------------------------------------------------------------------------- office hours


@routing_admin
def office_hours(request):
    """The weekly grid (in the tenant's time zone) and the holidays."""
    settings = RoutingSettings.load()
    hours = OfficeHoursForm(
        request.POST if request.POST.get("form") == "hours" else None,
        initial=hours_initial(settings),
    )
    holiday = HolidayForm(request.POST if request.POST.get("form") == "holiday" else None)
    if request.method == "POST" and hours.is_bound and hours.is_valid():
        fields = {"hours_enabled": hours.cleaned_data["hours_enabled"]}
        fields["weekly"] = hours.cleaned_data["weekly"]
        try:
            actions.do_update_settings(actor=actor(request), fields=fields)
        except PbxError as exc:
            add_action_errors(hours, exc)
        else:
            messages.success(request, "Office hours saved.")
            return redirect("portal:office_hours")
    if request.method == "POST" and holiday.is_bound and holiday.is_valid():
        try:
            actions.do_create("holiday", actor=actor(request), fields=holiday.cleaned_data)
        except PbxError as exc:
            add_action_errors(holiday, exc)
        else:
            messages.success(request, f"Holiday {holiday.cleaned_data['name']} added.")
            return redirect("portal:office_hours")
    ctx = {
        "form": hours,
        "holiday_form": holiday,
        "holidays": Holiday.objects.order_by("start", "id"),
        "time_zone": host_tenant(request).time_zone,
    }
    return page(request, "portal/routing/hours.html", ctx, section="hours")


@require_POST
@routing_admin
def holiday_delete(request, pk):
    return _delete(
        request, Holiday, pk, label=lambda h: f"Holiday {h.name}", back="portal:office_hours"
    )


# --------------------------------------------------------------------------- blacklist


@routing_admin
def blacklist(request):
    form = BlacklistForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry = actions.do_create("blacklist", actor=actor(request), fields=form.cleaned_data)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"{entry.number} blacklisted.")
            return redirect("portal:blacklist")
    ctx = list_page(
        request,
        BlacklistEntry.objects.all(),
        search=("number", "note"),
        sorts={"number": "number", "created": "created_at"},
        default="number",
    )
    if wants_csv(request):
        columns: list[Column] = [
            ("Number", "number"),
            ("Prefix", "prefix"),
            ("Answer", "get_action_display"),
            ("Note", "note"),
            ("Added", "created_at"),
        ]
        return csv_response(request, ctx["queryset"], columns, name="blacklist")
    ctx["form"] = form
    return page(request, "portal/routing/blacklist.html", ctx, section="blacklist")


@require_POST
@routing_admin
def blacklist_delete(request, pk):
    return _delete(
        request,
        BlacklistEntry,
        pk,
        label=lambda e: f"Blacklist entry {e.number}",
        back="portal:blacklist",
    )


# --------------------------------------------------------------------------- emergency numbers


@routing_admin
def emergency(request):
    trunks = _trunks(request)
    form = EmergencyForm(request.POST or None, trunks=trunks)
    if request.method == "POST" and form.is_valid():
        try:
            entry = actions.do_create("emergency", actor=actor(request), fields=form.cleaned_data)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Emergency number {entry.number} added.")
            return redirect("portal:emergency")
    names = {t.pk: t.name for t in trunks}
    rows = [
        {"entry": e, "trunks": [names.get(i, f"(gone: {i})") for i in e.trunks]}
        for e in EmergencyNumber.objects.order_by("number")
    ]
    ctx = {"form": form, "rows": rows, "settings": RoutingSettings.load()}
    return page(request, "portal/routing/emergency.html", ctx, section="emergency")


@require_POST
@routing_admin
def emergency_delete(request, pk):
    return _delete(
        request,
        EmergencyNumber,
        pk,
        label=lambda e: f"Emergency number {e.number}",
        back="portal:emergency",
    )


# --------------------------------------------------------------------------- settings


@routing_admin
def routing_settings(request):
    tenant = host_tenant(request)
    settings = RoutingSettings.load()
    initial = {
        "country": tenant.country,
        "privacy_code": settings.privacy_code,
        "caller_id": settings.caller_id,
        "emergency_caller_id": settings.emergency_caller_id,
        "allowed_countries": ", ".join(settings.allowed_countries),
        "blocked_prefixes": "\n".join(settings.blocked_prefixes),
    }
    form = RoutingSettingsForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            actions.do_update_settings(
                actor=actor(request),
                fields=form.fields_for_action(),
                country=form.cleaned_data["country"],
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Routing settings saved.")
            return redirect("portal:routing_settings")
    ctx = {"form": form}
    return page(request, "portal/routing/settings.html", ctx, section="routing_settings")
