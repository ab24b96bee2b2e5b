"""The host tenant's IVR menus in the API: ``/api/v1/ivrs/``, each menu with its keys
(``options``, replaced as a set when given). Reading needs ``routing.view``, writing
``routing.manage``; every write goes through ``routing.ivr`` (audited, republished), whose
field errors are the answer's; a menu still in use answers 409 naming what uses it."""

from __future__ import annotations

from rest_framework import serializers

from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import ActionViewSet
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


class IvrMenuViewSet(ActionViewSet):
    """Virtual receptionists: a number to dial, a greeting, keys to destinations, what happens
    without a valid key and out of office hours."""

    permission_codes = ROUTING_CODES
    serializer_class = IvrMenuSerializer
    create_action = staticmethod(ivr.do_create_ivr)
    update_action = staticmethod(ivr.do_update_ivr)
    delete_action = staticmethod(ivr.do_delete_ivr)
    search_fields = ("number", "name")
    ordering_fields = ("number", "name", "id")
    ordering = ("number",)

    def get_queryset(self):
        return IvrMenu.objects.prefetch_related("options").order_by("number")
