"""``/api/v1/me/softphone/``: the signed-in user's web softphone credential.

POST issues a fresh short-lived credential for the user's own extension (the web app renews it
before it expires); the SIP password never leaves the server. 404 without an extension, 403 when
its web softphone is off, it is disabled, or the tenant is not active.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantMember
from pbx.errors import Forbidden, NotFound
from telephony.models import own_extension
from telephony.webphone import issue_credential, softphone_available


class SoftphoneCredentialSerializer(serializers.Serializer):
    extension = serializers.CharField()
    display_name = serializers.CharField()
    uri = serializers.CharField(help_text="The SIP address the softphone registers.")
    authorization_user = serializers.CharField(help_text="The digest user name to answer with.")
    password = serializers.CharField(help_text="The digest password; valid until expires.")
    expires = serializers.IntegerField(help_text="Unix time the credential stops working.")
    expires_in = serializers.IntegerField(help_text="Seconds until then.")
    ws_url = serializers.CharField(help_text="The engine's secure WebSocket (SIP over WSS).")


class MeSoftphoneView(APIView):
    permission_classes = (TenantMember,)

    @extend_schema(request=None, responses={200: SoftphoneCredentialSerializer})
    def post(self, request):
        tenant = request._request.tenant
        ext = own_extension(request.user, tenant)
        if ext is None:
            raise NotFound("You have no extension.")
        if not softphone_available(tenant, ext):
            raise Forbidden("The web softphone is not available for your extension.")
        config = issue_credential(request, tenant, ext)
        data = SoftphoneCredentialSerializer(
            {
                **asdict(config),
                "expires_in": max(0, config.expires - int(time.time())),
            }
        ).data
        return Response(data, headers={"Cache-Control": "no-store"})
