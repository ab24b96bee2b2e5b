"""The host tenant's IVR menus in the API: ``/api/v1/ivrs/``, each menu with its keys
(``options``, replaced as a set when given). Reading needs ``routing.view``, writing
``routing.manage``; every write goes through ``routing.ivr`` (audited, republished), whose
field errors are the answer's; a menu still in use answers 409 naming what uses it."""

from __future__ import annotations

from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import TenantScopedViewSet
from routing import ivr
from routing.models import IvrMenu, IvrOption

from .views import ROUTING_CODES

TARGET_HELP = (
    'A destination {"kind": ..., "target": ...}; kinds: extension, voicemail (a mailbox: its '
    "extension's number), ivr (a menu's number), disa (a DISA entry's id), external (an outside "
    "number), repeat, hangup."
)


class IvrOptionSerializer(serializers.ModelSerializer):
    digit = serializers.CharField(help_text="0-9, * or #.")
    target = serializers.JSONField(help_text=TARGET_HELP)

    class Meta:
        model = IvrOption
        fields = ("digit", "target")


class IvrMenuSerializer(ActionJudgesValues, serializers.ModelSerializer):
    options = IvrOptionSerializer(
        many=True, required=False, help_text="The keys; when given, they replace the menu's."
    )
    timeout_target = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="After the last try without a valid key (null: hang up). " + TARGET_HELP,
    )
    closed_target = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="Out of office hours, after the closed greeting (null: the menu as usual).",
    )
    greeting = serializers.CharField(
        required=False, allow_blank=True, help_text="A prompt's name; empty: the default welcome."
    )
    invalid = serializers.CharField(
        required=False, allow_blank=True, help_text="A prompt's name; empty: the default."
    )
    closed_greeting = serializers.CharField(
        required=False, allow_blank=True, help_text="A prompt's name; empty: the default."
    )

    class Meta:
        model = IvrMenu
        fields = ("id", *ivr.MENU_FIELDS, "options", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {
            "timeout": {"help_text": "Seconds to wait for a key, 1 to 60."},
            "tries": {"help_text": "Times the menu is played, 1 to 10."},
            "use_hours": {"help_text": "Follow the tenant's office hours."},
            "dial_extension": {"help_text": "Callers may dial an extension's number."},
        }

    def action_fields(self) -> dict:
        data = dict(self.validated_data)
        if "options" in data:
            data["options"] = [dict(o) for o in data["options"]]
        return data


class IvrMenuViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet
):  # fmt: skip
    """Virtual receptionists: a number to dial, a greeting, keys to destinations, what happens
    without a valid key and out of office hours."""

    permission_codes = ROUTING_CODES
    serializer_class = IvrMenuSerializer
    search_fields = ("number", "name")
    ordering_fields = ("number", "name", "id")
    ordering = ("number",)

    def get_queryset(self):
        return IvrMenu.objects.prefetch_related("options").order_by("number")

    def _answer(self, menu, code=status.HTTP_200_OK):
        menu = self.get_queryset().get(pk=menu.pk)
        return Response(self.get_serializer(menu).data, status=code)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        menu = ivr.do_create_ivr(actor=self.actor, fields=ser.action_fields())
        return self._answer(menu, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        menu = self.get_object()
        ser = self.get_serializer(menu, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        menu = ivr.do_update_ivr(menu, actor=self.actor, fields=ser.action_fields())
        return self._answer(menu)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        ivr.do_delete_ivr(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
