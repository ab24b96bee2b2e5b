"""The host tenant's DISA entries in the API: ``/api/v1/disa/``. Reading needs
``routing.view``, writing ``routing.manage``; every write goes through ``routing.disa``
(audited, republished), whose field errors are the answer's. The PIN is write-only: an answer
says only whether one is set (``pin_set``); a change without ``pin`` keeps it. An entry that
rules or menu keys send calls to answers 409 naming them."""

from __future__ import annotations

from rest_framework import serializers

from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import ActionViewSet
from routing import disa
from routing.models import Disa

from .views import ROUTING_CODES


class DisaSerializer(ActionJudgesValues, serializers.ModelSerializer):
    pin = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="4 to 12 digits, not all the same. Write-only; omitted or empty: unchanged.",
    )
    pin_set = serializers.SerializerMethodField(help_text="Whether the entry has a PIN.")
    extension = serializers.CharField(
        source="extension.number",
        help_text="The number of the (enabled) extension the calls are made as: its outbound "
        "rules, call barring and caller ID apply.",
    )

    class Meta:
        model = Disa
        fields = ("id", "name", "pin", "pin_set", "extension", "enabled", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {"enabled": {"help_text": "Switched off, callers sent here are refused."}}

    def get_pin_set(self, entry: Disa) -> bool:
        return bool(entry.pin_hash)

    def action_fields(self) -> dict:
        data = dict(self.validated_data)
        if "extension" in data:
            data["extension"] = data["extension"]["number"]
        return data


class DisaViewSet(ActionViewSet):
    """Direct inward system access: callers sent here (an inbound rule or an IVR key) enter
    the PIN, then dial a number as the entry's extension would."""

    permission_codes = ROUTING_CODES
    serializer_class = DisaSerializer
    create_action = staticmethod(disa.do_create_disa)
    update_action = staticmethod(disa.do_update_disa)
    delete_action = staticmethod(disa.do_delete_disa)
    search_fields = ("name", "extension__number")
    ordering_fields = ("name", "id")
    ordering = ("name",)

    def get_queryset(self):
        return Disa.objects.select_related("extension").order_by("name", "id")
