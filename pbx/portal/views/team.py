"""A tenant's ring groups, paging groups, pickup groups and call park settings on its host
(``routing.manage``, as IVR menus). The pages run in the tenant's schema; every write goes
through ``telephony.team``, whose field errors are shown on the fields."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, redirect

from pbx.portal.access import host_tenant
from pbx.portal.forms import extension_choices
from pbx.portal.routing_forms import destination_options
from pbx.portal.team_forms import (
    PagingGroupForm,
    ParkSettingsForm,
    PickupGroupForm,
    RingGroupForm,
    ring_initial,
)
from telephony import team
from telephony.models import PagingGroup, ParkSettings, PickupGroup, RingGroup, RingStrategy

from .common import edit_page, form_action, list_view, page, referenced_delete_page
from .routing import destination_label, routing_admin


def _members_initial(group, *names: str) -> dict | None:
    """A paging or pickup group's form values: its ``names`` fields and member numbers."""
    if group is None:
        return None
    return {
        **{name: getattr(group, name) for name in names},
        "members": [e.number for e in group.members.all()],
    }


# ---------------------------------------------------------------------------- ring groups


@routing_admin
def ring_group_list(request):
    strategies = dict(RingStrategy.choices)
    return list_view(
        request,
        RingGroup.objects.prefetch_related("members__extension"),
        "portal/team/ring_list.html",
        section="ring_groups",
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
        rows=lambda groups: [
            {
                "group": g,
                "members": [str(m) for m in g.members.all()],
                "strategy": strategies.get(g.strategy, g.strategy),
                "overflow": destination_label(g.overflow) or "Nobody is available",
            }
            for g in groups
        ],
    )


@routing_admin
def ring_group_edit(request, pk=None):
    """A ring group's page (a new one without ``pk``): its members in ringing order."""
    qs = RingGroup.objects.prefetch_related("members__extension")
    group = get_object_or_404(qs, pk=pk) if pk else None
    form = RingGroupForm(
        request.POST or None,
        initial=ring_initial(group) if group is not None else None,
        targets=destination_options(host_tenant(request)),
        extensions=extension_choices(),
        members=team.ring_members(group) if group is not None else (),
    )
    return edit_page(
        request,
        form,
        group,
        create=team.do_create_ring_group,
        update=team.do_update_ring_group,
        saved=lambda fields: f"Ring group {fields['number']} {fields['name']} saved.",
        back="portal:ring_group_list",
        template="portal/team/ring_form.html",
        section="ring_groups",
    )


@routing_admin
def ring_group_delete(request, pk):
    """GET: what deleting the group means (or what still sends calls to it); POST: delete."""
    return referenced_delete_page(
        request,
        RingGroup,
        pk,
        kind="ring group",
        title=lambda g: f"Ring group {g.number} {g.name}",
        delete=team.do_delete_ring_group,
        back="portal:ring_group_list",
        section="ring_groups",
        used_by=lambda g: team.references("ring_group", g.number, exclude_group=g.pk),
    )


# -------------------------------------------------------------------------- paging groups


@routing_admin
def paging_group_list(request):
    return list_view(
        request,
        PagingGroup.objects.prefetch_related("members"),
        "portal/team/paging_list.html",
        section="paging_groups",
        search=("number", "name"),
        sorts={"number": "number", "name": "name"},
        default="number",
    )


@routing_admin
def paging_group_edit(request, pk=None):
    qs = PagingGroup.objects.prefetch_related("members")
    group = get_object_or_404(qs, pk=pk) if pk else None
    form = PagingGroupForm(
        request.POST or None,
        initial=_members_initial(group, "number", "name", "duplex"),
        extensions=extension_choices(),
    )
    return edit_page(
        request,
        form,
        group,
        create=team.do_create_paging_group,
        update=team.do_update_paging_group,
        saved=lambda fields: f"Paging group {fields['number']} {fields['name']} saved.",
        back="portal:paging_group_list",
        template="portal/team/paging_form.html",
        section="paging_groups",
    )


@routing_admin
def paging_group_delete(request, pk):
    return referenced_delete_page(
        request,
        PagingGroup,
        pk,
        kind="paging group",
        title=lambda g: f"Paging group {g.number} {g.name}",
        delete=team.do_delete_paging_group,
        back="portal:paging_group_list",
        section="paging_groups",
        used_by=lambda g: team.references("paging", g.number),
    )


# -------------------------------------------------------------------------- pickup groups


@routing_admin
def pickup_group_list(request):
    return list_view(
        request,
        PickupGroup.objects.prefetch_related("members"),
        "portal/team/pickup_list.html",
        section="pickup_groups",
        search=("name",),
        sorts={"name": "name"},
        default="name",
    )


@routing_admin
def pickup_group_edit(request, pk=None):
    qs = PickupGroup.objects.prefetch_related("members")
    group = get_object_or_404(qs, pk=pk) if pk else None
    form = PickupGroupForm(
        request.POST or None,
        initial=_members_initial(group, "name"),
        extensions=extension_choices(),
    )
    return edit_page(
        request,
        form,
        group,
        create=team.do_create_pickup_group,
        update=team.do_update_pickup_group,
        saved=lambda fields: f"Pickup group {fields['name']} saved.",
        back="portal:pickup_group_list",
        template="portal/team/pickup_form.html",
        section="pickup_groups",
    )


@routing_admin
def pickup_group_delete(request, pk):
    return referenced_delete_page(
        request,
        PickupGroup,
        pk,
        kind="pickup group",
        title=lambda g: f"Pickup group {g.name}",
        delete=team.do_delete_pickup_group,
        back="portal:pickup_group_list",
        section="pickup_groups",
        used_by=lambda g: [],
    )


# ------------------------------------------------------------------------------ call park


@routing_admin
def park_settings(request):
    current = ParkSettings.load()
    form = ParkSettingsForm(
        request.POST or None,
        initial={"first": current.first, "count": current.count, "timeout": current.timeout},
    )
    if (
        request.method == "POST"
        and form.is_valid()
        and form_action(
            request,
            form,
            lambda who: team.do_update_park_settings(fields=form.fields_for_action(), actor=who),
            "Call park settings saved.",
        )
    ):
        return redirect("portal:park_settings")
    ctx = {"form": form, "settings": current}
    return page(request, "portal/team/park.html", ctx, section="park")
