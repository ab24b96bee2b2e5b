"""Trunks and the DID pool.

On the provider's host the system admin (everything) and a dealer admin (what its subtree owns,
``trunks.access``) list trunks with their live state, create, edit and delete them, and keep
the pool of numbers: add a number or a range, assign to a tenant, release, delete (one by one
or in bulk). On a tenant's host its administrator sees, read-only, its numbers and the trunks
it may use (never a shared trunk's credentials). Every write goes through ``trunks.actions``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from dealers.access import dealers_visible_to
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal import bulk
from pbx.portal.access import host_tenant, platform_admin_required, tenant_permission_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.lists import list_page
from pbx.portal.routing_forms import NumberAddForm, NumberEditForm, TrunkForm, trunk_initial
from telephony.engine.carriers import trunk_states
from tenants.access import tenants_visible_to
from tenants.choices import Permission, Role
from trunks import actions
from trunks.access import numbers_managed_by, trunks_managed_by, usable_trunks
from trunks.models import DidNumber, Trunk

from .common import actor, button_action, page

TRUNKS = "trunks"
NUMBERS = "numbers"


# --------------------------------------------------------------------------- live state


def _when(epoch: str) -> datetime | None:
    try:
        value = float(epoch)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(value, tz=UTC) if value > 0 else None


def trunk_rows(trunks) -> list[dict]:
    """Each trunk with its live state (as the engine last wrote it), the time of its last
    change and the channels in use."""
    trunks = list(trunks)
    # One row per trunk, every field filled (state "unknown", channels "0" when unseen).
    states = trunk_states([t.pk for t in trunks])
    rows = []
    for trunk in trunks:
        state = states[trunk.pk]
        rows.append(
            {
                "trunk": trunk,
                "state": state["state"],
                "error": state["error"],
                "at": _when(state["at"]),
                "checked": _when(state["checked"]),
                "channels": int(state["channels"]),
            }
        )
    return rows


# --------------------------------------------------------------------------- provider: trunks


def _owner_choices(user) -> list[tuple[str, str]]:
    choices = []
    if user.role == Role.SYSTEM_ADMIN:
        choices.append(("", "The provider"))
    choices += [
        (f"d:{d.pk}", f"Dealer {d.name}") for d in dealers_visible_to(user).order_by("path")
    ]
    choices += [
        (f"t:{t.pk}", f"Tenant {t.name}") for t in tenants_visible_to(user).order_by("name")
    ]
    return choices


def _owner(user, value: str) -> dict:
    """The action's owner arguments for the chosen ``d:<id>``/``t:<id>``/"" (the provider),
    looked up within what the user may manage."""
    kind, _, pk = value.partition(":")
    if kind == "d" and pk.isdigit():
        return {"dealer": get_object_or_404(dealers_visible_to(user), pk=int(pk))}
    if kind == "t" and pk.isdigit():
        return {"tenant": get_object_or_404(tenants_visible_to(user), pk=int(pk))}
    if user.role != Role.SYSTEM_ADMIN:
        raise Http404
    return {}


def _share_candidates(user):
    return list(tenants_visible_to(user).order_by("name"))


TRUNK_COLUMNS: list[Column] = [
    ("Name", "trunk.name"),
    ("Owner", "trunk.owner_label"),
    ("Kind", "trunk.get_kind_display"),
    ("Host", "trunk.host"),
    ("Transport", "trunk.transport"),
    ("State", "state"),
    ("Last error", "error"),
    ("State since", "at"),
    ("Channels in use", "channels"),
    ("Maximum channels", "trunk.max_channels"),
    ("Enabled", "trunk.enabled"),
]


@platform_admin_required
def trunk_list(request):
    qs = trunks_managed_by(request.user).select_related("tenant", "dealer")
    ctx = list_page(
        request,
        qs,
        search=("name", "host"),
        sorts={"name": "name", "host": "host", "kind": "kind"},
        default="name",
    )
    if wants_csv(request):
        return csv_response(request, trunk_rows(ctx["queryset"]), TRUNK_COLUMNS, name="trunks")
    ctx["rows"] = trunk_rows(ctx["page"])
    return page(request, "portal/trunks/list.html", ctx, section=TRUNKS)


@platform_admin_required
def trunk_add(request):
    user = request.user
    tenants = _share_candidates(user)
    form = TrunkForm(request.POST or None, owners=_owner_choices(user), tenants=tenants)
    if request.method == "POST" and form.is_valid():
        owner = _owner(user, form.cleaned_data["owner"])
        shared = [t for t in tenants if t.pk in form.shared_ids()]
        try:
            trunk = actions.do_create_trunk(
                actor=actor(request),
                fields=form.changes(),
                password=form.new_password(),
                shared_with=shared,
                **owner,
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Trunk {trunk.name} created.")
            return redirect("portal:trunk_list")
    return page(request, "portal/trunks/form.html", {"form": form}, section=TRUNKS)


def _managed_trunk(request, pk) -> Trunk:
    return get_object_or_404(
        trunks_managed_by(request.user).select_related("tenant", "dealer"), pk=pk
    )


@platform_admin_required
def trunk_edit(request, pk):
    trunk = _managed_trunk(request, pk)
    user = request.user
    tenants = _share_candidates(user)
    initial = trunk_initial(trunk)
    form = TrunkForm(request.POST or None, initial=initial, tenants=tenants, editing=True)
    if request.method == "POST" and form.is_valid():
        # Only what changed: an untouched stored value is not judged again.
        changes = {k: v for k, v in form.changes().items() if initial.get(k) != v}
        if "addresses" in changes and changes["addresses"] == trunk.addresses:
            del changes["addresses"]
        wanted = form.shared_ids()
        # Tenants it is shared with that this admin cannot see stay shared.
        hidden = [t for t in trunk.shared_with.all() if t not in tenants]
        shared = None
        if wanted != {int(i) for i in initial["shared_with"]}:
            shared = [t for t in tenants if t.pk in wanted] + hidden
        try:
            actions.do_update_trunk(
                trunk,
                actor=actor(request),
                fields=changes,
                password=form.new_password(),
                shared_with=shared,
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Trunk {trunk.name} saved.")
            return redirect("portal:trunk_list")
    state = trunk_rows([trunk])[0]
    ctx = {"form": form, "object": trunk, "row": state}
    return page(request, "portal/trunks/form.html", ctx, section=TRUNKS)


@platform_admin_required
def trunk_delete(request, pk):
    """A confirmation that says what goes with the trunk, then the delete."""
    trunk = _managed_trunk(request, pk)
    if request.method == "POST" and button_action(
        request,
        lambda who: actions.do_delete_trunk(trunk, actor=who),
        f"Trunk {trunk.name} deleted.",
    ):
        return redirect("portal:trunk_list")
    ctx = {
        "object": trunk,
        "numbers": list(trunk.numbers.values_list("number", flat=True)[:50]),
        "number_count": trunk.numbers.count(),
        "shared": list(trunk.shared_with.order_by("name")),
    }
    return page(request, "portal/trunks/delete.html", ctx, section=TRUNKS)


# --------------------------------------------------------------------------- provider: numbers


def _holder_choices(user) -> list[tuple[str, str]]:
    choices = [("", "The provider")] if user.role == Role.SYSTEM_ADMIN else []
    return choices + [(str(d.pk), d.name) for d in dealers_visible_to(user).order_by("path")]


NUMBER_COLUMNS: list[Column] = [
    ("Number", "number"),
    ("Held by", lambda n: n.dealer.name if n.dealer_id else "provider"),
    ("Tenant", "tenant.name"),
    ("Trunk", "trunk.name"),
    ("Description", "description"),
    ("Assigned", "assigned_at"),
    ("Added", "created_at"),
]
NUMBER_BULK = [
    ("assign", "Assign to the tenant chosen"),
    ("release", "Release"),
    ("delete", "Delete…"),
]


def _number_filters(request, qs):
    keep = {}
    status = request.GET.get("status", "")
    if status == "free":
        qs = qs.filter(tenant__isnull=True)
        keep["status"] = status
    elif status == "assigned":
        qs = qs.filter(tenant__isnull=False)
        keep["status"] = status
    tenant = request.GET.get("tenant", "")
    if tenant.isdigit():
        qs = qs.filter(tenant_id=int(tenant))
        keep["tenant"] = tenant
    return qs, keep


@platform_admin_required
def number_list(request):
    user = request.user
    qs = numbers_managed_by(user).select_related("tenant", "dealer", "trunk")
    qs, keep = _number_filters(request, qs)
    ctx = list_page(
        request,
        qs,
        search=("number", "description", "tenant__name"),
        sorts={"number": "number", "tenant": "tenant__name", "assigned": "assigned_at"},
        default="number",
        keep=keep,
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], NUMBER_COLUMNS, name="numbers")
    ctx.update(
        tenants=list(tenants_visible_to(user).order_by("name")),
        status=keep.get("status", ""),
        tenant_id=keep.get("tenant", ""),
        bulk_actions=NUMBER_BULK,
    )
    return page(request, "portal/numbers/list.html", ctx, section=NUMBERS)


@platform_admin_required
def number_add(request):
    user = request.user
    dealers = {str(d.pk): d for d in dealers_visible_to(user)}
    tenants = list(tenants_visible_to(user).order_by("name"))
    form = NumberAddForm(
        request.POST or None,
        holders=_holder_choices(user),
        tenants=tenants,
        trunks=trunks_managed_by(user).order_by("name"),
        initial={"holder": "" if user.role == Role.SYSTEM_ADMIN else str(user.dealer_id)},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        tenant = next((t for t in tenants if t.pk == data["tenant"]), None)
        trunk = trunks_managed_by(user).filter(pk=data["trunk"]).first() if data["trunk"] else None
        try:
            created = actions.do_add_numbers(
                actor=actor(request),
                number=data["number"],
                last=data["last"] or None,
                country=data["country"],
                dealer=dealers.get(data["holder"]),
                tenant=tenant,
                trunk=trunk,
                description=data["description"],
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            first = created[0].number
            what = first if len(created) == 1 else f"{len(created)} numbers from {first}"
            messages.success(request, f"Added {what}.")
            return redirect("portal:number_list")
    return page(request, "portal/numbers/form.html", {"form": form}, section=NUMBERS)


def _managed_number(request, pk) -> DidNumber:
    return get_object_or_404(numbers_managed_by(request.user).select_related("tenant"), pk=pk)


@platform_admin_required
def number_edit(request, pk):
    user = request.user
    number = _managed_number(request, pk)
    initial = {"description": number.description, "trunk": number.trunk_id}
    trunks = trunks_managed_by(user).order_by("name")
    form = NumberEditForm(request.POST or None, initial=initial, trunks=trunks)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        changes = {}
        if data["description"] != number.description:
            changes["description"] = data["description"]
        if data["trunk"] != number.trunk_id:
            changes["trunk"] = trunks.filter(pk=data["trunk"]).first() if data["trunk"] else None
        try:
            if changes:
                actions.do_update_number(number, actor=actor(request), fields=changes)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Number {number} saved.")
            return redirect("portal:number_list")
    ctx = {
        "form": form,
        "object": number,
        "tenants": list(tenants_visible_to(user).order_by("name")),
    }
    return page(request, "portal/numbers/edit.html", ctx, section=NUMBERS)


def _number_button(request, pk, action, done: str, *args):
    """A number's POST button: ``action(number, *args, actor=...)``; its success message is
    the number and ``done``. Back to the page the button was on."""
    number = _managed_number(request, pk)
    button_action(request, lambda who: action(number, *args, actor=who), f"{number} {done}.")
    return redirect(bulk.back_to(request, reverse("portal:number_list")))


def _chosen_tenant(request):
    """The tenant picked in the POST's ``tenant`` (one the user sees), or None."""
    tenant_id = request.POST.get("tenant", "")
    if not tenant_id.isdigit():
        return None
    return tenants_visible_to(request.user).filter(pk=int(tenant_id)).first()


