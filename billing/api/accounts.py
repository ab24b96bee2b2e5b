"""The billing API: a tenant reads its own account, ledger and invoices (with PDF and CSV
downloads) on its host; the system admin and dealer admins (for the tenants of their subtree
only) read and set accounts and top them up on the provider's host."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from billing import accounts
from billing.invoices import render_csv, render_pdf
from billing.models import BillingAccount, Invoice, LedgerEntry
from pbx.api.permissions import PlatformAdmin, TenantPermission
from pbx.api.viewsets import BaseViewSet, TenantScopedViewSet
from pbx.audit import Actor
from pbx.errors import NotFound
from tenants.access import tenants_visible_to
from tenants.choices import Permission, Role

BILLING_CODES = (Permission.TENANT_SETTINGS, Permission.TENANT_SETTINGS)


class AccountSerializer(serializers.ModelSerializer):
    tenant = serializers.IntegerField(source="tenant_id", read_only=True)
    tenant_name = serializers.CharField(source="tenant.name", read_only=True)
    rate_table = serializers.IntegerField(source="rate_table_id", read_only=True, allow_null=True)

    class Meta:
        model = BillingAccount
        fields = (
            "tenant", "tenant_name", "mode", "currency", "balance", "credit_limit",
            "low_balance", "low_balance_email", "rate_table", "updated_at",
        )  # fmt: skip
        read_only_fields = fields


class AccountSettingsSerializer(serializers.Serializer):
    """What may be set (validated by ``billing.accounts.configure``, which names bad fields)."""

    mode = serializers.CharField(required=False)
    currency = serializers.CharField(required=False)
    credit_limit = serializers.CharField(required=False)
    low_balance = serializers.CharField(required=False)
    low_balance_email = serializers.CharField(required=False, allow_blank=True)
    rate_table = serializers.IntegerField(required=False, allow_null=True)


class MoveSerializer(serializers.Serializer):
    amount = serializers.CharField()
    note = serializers.CharField(required=False, allow_blank=True, max_length=255)


class LedgerSerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = (
            "id", "kind", "amount", "balance_after", "call_id", "description", "created_at",
        )  # fmt: skip
        read_only_fields = fields


class InvoiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Invoice
        fields = (
            "id", "number", "period_start", "period_end", "currency", "calls", "seconds",
            "total", "issued_at",
        )  # fmt: skip
        read_only_fields = fields


def download(body: bytes | str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ------------------------------------------------------------------------- tenant's host


class OwnAccountView(APIView):
    """The host tenant's account: mode, currency, balance and limits."""

    permission_classes = (TenantPermission,)
    permission_codes = BILLING_CODES

    @extend_schema(responses={200: AccountSerializer})
    def get(self, request):
        tenant = request._request.tenant
        # A tenant without an account is shown one with billing off (reading makes none).
        account = BillingAccount.objects.filter(tenant=tenant).first()
        return Response(AccountSerializer(account or BillingAccount(tenant=tenant)).data)


class LedgerViewSet(mixins.ListModelMixin, TenantScopedViewSet):
    """The host tenant's balance movements, newest first."""

    serializer_class = LedgerSerializer
    permission_codes = BILLING_CODES
    filterset_fields = ("kind",)
    queryset = LedgerEntry.objects.none()

    def get_queryset(self):
        return LedgerEntry.objects.filter(account__tenant=self.tenant).order_by(
            "-created_at", "-id"
        )


class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The host tenant's invoices, with their PDF and their calls as CSV."""

    serializer_class = InvoiceSerializer
    permission_codes = BILLING_CODES
    queryset = Invoice.objects.none()

    def get_queryset(self):
        return (
            Invoice.objects.filter(account__tenant=self.tenant)
            .select_related("account__tenant")
            .order_by("-period_start", "-id")
        )

    @extend_schema(responses={200: OpenApiResponse(description="the invoice as a PDF")})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        return download(render_pdf(invoice), "application/pdf", f"{invoice.number}.pdf")

    @extend_schema(responses={200: OpenApiResponse(description="the invoice's calls as CSV")})
    @action(detail=True, methods=["get"])
    def csv(self, request, pk=None):
        invoice = self.get_object()
        return download(render_csv(invoice), "text/csv; charset=utf-8", f"{invoice.number}.csv")


# ---------------------------------------------------------------------- provider's host


class BillingAccountViewSet(mixins.ListModelMixin, BaseViewSet):
    """Tenants' accounts by tenant id, for the system admin (all) and dealer admins (their
    subtree's tenants; any other tenant's is 404): read, set, top up, adjust."""

    serializer_class = AccountSerializer
    permission_classes = (PlatformAdmin,)
    queryset = BillingAccount.objects.none()
    lookup_field = "tenant"  # an account is named by its tenant's id

    def get_queryset(self):
        tenants = tenants_visible_to(self.request.user)
        return (
            BillingAccount.objects.filter(tenant__in=tenants)
            .select_related("tenant")
            .order_by("tenant__name", "tenant_id")
        )

    def _account(self, pk) -> BillingAccount:
        tenant = (
            tenants_visible_to(self.request.user)
            .filter(pk=pk)
            .exclude(schema_name="public")
            .first()
            if str(pk).isdigit()
            else None
        )
        if tenant is None:
            raise NotFound("No such tenant.")
        return accounts.account_for(tenant)

    def _dealer(self):
        user = self.request.user
        return user.dealer if user.role == Role.DEALER_ADMIN else None

    @extend_schema(responses={200: AccountSerializer})
    def retrieve(self, request, tenant=None):
        return Response(AccountSerializer(self._account(tenant)).data)

    @extend_schema(request=AccountSettingsSerializer, responses={200: AccountSerializer})
    def partial_update(self, request, tenant=None):
        account = self._account(tenant)
        ser = AccountSettingsSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        account = accounts.configure(
            account, dict(ser.validated_data), Actor.from_request(request), dealer=self._dealer()
        )
        return Response(AccountSerializer(account).data)

    def update(self, request, tenant=None):
        return self.partial_update(request, tenant)

    def _move(self, request, pk, move):
        account = self._account(pk)
        ser = MoveSerializer(data=request.data)
        ser.is_valid(raise_exception=True)
        entry = move(
            account,
            ser.validated_data["amount"],
            Actor.from_request(request),
            ser.validated_data.get("note", ""),
        )
        return Response(LedgerSerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MoveSerializer, responses={201: LedgerSerializer})
    @action(detail=True, methods=["post"], url_path="top-up")
    def top_up(self, request, tenant=None):
        return self._move(request, tenant, accounts.top_up)

    @extend_schema(request=MoveSerializer, responses={201: LedgerSerializer})
    @action(detail=True, methods=["post"])
    def adjust(self, request, tenant=None):
        return self._move(request, tenant, accounts.adjust)
