"""``/api/v1/me/dnd/``: the signed-in user's own do-not-disturb.

The same setting as the "My extension" page's form and the ``*78``/``*79`` feature codes, for
the web softphone's toggle: GET reads it, PUT sets it (through ``do_update_extension``, audited
and published to the engine like every other change). It works on the user's own extension
only; a user without one gets 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantMember
from pbx.audit import Actor
from pbx.errors import NotFound
from telephony import actions
from telephony.models import Extension, own_extension


class MeDndSerializer(serializers.Serializer):
    extension = serializers.CharField(source="number", read_only=True)
    dnd = serializers.BooleanField(help_text="Do not disturb: calls to the extension do not ring.")


class MeDndView(APIView):
    permission_classes = (TenantMember,)

    def _own(self, request) -> Extension:
        ext = own_extension(request.user, request._request.tenant)
        if ext is None:
            raise NotFound("You have no extension.")
        return ext

    @extend_schema(responses={200: MeDndSerializer})
    def get(self, request):
        return Response(MeDndSerializer(self._own(request)).data)

    @extend_schema(request=MeDndSerializer, responses={200: MeDndSerializer})
    def put(self, request):
        ext = self._own(request)
        ser = MeDndSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        dnd = ser.validated_data["dnd"]
        if ext.dnd != dnd:
            ext = actions.do_update_extension(ext, actor=Actor.from_request(request), dnd=dnd)
        return Response(MeDndSerializer(ext).data)
