"""The host tenant's call recording settings (``GET``/``PUT``/``PATCH``
``/api/v1/recording-settings/``), for its admins (``tenant.settings``). The serializer only
shapes input; every value is judged by ``audio.recording_settings`` (the portal's rules). The
storage secret is write-only: answers say only whether one is stored (``has_secret``), and an
omitted or empty ``secret`` keeps the stored one."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from audio import recording_settings
from audio.models import Prompt, RecordingSettings
from pbx.api.permissions import TenantPermission
from pbx.api.serializers import ActionJudgesValues
from pbx.audit import Actor
from tenants.choices import Permission


class RecordingSettingsSerializer(ActionJudgesValues, serializers.ModelSerializer):
    announcement = serializers.PrimaryKeyRelatedField(
        queryset=Prompt.objects.all(),
        allow_null=True,
        required=False,
        help_text="The id of one of the tenant's prompts (null: none).",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="S3: the secret access key; Azure: the account key or a connection string. "
        "Never shown again; omit or leave empty to keep the stored one.",
    )
    has_secret = serializers.SerializerMethodField()
    recording_allowed = serializers.SerializerMethodField(
        help_text="Whether the tenant's plan includes call recording (false: nothing is "
        "recorded, whatever the policy)."
    )
    platform_default = serializers.SerializerMethodField(
        help_text='The provider\'s storage, used when storage is "platform".'
    )

    class Meta:
        model = RecordingSettings
        fields = (
            *recording_settings.FIELDS,
            "has_secret",
            "recording_allowed",
            "platform_default",
            "updated_at",
        )
        read_only_fields = ("updated_at",)

    def get_has_secret(self, obj) -> bool:
        return bool(obj.secret_encrypted)

    def get_recording_allowed(self, obj) -> bool:
        return bool(getattr(self.context.get("tenant"), "feature_recording", True))

    def get_platform_default(self, obj) -> str:
        return recording_settings.platform_default()


class RecordingSettingsView(APIView):
    """The host tenant's call recording: the default policy, the announcement, how long
    recordings are kept, and where they are stored."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)

    def _answer(self, request, settings):
        tenant = request._request.tenant
        return Response(RecordingSettingsSerializer(settings, context={"tenant": tenant}).data)

    @extend_schema(responses={200: RecordingSettingsSerializer})
    def get(self, request):
        return self._answer(request, RecordingSettings.load())

    def _update(self, request, *, partial: bool):
        ser = RecordingSettingsSerializer(
            RecordingSettings.load(), data=request.data, partial=partial
        )
        ser.is_valid(raise_exception=True)
        settings = recording_settings.do_update_recording_settings(
            actor=Actor.from_request(request), fields=dict(ser.validated_data)
        )
        return self._answer(request, settings)

    @extend_schema(
        request=RecordingSettingsSerializer, responses={200: RecordingSettingsSerializer}
    )
    def put(self, request):
        return self._update(request, partial=False)

    @extend_schema(
        request=RecordingSettingsSerializer, responses={200: RecordingSettingsSerializer}
    )
    def patch(self, request):
        return self._update(request, partial=True)
