"""A tenant's routing rows as the API shows them. The serializers only shape input (types,
which fields are writable); every value is judged by ``routing.actions`` (one validator per
kind of row, the same for the portal and the admin)."""

from rest_framework import serializers

from pbx.api.serializers import ActionJudgesValues
from routing.actions import ROWS, SETTINGS_FIELDS
from routing.models import (
    BlacklistEntry,
    EmergencyNumber,
    Holiday,
    InboundRule,
    OutboundRule,
    RoutingSettings,
)

TARGET_HELP = 'A destination: {"kind": ..., "target": ...} (kinds: GET routing/destinations/).'


class _Row(ActionJudgesValues, serializers.ModelSerializer):
    pass


class InboundRuleSerializer(_Row):
    in_hours = serializers.JSONField(help_text=TARGET_HELP)
    out_of_hours = serializers.JSONField(
        required=False, allow_null=True, help_text="Out of office hours (null: as in hours)."
    )
    holiday = serializers.JSONField(
        required=False, allow_null=True, help_text="On holidays (null: as out of hours)."
    )

    class Meta:
        model = InboundRule
        fields = ("id", *ROWS["inbound"].fields, "created_at")
        read_only_fields = ("created_at",)


class OutboundRuleSerializer(_Row):
    extensions = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="[] = every extension"
    )
    trunks = serializers.ListField(
        child=serializers.IntegerField(), help_text="Trunk ids, in the order they are tried."
    )

    class Meta:
        model = OutboundRule
        fields = ("id", *ROWS["outbound"].fields, "created_at")
        read_only_fields = ("created_at",)


class EmergencyNumberSerializer(_Row):
    trunks = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Trunk ids in order ([] = every trunk the tenant may use).",
    )

    class Meta:
        model = EmergencyNumber
        fields = ("id", *ROWS["emergency"].fields)


class BlacklistEntrySerializer(_Row):
    class Meta:
        model = BlacklistEntry
        fields = ("id", *ROWS["blacklist"].fields, "created_at")
        read_only_fields = ("created_at",)


class HolidaySerializer(_Row):
    class Meta:
        model = Holiday
        fields = ("id", *ROWS["holiday"].fields)
        extra_kwargs = {"end": {"required": False, "help_text": "Default: the first day."}}


class RoutingSettingsSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """Office hours, privacy code, blocked prefixes, allowed countries and caller IDs, with
    the tenant's country (national numbers are read in it)."""

    weekly = serializers.JSONField(
        required=False,
        help_text="Seven days (Monday first), each a list of [start, end] minutes after midnight.",
    )
    blocked_prefixes = serializers.ListField(child=serializers.CharField(), required=False)
    allowed_countries = serializers.ListField(child=serializers.CharField(), required=False)
    country = serializers.CharField(
        required=False, allow_blank=True, help_text="ISO 3166 code of the tenant's country."
    )

    class Meta:
        model = RoutingSettings
        fields = (*SETTINGS_FIELDS, "country", "updated_at")
        read_only_fields = ("updated_at",)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["country"] = self.context["tenant"].country or ""
        return data


class DestinationChoiceSerializer(serializers.Serializer):
    target = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named "label"


class DestinationKindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named "label"
    choices = DestinationChoiceSerializer(
        many=True, allow_null=True, help_text="The targets to pick from (null: typed freely)."
    )
