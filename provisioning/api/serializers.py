"""Shapes of phones, phone models and templates in the REST API (rules live in the actions)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from provisioning.models import Device
from provisioning.vendors import KEY_KINDS


class PhoneModelSerializer(serializers.Serializer):
    id = serializers.CharField()
    vendor = serializers.CharField()
    name = serializers.CharField()
    family = serializers.CharField(source="family.id")
    line_keys = serializers.IntegerField()
    max_accounts = serializers.IntegerField()
    max_blf_keys = serializers.IntegerField()
    dect = serializers.BooleanField()
    max_handsets = serializers.IntegerField()
    tftp_only = serializers.BooleanField(source="family.tftp_only")
    files = serializers.SerializerMethodField()

    def get_files(self, model) -> list[str]:
        return [spec.pattern for spec in model.files]


class LineSerializer(serializers.Serializer):
    index = serializers.IntegerField(min_value=1, max_value=255)
    extension = serializers.CharField(max_length=16)
    label = serializers.CharField(max_length=64, required=False, allow_blank=True)  # type: ignore[assignment]


class BlfKeySerializer(serializers.Serializer):
    extension = serializers.CharField(
        max_length=16,
        help_text="The extension watched (or called, by an intercom key), or a park slot.",
    )
    label = serializers.CharField(max_length=32, required=False, allow_blank=True)  # type: ignore[assignment]
    kind = serializers.ChoiceField(
        choices=KEY_KINDS,
        required=False,
        help_text="blf (default): watch the extension, pick its ringing calls up with the "
        "tenant's pickup code; park: watch a park slot (a slot number is one anyway); "
        "intercom: call the extension with the intercom code.",
    )


class DeviceSerializer(serializers.ModelSerializer):
    mac = serializers.CharField(
        max_length=32,
        allow_blank=True,  # the action explains what is wrong with a MAC, blank included
        help_text="Any common notation: 00:15:65:a1:b2:c3, 0015.65a1.b2c3...",
    )
    lines = LineSerializer(many=True, required=False)
    blf_keys = BlfKeySerializer(many=True, required=False)
    handsets = serializers.DictField(child=serializers.IntegerField(), required=False)
    settings = serializers.DictField(required=False)
    allowed_networks = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    provisioning_url = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = (
            "id",
            "mac",
            "model_id",
            "detected_model_id",
            "label",
            "lines",
            "blf_keys",
            "handsets",
            "settings",
            "allowed_networks",
            "provisioning_until",
            "status",
            "http_username",
            "provisioning_url",
            "last_fetch_at",
            "last_fetch_address",
            "last_fetch_user_agent",
            "last_fetch_file",
            "created_at",
            "updated_at",
        )
        read_only_fields = (
            "detected_model_id",
            "status",
            "http_username",
            "last_fetch_at",
            "last_fetch_address",
            "last_fetch_user_agent",
            "last_fetch_file",
            "created_at",
            "updated_at",
        )
        extra_kwargs: dict[str, dict[str, Any]] = {
            "mac": {"validators": []},
            "model_id": {"validators": []},
        }

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["mac"].read_only = True  # a MAC is the phone; another phone is a new device
        return fields

    def get_provisioning_url(self, device) -> str:
        from provisioning.config import admin_listener, token_url

        host = self.context.get("host") or ""
        request = self.context.get("request")
        listener = admin_listener(request) if request is not None else {}
        return token_url(device, host, **listener) if host else ""

    def to_representation(self, device):
        data = super().to_representation(device)
        data["lines"] = [
            {"index": line.index, "extension": line.extension.number, "label": line.label}
            for line in device.lines.all()
        ]
        return data


class DeviceCredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    provisioning_url = serializers.CharField(help_text="With the credentials in it.")
    plain_url = serializers.CharField(help_text="DHCP option 66 folder (needs the credentials).")


class EffectiveSettingSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.JSONField()
    source = serializers.ChoiceField(choices=["system", "dealer", "tenant", "model", "device"])  # type: ignore[assignment]


class ControlResultSerializer(serializers.Serializer):
    notified = serializers.IntegerField(help_text="Extensions sent a check-sync NOTIFY.")


class TemplateSerializer(serializers.Serializer):
    """A shipped template (``id`` like ``yealink-t54w.0``, read-only) or a custom one."""

    id = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=["shipped", "custom"], read_only=True)
    model_id = serializers.CharField(max_length=64)
    file_pattern = serializers.CharField(max_length=64)
    source = serializers.CharField(required=False, trim_whitespace=False, max_length=262144)  # type: ignore[assignment]
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)


class PreviewRequestSerializer(serializers.Serializer):
    device = serializers.IntegerField(help_text="The phone to render for.")
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, trim_whitespace=False, help_text="Unsaved source to try instead."
    )


class PreviewSerializer(serializers.Serializer):
    filename = serializers.CharField()
    content_type = serializers.CharField()
    content = serializers.CharField()


class ValidateRequestSerializer(serializers.Serializer):
    model_id = serializers.CharField()
    file_pattern = serializers.CharField(required=False)
    source = serializers.CharField(trim_whitespace=False)  # type: ignore[assignment]


class ValidateSerializer(serializers.Serializer):
    problems = serializers.ListField(child=serializers.CharField())
