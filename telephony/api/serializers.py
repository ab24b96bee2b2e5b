from rest_framework import serializers

from pbx.api.serializers import ActionJudgesValues, FastReadMixin
from telephony.models import Extension, Transport


class ExtensionSerializer(ActionJudgesValues, FastReadMixin, serializers.ModelSerializer):
    """Shapes an extension's input; its rules are ``telephony.actions.validate_extension``."""

    sip_password = serializers.CharField(
        write_only=True,
        required=False,
        trim_whitespace=False,
        help_text="Omit to have a strong one generated (returned once, on create).",
    )
    web_password = serializers.CharField(write_only=True, required=False, trim_whitespace=False)
    voicemail_pin = serializers.CharField(write_only=True, required=False, allow_blank=True)
    allowed_transports = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text=f"Any of: {', '.join(Transport.values)}.",
    )
    outbound_caller_ids = serializers.ListField(child=serializers.CharField(), required=False)
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
            "call_scope",
            "recording",
            "srtp",
            "web_softphone",
            "forward_always",
            "forward_busy",
            "forward_no_answer",
            "no_answer_timeout",
            "hot_desk",
            "hotdesk_user",
            "sip_password",
            "web_password",
            "voicemail_pin",
            "has_web_login",
            "created_at",
            "updated_at",
        )
        # Who is logged in at a hot desk changes through its own endpoint (``.../hotdesk/``).
        read_only_fields = ("created_at", "updated_at", "hotdesk_user")

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


class SpeedDialSerializer(serializers.Serializer):
    """One speed dial; ``telephony.desk.validate_speed_dial`` judges the values."""

    code = serializers.CharField(
        trim_whitespace=False, help_text="2 to 9 (speed dial 8) or 00 to 99 (speed dial 100)."
    )
    number = serializers.CharField(
        trim_whitespace=False, help_text="What it calls: digits and *, an optional leading +."
    )


class HotDeskLoginSerializer(serializers.Serializer):
    user = serializers.CharField(
        trim_whitespace=False, help_text="The extension to log in at this desk phone."
    )


class ExtensionNumbersField(serializers.ListField):
    """A group's member extensions as their numbers: written as a list, read sorted (from the
    view's prefetch)."""

    child = serializers.CharField()

    def to_representation(self, data):
        return sorted(e.number for e in data.all())
