"""Trunks and DID numbers as the API shows them. A trunk's carrier password is write-only
(``has_password`` says whether one is set); a tenant is shown a shared (provider or dealer)
trunk without anything of its account: no host, realm, user names or addresses."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from pbx.api.filters import MAX_ID
from pbx.api.serializers import ActionJudgesValues
from trunks.actions import EDITABLE
from trunks.models import DidNumber, Trunk


def id_field(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class PkListField(serializers.ListField):
    """A many-to-many relation written as a list of ids and read as the sorted ids."""

    def __init__(self, **kwargs):
        super().__init__(child=id_field(), **kwargs)

    def get_attribute(self, instance):
        return sorted(obj.pk for obj in getattr(instance, self.source).all())


class TrunkStateSerializer(serializers.Serializer):
    """A trunk's live state as the engine last wrote it (``unknown``: not checked yet)."""

    state = serializers.CharField(help_text="unknown, up, down, registered, failed or disabled")
    error = serializers.CharField(allow_blank=True, help_text="Why it is down or failed.")
    at = serializers.CharField(allow_blank=True, help_text="When the state last changed (Unix).")
    checked = serializers.CharField(allow_blank=True, help_text="When it was last checked (Unix).")
    expires = serializers.CharField(allow_blank=True, help_text="Registration expiry (Unix).")
    channels = serializers.IntegerField(help_text="Calls in progress on it.")


def _state(serializer, trunk) -> dict[str, Any]:
    states = serializer.context.get("states") or {}
    row = dict(states.get(trunk.pk) or {"state": "unknown", "channels": "0"})
    for name in ("error", "at", "checked", "expires"):
        row.setdefault(name, "")
    row["channels"] = int(row.get("channels") or 0)
    return row


def _owner(trunk) -> str:
    return "tenant" if trunk.tenant_id else "dealer" if trunk.dealer_id else "provider"


class TrunkSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """A trunk as its managers see it; its rules are ``trunks.actions.validate_trunk``."""

    judged_by_action = (*EDITABLE, "password")
    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The carrier account's password; never shown again. Omit to keep it.",
    )
    has_password = serializers.BooleanField(read_only=True)
    owner = serializers.SerializerMethodField(help_text="provider, dealer or tenant")
    tenant = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]
    dealer = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]
    tenant_id = id_field(
        required=False, allow_null=True, write_only=True, help_text="Owner: this tenant."
    )
    dealer_id = id_field(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Owner: this dealer (no owner: the provider; a dealer admin's own dealer).",
    )
    shared_with = PkListField(required=False, help_text="Tenants that may use the trunk.")
    addresses = serializers.ListField(child=serializers.CharField(), required=False)
    codecs = serializers.ListField(child=serializers.CharField(), required=False)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Trunk
        fields: tuple[str, ...] = (
            "id",
            "owner",
            "tenant",
            "tenant_id",
            "dealer",
            "dealer_id",
            "shared_with",
            *EDITABLE,
            "password",
            "has_password",
            "state",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def get_owner(self, trunk) -> str:
        return _owner(trunk)

    def get_state(self, trunk) -> TrunkStateSerializer:
        return _state(self, trunk)  # type: ignore[return-value]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:  # the owner is fixed once created
            for name in ("tenant_id", "dealer_id"):
                if name in fields:
                    fields[name].read_only = True
        return fields


class TenantTrunkSerializer(TrunkSerializer):
    """The trunks a tenant may use, on its own host: its own trunks in full (the password
    still write-only); a trunk its provider or dealer shares with it without any of the
    account's details."""

    #: What a tenant sees of a shared trunk: enough to pick it in an outbound rule.
    SHARED = (
        "id", "owner", "name", "kind", "enabled", "transport", "country", "codecs",
        "dtmf_mode", "max_channels", "caller_id", "state",
    )  # fmt: skip

    class Meta(TrunkSerializer.Meta):
        fields = tuple(
            f
            for f in TrunkSerializer.Meta.fields
            if f not in ("tenant", "tenant_id", "dealer", "dealer_id", "shared_with")
        )

    def to_representation(self, instance):
        data = super().to_representation(instance)
        tenant = self.context.get("tenant")
        if tenant is not None and instance.tenant_id != tenant.pk:
            return {name: data[name] for name in self.SHARED}
        return data


class TrunkStateRowSerializer(TrunkStateSerializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# ------------------------------------------------------------------------------- numbers


class NumberSerializer(serializers.ModelSerializer):
    """A number of the DID pool. ``tenant``: the tenant it is assigned to (null: free)."""

    tenant = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]
    dealer = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]
    trunk = serializers.PrimaryKeyRelatedField(read_only=True)  # type: ignore[var-annotated]
    dealer_id = id_field(
        required=False, allow_null=True, write_only=True, help_text="The dealer that holds it."
    )
    trunk_id = id_field(
        required=False, allow_null=True, write_only=True, help_text="The trunk it arrives on."
    )
    description = serializers.CharField(required=False, allow_blank=True)

    class Meta:
        model = DidNumber
        fields = (
            "id",
            "number",
            "tenant",
            "dealer",
            "dealer_id",
            "trunk",
            "trunk_id",
            "description",
            "assigned_at",
            "created_at",
        )
        read_only_fields = ("number", "assigned_at", "created_at")


class NumberAddSerializer(serializers.Serializer):
    """A number, or a range ``number``..``last``, added to the pool."""

    number = serializers.CharField(
        help_text="E.164 (+...), or national with ``country``; the first of a range."
    )
    last = serializers.CharField(
        required=False, allow_blank=True, help_text="The last number of a range."
    )
    country = serializers.CharField(
        required=False, allow_blank=True, help_text="ISO 3166 code, for national numbers."
    )
    dealer_id = id_field(required=False, allow_null=True, help_text="The dealer that holds them.")
    tenant_id = id_field(required=False, allow_null=True, help_text="Assign them to this tenant.")
    trunk_id = id_field(required=False, allow_null=True, help_text="The trunk they arrive on.")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class NumbersAddedSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    items = NumberSerializer(many=True)


class NumberAssignSerializer(serializers.Serializer):
    tenant_id = id_field(help_text="The tenant the number is given to.")


class TenantNumberSerializer(serializers.ModelSerializer):
    """A number assigned to the host tenant (its provider manages the pool)."""

    class Meta:
        model = DidNumber
        fields = ("id", "number", "description", "assigned_at")
        read_only_fields = fields
