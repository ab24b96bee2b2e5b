"""Admin for billing (public schema, the provider's host, system admins).

Rate tables and rates are written through ``billing.rate_tables`` (audited, judged as in the
API and the portal). A table's page shows its rates a page at a time (``?rates_page=``, read
only there; each opens in the rate admin, itself paginated and filtered by table). Accounts and
report schedules are edited here as rows; the ledger and invoices are read-only records.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from pbx.admin import ActionAdmin, ActionForm

from . import rate_tables as actions
from .models import BillingAccount, Invoice, LedgerEntry, Rate, RateTable, ReportSchedule

RATES_PER_PAGE = 50


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# ------------------------------------------------------------------------------ rate tables


class RateTableForm(ActionForm):
    class Meta:
        model = RateTable
        fields = (
            "name",
            "kind",
            "dealer",
            "currency",
            "base",
            "markup_percent",
            "description",
            "trunks",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and "dealer" in self.fields:
            self.fields["dealer"].disabled = True  # the owner is set when the table is made

    def run_action(self):
        data = self.cleaned_data
        names = (*actions.TABLE_FIELDS, "trunks")
        if self.instance.pk is None:
            fields = {n: data[n] for n in names if n in data}
            fields["trunks"] = list(data.get("trunks") or ())
            return actions.do_create_rate_table(
                actor=self.actor, fields=fields, dealer=data.get("dealer")
            )
        fields = self.changes(names)
        if "trunks" in fields:
            fields["trunks"] = list(fields["trunks"] or ())
        return actions.do_update_rate_table(self.instance, actor=self.actor, fields=fields)


class _RatePage(forms.models.BaseInlineFormSet):
    page = 1

    def get_queryset(self):
        start = (self.page - 1) * RATES_PER_PAGE
        return super().get_queryset()[start : start + RATES_PER_PAGE]


class RateInline(admin.TabularInline):
    """One page of the table's own rates, read-only (the rate admin edits them)."""

    model = Rate
    extra = 0
    fields = actions.RATE_FIELDS
    readonly_fields = fields
    show_change_link = True
    can_delete = False
    formset = _RatePage

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        raw = request.GET.get("rates_page", "1")
        page = int(raw) if raw.isdigit() and 0 < int(raw) < 10**6 else 1
        return type(formset.__name__, (formset,), {"page": page})

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(RateTable)
class RateTableAdmin(ActionAdmin):
    form = RateTableForm
    inlines = (RateInline,)
    list_display = ("name", "kind", "dealer", "currency", "base", "markup_percent", "updated_at")
    list_filter = ("kind", "currency")
    search_fields = ("name", "description")
    list_select_related = ("dealer", "base")
    autocomplete_fields = ()
    filter_horizontal = ("trunks",)
    readonly_fields = ("rate_pages",)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else ()  # a new table has no rates yet

    @admin.display(description="Rates")
    def rate_pages(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        count = obj.rates.count()
        pages = max(1, -(-count // RATES_PER_PAGE))
        listing = reverse("admin:billing_rate_changelist") + f"?table__id__exact={obj.pk}"
        links = format_html_join(
            " ", '<a href="?rates_page={}">{}</a>', ((n, n) for n in range(1, min(pages, 50) + 1))
        )
        return format_html(
            '{} rates, {} a page: {} · <a href="{}">all, searchable</a>',
            count,
            RATES_PER_PAGE,
            links,
            listing,
        )

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_rate_table, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and super().has_delete_permission(request, obj)


class RateForm(ActionForm):
    # The rate's field, not Form.prefix (the form metaclass takes fields off the class).
    prefix = forms.CharField(  # type: ignore[assignment]
        max_length=17, help_text='Digits (a leading "+" is dropped).'
    )

    class Meta:
        model = Rate
        fields = ("table", *actions.RATE_FIELDS)

    def run_action(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            fields = {n: data[n] for n in actions.RATE_FIELDS if n in data}
            return actions.do_create_rate(data["table"], actor=self.actor, fields=fields)
        return actions.do_update_rate(
            self.instance, actor=self.actor, fields=self.changes(actions.RATE_FIELDS)
        )


@admin.register(Rate)
class RateAdmin(ActionAdmin):
    form = RateForm
    list_display = (
        "prefix",
        "table",
        "description",
        "per_minute",
        "connection_fee",
        "first_interval",
        "next_interval",
    )
    list_filter = ("table",)
    search_fields = ("prefix", "description")
    list_select_related = ("table",)
    list_per_page = 100

    def get_readonly_fields(self, request, obj=None):
        return ("table",) if obj is not None else ()

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_rate, obj)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and super().has_delete_permission(request, obj)


# ------------------------------------------------------------------------------ accounts


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    list_display = ("tenant", "mode", "currency", "balance", "credit_limit", "rate_table")
    list_filter = ("mode", "currency")
    search_fields = ("tenant__name",)
    list_select_related = ("tenant", "rate_table")
    # The balance moves only through the ledger (top-ups, charges, adjustments).
    readonly_fields = ("balance", "low_balance_sent_at", "updated_at")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "account", "kind", "amount", "balance_after", "call_id")
    list_filter = ("kind",)
    search_fields = ("account__tenant__name", "call_id", "description")
    list_select_related = ("account__tenant",)
    date_hierarchy = "created_at"


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("number", "account", "period_start", "period_end", "calls", "total")
    search_fields = ("number", "account__tenant__name")
    list_select_related = ("account__tenant",)
    date_hierarchy = "period_start"


@admin.register(ReportSchedule)
class ReportScheduleAdmin(admin.ModelAdmin):
    list_display = ("name", "tenant", "frequency", "group_by", "enabled", "last_sent_at")
    list_filter = ("frequency", "enabled")
    search_fields = ("name", "tenant__name", "recipients")
    list_select_related = ("tenant",)
