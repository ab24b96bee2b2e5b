"""A tenant's user groups in the portal: the list (with members), the edit page and the delete
confirmation. Reading needs ``extensions.view``; changing, ``extensions.manage``. Every write
is ``telephony.user_groups``' action."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect

from pbx.portal.access import tenant_permission_required
from pbx.portal.lists import list_page
from pbx.portal.user_group_forms import UserGroupForm, user_group_initial
from telephony import user_groups
from telephony.models import Extension, UserGroup
from tenants.choices import Permission

from .common import button_action, page, save_action


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def user_group_list(request):
    members = Prefetch("members", queryset=Extension.objects.only("id", "number", "display_name"))
    groups = UserGroup.objects.annotate(member_count=Count("members")).prefetch_related(members)
    ctx = list_page(
        request,
        groups,
        search=("name", "description"),
        sorts={"name": "name", "members": "member_count"},
        default="name",
    )
    return page(request, "portal/user_groups/list.html", ctx, section="user_groups")


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def user_group_edit(request, pk=None):
    group = get_object_or_404(UserGroup, pk=pk) if pk else None
    form = UserGroupForm(
        request.POST or None, initial=user_group_initial(group) if group is not None else None
    )
    if (
        request.method == "POST"
        and form.is_valid()
        and save_action(
            request,
            form,
            group,
            lambda who, fields: user_groups.do_create_user_group(actor=who, fields=fields),
            lambda group, who, fields: user_groups.do_update_user_group(
                group, actor=who, fields=fields
            ),
            lambda fields: f"User group {fields['name']} saved.",
        )
    ):
        return redirect("portal:user_group_list")
    ctx = {"form": form, "object": group}
    return page(request, "portal/user_groups/form.html", ctx, section="user_groups")


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def user_group_delete(request, pk):
    group = get_object_or_404(UserGroup, pk=pk)
    if request.method == "POST":
        done = f"User group {group.name} deleted."
        button_action(request, lambda who: user_groups.do_delete_user_group(group, actor=who), done)
        return redirect("portal:user_group_list")
    ctx = {"object": group, "member_count": group.members.count()}
    return page(request, "portal/user_groups/delete.html", ctx, section="user_groups")
