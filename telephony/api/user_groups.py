"""The host tenant's user groups in the API: ``/api/v1/user-groups/``. Reading needs
``extensions.view``, writing ``extensions.manage``; every write goes through
``telephony.user_groups`` (validated, audited), whose field errors are the answer's.
``members`` is a list of extension numbers; a change that carries it replaces the list."""

from __future__ import annotations

from django.db.models import Prefetch
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import TenantScopedViewSet
from telephony import user_groups
from telephony.models import Extension, UserGroup
from tenants.choices import Permission


class MemberNumbers(serializers.ListField):
    """The members as their numbers (prefetched by the view)."""

    def get_attribute(self, instance):
        return [e.number for e in instance.members.all()]


class UserGroupSerializer(ActionJudgesValues, serializers.ModelSerializer):
    members = MemberNumbers(
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

    def action_fields(self) -> dict:
        return dict(self.validated_data)


class UserGroupViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Groups of the tenant's extensions (departments): for BLF lists, the directory and
    rules that name a group."""

    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    serializer_class = UserGroupSerializer
    search_fields = ("name", "description")
    ordering_fields = ("name", "id", "created_at")
    ordering = ("name",)

    def get_queryset(self):
        members = Prefetch("members", queryset=Extension.objects.only("id", "number"))
        return UserGroup.objects.prefetch_related(members).order_by("name", "id")

    def _answer(self, group, code=status.HTTP_200_OK):
        group = self.get_queryset().get(pk=group.pk)
        return Response(self.get_serializer(group).data, status=code)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        group = user_groups.do_create_user_group(actor=self.actor, fields=ser.action_fields())
        return self._answer(group, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        group = self.get_object()
        ser = self.get_serializer(group, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        group = user_groups.do_update_user_group(
            group, actor=self.actor, fields=ser.action_fields()
        )
        return self._answer(group)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        user_groups.do_delete_user_group(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
