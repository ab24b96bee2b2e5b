from typing import Any

from rest_framework import serializers

from pbx.api.serializers import FastReadMixin
from telephony.models import Extension, Transport


class ExtensionSerializer(FastReadMixin, serializers.ModelSerializer):
    sip_password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        max_length=128,
        help_text="Omit to have a strong one generated (returned once, on create).",
    )
    web_password = serializers.CharField(
        write_only=True, required=False, trim_whitespace=False, max_length=128
    )
    voicemail_pin = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=12
    )
    allowed_transports = serializers.ListField(
        child=serializers.ChoiceField(choices=Transport.choices), required=False
    )
    outbound_caller_ids = serializers.ListField(
        child=serializers.CharField(max_length=32), required=False
    )
    has_web_login = serializers.SerializerMethodField()

    class Meta:
        model = Extension
        fields = (
            "id",
            "number",
            "display_name",
            "email",
            "mobile",
            "enabled",
            "dnd",
            "caller_id_name",
            "caller_id_number",
            "outbound_caller_ids",
            "max_registrations",
            "allowed_transports",
            "forward_always",
            "forward_busy",
            "forward_no_answer",
            "no_answer_timeout",
            "sip_password",
            "web_password",
            "voicemail_pin",
            "has_web_login",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")
        extra_kwargs: dict[str, dict[str, Any]] = {"number": {"validators": []}}

    def get_has_web_login(self, ext) -> bool:
        return ext.user_id is not None

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None:
            fields["number"].read_only = True
        return fields


class CreatedExtensionSerializer(ExtensionSerializer):
    """The create answer shows the SIP password once, so it can be given to the user."""

    sip_password = serializers.CharField(read_only=True)


class SipCredentialsSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField()
    domain = serializers.CharField()
