"""Billing pages: a tenant's own account, ledger and invoices (with downloads) on its host,
and on the provider's host a tenant's account, set and topped up by the system admin or the
tenant's dealers."""

from django import forms
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect

from billing import accounts
from billing.api.accounts import download
from billing.invoices import render_csv, render_pdf
from billing.models import BillingAccount, Invoice, LedgerEntry, RateTable
from pbx.portal.access import host_tenant, platform_admin_required, tenant_permission_required
from tenants.access import tenants_visible_to
from tenants.choices import BillingMode, Permission, Role

from .common import form_action, page

LEDGER_ROWS = 50


# --- the tenant's own ------------------------------------------------------------------------


@tenant_permission_required(Permission.TENANT_SETTINGS)
def billing(request):
    tenant = host_tenant(request)
    account = BillingAccount.objects.filter(tenant=tenant).first()
    ctx = {
        "account": account or BillingAccount(tenant=tenant),
        "ledger": LedgerEntry.objects.filter(account__tenant=tenant).order_by("-created_at", "-id")[
            :LEDGER_ROWS
        ],
        "invoices": Invoice.objects.filter(account__tenant=tenant).order_by("-period_start"),
    }
    return page(request, "portal/billing/account.html", ctx, section="billing")


@tenant_permission_required(Permission.TENANT_SETTINGS)
def invoice_download(request, pk, kind):
    if kind not in ("pdf", "csv"):
        raise Http404
    tenant = host_tenant(request)
    invoice = get_object_or_404(
        Invoice.objects.select_related("account__tenant"), pk=pk, account__tenant=tenant
    )
    if kind == "pdf":
        return download(render_pdf(invoice), "application/pdf", f"{invoice.number}.pdf")
    return download(render_csv(invoice), "text/csv; charset=utf-8", f"{invoice.number}.csv")


# --- the provider's host: a tenant's account -------------------------------------------------


class AccountForm(forms.Form):
    mode = forms.ChoiceField(choices=BillingMode.choices)
    currency = forms.CharField(max_length=3, help_text="ISO 4217, e.g. USD")
    rate_table = forms.ModelChoiceField(
        queryset=RateTable.objects.none(), required=False, empty_label="— none —",
        label="Sell rate table",
    )  # fmt: skip
    credit_limit = forms.DecimalField(
        min_value=0, decimal_places=4, max_digits=14, help_text="Postpaid: how much may be owed"
    )
    low_balance = forms.DecimalField(
        min_value=0, decimal_places=4, max_digits=14, label="Warn below",
        help_text="Prepaid: e-mail when the balance falls below this (0: never)",
    )  # fmt: skip
    low_balance_email = forms.EmailField(
        required=False, label="Warning e-mail", help_text="Empty: the tenant's admins"
    )

    def __init__(self, *args, dealer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rate_table"].queryset = accounts.sell_tables_for(dealer)


class MoneyForm(forms.Form):
    kind = forms.ChoiceField(
        choices=(("topup", "Top up"), ("adjustment", "Adjust (either sign)")), label="Action"
    )
    amount = forms.CharField(max_length=20, help_text="Up to 4 decimal places")
    note = forms.CharField(max_length=255, required=False)


@platform_admin_required
def tenant_billing(request, pk):
    tenant = get_object_or_404(tenants_visible_to(request.user), pk=pk)
    user = request.user
    dealer = user.dealer if user.role == Role.DEALER_ADMIN else None
    account = accounts.account_for(tenant)
    current = {
        "mode": account.mode,
        "currency": account.currency,
        "rate_table": account.rate_table_id,
        "credit_limit": account.credit_limit,
        "low_balance": account.low_balance,
        "low_balance_email": account.low_balance_email,
    }
    posted = request.POST if request.method == "POST" else None
    which = request.POST.get("form") if posted else None
    settings_form = AccountForm(posted if which == "settings" else None, initial=current,
                                dealer=dealer, prefix="settings")  # fmt: skip
    money_form = MoneyForm(posted if which == "money" else None, prefix="money")
    if which == "settings" and settings_form.is_valid():
        data = dict(settings_form.cleaned_data)
        data["rate_table"] = data["rate_table"].pk if data["rate_table"] else None
        if form_action(
            request,
            settings_form,
            lambda who: accounts.configure(account, data, who, dealer=dealer),
            "Billing settings saved.",
        ):
            return redirect("portal:tenant_billing", pk=tenant.pk)
    if which == "money" and money_form.is_valid():
        data = money_form.cleaned_data
        move = accounts.top_up if data["kind"] == "topup" else accounts.adjust
        if form_action(
            request,
            money_form,
            lambda who: move(account, data["amount"], who, data["note"]),
            "Balance updated.",
        ):
            return redirect("portal:tenant_billing", pk=tenant.pk)
    ctx = {
        "object": tenant,
        "account": account,
        "settings_form": settings_form,
        "money_form": money_form,
        "ledger": account.ledger.order_by("-created_at", "-id")[:LEDGER_ROWS],
    }
    return page(request, "portal/billing/tenant.html", ctx, section="tenants")
