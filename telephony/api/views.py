from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from pbx.api.viewsets import TenantScopedViewSet
from telephony import actions, desk
from telephony.models import Extension
from tenants.access import tenant_permissions
from tenants.choices import Permission

from .serializers import (
    CreatedExtensionSerializer,
    ExtensionSerializer,
    HotDeskLoginSerializer,
    SipCredentialsSerializer,
    SpeedDialSerializer,
)


class ExtensionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The host tenant's extensions."""

    serializer_class = ExtensionSerializer
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    filterset_fields = ("enabled", "dnd", "number")
    search_fields = ("number", "display_name", "email")
    ordering_fields = ("number", "display_name", "created_at", "id")
    ordering = ("number",)
    # The list never shows secrets: leave the encrypted password and HA1s in the database.
    queryset = Extension.objects.defer("sip_password_encrypted", "ha1_md5", "ha1_sha256").order_by(
        "number"
    )

    @extend_schema(responses={201: CreatedExtensionSerializer})
    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        ext, sip_password = actions.do_create_extension(actor=self.actor, **ser.validated_data)
        data = ExtensionSerializer(ext).data
        data["sip_password"] = sip_password
        return Response(data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        ext = self.get_object()
        ser = self.get_serializer(ext, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        ext = actions.do_update_extension(ext, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(ext).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_extension(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={200: SipCredentialsSerializer})
    @action(detail=True, methods=["get"], url_path="sip-credentials")
    def sip_credentials(self, request, pk=None):
        """The SIP credentials, for configuring a phone by hand (needs extensions.manage)."""
        ext = self.get_object()
        held = tenant_permissions(request.user, self.tenant) or ()
        if Permission.EXTENSIONS_MANAGE not in held:
            self.permission_denied(request)
        return Response(
            {"username": ext.number, "password": ext.sip_password, "domain": self.tenant.sip_domain}
        )

    @extend_schema(request=SpeedDialSerializer, responses={200: SpeedDialSerializer(many=True)})
    @action(detail=True, methods=["get", "post"], url_path="speed-dials")
    def speed_dials(self, request, pk=None):
        """The extension's speed dials (GET); POST ``{"code", "number"}`` sets one (a code
        already set is replaced). Answers the whole list, by code."""
        ext = self.get_object()
        if request.method == "POST":
            ser = SpeedDialSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            desk.do_set_speed_dial(
                ext, ser.validated_data["code"], ser.validated_data["number"], actor=self.actor
            )
        return Response(desk.speed_dial_rows(ext))

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"speed-dials/(?P<code>[0-9]{1,2})")
    def clear_speed_dial(self, request, pk=None, code=None):
        """Remove one speed dial (404 when the extension has none with that code)."""
        from pbx.errors import NotFound

        if not desk.do_clear_speed_dial(self.get_object(), code, actor=self.actor):
            raise NotFound("No such speed dial.")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=HotDeskLoginSerializer, responses={200: ExtensionSerializer})
    @action(detail=True, methods=["post", "delete"], url_path="hotdesk")
    def hotdesk(self, request, pk=None):
        """Hot desking at this desk phone: POST ``{"user": "<extension>"}`` logs that
        extension in here (and out of any other desk), DELETE logs whoever is here out."""
        ext = self.get_object()
        if request.method == "DELETE":
            ext = desk.do_hotdesk_logout(ext, actor=self.actor)
        else:
            ser = HotDeskLoginSerializer(data=request.data)
            ser.is_valid(raise_exception=True)
            ext = desk.do_hotdesk_login(ext, ser.validated_data["user"], actor=self.actor)
        return Response(self.get_serializer(ext).data)
