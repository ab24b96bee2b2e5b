"""The billing API: a tenant admin reads its own account, ledger and invoices (and downloads
them), never another tenant's; the system admin and a tenant's dealers set and top up its
account, another dealer cannot."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest

from billing.accounts import top_up
from billing.invoices import issue
from billing.models import BillingAccount, Invoice, LedgerEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def b_account(world):
    account = BillingAccount.objects.create(
        tenant=world.tenant_b, mode="postpaid", balance=Decimal("3")
    )
    top_up(account, "4", note="Beta payment")
    return account


def test_tenant_admin_reads_its_own_account(api, world, account, b_account):
    top_up(account, "1.5", note="Card")
    client = api(world.a_admin, world.tenant_a)
    body = client.get("/api/v1/billing/account/").json()
    assert (body["mode"], body["balance"], body["currency"]) == ("prepaid", "11.5000", "USD")
    ledger = client.get("/api/v1/billing-ledger/").json()["items"]
    assert [(e["kind"], e["amount"], e["description"]) for e in ledger] == [
        ("topup", "1.5000", "Card")
    ]
    # B's admin on A's host, A's plain user: nothing.
    assert api(world.b_admin, world.tenant_a).get("/api/v1/billing/account/").status_code == 401
    assert api(world.a_user, world.tenant_a).get("/api/v1/billing/account/").status_code == 403


def test_invoices_and_downloads_are_the_tenants_own(api, world, account, b_account):
    account.mode = "postpaid"
    account.save()
    mine = issue(account, date(2026, 10, 1))
    theirs = issue(b_account, date(2026, 10, 1))
    client = api(world.a_admin, world.tenant_a)
    items = client.get("/api/v1/billing-invoices/").json()["items"]
    assert [i["number"] for i in items] == [mine.number]
    pdf = client.get(f"/api/v1/billing-invoices/{mine.pk}/pdf/")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    got = client.get(f"/api/v1/billing-invoices/{mine.pk}/csv/")
    assert got["Content-Disposition"] == f'attachment; filename="{mine.number}.csv"'
    assert next(csv.reader(io.StringIO(got.content.decode())))[0] == "started_at"
    for path in ("", "pdf/", "csv/"):
        r = client.get(f"/api/v1/billing-invoices/{theirs.pk}/{path}")
        assert r.status_code == 404, path
        assert r.json()["code"] == "NOT_FOUND"


def test_dealer_tops_up_its_tenant_only(api, world, account, b_account):
    north = api(world.north_admin)
    r = north.post(f"/api/v1/billing-accounts/{world.tenant_a.pk}/top-up/",
                   {"amount": "5.25", "note": "Wire"})  # fmt: skip
    assert r.status_code == 201, r.content
    assert r.json()["balance_after"] == "15.2500"
    entry = LedgerEntry.objects.get(pk=r.json()["id"])
    assert entry.created_by == world.north_admin
    r = north.post(f"/api/v1/billing-accounts/{world.tenant_b.pk}/top-up/", {"amount": "5"})
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"
    r = north.patch(f"/api/v1/billing-accounts/{world.tenant_b.pk}/", {"credit_limit": "999"})
    assert r.status_code == 404
    listed = north.get("/api/v1/billing-accounts/").json()["items"]
    assert [i["tenant"] for i in listed] == [world.tenant_a.pk]
    b_account.refresh_from_db()
    assert (b_account.balance, b_account.credit_limit) == (Decimal("7"), Decimal("0"))
    # A tenant admin cannot top itself up: the endpoint is not on its host.
    r = api(world.a_admin, world.tenant_a).post(
        f"/api/v1/billing-accounts/{world.tenant_a.pk}/top-up/", {"amount": "5"}
    )
    assert r.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [({"amount": "-1"}, "amount"), ({"amount": "0.00001"}, "amount"), ({}, "amount"),
     ({"amount": "abc"}, "amount"), ({"amount": 1e30}, "amount")],
)  # fmt: skip
def test_top_up_errors_are_clear(api, world, account, body, field):
    r = api(world.sysadmin).post(f"/api/v1/billing-accounts/{world.tenant_a.pk}/top-up/", body)
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert field in r.json()["fields"]
    account.refresh_from_db()
    assert account.balance == Decimal("10")


def test_system_admin_sets_the_account(api, world, account, sell):
    r = api(world.sysadmin).patch(
        f"/api/v1/billing-accounts/{world.tenant_a.pk}/",
        {"mode": "postpaid", "credit_limit": "100", "low_balance": "2",
         "low_balance_email": "ops@acme.test", "rate_table": sell.pk},
    )  # fmt: skip
    assert r.status_code == 200, r.content
    assert (r.json()["mode"], r.json()["credit_limit"]) == ("postpaid", "100.0000")
    r = api(world.sysadmin).patch(
        f"/api/v1/billing-accounts/{world.tenant_a.pk}/", {"mode": "gold", "currency": "1"}
    )
    assert r.status_code == 400
    assert set(r.json()["fields"]) == {"mode", "currency"}
    assert Invoice.objects.count() == 0
