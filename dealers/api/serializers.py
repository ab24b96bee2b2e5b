from rest_framework import serializers

from dealers.models import Dealer
from tenants.api.serializers import CAPABILITIES


class DealerSerializer(serializers.ModelSerializer):
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
            *CAPABILITIES,
            "created_at",
        )
        read_only_fields = ("created_at",)

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["parent_id"].read_only = True
        return fields
