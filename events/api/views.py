"""Webhooks, their delivery log, the event outbox and the live state of the host tenant."""

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from events import actions
from events.choices import DeliveryState
from events.live import tenant_live_state
from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from pbx.api.pagination import CursorPagination
from pbx.api.permissions import TenantPermission
from pbx.api.viewsets import TenantScopedViewSet
from tenants.choices import Permission

from .serializers import (
    DeliverySerializer,
    OutboxEventSerializer,
    ReplayResultSerializer,
    ReplaySerializer,
    WebhookSerializer,
    WebhookWithSecretSerializer,
)

WEBHOOK_CODES = (Permission.WEBHOOKS_MANAGE, Permission.WEBHOOKS_MANAGE)


class WebhookViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    """The host tenant's webhook endpoints (``webhooks.manage``)."""

    serializer_class = WebhookSerializer
    permission_codes = WEBHOOK_CODES
    filterset_fields = ("enabled",)
    search_fields = ("url", "description")
    ordering_fields = ("id", "url", "created_at")
    ordering = ("id",)
    queryset = WebhookEndpoint.objects.order_by("id")

    @extend_schema(responses={201: WebhookWithSecretSerializer})
    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        data.pop("rotate_secret", None)
        endpoint, secret = actions.do_create_webhook(actor=self.actor, **data)
        body = WebhookSerializer(endpoint).data
        return Response({**body, "secret": secret}, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: WebhookWithSecretSerializer})
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        ser = self.get_serializer(endpoint, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        endpoint, secret = actions.do_update_webhook(
            endpoint, actor=self.actor, **ser.validated_data
        )
        body = WebhookSerializer(endpoint).data
        return Response({**body, "secret": secret} if secret else body)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def perform_destroy(self, instance):
        actions.do_delete_webhook(instance, actor=self.actor)

    @extend_schema(request=ReplaySerializer, responses={202: ReplayResultSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send this endpoint every matching event from ``from_event_id`` (inclusive) on."""
        endpoint = self.get_object()
        ser = ReplaySerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        queued = actions.do_replay_webhook(
            endpoint, from_event_id=ser.validated_data["from_event_id"], actor=self.actor
        )
        return Response({"queued": queued}, status=status.HTTP_202_ACCEPTED)


class DeliveryFilter(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=DeliveryState.choices)

    class Meta:
        model = WebhookDelivery
        fields = ("endpoint", "event", "state", "replay")


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The delivery log: one row per event sent (or being sent) to an endpoint, newest first."""

    serializer_class = DeliverySerializer
    permission_codes = WEBHOOK_CODES
    pagination_class = CursorPagination.ordered_by("-id")
    filterset_class = DeliveryFilter
    search_fields = ()
    ordering_fields: tuple[str, ...] = ()
    queryset = WebhookDelivery.objects.select_related("event").order_by("-id")


class OutboxFilter(django_filters.FilterSet):
    after = django_filters.NumberFilter(field_name="id", lookup_expr="gt", label="Events after id")
    type = django_filters.CharFilter(field_name="type")
    topic = django_filters.CharFilter(field_name="topic")

    class Meta:
        model = OutboxEvent
        fields = ("after", "type", "topic")


class OutboxEventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's events, oldest first (``?after=<id>`` resumes after a known event)."""

    serializer_class = OutboxEventSerializer
    permission_codes = WEBHOOK_CODES
    pagination_class = CursorPagination.ordered_by("id")
    filterset_class = OutboxFilter
    search_fields = ()
    ordering_fields: tuple[str, ...] = ()
    queryset = OutboxEvent.objects.order_by("id")


class LiveStateView(APIView):
    """The current live state (devices, call status, DND per extension; calls in progress), so a
    page renders before its WebSocket delivers updates (``extensions.view``)."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_VIEW)

    @extend_schema(responses={200: OpenApiResponse(description="Live state")})
    def get(self, request):
        return Response(tenant_live_state(request._request.tenant))
