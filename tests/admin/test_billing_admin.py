"""Billing in the system admin's Django admin: rate tables (their rates a page at a time) and
rates written through the audited actions, a table in use not deleted, the ledger and invoices
read-only, and nobody else let in."""

import re
from datetime import date
from decimal import Decimal

import pytest

from billing import rate_tables as actions
from billing.admin import RATES_PER_PAGE
from billing.models import BillingAccount, Invoice, LedgerEntry, Rate, RateTable, ReportSchedule
from pbx.audit import SYSTEM
from pbx.models import AuditEntry

pytestmark = pytest.mark.django_db

ROOT = "/admin/billing/"


def make_table(name="Retail", **kw):
    return actions.do_create_rate_table(actor=SYSTEM, fields={"name": name, **kw})


def test_every_billing_page_opens_for_the_system_admin(portal, world):
    table = make_table()
    rate = actions.do_create_rate(table, actor=SYSTEM, fields={"prefix": "44"})
    account = BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    entry = LedgerEntry.objects.create(account=account, kind="topup", amount=Decimal(5))
    invoice = Invoice.objects.create(
        account=account,
        number="INV-1",
        period_start=date(2026, 10, 1),
        period_end=date(2026, 11, 1),
    )
    schedule = ReportSchedule.objects.create(
        tenant=world.tenant_a, name="Monthly", recipients="boss@acme.test"
    )
    client = portal(world.sysadmin)
    for model, obj in (
        ("ratetable", table),
        ("rate", rate),
        ("billingaccount", account),
        ("ledgerentry", entry),
        ("invoice", invoice),
        ("reportschedule", schedule),
    ):
        assert client.get(f"{ROOT}{model}/").status_code == 200, model
        assert client.get(f"{ROOT}{model}/{obj.pk}/change/").status_code == 200, model
    # The ledger and invoices are records: nothing is added, changed or deleted here.
    for model, obj in (("ledgerentry", entry), ("invoice", invoice)):
        assert client.get(f"{ROOT}{model}/add/").status_code == 403
        assert client.post(f"{ROOT}{model}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_a_table_and_a_rate_added_in_the_admin_go_through_the_actions(portal, world):
    client = portal(world.sysadmin)
    r = client.post(
        f"{ROOT}ratetable/add/",
        {"name": "Admin table", "kind": "sell", "currency": "gbp", "markup_percent": "0"},
    )
    assert r.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>", r.content.decode(), re.S)
    table = RateTable.objects.get(name="Admin table")
    assert table.currency == "GBP"
    assert AuditEntry.objects.filter(action="rate_table.create", object_id=str(table.pk)).exists()

    base = {"table": table.pk, "per_minute": "0.0100", "connection_fee": "0"}
    base |= {"first_interval": 60, "next_interval": 60, "free_seconds": 0, "grace_seconds": 0}
    r = client.post(f"{ROOT}rate/add/", {**base, "prefix": "+44"})
    assert r.status_code == 302, r.content.decode()[:2000]
    assert Rate.objects.get(table=table).prefix == "44"
    r = client.post(f"{ROOT}rate/add/", {**base, "prefix": "4x4"})
    assert r.status_code == 200
    assert "is not digits only" in r.content.decode()
    assert Rate.objects.filter(table=table).count() == 1


def test_a_table_s_page_shows_its_rates_a_page_at_a_time(portal, world):
    table = make_table()
    for n in range(RATES_PER_PAGE + 3):
        actions.do_create_rate(table, actor=SYSTEM, fields={"prefix": f"{100 + n}"})
    client = portal(world.sysadmin)
    first = client.get(f"{ROOT}ratetable/{table.pk}/change/").content.decode()
    second = client.get(f"{ROOT}ratetable/{table.pk}/change/?rates_page=2").content.decode()
    assert ">100<" in first
    assert f">{100 + RATES_PER_PAGE}<" not in first
    assert f">{100 + RATES_PER_PAGE}<" in second
    assert ">100<" not in second
    assert f"{RATES_PER_PAGE + 3} rates" in first


def test_a_table_in_use_is_not_deleted_in_the_admin(portal, world):
    table = make_table("Used")
    BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    client = portal(world.sysadmin)
    # Django's own refusal of a protected row: the page names the account that holds it.
    r = client.post(f"{ROOT}ratetable/{table.pk}/delete/", {"post": "yes"}, follow=True)
    assert r.status_code == 200
    assert "Cannot delete rate table" in r.content.decode()
    assert "billing account" in r.content.decode().lower()
    assert RateTable.objects.filter(pk=table.pk).exists()


@pytest.mark.parametrize("who", ["north_admin", "a_admin"])
def test_no_one_else_opens_the_billing_admin(portal, world, who):
    r = portal(getattr(world, who)).get(f"{ROOT}ratetable/")
    assert r.status_code in (302, 404)
    assert "Retail" not in r.content.decode()
