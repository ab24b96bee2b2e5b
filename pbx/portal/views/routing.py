"""A tenant's call routing on its host (``routing.manage``): inbound and outbound rules, office
hours and holidays, the blacklist, emergency numbers and the routing settings. The pages run in
the tenant's schema (the host's); every write goes through ``routing.actions``, whose field
errors are shown on the fields."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest
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

from .common import actor, button_action, edit_page, page

routing_admin = tenant_permission_required(Permission.ROUTING_MANAGE)


def destination_label(value) -> str:
    if not value:
        return ""
    kind = KINDS.get(value.get("kind", ""))
    return f"{kind.label if kind else value.get('kind')} {value.get('target', '')}".strip()


def _trunks(request):
    return list(usable_trunks(host_tenant(request)).order_by("name", "id"))


def _trunk_names(trunks, ids) -> list[str]:
    """The names of the trunks ``ids`` (a rule's failover order) among ``trunks``."""
    names = {t.pk: t.name for t in trunks}
    return [names.get(i, f"(gone: {i})") for i in ids]


# --------------------------------------------------------------------------- every kind of row


@dataclass(frozen=True)
class RowPage:
    """How the portal shows one kind of routing row (a key of ``routing.actions.ROWS``)."""

    noun: str  # "Inbound rule": the messages' subject
    title: str  # the field that names a row in them
    back: str  # the page the row is listed on
    section: str
    # The edit page's form and its extra context, for a row or a new one (rules only).
    form: Callable[[HttpRequest, Any], tuple[Form, dict]] | None = None


def _inbound_form(request, rule):
    if rule is not None:
        initial = inbound_initial(rule)
    else:
        initial = {"number": request.GET.get("number", "")[:64], "in_hours_kind": "extension"}
        if initial["number"]:
            initial["name"] = f"Calls to {initial['number']}"
    tenant = host_tenant(request)
    numbers = [
        (n, n) for n in DidNumber.objects.filter(tenant=tenant).values_list("number", flat=True)
    ]
    form = InboundRuleForm(
        request.POST or None,
        initial=initial,
        targets=destination_options(tenant),
        numbers=numbers,
    )
    return form, {}


def _outbound_form(request, rule):
    initial = outbound_initial(rule) if rule is not None else None
    trunks = _trunks(request)
    form = OutboundRuleForm(request.POST or None, initial=initial, trunks=trunks)
    return form, {"has_trunks": bool(trunks)}


PAGES = {
    "inbound": RowPage("Inbound rule", "name", "portal:inbound_list", "inbound", _inbound_form),
    "outbound": RowPage(
        "Outbound rule", "name", "portal:outbound_list", "outbound", _outbound_form
    ),
    "holiday": RowPage("Holiday", "name", "portal:office_hours", "hours"),
    "blacklist": RowPage("Blacklist entry", "number", "portal:blacklist", "blacklist"),
    "emergency": RowPage("Emergency number", "number", "portal:emergency", "emergency"),
}


@routing_admin
def row_edit(request, kind, pk=None):
    """A rule's page (``kind``: inbound or outbound): a new one without ``pk``."""
    spec = PAGES[kind]
    assert spec.form is not None
    row = get_object_or_404(actions.ROWS[kind].model, pk=pk) if pk else None
    form, ctx = spec.form(request, row)
    return edit_page(
        request,
        form,
        row,
        create=lambda actor, fields: actions.do_create(kind, actor=actor, fields=fields),
        update=actions.do_update,
        saved=lambda fields: f"{spec.noun} {fields[spec.title]} saved.",
        back=spec.back,
        template=f"portal/routing/{kind}_form.html",
        section=spec.section,
        context=ctx,
    )


def _add_row(request, kind, form, done: Callable[[Any], str]):
    """Add a row from a page's bound ``form``: the redirect back to the page once added,
    else None (the action's field errors are on the form)."""
    if not (form.is_bound and form.is_valid()):
        return None
    try:
        row = actions.do_create(kind, actor=actor(request), fields=form.cleaned_data)
    except PbxError as exc:
        add_action_errors(form, exc)
        return None
    messages.success(request, done(row))
    return redirect(PAGES[kind].back)


@require_POST
@routing_admin
def row_delete(request, kind, pk):
    spec = PAGES[kind]
    row = get_object_or_404(actions.ROWS[kind].model, pk=pk)
    done = f"{spec.noun} {getattr(row, spec.title)} deleted."
    button_action(request, lambda who: actions.do_delete(row, actor=who), done)
    return redirect(spec.back)


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


# --------------------------------------------------------------------------- outbound rules


@routing_admin
def outbound_list(request):
    trunks = _trunks(request)
    rules = list(OutboundRule.objects.order_by("priority", "id"))
    rows = [{"rule": r, "trunks": _trunk_names(trunks, r.trunks)} for r in rules]
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
    added = _add_row(request, "holiday", holiday, lambda h: f"Holiday {h.name} added.")
    if added is not None:
        return added
    ctx = {
        "form": hours,
        "holiday_form": holiday,
        "holidays": Holiday.objects.order_by("start", "id"),
        "time_zone": host_tenant(request).time_zone,
    }
    return page(request, "portal/routing/hours.html", ctx, section="hours")


# --------------------------------------------------------------------------- blacklist


@routing_admin
def blacklist(request):
    form = BlacklistForm(request.POST or None)
    added = _add_row(request, "blacklist", form, lambda e: f"{e.number} blacklisted.")
    if added is not None:
        return added
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


# --------------------------------------------------------------------------- emergency numbers


@routing_admin
def emergency(request):
    trunks = _trunks(request)
    form = EmergencyForm(request.POST or None, trunks=trunks)
    added = _add_row(request, "emergency", form, lambda e: f"Emergency number {e.number} added.")
    if added is not None:
        return added
    rows = [
        {"entry": e, "trunks": _trunk_names(trunks, e.trunks)}
        for e in EmergencyNumber.objects.order_by("number")
    ]
    ctx = {"form": form, "rows": rows, "settings": RoutingSettings.load()}
    return page(request, "portal/routing/emergency.html", ctx, section="emergency")


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