@require_POST
@platform_admin_required
def number_assign(request, pk):
    tenant = _chosen_tenant(request)
    if tenant is None:
        _managed_number(request, pk)
        messages.error(request, "Choose the tenant to assign the number to.")
        return redirect(bulk.back_to(request, reverse("portal:number_list")))
    done = f"assigned to {tenant.name}"
    return _number_button(request, pk, actions.do_assign_number, done, tenant)


@require_POST
@platform_admin_required
def number_release(request, pk):
    return _number_button(request, pk, actions.do_release_number, "released to the pool")


@require_POST
@platform_admin_required
def number_delete(request, pk):
    return _number_button(request, pk, actions.do_delete_number, "deleted")


@require_POST
@platform_admin_required
def number_bulk(request):
    action, back, objects, missing = bulk.selection(
        request,
        numbers_managed_by(request.user).select_related("tenant"),
        reverse("portal:number_list"),
    )
    if action == "delete":
        return bulk.confirm_delete(
            request,
            objects,
            missing,
            delete=lambda n, who: actions.do_delete_number(n, actor=who),
            label=str,
            rows=lambda: [{"number": n} for n in objects],
            noun="number",
            template="portal/numbers/bulk_delete.html",
            section=NUMBERS,
            back=back,
        )
    do: Callable[..., Any]
    args: tuple[Any, ...]
    if action == "release":
        do, args, done = actions.do_release_number, (), "released"
    elif action == "assign":
        tenant = _chosen_tenant(request)
        if tenant is None:
            messages.error(request, "Choose the tenant to assign the numbers to.")
            return redirect(back)
        do, args, done = actions.do_assign_number, (tenant,), f"assigned to {tenant.name}"
    else:
        messages.error(request, "Choose what to do with the selected numbers.")
        return redirect(back)
    outcome = bulk.run(request, objects, missing, lambda n, who: do(n, *args, actor=who), label=str)
    bulk.report(request, outcome, done=done, noun="number")
    return redirect(back)


# --------------------------------------------------------------------------- a tenant's host

routing_viewer = tenant_permission_required(Permission.ROUTING_VIEW)


@routing_viewer
def tenant_numbers(request):
    """The tenant's DID numbers, read-only, each with the inbound rule that takes it."""
    from routing.models import InboundRule, MatchKind

    tenant = host_tenant(request)
    numbers = list(DidNumber.objects.filter(tenant=tenant).order_by("number"))
    rules = list(InboundRule.objects.exclude(match=MatchKind.PATTERN).order_by("priority", "id"))

    def rule_for(number: str):
        for rule in rules:
            end = rule.number_end or rule.number
            if len(rule.number) == len(number) and rule.number <= number <= end:
                return rule
        return None

    rows = [{"number": n, "rule": rule_for(n.number)} for n in numbers]
    return page(request, "portal/routing/numbers.html", {"rows": rows}, section="numbers")


@routing_viewer
def tenant_trunks(request):
    """The trunks the tenant's calls may use, with their state; no credentials."""
    tenant = host_tenant(request)
    rows = trunk_rows(usable_trunks(tenant).order_by("name", "id"))
    return page(request, "portal/routing/trunks.html", {"rows": rows}, section="tenant_trunks")
