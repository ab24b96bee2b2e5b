"""The host tenant's call routing: inbound rules, outbound rules, emergency numbers, the
caller blacklist and holidays (one viewset each over ``routing.actions.ROWS``), the routing
settings (office hours, privacy code, caller IDs, country), and the destination kinds with
their choices for clients that build pickers. Reading needs ``routing.view``, writing
``routing.manage``; every write goes through ``routing.actions`` (audited, republished)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.response import Response
from rest_framework.views import APIView

from pbx.api.permissions import TenantPermission
from pbx.api.viewsets import TenantScopedViewSet
from pbx.audit import Actor
from routing import actions
from routing.actions import ROWS
from routing.destinations import KINDS
from routing.models import RoutingSettings
from tenants.choices import Permission

from .serializers import (
    BlacklistEntrySerializer,
    DestinationKindSerializer,
    EmergencyNumberSerializer,
    HolidaySerializer,
    InboundRuleSerializer,
    OutboundRuleSerializer,
    RoutingSettingsSerializer,
)

ROUTING_CODES = (Permission.ROUTING_VIEW, Permission.ROUTING_MANAGE)


class RoutingRowViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """One kind of routing row (``kind``: a key of ``routing.actions.ROWS``)."""

    kind: str
    permission_codes = ROUTING_CODES

    def get_queryset(self):
        model = ROWS[self.kind].model
        return model.objects.order_by(*model._meta.ordering)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        row = actions.do_create(self.kind, actor=self.actor, fields=ser.validated_data)
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        row = self.get_object()
        ser = self.get_serializer(row, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        row = actions.do_update(row, actor=self.actor, fields=ser.validated_data)
        return Response(self.get_serializer(row).data)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InboundRuleViewSet(RoutingRowViewSet):
    """Called numbers (exact, range or pattern), optionally a caller, to destinations in
    office hours, out of them and on holidays."""

    kind = "inbound"
    serializer_class = InboundRuleSerializer
    filterset_fields = ("match", "enabled")
    search_fields = ("name", "number", "caller")
    ordering_fields = ("priority", "name", "id")
    ordering = ("priority", "id")


class OutboundRuleViewSet(RoutingRowViewSet):
    """Dialled numbers (prefix, pattern, length) to trunks in failover order."""

    kind = "outbound"
    serializer_class = OutboundRuleSerializer
    filterset_fields = ("enabled",)
    search_fields = ("name", "prefix", "pattern")
    ordering_fields = ("priority", "name", "id")
    ordering = ("priority", "id")


class EmergencyNumberViewSet(RoutingRowViewSet):
    """Emergency numbers: routed first and always allowed."""

    kind = "emergency"
    serializer_class = EmergencyNumberSerializer
    search_fields = ("number",)
    ordering_fields = ("number", "id")
    ordering = ("number",)


class BlacklistViewSet(RoutingRowViewSet):
    """Callers (numbers or prefixes) refused on the way in."""

    kind = "blacklist"
    serializer_class = BlacklistEntrySerializer
    filterset_fields = ("prefix", "action")
    search_fields = ("number", "note")
    ordering_fields = ("number", "created_at", "id")
    ordering = ("number", "id")


class HolidayViewSet(RoutingRowViewSet):
    """Days (or ranges of days, optionally every year) the tenant is closed."""

    kind = "holiday"
    serializer_class = HolidaySerializer
    filterset_fields = ("yearly",)
    search_fields = ("name",)
    ordering_fields = ("start", "name", "id")
    ordering = ("start", "id")


class RoutingSettingsView(APIView):
    """The host tenant's routing settings and its country."""

    permission_classes = (TenantPermission,)
    permission_codes = ROUTING_CODES

    def _answer(self, request, settings):
        tenant = request._request.tenant
        return Response(RoutingSettingsSerializer(settings, context={"tenant": tenant}).data)

    @extend_schema(responses={200: RoutingSettingsSerializer})
    def get(self, request):
        return self._answer(request, RoutingSettings.load())

    @extend_schema(request=RoutingSettingsSerializer, responses={200: RoutingSettingsSerializer})
    def patch(self, request):
        tenant = request._request.tenant
        ser = RoutingSettingsSerializer(
            RoutingSettings.load(), data=request.data, partial=True, context={"tenant": tenant}
        )
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        country = data.pop("country", None)
        settings = actions.do_update_settings(
            actor=Actor.from_request(request), fields=data, country=country
        )
        return self._answer(request, settings)


class DestinationKindsView(APIView):
    """The destination kinds a rule may send calls to, each with the targets to pick from
    (``choices``; null when the target is typed, like an outside number)."""

    permission_classes = (TenantPermission,)
    permission_codes = ROUTING_CODES

    @extend_schema(responses={200: DestinationKindSerializer(many=True)})
    def get(self, request):
        tenant = request._request.tenant
        items = []
        for kind in sorted(KINDS.values(), key=lambda k: k.kind):
            choices = kind.choices(tenant) if kind.choices is not None else None
            items.append(
                {
                    "kind": kind.kind,
                    "label": kind.label,
                    "choices": None
                    if choices is None
                    else [{"target": t, "label": label} for t, label in choices],
                }
            )
        data = DestinationKindSerializer(items, many=True).data
        return Response({"total": len(data), "items": data})
