"""Call records and live calls of the host tenant.

- ``/cdrs/``: call detail records with their segments, newest first, cursor-paginated (CDR
  tables grow without bound; offsets would get slower and skip rows while calls are added).
- ``/active-calls/``: the calls the engine has in progress, read from its Redis mirror
  ``sip:calls:<schema>``; ``POST .../{call_id}/hangup/`` asks the engine to end one over the
  ``sip:control`` channel. The schema in the key is the host tenant's, so another tenant's call
  is simply not there (404).
"""

from __future__ import annotations

import django_filters
from django.db.models import Q
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from pbx.api.filters import IdFilter, UtcIsoDateTimeFilter
from pbx.api.pagination import CursorPagination
from pbx.api.viewsets import TenantScopedViewSet
from pbx.errors import NotFound
from telephony.actions import do_hangup_call
from telephony.engine.state import active_call, active_calls
from telephony.models import CallDirection, CallStatus, Cdr, CdrSegment
from tenants.choices import Permission

# ------------------------------------------------------------------------------------- CDRs


class CdrSegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = CdrSegment
        fields = (
            "seq",
            "kind",
            "from_number",
            "to_number",
            "status",
            "started_at",
            "ringing_at",
            "answered_at",
            "ended_at",
            "legs",
        )


class CdrSerializer(serializers.ModelSerializer):
    segments = CdrSegmentSerializer(many=True, read_only=True)

    class Meta:
        model = Cdr
        fields = (
            "id",
            "call_id",
            "direction",
            "caller_number",
            "caller_name",
            "callee_number",
            "trunk",
            "did",
            "dialled",
            "number",
            "presented",
            "status",
            "end_reason",
            "started_at",
            "answered_at",
            "ended_at",
            "duration",
            "billsec",
            "segments",
        )


class CdrFilter(django_filters.FilterSet):
    extension = django_filters.CharFilter(method="filter_extension", label="Extension number")
    started_after = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = UtcIsoDateTimeFilter(field_name="started_at", lookup_expr="lt")
    date = django_filters.DateFilter(field_name="started_at", lookup_expr="date")
    direction = django_filters.ChoiceFilter(choices=CallDirection.choices)
    status = django_filters.ChoiceFilter(choices=CallStatus.choices)
    trunk = IdFilter(label="Trunk id")
    did = django_filters.CharFilter(method="filter_did", label="DID called (E.164)")

    class Meta:
        model = Cdr
        fields = (
            "extension",
            "started_after",
            "started_before",
            "date",
            "direction",
            "status",
            "trunk",
            "did",
        )

    def filter_did(self, queryset, name, value):
        # As stored (E.164); a "+" sent unencoded in a query string arrives as a space.
        value = value.strip()
        if value[:1].isdigit():
            value = f"+{value}"
        return queryset.filter(did=value)

    def filter_extension(self, queryset, name, value):
        # Calls the extension made, received, or took part in through a transfer.
        segs = CdrSegment.objects.filter(Q(from_number=value) | Q(to_number=value))
        return queryset.filter(
            Q(caller_number=value) | Q(callee_number=value) | Q(pk__in=segs.values("cdr_id"))
        )


class CdrViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The host tenant's call detail records, each with its segments."""

    serializer_class = CdrSerializer
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    pagination_class = CursorPagination.ordered_by("-started_at", "-id")  # newest first
    filterset_class = CdrFilter
    search_fields = ("caller_number", "callee_number", "caller_name", "call_id", "number", "did")
    ordering_fields: tuple[str, ...] = ()  # the cursor fixes the order
    queryset = Cdr.objects.prefetch_related("segments").order_by("-started_at", "-id")


# ------------------------------------------------------------------------------ live calls


class ActiveCallSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    state = serializers.CharField()
    caller = serializers.CharField()
    caller_name = serializers.CharField(allow_blank=True)
    callee = serializers.CharField()
    started_at = serializers.FloatField()
    answered_at = serializers.FloatField(allow_null=True)
    legs = serializers.ListField(child=serializers.DictField())
    # A trunk call's facts, where the engine's mirror has them (contract.CDR_FIELDS).
    direction = serializers.CharField(required=False)
    trunk = serializers.CharField(required=False)
    did = serializers.CharField(required=False)
    dialled = serializers.CharField(required=False)
    number = serializers.CharField(required=False)
    presented = serializers.CharField(required=False)


class ActiveCallViewSet(TenantScopedViewSet):
    """Calls in progress in the host tenant (from the engine's Redis mirror)."""

    serializer_class = ActiveCallSerializer
    permission_codes = (Permission.EXTENSIONS_VIEW, Permission.EXTENSIONS_MANAGE)
    lookup_field = "call_id"
    lookup_value_regex = r"[^/]+"
    pagination_class = None
    filter_backends = ()

    @extend_schema(responses={200: ActiveCallSerializer(many=True)})
    def list(self, request):
        data = ActiveCallSerializer(active_calls(self.tenant.schema_name), many=True).data
        return Response({"total": len(data), "items": data})

    @extend_schema(responses={200: ActiveCallSerializer})
    def retrieve(self, request, call_id=None):
        call = active_call(self.tenant.schema_name, call_id or "")
        if call is None:
            raise NotFound("No such call.")
        return Response(ActiveCallSerializer(call).data)

    @extend_schema(request=None, responses={202: OpenApiResponse(description="Hang-up sent")})
    @action(detail=True, methods=["post"])
    def hangup(self, request, call_id=None):
        """End a call in progress (needs extensions.manage)."""
        do_hangup_call(self.tenant, call_id or "", actor=self.actor)
        return Response(
            {"call_id": call_id, "status": "hangup_requested"}, status.HTTP_202_ACCEPTED
        )
