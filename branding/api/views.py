"""Brands (system and dealer admins, on the provider's host) and the host's effective brand
(public: the sign-in page shows it before anyone has signed in)."""

import mimetypes

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from branding import actions
from branding.access import brands_visible_to
from branding.effective import brand_for_tenant
from branding.models import Brand
from branding.storage import brand_storage
from dealers.access import dealers_visible_to
from pbx.api.parsers import FormParser, JSONParser, MultiPartParser
from pbx.api.permissions import PlatformAdmin
from pbx.api.viewsets import BaseViewSet
from pbx.errors import NotFound
from tenants.choices import Role

from .serializers import BrandSerializer, EffectiveBrandSerializer


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


def _host_brand(request):
    return brand_for_tenant(getattr(request._request, "tenant", None))


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
