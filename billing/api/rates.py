"""Rate tables and rates over the API.

- On the provider's host (system admins; dealer admins within their subtree,
  ``billing.access``): ``/rate-tables/`` the tables, created, changed and deleted through
  ``billing.rate_tables``, with ``/rate-tables/{id}/import/`` (a CSV file, multipart;
  ``?dry_run=1`` reports and writes nothing; ``mode`` merge or replace),
  ``/rate-tables/{id}/export/`` (the table's own rates as CSV) and
  ``/rate-tables/{id}/effective/`` (the rates it charges: its base's marked up, its own rows
  over them); ``/rates/`` the rates of those tables (``?table=`` one table's).
- On a tenant's host (``tenant.settings``, the tenant's administrators): ``/call-rates/`` the
  rates the tenant's calls are charged at (its billing account's table, effective), read-only.

Another dealer's table, and a provider's buy table for a dealer, are 404.
"""

from __future__ import annotations

import django_filters
from django.db.models import Count
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import rate_tables as actions
from billing.access import base_tables_for, rate_tables_managed_by
from billing.models import BillingAccount, Rate, RateKind, RateTable
from billing.rate_csv import MAX_BYTES, MERGE, MODES, export_csv, import_rates
from billing.rates import effective_items
from dealers.access import dealers_visible_to
from pbx.api.filters import MAX_ID, IdFilter
from pbx.api.pagination import LimitOffsetPagination
from pbx.api.permissions import PlatformAdmin, TenantPermission
from pbx.api.serializers import ActionJudgesValues
from pbx.api.viewsets import BaseViewSet, scoped
from pbx.errors import ValidationFailed
from tenants.choices import Permission, Role
from trunks.access import trunks_managed_by
from trunks.api.serializers import PkListField


def _id(**kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


# ------------------------------------------------------------------------------ serializers


class RateTableSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """A rate table; its rules are ``billing.rate_tables.validate_rate_table``."""

    dealer_id = _id(
        required=False,
        allow_null=True,
        help_text="The owning dealer (set when created; none: the provider's table).",
    )
    base_id = _id(
        required=False,
        allow_null=True,
        help_text="The table this one marks up (its own rows override single prefixes).",
    )
    trunks = PkListField(required=False, help_text="Buy tables: the trunks whose calls it prices.")
    owner = serializers.SerializerMethodField()
    rate_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = RateTable
        fields = (
            "id",
            "name",
            "kind",
            "owner",
            "dealer_id",
            "currency",
            "base_id",
            "markup_percent",
            "description",
            "trunks",
            "rate_count",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("created_at", "updated_at")

    def get_owner(self, table) -> str:
        return "dealer" if table.dealer_id else "provider"


class RateSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """A rate; its rules are ``billing.rate_tables.validate_rate``."""

    table_id = _id(help_text="The rate table (set when created).")
    prefix = serializers.CharField(
        max_length=40, help_text='Destination digits, 1 to 16 (a leading "+" is dropped).'
    )

    class Meta:
        model = Rate
        fields = (
            "id",
            "table_id",
            *actions.RATE_FIELDS,
        )


class EffectiveRateSerializer(serializers.Serializer):
    prefix = serializers.CharField()
    per_minute = serializers.DecimalField(max_digits=14, decimal_places=4)
    connection_fee = serializers.DecimalField(max_digits=14, decimal_places=4)
    first_interval = serializers.IntegerField()
    next_interval = serializers.IntegerField()
    free_seconds = serializers.IntegerField()
    grace_seconds = serializers.IntegerField()


class ImportSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, UTF-8, with the header line.")
    mode = serializers.ChoiceField(choices=MODES, default=MERGE)
    dry_run = serializers.BooleanField(default=False)


def csv_download(table: RateTable) -> StreamingHttpResponse:
    response = StreamingHttpResponse(export_csv(table), content_type="text/csv; charset=utf-8")
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in table.name)[:60] or "rates"
    response["Content-Disposition"] = f'attachment; filename="rates-{name}.csv"'
    return response


def _search(request) -> str:
    return "".join(c for c in request.query_params.get("q", "") if c.isdigit())[:16]


# ------------------------------------------------------------------------------ views


class RateTableFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=RateKind.choices)
    dealer = IdFilter(field_name="dealer_id", label="Owned by this dealer")
    owner = django_filters.ChoiceFilter(
        choices=[("provider", "Provider"), ("dealer", "Dealer")], method="filter_owner"
    )

    class Meta:
        model = RateTable
        fields = ("kind", "dealer", "owner")

    def filter_owner(self, queryset, name, value):
        return queryset.filter(dealer__isnull=value == "provider")


class RateTableViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """Rate tables: the provider's buy and sell tables and the dealers' sell tables."""

    serializer_class = RateTableSerializer
    permission_classes = (PlatformAdmin,)
    filterset_class = RateTableFilter
    search_fields = ("name", "description")
    ordering_fields = ("name", "id", "updated_at")
    ordering = ("name", "id")
    queryset = RateTable.objects.none()

    def get_queryset(self):
        return (
            rate_tables_managed_by(self.request.user)
            .select_related("dealer", "base")
            .prefetch_related("trunks")
            .annotate(rate_count=Count("rates"))
            .order_by("name", "id")
        )

    def filter_queryset(self, queryset):
        # ``?q=`` of the effective rates searches prefixes, not the tables' names.
        return queryset if self.action == "effective" else super().filter_queryset(queryset)

    def _answer(self, table, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=table.pk)).data, status=code)

    def _fields(self, data: dict) -> dict:
        user = self.request.user
        fields = {k: v for k, v in data.items() if k in actions.TABLE_FIELDS}
        if "base_id" in data:
            fields["base"] = scoped(base_tables_for(user), data["base_id"], "base_id", "table")
        if "trunks" in data:
            ids = set(data["trunks"])
            found = list(trunks_managed_by(user).filter(pk__in=ids))
            missing = sorted(ids - {t.pk for t in found})
            if missing:
                raise ValidationFailed(
                    "Unknown trunks.",
                    fields={"trunks": [f"unknown trunks: {', '.join(map(str, missing[:5]))}"]},
                )
            fields["trunks"] = found
        return fields

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        user = request.user
        dealer = scoped(dealers_visible_to(user), data.get("dealer_id"), "dealer_id", "dealer")
        if dealer is None and user.role == Role.DEALER_ADMIN:
            dealer = user.dealer  # a dealer admin's tables are its dealer's
        table = actions.do_create_rate_table(
            actor=self.actor, fields=self._fields(data), dealer=dealer
        )
        return self._answer(table, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        table = self.get_object()
        ser = self.get_serializer(table, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        if "dealer_id" in data and data["dealer_id"] != table.dealer_id:
            raise ValidationFailed(
                "A table's owner is set when it is created.",
                fields={"dealer_id": ["cannot be changed"]},
            )
        table = actions.do_update_rate_table(table, actor=self.actor, fields=self._fields(data))
        return self._answer(table)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_rate_table(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={200: dict})
    @action(
        detail=True,
        methods=["post"],
        url_path="import",
        parser_classes=(MultiPartParser, FormParser),
    )
    def import_csv(self, request, pk=None):
        """Import rates from a CSV file: all rows or none; ``dry_run`` writes nothing."""
        table = self.get_object()
        values = {k: v for k, v in request.data.items()}
        if "dry_run" in request.query_params:
            values["dry_run"] = request.query_params["dry_run"]
        if "mode" in request.query_params:
            values["mode"] = request.query_params["mode"]
        ser = ImportSerializer(data=values)
        ser.is_valid(raise_exception=True)
        upload = ser.validated_data["file"]
        if upload.size > MAX_BYTES:
            raise ValidationFailed(
                "The file is too large.", fields={"file": [f"at most {MAX_BYTES // 1024} KiB"]}
            )
        report = import_rates(
            table,
            upload.read(),
            mode=ser.validated_data["mode"],
            dry_run=ser.validated_data["dry_run"],
            actor=self.actor,
        )
        return Response(report.as_dict())

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The table's own rates as CSV (the import's columns)."""
        return csv_download(self.get_object())

    @extend_schema(responses=EffectiveRateSerializer(many=True))
    @action(detail=True, methods=["get"])
    def effective(self, request, pk=None):
        """The rates this table charges: its base chain marked up, its own rows over them
        (``?q=`` prefix digits)."""
        items = effective_items(self.get_object(), _search(request))
        page = self.paginate_queryset(items)
        return self.get_paginated_response(EffectiveRateSerializer(page, many=True).data)


class RateViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, BaseViewSet):
    """The rates of the tables the caller manages (``?table=`` one table's, ``?q=`` by
    prefix)."""

    serializer_class = RateSerializer
    permission_classes = (PlatformAdmin,)
    filterset_fields = ("table",)
    ordering_fields = ("prefix", "per_minute", "id")
    ordering = ("prefix", "id")
    queryset = Rate.objects.none()

    def get_queryset(self):
        tables = rate_tables_managed_by(self.request.user)
        qs = Rate.objects.filter(table__in=tables).select_related("table")
        search = _search(self.request)
        if search:
            qs = qs.filter(prefix__startswith=search)
        return qs.order_by("prefix", "id")

    def _answer(self, rate, code=status.HTTP_200_OK):
        return Response(self.get_serializer(self.get_queryset().get(pk=rate.pk)).data, status=code)

    def create(self, request):
        ser = self.get_serializer(data=request.data)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        tables = rate_tables_managed_by(request.user)
        table = scoped(tables, data.pop("table_id"), "table_id", "rate table")
        rate = actions.do_create_rate(table, actor=self.actor, fields=data)
        return self._answer(rate, status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        rate = self.get_object()
        ser = self.get_serializer(rate, data=request.data, partial=True)
        ser.is_valid(raise_exception=True)
        data = dict(ser.validated_data)
        if data.pop("table_id", rate.table_id) != rate.table_id:
            raise ValidationFailed(
                "A rate stays in its table.", fields={"table_id": ["cannot be changed"]}
            )
        rate = actions.do_update_rate(rate, actor=self.actor, fields=data)
        return self._answer(rate)

    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        actions.do_delete_rate(self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class CallRatesView(APIView):
    """The rates the host tenant's calls are charged at (its billing account's table,
    effective), read-only; ``table`` null when it has none."""

    permission_classes = (TenantPermission,)
    permission_codes = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)

    @extend_schema(responses=EffectiveRateSerializer(many=True))
    def get(self, request):
        tenant = request._request.tenant
        account = BillingAccount.objects.filter(tenant=tenant).select_related("rate_table").first()
        table = account.rate_table if account is not None else None
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(effective_items(table, _search(request)), request)
        response = paginator.get_paginated_response(EffectiveRateSerializer(page, many=True).data)
        response.data["table"] = table.name if table is not None else None
        response.data["currency"] = (
            table.currency if table is not None else getattr(account, "currency", None)
        )
        return response
