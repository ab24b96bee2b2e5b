"""Phone models, templates and devices: thin viewsets over ``provisioning.actions``."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Prefetch
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from pbx.api.viewsets import TenantScopedViewSet
from pbx.errors import NotFound, PbxError, ValidationFailed
from provisioning import actions
from provisioning.config import (
    admin_listener,
    effective_settings,
    plain_url,
    render_preview,
    tenant_host,
    token_url,
)
from provisioning.models import CustomTemplate, Device, DeviceLine
from provisioning.vendors import MODELS, template_source, validate_template
from tenants.access import tenant_permissions
from tenants.choices import Permission

from .serializers import (
    ControlResultSerializer,
    DeviceCredentialsSerializer,
    DeviceSerializer,
    EffectiveSettingSerializer,
    PhoneModelSerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    TemplateSerializer,
    ValidateRequestSerializer,
    ValidateSerializer,
)

PERMISSIONS = (Permission.DEVICES_VIEW, Permission.DEVICES_MANAGE)


class PhoneModelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The shipped phone models (``?vendor=Yealink``, ``?q=T54``)."""

    serializer_class = PhoneModelSerializer
    permission_codes = PERMISSIONS
    lookup_value_regex = "[a-z0-9-]+"
    filter_backends = ()

    def get_queryset(self):
        models = list(MODELS.values())
        vendor = self.request.query_params.get("vendor", "").strip().lower()
        if vendor:
            models = [m for m in models if m.vendor.lower() == vendor]
        q = self.request.query_params.get("q", "").strip().lower()
        if q:
            models = [m for m in models if q in f"{m.display_name} {m.id}".lower()]
        return models

    def get_object(self):
        model = MODELS.get(self.kwargs["pk"])
        if model is None:
            raise Http404
        return model

    @extend_schema(
        parameters=[OpenApiParameter("vendor", str), OpenApiParameter("q", str)],
        responses={200: PhoneModelSerializer(many=True)},
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


def _shipped(model_id: str, index: int) -> dict:
    spec = MODELS[model_id].files[index]
    return {
        "id": f"{model_id}.{index}",
        "kind": "shipped",
        "model_id": model_id,
        "file_pattern": spec.pattern,
        "source": None,
        "updated_at": None,
    }


def _custom(row: CustomTemplate) -> dict:
    return {
        "id": str(row.pk),
        "kind": "custom",
        "model_id": row.model_id,
        "file_pattern": row.file_pattern,
        "source": row.source,
        "updated_at": row.updated_at,
    }


class PhoneTemplateViewSet(TenantScopedViewSet):
    """Shipped templates (read-only, id ``<model>.<file number>``) and the tenant's custom
    ones (numeric id; create, change, delete). ``?kind=shipped|custom``, ``?model_id=``."""

    serializer_class = TemplateSerializer
    permission_codes = PERMISSIONS
    lookup_value_regex = "[a-z0-9.-]+"
    filter_backends = ()
    queryset = CustomTemplate.objects.none()

    def _items(self) -> list[dict]:
        kind = self.request.query_params.get("kind", "")
        model_id = self.request.query_params.get("model_id", "")
        items: list[dict] = []
        if kind in ("", "custom"):
            rows = CustomTemplate.objects.order_by("model_id", "file_pattern", "id")
            if model_id:
                rows = rows.filter(model_id=model_id)
            items += [_custom(row) for row in rows]
        if kind in ("", "shipped"):
            for mid, model in MODELS.items():
                if model_id and mid != model_id:
                    continue
                items += [_shipped(mid, n) for n in range(len(model.files))]
        return items

    def _get(self, pk: str) -> tuple[dict, CustomTemplate | None]:
        if pk.isdigit():
            row = CustomTemplate.objects.filter(pk=int(pk)).first()
            if row is None:
                raise NotFound("Not found.")
            return _custom(row), row
        model_id, _, index = pk.rpartition(".")
        if model_id not in MODELS or not index.isdigit():
            raise NotFound("Not found.")
        if int(index) >= len(MODELS[model_id].files):
            raise NotFound("Not found.")
        item = _shipped(model_id, int(index))
        item["source"] = template_source(model_id, item["file_pattern"])
        return item, None

    @extend_schema(responses={200: TemplateSerializer(many=True)})
    def list(self, request):
        page = self.paginate_queryset(self._items())
        return self.get_paginated_response(TemplateSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        item, _ = self._get(pk)
        return Response(TemplateSerializer(item).data)

    @extend_schema(responses={201: TemplateSerializer})
    def create(self, request):
        """Clone a shipped template (no ``source``) or save an edited one (validated)."""
        ser = TemplateSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        row = actions.do_save_custom_template(actor=self.actor, **ser.validated_data)
        return Response(TemplateSerializer(_custom(row)).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        item, row = self._get(pk)
        if row is None:
            raise PbxError("Shipped templates are read-only: create a custom copy.")
        if not isinstance(request.data, Mapping):
            raise ValidationFailed(
                "Send the template's fields as an object.",
                fields={"non_field_errors": ["expected an object"]},
            )
        ser = TemplateSerializer(data={**item, **request.data})
        ser.is_valid(raise_exception=True)
        source = ser.validated_data.get("source", row.source)
        row = actions.do_save_custom_template(
            model_id=row.model_id, file_pattern=row.file_pattern, source=source, actor=self.actor
        )
        return Response(TemplateSerializer(_custom(row)).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        _, row = self._get(pk)
        if row is None:
            raise PbxError("Shipped templates cannot be deleted.")
        actions.do_delete_custom_template(row, actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PreviewRequestSerializer, responses={200: PreviewSerializer})
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """Render this template (or unsaved ``source``) for one of the tenant's phones."""
        item, row = self._get(pk)
        ser = PreviewRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        device = Device.objects.filter(pk=ser.validated_data["device"]).first()
        if device is None:
            raise PbxError("No such phone.", fields={"device": ["not found"]})
        source = ser.validated_data.get("source")
        if source is None and row is None:
            source = item["source"]  # the shipped one, even when a custom copy exists
        rendered = render_preview(
            self.tenant,
            device,
            item["model_id"],
            item["file_pattern"],
            source,
            host=tenant_host(self.tenant),
        )
        return Response(
            {
                "filename": rendered.filename,
                "content_type": rendered.content_type,
                "content": rendered.content.decode("utf-8", "replace"),
            }
        )

    @extend_schema(request=ValidateRequestSerializer, responses={200: ValidateSerializer})
    @action(detail=False, methods=["post"])
    def validate(self, request):
        """Check a template source without saving it: ``problems`` is empty when it is fine."""
        ser = ValidateRequestSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = ser.validated_data
        return Response(
            {
                "problems": validate_template(
                    data["source"], data["model_id"], data.get("file_pattern")
                )
            }
        )


class DeviceViewSet(TenantScopedViewSet):
    """The host tenant's phones."""

    serializer_class = DeviceSerializer
    permission_codes = PERMISSIONS
    filterset_fields = ("model_id", "status")
    search_fields = ("mac", "label", "last_fetch_address", "lines__extension__number")
    ordering_fields = ("mac", "label", "model_id", "status", "last_fetch_at", "created_at", "id")
    ordering = ("mac",)
    queryset = Device.objects.prefetch_related(
        Prefetch("lines", queryset=DeviceLine.objects.select_related("extension").order_by("index"))
    ).order_by("mac")

    def get_queryset(self):
        qs = super().get_queryset()
        if self.request.query_params.get("q"):
            qs = qs.distinct()  # the search joins lines
        return qs

    def get_serializer_context(self):
        context = super().get_serializer_context()
        tenant = getattr(self.request._request, "tenant", None)
        if tenant is not None and not tenant.is_public:
            context["host"] = self.request.get_host().split(":")[0]
        return context

    def list(self, request):
        qs = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(qs)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(self.get_serializer(self.get_object()).data)

    def _reloaded(self, device):
        return self.get_serializer(self.get_queryset().get(pk=device.pk)).data

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        device = actions.do_add_device(actor=self.actor, **ser.validated_data)
        return Response(self._reloaded(device), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        device = self.get_object()
        ser = self.get_serializer(device, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        device = actions.do_update_device(device, actor=self.actor, **ser.validated_data)
        return Response(self._reloaded(device))

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_device(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"])
    def reprovision(self, request, pk=None):
        """Ask the phone to fetch its configuration now (SIP NOTIFY check-sync)."""
        sent = actions.do_reprovision(self.get_object(), actor=self.actor)
        return Response({"notified": sent}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: ControlResultSerializer})
    @action(detail=True, methods=["post"])
    def reboot(self, request, pk=None):
        """Ask the phone to fetch its configuration and reboot."""
        sent = actions.do_reboot(self.get_object(), actor=self.actor)
        return Response({"notified": sent}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: EffectiveSettingSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="settings")
    def effective_settings(self, request, pk=None):
        """Every provisioning setting of the phone and the layer it comes from."""
        resolved = effective_settings(self.tenant, self.get_object())
        return Response(
            [{"key": k, "value": v.value, "source": v.source} for k, v in resolved.items()]
        )

    @extend_schema(responses={200: DeviceCredentialsSerializer})
    @action(detail=True, methods=["get"])
    def credentials(self, request, pk=None):
        """The phone's HTTP credentials and URLs, to configure it by hand (devices.manage)."""
        device = self.get_object()
        if Permission.DEVICES_MANAGE not in (tenant_permissions(request.user, self.tenant) or ()):
            self.permission_denied(request)
        host = request.get_host().split(":")[0]
        listener = admin_listener(request)
        return Response(
            {
                "username": device.http_username,
                "password": device.http_password,
                "provisioning_url": token_url(device, host, credentials=True, **listener),
                "plain_url": plain_url(host, **listener),
            }
        )
