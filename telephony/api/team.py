"""The host tenant's team features in the API: ``/api/v1/ring-groups/``,
``/api/v1/paging-groups/``, ``/api/v1/pickup-groups/`` (each with its members, replaced as a
list when given) and ``/api/v1/park/`` (the call park settings: GET, PATCH). Reading needs
``routing.view``, writing ``routing.manage`` (as IVR menus: all of them are where calls go);
every write goes through ``telephony.team`` (audited, republished), whose field errors are the
answer's; a group still in use answers 409 naming what uses it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantPermission
from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import ActionViewSet
from pbx.audit import Actor
from telephony import team
from telephony.api.serializers import ExtensionNumbersField
from telephony.models import PagingGroup, ParkSettings, PickupGroup, RingGroup
from tenants.choices import Permission

#: Ring, paging and pickup groups and call park are routing: who may change where calls go.
TEAM_CODES = (Permission.ROUTING_VIEW, Permission.ROUTING_MANAGE)

OVERFLOW_HELP = (
    'Where the call goes when nobody answers in time: {"kind": ..., "target": ...} as an '
    "inbound rule's (extension, voicemail, ivr, ring_group, paging, disa, external, reject); "
    "null: the caller hears that nobody is available."
)


class RingMemberSerializer(serializers.Serializer):
    number = serializers.CharField(
        help_text="An extension's number, or with external an outside number."
    )
    external = serializers.BooleanField(
        default=False, help_text="An outside number, called through the outbound rules."
    )

    def to_representation(self, instance):
        if isinstance(instance, dict):
            return instance
        if instance.extension is not None:
            return {"number": instance.extension.number, "external": False}
        return {"number": instance.number, "external": True}


class RingGroupSerializer(ActionJudgesValues, serializers.ModelSerializer):
    members = RingMemberSerializer(
        many=True,
        required=False,
        help_text="In ringing order; when given, they replace the group's.",
    )
    overflow = serializers.JSONField(required=False, allow_null=True, help_text=OVERFLOW_HELP)

    class Meta:
        model = RingGroup
        fields = ("id", *team.RING_FIELDS, "members", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {
            "number": {"help_text": "Dialled like an extension; no extension or menu has it."},
            "strategy": {
                "help_text": "ring_all (at once), hunt (in order), round_robin (taking turns), "
                "longest_idle (the longest idle first)."
            },
            "member_seconds": {
                "help_text": "Seconds each member rings (one after the other), 5 to 300."
            },
            "total_seconds": {"help_text": "Seconds the group rings at most, 5 to 3600."},
            "skip_busy": {"help_text": "Members on a call or in do-not-disturb are passed over."},
            "caller_id_prefix": {
                "help_text": "Put before the caller's name on the members' phones (at most 16)."
            },
        }

    def action_fields(self) -> dict:
        data = dict(self.validated_data)
        if "members" in data:
            data["members"] = [dict(m) for m in data["members"]]
        return data


class PagingGroupSerializer(ActionJudgesValues, serializers.ModelSerializer):
    members = ExtensionNumbersField(
        required=False, help_text="The extensions paged; when given, they replace the group's."
    )

    class Meta:
        model = PagingGroup
        fields = ("id", *team.PAGING_FIELDS, "members", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {
            "number": {"help_text": "Dialled to page the members' phones (they auto-answer)."},
            "duplex": {"help_text": "An intercom: the members may talk back (else one-way)."},
        }


class PickupGroupSerializer(ActionJudgesValues, serializers.ModelSerializer):
    members = ExtensionNumbersField(
        required=False,
        help_text="Extensions that may answer each other's ringing calls (*98); an extension "
        "may be in several groups.",
    )

    class Meta:
        model = PickupGroup
        fields = ("id", "name", "members", "created_at")
        read_only_fields = ("created_at",)


class ParkSettingsSerializer(ActionJudgesValues, serializers.ModelSerializer):
    slots = serializers.SerializerMethodField(help_text="The park slots' numbers.")

    class Meta:
        model = ParkSettings
        fields = ("first", "count", "timeout", "slots")
        extra_kwargs = {
            "first": {"help_text": "The first park slot's number."},
            "count": {"help_text": "Park slots, 1 to 100, numbered from the first."},
            "timeout": {
                "help_text": "Seconds before a parked call rings its parker again, 10 to 3600."
            },
        }

    def get_slots(self, settings) -> list[str]:
        return [str(n) for n in settings.slots()]


class _GroupViewSet(ActionViewSet):
    permission_codes = TEAM_CODES


class RingGroupViewSet(_GroupViewSet):
    """Ring groups: a number that rings several extensions (or outside numbers) at once or
    one after the other, and where the call goes when nobody answers."""

    serializer_class = RingGroupSerializer
    create_action = staticmethod(team.do_create_ring_group)
    update_action = staticmethod(team.do_update_ring_group)
    delete_action = staticmethod(team.do_delete_ring_group)
    filterset_fields = ("strategy", "enabled")
    search_fields = ("number", "name")
    ordering_fields = ("number", "name", "id")
    ordering = ("number",)

    def get_queryset(self):
        return RingGroup.objects.prefetch_related("members__extension").order_by("number")


class PagingGroupViewSet(_GroupViewSet):
    """Paging groups: a number that opens the members' phone speakers (a one-way page or an
    intercom)."""

    serializer_class = PagingGroupSerializer
    create_action = staticmethod(team.do_create_paging_group)
    update_action = staticmethod(team.do_update_paging_group)
    delete_action = staticmethod(team.do_delete_paging_group)
    search_fields = ("number", "name")
    ordering_fields = ("number", "name", "id")
    ordering = ("number",)

    def get_queryset(self):
        return PagingGroup.objects.prefetch_related("members").order_by("number")


class PickupGroupViewSet(_GroupViewSet):
    """Pickup groups: extensions that answer each other's ringing calls with the group pickup
    code (*98)."""

    serializer_class = PickupGroupSerializer
    create_action = staticmethod(team.do_create_pickup_group)
    update_action = staticmethod(team.do_update_pickup_group)
    delete_action = staticmethod(team.do_delete_pickup_group)
    search_fields = ("name",)
    ordering_fields = ("name", "id")
    ordering = ("name",)

    def get_queryset(self):
        return PickupGroup.objects.prefetch_related("members").order_by("name")


class ParkSettingsView(APIView):
    """The host tenant's call park: its slots (numbers a call is parked at, watched by BLF
    keys) and how long a parked call waits before it rings its parker again."""

    permission_classes = (TenantPermission,)
    permission_codes = TEAM_CODES

    @extend_schema(responses={200: ParkSettingsSerializer})
    def get(self, request):
        return Response(ParkSettingsSerializer(ParkSettings.load()).data)

    @extend_schema(request=ParkSettingsSerializer, responses={200: ParkSettingsSerializer})
    def patch(self, request):
        ser = ParkSettingsSerializer(ParkSettings.load(), data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        settings = team.do_update_park_settings(
            actor=Actor.from_request(request), fields=dict(ser.validated_data)
        )
        return Response(ParkSettingsSerializer(settings).data)
