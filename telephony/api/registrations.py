"""Live SIP state read from Redis: the host tenant's registrations, and the engine's bans.

The engine writes both (``telephony/sip/registrar.py``, ``telephony/sip/security.py``); the API
only reads them, except that a system admin may lift a ban. Neither lives in the database, so
these viewsets page plain lists instead of querysets.
"""

from ipaddress import ip_address

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from pbx.api.permissions import PlatformAdmin
from pbx.api.viewsets import BaseViewSet, TenantScopedViewSet
from pbx.errors import NotFound
from telephony.actions import do_clear_sip_ban
from telephony.engine.state import current_bans, tenant_registrations
from tenants.choices import Permission, Role


class RegistrationSerializer(serializers.Serializer):
    extension = serializers.CharField()
    contact = serializers.CharField()
    transport = serializers.CharField()
    source_address = serializers.CharField()
    source_port = serializers.IntegerField()
    user_agent = serializers.CharField()
    instance = serializers.CharField(allow_null=True)
    expires = serializers.IntegerField(help_text="Seconds until the binding expires.")
    expires_at = serializers.DateTimeField()
    registered_at = serializers.DateTimeField()


class RegistrationViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """Phones registered to the host tenant's extensions, as the SIP engines see them now."""

    serializer_class = RegistrationSerializer
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    filter_backends = ()

    def get_queryset(self):
        extension = self.request.query_params.get("extension") or None
        if extension is not None and not extension.isdigit():
            return []
        return tenant_registrations(self.tenant.sip_domain, extension)

    @extend_schema(parameters=[OpenApiParameter("extension", str, description="one extension")])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


# ------------------------------------------------------------------------------------ bans


class SipBanSerializer(serializers.Serializer):
    ip = serializers.CharField()
    reason = serializers.CharField(help_text="auth (failed passwords) or flood (request rate)")
    banned_at = serializers.DateTimeField(allow_null=True)
    expires_in = serializers.IntegerField(help_text="Seconds until the ban lifts by itself.")


class SipBanViewSet(mixins.ListModelMixin, BaseViewSet):
    """Source addresses the SIP engines currently drop (failed auth or floods). System admins
    on the provider's host may lift a ban."""

    serializer_class = SipBanSerializer
    permission_classes = (PlatformAdmin,)
    platform_roles = (Role.SYSTEM_ADMIN,)
    filter_backends = ()
    lookup_field = "ip"
    lookup_value_regex = r"[0-9A-Fa-f:.]+"

    def get_queryset(self):
        return current_bans()

    def destroy(self, request, ip=None):
        try:
            ip = str(ip_address(ip))
        except ValueError:
            raise NotFound("This address is not banned.") from None
        do_clear_sip_ban(ip, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)
