"""A tenant's ring groups, paging groups, pickup groups and call park settings on its host
(``routing.manage``, as IVR menus). The pages run in the tenant's schema; every write goes
through ``telephony.team``, whose field errors are shown on the fields."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect

from pbx.errors import PbxError
from pbx.portal.access import host_tenant
from pbx.portal.lists import list_page
from pbx.portal.routing_forms import destination_options
from pbx.portal.team_forms import (
    PagingGroupForm,
    ParkSettingsForm,
    PickupGroupForm,
    RingGroupForm,
    ring_initial,
)
from routing.destinations import KINDS
from telephony import team
from telephony.models import PagingGroup, ParkSettings, PickupGroup, RingGroup, RingStrategy

from .common import actor, button_action, page, save_action
from .routing import routing_admin


def _extensions() -> list[tuple[str, str]]:
    from telephony.models import Extension

    rows = Extension.objects.order_by("number").values_list("number", "display_name")
    return [(n, f"{n} · {name}") for n, name in rows]


def _label(value) -> str:
    if not value:
        return ""
    kind = KINDS.get(value.get("kind", ""))
    return f"{kind.label if kind else value.get('kind')} {value.get('target', '')}".strip()


# ---------------------------------------------------------------------------- ring groups


@routing_admin
def ring_group_list(request):
    ctx = list_page(
        request,
        RingGroup.objects.prefetch_related("members__extension"),
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
    )
    strategies = dict(RingStrategy.choices)
    ctx["rows"] = [
        {
            "group": g,
            "members": [str(m) for m in g.members.all()],
            "strategy": strategies.get(g.strategy, g.strategy),
            "overflow": _label(g.overflow) or "Nobody is available",
        }
        for g in ctx["page"]
    ]
    return page(request, "portal/team/ring_list.html", ctx, section="ring_groups")


@routing_admin
def ring_group_edit(request, pk=None):
    """A ring group's page (a new one without ``pk``): its members in ringing order."""
    qs = RingGroup.objects.prefetch_related("members__extension")
    group = get_object_or_404(qs, pk=pk) if pk else None
    extensions = _extensions()
    form = RingGroupForm(
        request.POST or None,
        initial=ring_initial(group) if group is not None else None,
        targets=destination_options(host_tenant(request)),
        extensions=extensions,
        members=team.ring_members(group) if group is not None else (),
    )
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            group,
            lambda who, fields: team.do_create_ring_group(actor=who, fields=fields),
            lambda group, who, fields: team.do_update_ring_group(group, actor=who, fields=fields),
            lambda fields: f"Ring group {fields['number']} {fields['name']} saved.",
        )
    ):
        return redirect("portal:ring_group_list")
    ctx = {"form": form, "object": group}
    return page(request, "portal/team/ring_form.html", ctx, section="ring_groups")


@routing_admin
def ring_group_delete(request, pk):
    """GET: what deleting the group means (or what still sends calls to it); POST: delete."""
    group = get_object_or_404(RingGroup, pk=pk)
    if request.method == "POST":
        done = f"Ring group {group.number} {group.name} deleted."
        button_action(request, lambda who: team.do_delete_ring_group(group, actor=who), done)
        return redirect("portal:ring_group_list")
    ctx = {
        "object": group,
        "kind": "ring group",
        "back": "portal:ring_group_list",
        "used_by": team.references("ring_group", group.number, exclude_group=group.pk),
    }
    return page(request, "portal/team/delete.html", ctx, section="ring_groups")


# -------------------------------------------------------------------------- paging groups


@routing_admin
def paging_group_list(request):
    ctx = list_page(
        request,
        PagingGroup.objects.prefetch_related("members"),
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
    )
    return page(request, "portal/team/paging_list.html", ctx, section="paging_groups")


@routing_admin
def paging_group_edit(request, pk=None):
    group = (
        get_object_or_404(PagingGroup.objects.prefetch_related("members"), pk=pk) if pk else None
    )
    initial = None
    if group is not None:
        initial = {
            "number": group.number,
            "name": group.name,
            "duplex": group.duplex,
            "members": [e.number for e in group.members.all()],
        }
    form = PagingGroupForm(request.POST or None, initial=initial, extensions=_extensions())
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            group,
            lambda who, fields: team.do_create_paging_group(actor=who, fields=fields),
            lambda group, who, fields: team.do_update_paging_group(group, actor=who, fields=fields),
            lambda fields: f"Paging group {fields['number']} {fields['name']} saved.",
        )
    ):
        return redirect("portal:paging_group_list")
    ctx = {"form": form, "object": group}
    return page(request, "portal/team/paging_form.html", ctx, section="paging_groups")


@routing_admin
def paging_group_delete(request, pk):
    group = get_object_or_404(PagingGroup, pk=pk)
    if request.method == "POST":
        done = f"Paging group {group.number} {group.name} deleted."
        button_action(request, lambda who: team.do_delete_paging_group(group, actor=who), done)
        return redirect("portal:paging_group_list")
    ctx = {
        "object": group,
        "kind": "paging group",
        "back": "portal:paging_group_list",
        "used_by": team.references("paging", group.number),
    }
    return page(request, "portal/team/delete.html", ctx, section="paging_groups")


# -------------------------------------------------------------------------- pickup groups


@routing_admin
def pickup_group_list(request):
    ctx = list_page(
        request,
        PickupGroup.objects.prefetch_related("members"),
        search=("name",),
        sorts={"name": "name"},
        default="name",
    )
    return page(request, "portal/team/pickup_list.html", ctx, section="pickup_groups")


@routing_admin
def pickup_group_edit(request, pk=None):
    group = (
        get_object_or_404(PickupGroup.objects.prefetch_related("members"), pk=pk) if pk else None
    )
    initial = None
    if group is not None:
        initial = {"name": group.name, "members": [e.number for e in group.members.all()]}
    form = PickupGroupForm(request.POST or None, initial=initial, extensions=_extensions())
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            group,
            lambda who, fields: team.do_create_pickup_group(actor=who, fields=fields),
            lambda group, who, fields: team.do_update_pickup_group(group, actor=who, fields=fields),
            lambda fields: f"Pickup group {fields['name']} saved.",
        )
    ):
        return redirect("portal:pickup_group_list")
    ctx = {"form": form, "object": group}
    return page(request, "portal/team/pickup_form.html", ctx, section="pickup_groups")


@routing_admin
def pickup_group_delete(request, pk):
    group = get_object_or_404(PickupGroup, pk=pk)
    if request.method == "POST":
        done = f"Pickup group {group.name} deleted."
        button_action(request, lambda who: team.do_delete_pickup_group(group, actor=who), done)
        return redirect("portal:pickup_group_list")
    ctx = {
        "object": group,
        "kind": "pickup group",
        "back": "portal:pickup_group_list",
        "used_by": [],
    }
    return page(request, "portal/team/delete.html", ctx, section="pickup_groups")


# ------------------------------------------------------------------------------ call park


@routing_admin
def park_settings(request):
    current = ParkSettings.load()
    form = ParkSettingsForm(
        request.POST or None,
        initial={"first": current.first, "count": current.count, "timeout": current.timeout},
    )
    if request.method == "POST" and form.is_valid():
        try:
            team.do_update_park_settings(fields=form.fields_for_action(), actor=actor(request))
        except PbxError as exc:
            form.add_action_errors(exc)
        else:
            messages.success(request, "Call park settings saved.")
            return redirect("portal:park_settings")
    ctx = {"form": form, "settings": current}
    return page(request, "portal/team/park.html", ctx, section="park")
