"""The host tenant's feature access codes: ``/api/v1/feature-codes/`` lists every feature
(label, default code, current code, switch, whether a number follows the code);
``PATCH /feature-codes/{feature}/`` changes one, ``PATCH /feature-codes/`` several at once (two
may swap codes), ``POST /feature-codes/reset/`` puts every default back. Reading needs
``routing.view``, writing ``routing.manage``; writes go through ``telephony.features``
(audited, republished)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantPermission
from pbx.audit import Actor
from pbx.errors import NotFound, ValidationFailed
from telephony import features
from telephony.sip.contract import FEATURE_DEFAULTS
from tenants.choices import Permission

CODES = (Permission.ROUTING_VIEW, Permission.ROUTING_MANAGE)


class FeatureCodeSerializer(serializers.Serializer):
    feature = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)  # type: ignore[assignment]  # a field
    default_code = serializers.CharField(read_only=True)
    code = serializers.CharField(required=False, help_text="* or # and 1 to 6 digits or *.")
    enabled = serializers.BooleanField(required=False)
    takes_number = serializers.BooleanField(
        read_only=True, help_text="The code is dialled with a number after it (*72 + number)."
    )


class FeatureCodeListSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    items = FeatureCodeSerializer(many=True)


def _table() -> dict:
    items = FeatureCodeSerializer(features.code_table(), many=True).data
    return {"total": len(items), "items": items}


class FeatureCodesView(APIView):
    """Every feature and its code."""

    permission_classes = (TenantPermission,)
    permission_codes = CODES

    @extend_schema(responses={200: FeatureCodeListSerializer})
    def get(self, request):
        return Response(_table())

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={200: FeatureCodeListSerializer},
        description='Several features at once: {"dnd_on": {"code": "*11"}, ...}.',
    )
    def patch(self, request):
        changes = request.data if isinstance(request.data, dict) else None
        if changes is None:
            raise ValidationFailed('An object {"<feature>": {"code": ..., "enabled": ...}}.')
        features.do_update_feature_codes(dict(changes), actor=Actor.from_request(request))
        return Response(_table())


class FeatureCodeView(APIView):
    """One feature's code and switch."""

    permission_classes = (TenantPermission,)
    permission_codes = CODES

    def _row(self, feature: str) -> dict:
        found = next((r for r in features.code_table() if r["feature"] == feature), None)
        if found is None:
            raise NotFound("No such feature.")
        return dict(FeatureCodeSerializer(found).data)

    @extend_schema(responses={200: FeatureCodeSerializer})
    def get(self, request, feature: str):
        return Response(self._row(feature))

    @extend_schema(request=FeatureCodeSerializer, responses={200: FeatureCodeSerializer})
    def patch(self, request, feature: str):
        if feature not in FEATURE_DEFAULTS:
            raise NotFound("No such feature.")
        ser = FeatureCodeSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        try:
            features.do_update_feature_codes(
                {feature: dict(ser.validated_data)}, actor=Actor.from_request(request)
            )
        except ValidationFailed as exc:
            # The action names the feature; here the fields are the body's.
            exc.fields = {"code": [m for ms in exc.fields.values() for m in ms]}
            raise
        return Response(self._row(feature))


class FeatureCodesResetView(APIView):
    """Every feature back to its default code, switched on."""

    permission_classes = (TenantPermission,)
    permission_codes = CODES

    @extend_schema(request=None, responses={200: FeatureCodeListSerializer})
    def post(self, request):
        features.do_reset_feature_codes(actor=Actor.from_request(request))
        return Response(_table())
