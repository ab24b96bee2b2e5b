"""Postpaid invoices: the month's total is the sum of its CDR costs, issuing is idempotent,
and the PDF and CSV renderings carry the calls (the CSV safe from formula injection)."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.invoices import issue, issue_month, render_csv, render_pdf
from billing.models import Invoice
from billing.tasks import issue_invoices

pytestmark = pytest.mark.django_db


def cdr(call_id, ended, cost, billsec=60, number="15551234567", caller="101"):
    from telephony.models import Cdr

    return Cdr.objects.create(
        call_id=call_id, direction="outbound", caller_number=caller, number=number,
        trunk=1, started_at=ended, answered_at=ended, ended_at=ended, billsec=billsec,
        cost=None if cost is None else Decimal(cost), currency="USD", rate_prefix="1",
    )  # fmt: skip


@pytest.fixture
def month_of_calls(world, account, in_tenant):
    account.mode = "postpaid"
    account.save()
    with in_tenant(world.tenant_a):
        cdr("m-1", datetime(2026, 10, 1, 0, 0, 5, tzinfo=UTC), "0.0200")
        cdr("m-2", datetime(2026, 10, 15, 12, tzinfo=UTC), "1.2345", billsec=600)
        cdr("m-3", datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), "0.0001", caller="=HYPERLINK(1)")
        cdr("m-before", datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC), "5")
        cdr("m-after", datetime(2026, 11, 1, tzinfo=UTC), "7")
        cdr("m-unrated", datetime(2026, 10, 2, tzinfo=UTC), None)
    return account


def test_invoice_total_is_the_sum_of_the_months_costs(world, month_of_calls):
    invoice = issue(month_of_calls, date(2026, 10, 17))
    assert (invoice.period_start, invoice.period_end) == (date(2026, 10, 1), date(2026, 11, 1))
    assert (invoice.calls, invoice.seconds, invoice.total) == (3, 720, Decimal("1.2546"))
    assert invoice.number == f"INV-202610-{world.tenant_a.pk:06d}"
    again = issue(month_of_calls, date(2026, 10, 1))
    assert again.pk == invoice.pk
    assert Invoice.objects.filter(account=month_of_calls).count() == 1


def test_csv_has_one_row_per_call_and_no_formulas(world, month_of_calls):
    invoice = issue(month_of_calls, date(2026, 10, 1))
    rows = list(csv.DictReader(io.StringIO(render_csv(invoice))))
    assert [r["call_id"] for r in rows] == ["m-1", "m-2", "m-3"]
    assert sum(Decimal(r["cost"]) for r in rows) == invoice.total
    assert rows[2]["caller"] == "'=HYPERLINK(1)"
    assert rows[1]["billsec"] == "600"


def test_pdf_carries_the_invoice(world, month_of_calls):
    invoice = issue(month_of_calls, date(2026, 10, 1))
    pdf = render_pdf(invoice, compress=False)
    assert pdf.startswith(b"%PDF")
    for text in (invoice.number, "Acme", "1.2546 USD", "2026-10-01 to 2026-10-31", "+15551234567"):
        assert text.encode() in pdf
    assert render_pdf(invoice).startswith(b"%PDF")


def test_monthly_task_issues_last_months_invoices_once(world, account, in_tenant):
    account.mode = "postpaid"
    account.save()
    assert issue_invoices() == 1
    assert issue_invoices() == 1
    assert Invoice.objects.filter(account=account).count() == 1
    account.mode = "prepaid"
    account.save()
    assert issue_month(date(2026, 1, 1)) == []  # prepaid accounts get none
