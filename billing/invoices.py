"""Postpaid invoices: a month of an account's charged calls, issued once per period.

:func:`issue` freezes the month's totals (the tenant's CDRs that ended in the month, in its
time zone, and were rated: calls, billed seconds, cost) under a unique number; issuing the same
month again returns the invoice already issued. :func:`render_pdf` and :func:`render_csv`
give the invoice as a PDF and as a CSV of its calls, one row per charged call.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django_tenants.utils import schema_context

from pbx.text import safe_cell
from tenants.choices import BillingMode

from .models import ZERO, BillingAccount, Invoice

CSV_HEADER = (
    "started_at",
    "call_id",
    "caller",
    "number",
    "billsec",
    "rate_prefix",
    "cost",
    "currency",
)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def previous_month(day: date) -> date:
    first = month_start(day)
    return date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1)


def _zone(tenant) -> ZoneInfo:
    try:
        return ZoneInfo(tenant.time_zone or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def period_bounds(invoice_or_tenant, start: date, end: date) -> tuple[datetime, datetime]:
    zone = _zone(invoice_or_tenant)
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end, time.min, tzinfo=zone),
    )


def charged_calls(tenant, start: date, end: date):
    """The tenant's rated calls that ended in [start, end) (its own time zone): a queryset in
    its schema (evaluate it inside ``schema_context``)."""
    from telephony.models import Cdr

    low, high = period_bounds(tenant, start, end)
    return Cdr.objects.filter(cost__isnull=False, ended_at__gte=low, ended_at__lt=high).order_by(
        "ended_at", "id"
    )


def invoice_number(account: BillingAccount, start: date) -> str:
    return f"INV-{start:%Y%m}-{account.tenant_id:06d}"


def issue(account: BillingAccount, month: date) -> Invoice:
    """The invoice of ``month`` (any day in it) for ``account``: issued now, or the one issued
    before (idempotent per period, also when two workers issue it at once)."""
    start = month_start(month)
    end = next_month(start)
    existing = Invoice.objects.filter(account=account, period_start=start).first()
    if existing is not None:
        return existing
    tenant = account.tenant
    with schema_context(tenant.schema_name):
        totals = charged_calls(tenant, start, end).aggregate(
            calls=Count("id"), seconds=Sum("billsec"), total=Sum("cost")
        )
    try:
        with transaction.atomic():
            return Invoice.objects.create(
                account=account,
                number=invoice_number(account, start),
                period_start=start,
                period_end=end,
                currency=account.currency,
                calls=totals["calls"] or 0,
                seconds=totals["seconds"] or 0,
                total=totals["total"] or ZERO,
            )
    except IntegrityError:
        return Invoice.objects.get(account=account, period_start=start)


def issue_month(month: date) -> list[Invoice]:
    """Every postpaid account's invoice of ``month``."""
    accounts = BillingAccount.objects.filter(mode=BillingMode.POSTPAID).select_related("tenant")
    return [issue(account, month) for account in accounts if not account.tenant.is_public]


# ------------------------------------------------------------------------------ rendering


def invoice_rows(invoice: Invoice) -> list[tuple]:
    tenant = invoice.account.tenant
    with schema_context(tenant.schema_name):
        return list(
            charged_calls(tenant, invoice.period_start, invoice.period_end).values_list(
                "started_at",
                "call_id",
                "caller_number",
                "number",
                "billsec",
                "rate_prefix",
                "cost",
                "currency",
            )
        )


def render_csv(invoice: Invoice) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for started, call_id, caller, number, billsec, prefix, cost, currency in invoice_rows(invoice):
        writer.writerow(
            [
                safe_cell(started.isoformat()),
                safe_cell(call_id),
                safe_cell(caller),
                safe_cell(number),
                billsec,
                safe_cell(prefix),
                f"{cost:.4f}",
                safe_cell(currency),
            ]
        )
    return out.getvalue()


def pdf_text(value: object, limit: int = 80) -> str:
    """Text for the PDF's core font: one line, printable Latin-1 (others become "?")."""
    text = " ".join(str(value or "").split())[:limit]
    return (
        "".join(c if c.isprintable() else "?" for c in text)
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def render_pdf(invoice: Invoice, *, compress: bool = True) -> bytes:
    """The invoice as a one-section PDF: who, which month, the totals, then every call."""
    from fpdf import FPDF

    tenant = invoice.account.tenant
    pdf = FPDF()
    pdf.compress = compress
    pdf.set_title(pdf_text(f"Invoice {invoice.number}"))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, pdf_text(f"Invoice {invoice.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    last_day = date.fromordinal(invoice.period_end.toordinal() - 1)
    for line in (
        f"Customer: {tenant.name}",
        f"Period: {invoice.period_start.isoformat()} to {last_day.isoformat()}",
        f"Issued: {invoice.issued_at:%Y-%m-%d}",
        f"Calls: {invoice.calls}    Billed seconds: {invoice.seconds}",
        f"Total: {invoice.total:.4f} {invoice.currency}",
    ):
        pdf.cell(0, 7, pdf_text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 9)
    widths = (40, 45, 35, 20, 25)
    for width, title in zip(
        widths, ("Started (UTC)", "Number", "Rate prefix", "Seconds", "Cost"), strict=True
    ):
        pdf.cell(width, 6, title, border=1)
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for started, _call, _caller, number, billsec, prefix, cost, _cur in invoice_rows(invoice):
        cells = (
            f"{started:%Y-%m-%d %H:%M:%S}",
            f"+{number.lstrip('+')}",
            prefix,
            str(billsec),
            f"{cost:.4f}",
        )
        for width, text in zip(widths, cells, strict=True):
            pdf.cell(width, 6, pdf_text(text, 30), border=1)
        pdf.ln()
    return bytes(pdf.output())
