"""Brands (system and dealer admins, on the provider's host), a tenant's own brand (on its host,
permission ``tenant.settings``) and the host's effective brand (public: the sign-in page shows
it before anyone has signed in)."""

import mimetypes

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from branding import actions
from branding.access import brands_visible_to, own_brand_of
from branding.effective import brand_for_dealer, brand_for_tenant, inherited_brand
from branding.models import Brand
from branding.storage import brand_storage
from dealers.access import dealers_visible_to
from pbx.api.parsers import FormParser, JSONParser, MultiPartParser
from pbx.api.permissions import PlatformAdmin, TenantPermission
from pbx.api.viewsets import BaseViewSet
from pbx.audit import Actor
from pbx.errors import NotFound
from tenants.choices import Permission, Role

from .serializers import BrandSerializer, EffectiveBrandSerializer, TenantBrandSerializer


class BrandViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, BaseViewSet
):
    """White-label brands. The system admin manages the platform's and any dealer's; a dealer
    admin only its own dealer's (another dealer's brand answers 404)."""

    serializer_class = BrandSerializer
    permission_classes = (PlatformAdmin,)
    parser_classes = (JSONParser, MultiPartParser, FormParser)
    filterset_fields = ("dealer",)
    search_fields = ("product_name", "company_name")
    ordering_fields = ("id", "product_name")
    ordering = ("id",)
    queryset = Brand.objects.none()

    def get_queryset(self):
        return brands_visible_to(self.request.user).order_by("id")

    def _owner_for_create(self, dealer_id):
        user = self.request.user
        if user.role == Role.DEALER_ADMIN:
            if dealer_id not in (None, user.dealer_id):
                raise NotFound("No such dealer.")
            return user.dealer
        if dealer_id is None:
            return None  # the platform's brand
        dealer = dealers_visible_to(user).filter(pk=dealer_id).first()
        if dealer is None:
            raise NotFound("No such dealer.")
        return dealer

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        dealer = self._owner_for_create(data.pop("dealer_id", None))
        brand = actions.do_create_brand(dealer=dealer, actor=self.actor, **data)
        return Response(self.get_serializer(brand).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        brand = self.get_object()
        ser = self.get_serializer(brand, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        brand = actions.do_update_brand(brand, actor=self.actor, **ser.validated_data)
        return Response(self.get_serializer(brand).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def perform_destroy(self, instance):
        actions.do_delete_brand(instance, actor=self.actor)


class TenantBrandView(APIView):
    """The host tenant's own brand over the one it inherits from its dealer's chain: its name,
    logo, icon, colours, e-mail sender and support contacts. Only the host's tenant: there is no
    id to name another tenant's or a dealer's brand."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)
    parser_classes = (JSONParser, MultiPartParser, FormParser)

    def _answer(self, tenant, brand=None, status_code=200):
        brand = brand if brand is not None else own_brand_of(tenant=tenant)
        context = {"inherited": inherited_brand(tenant=tenant)}
        shown = TenantBrandSerializer(brand or Brand(tenant=tenant), context=context)
        return Response(shown.data, status=status_code)

    @extend_schema(responses={200: TenantBrandSerializer})
    def get(self, request):
        return self._answer(request._request.tenant)

    @extend_schema(request=TenantBrandSerializer, responses={200: TenantBrandSerializer})
    def patch(self, request):
        tenant = request._request.tenant
        ser = TenantBrandSerializer(data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        brand = actions.do_set_brand(
            tenant=tenant, actor=Actor.from_request(request), **ser.validated_data
        )
        return self._answer(tenant, brand)

    @extend_schema(responses={204: None})
    def delete(self, request):
        """Back to the inherited brand in every field."""
        brand = own_brand_of(tenant=request._request.tenant)
        if brand is not None:
            actions.do_delete_brand(brand, actor=Actor.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


def _host_brand(request):
    """The brand the host's pages show: the tenant's; on the provider's host the platform's, or
    for a signed-in dealer admin its dealer's (as the portal's pages show it)."""
    django_request = request._request
    tenant = getattr(django_request, "tenant", None)
    user = getattr(django_request, "user", None)
    on_provider = tenant is None or tenant.is_public
    signed_in = user is not None and user.is_authenticated
    if on_provider and signed_in and user.role == Role.DEALER_ADMIN and user.dealer_id:
        return brand_for_dealer(user.dealer)
    return brand_for_tenant(tenant)


class EffectiveBrandView(APIView):
    """The brand of the host this is asked on: a tenant's dealer chain, else the platform's."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(responses={200: EffectiveBrandSerializer})
    def get(self, request):
        return Response(EffectiveBrandSerializer.of(_host_brand(request)))


class BrandAssetView(APIView):
    """The uploaded logo or favicon of the host's effective brand."""

    authentication_classes = ()
    permission_classes = ()

    @extend_schema(responses={200: OpenApiResponse(description="The image")})
    def get(self, request, kind: str):
        brand = _host_brand(request)
        name = getattr(brand, kind).name if kind in ("logo", "favicon") else ""
        if not name or not brand_storage.exists(name):
            raise Http404
        response = FileResponse(
            brand_storage.open(name, "rb"),
            content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        # The URL carries a version (?v=...), so browsers may keep the image.
        response["Cache-Control"] = "public, max-age=86400"
        return response
