"""The host tenant's user groups in the API: ``/api/v1/user-groups/``. Reading needs
``extensions.view``, writing ``extensions.manage``; every write goes through
``telephony.user_groups`` (validated, audited), whose field errors are the answer's.
``members`` is a list of extension numbers; a change that carries it replaces the list."""

from __future__ import annotations

from django.db.models import Prefetch
from rest_framework import serializers

from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import ActionViewSet
from telephony import user_groups
from telephony.api.serializers import ExtensionNumbersField
from telephony.models import Extension, UserGroup
from tenants.choices import Permission


class UserGroupSerializer(ActionJudgesValues, serializers.ModelSerializer):
    members = ExtensionNumbersField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        required=False,
        help_text="The member extensions' numbers (the list replaces the group's).",
    )

    class Meta:
        model = UserGroup
        fields = ("id", "name", "description", "members", "created_at", "updated_at")
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs = {
            "name": {"help_text": "Unique in the tenant; one line."},
            "description": {"required": False, "allow_blank": True},
        }

    def get_validators(self):
        return []  # the action judges the name's uniqueness (409)


class UserGroupViewSet(ActionViewSet):
    """Groups of the tenant's extensions (departments): for BLF lists, the directory and
    rules that name a group."""

    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    serializer_class = UserGroupSerializer
    create_action = staticmethod(user_groups.do_create_user_group)
    update_action = staticmethod(user_groups.do_update_user_group)
    delete_action = staticmethod(user_groups.do_delete_user_group)
    search_fields = ("name", "description")
    ordering_fields = ("name", "id", "created_at")
    ordering = ("name",)

    def get_queryset(self):
        members = Prefetch("members", queryset=Extension.objects.only("id", "number"))
        return UserGroup.objects.prefetch_related(members).order_by("name", "id")
