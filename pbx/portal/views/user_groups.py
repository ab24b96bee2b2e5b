"""A tenant's user groups in the portal: the list (with members), the edit page and the delete
confirmation. Reading needs ``extensions.view``; changing, ``extensions.manage``. Every write
is ``telephony.user_groups``' action."""

from __future__ import annotations

from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404

from pbx.portal.access import tenant_permission_required
from pbx.portal.user_group_forms import UserGroupForm, user_group_initial
from telephony import user_groups
from telephony.models import Extension, UserGroup
from tenants.choices import Permission

from .common import delete_page, edit_page, list_view


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def user_group_list(request):
    members = Prefetch("members", queryset=Extension.objects.only("id", "number", "display_name"))
    groups = UserGroup.objects.annotate(member_count=Count("members")).prefetch_related(members)
    return list_view(
        request,
        groups,
        "portal/user_groups/list.html",
        section="user_groups",
        search=("name", "description"),
        sorts={"name": "name", "members": "member_count"},
        default="name",
    )


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def user_group_edit(request, pk=None):
    group = get_object_or_404(UserGroup, pk=pk) if pk else None
    form = UserGroupForm(
        request.POST or None, initial=user_group_initial(group) if group is not None else None
    )
    return edit_page(
        request,
        form,
        group,
        create=user_groups.do_create_user_group,
        update=user_groups.do_update_user_group,
        saved=lambda fields: f"User group {fields['name']} saved.",
        back="portal:user_group_list",
        template="portal/user_groups/form.html",
        section="user_groups",
    )


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def user_group_delete(request, pk):
    group = get_object_or_404(UserGroup, pk=pk)
    return delete_page(
        request,
        group,
        delete=user_groups.do_delete_user_group,
        done=f"User group {group.name} deleted.",
        back="portal:user_group_list",
        template="portal/user_groups/delete.html",
        section="user_groups",
        context=lambda: {"member_count": group.members.count()},
    )
