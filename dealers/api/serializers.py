from rest_framework import serializers

from dealers.models import Dealer
from pbx.api.serializers import ActionJudgesValues
from tenants.fields import CAPABILITY_FIELDS


class DealerSerializer(ActionJudgesValues, serializers.ModelSerializer):
    judged_by_action = ("name",)  # one line, 120 characters: dealers.actions
    parent = serializers.PrimaryKeyRelatedField[Dealer](read_only=True)  # type: ignore[assignment]
    parent_id = serializers.IntegerField(required=False, allow_null=True, write_only=True)
    depth = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dealer
        fields = (
            "id",
            "name",
            "parent",
            "parent_id",
            "depth",
            "max_tenants",
            "is_active",
            *CAPABILITY_FIELDS,
            "created_at",
        )
        read_only_fields = ("created_at",)

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["parent_id"].read_only = True
        return fields
