"""The rate table pages on the provider's host (tables, their rates, CSV import with a preview,
export) and the tenant's read-only "Call rates" page; who may open which.

State is made through the actions and read back from the database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import rate_tables as actions
from billing.models import BillingAccount, Rate, RateTable
from billing.rate_csv import COLUMNS
from pbx.audit import SYSTEM
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

LIST = "/portal/rate-tables/"
HEADER = ",".join(COLUMNS)


def make_table(name="Retail", *, dealer=None, kind="sell", base=None, markup="0"):
    return actions.do_create_rate_table(
        actor=SYSTEM,
        fields={"name": name, "kind": kind, "base": base, "markup_percent": Decimal(markup)},
        dealer=dealer,
    )


def make_rate(table, prefix, per_minute="0.0100", **kw):
    return actions.do_create_rate(
        table, actor=SYSTEM, fields={"prefix": prefix, "per_minute": per_minute, **kw}
    )


def text(response) -> str:
    return response.content.decode()


def csv_file(body: str):
    return SimpleUploadedFile("rates.csv", body.encode(), content_type="text/csv")


def test_the_empty_list_says_what_to_do(portal, world):
    r = portal(world.sysadmin).get(LIST)
    assert r.status_code == 200
    assert "No rate tables yet" in text(r)
    assert 'href="/portal/rate-tables/"' in text(r)  # in the menu


def test_a_system_admin_creates_a_table_and_manages_its_rates(portal, world):
    client = portal(world.sysadmin)
    assert client.get(f"{LIST}add/").status_code == 200
    r = client.post(
        f"{LIST}add/",
        {"name": "Retail", "kind": "sell", "owner": "", "currency": "usd", "markup_percent": "0"},
    )
    assert r.status_code == 302, text(r)
    table = RateTable.objects.get(name="Retail")
    assert (table.dealer, table.currency) == (None, "USD")
    detail = f"{LIST}{table.pk}/"
    assert "No rates yet" in text(client.get(detail))

    form = {
        "prefix": "+44",
        "description": "United Kingdom",
        "per_minute": "0.0125",
        "connection_fee": "0",
        "first_interval": "60",
        "next_interval": "60",
        "free_seconds": "0",
        "grace_seconds": "0",
    }
    assert client.post(f"{detail}rates/add/", form).status_code == 302
    rate = Rate.objects.get(table=table)
    assert (rate.prefix, rate.per_minute) == ("44", Decimal("0.0125"))

    r = client.post(f"{detail}rates/add/", {**form, "prefix": "4x", "per_minute": "-1"})
    assert r.status_code == 200
    assert "is not digits only" in text(r)
    assert "must not be negative" in text(r)
    assert Rate.objects.filter(table=table).count() == 1

    make_rate(table, "49", "0.0150")
    page = text(client.get(detail, {"q": "49"}))
    assert 'data-testid="rate-49"' in page
    assert 'data-testid="rate-44"' not in page

    r = client.post(f"{detail}rates/{rate.pk}/", {**form, "per_minute": "0.0200"})
    assert r.status_code == 302
    assert Rate.objects.get(pk=rate.pk).per_minute == Decimal("0.02")
    assert client.get(f"{detail}rates/{rate.pk}/delete/").status_code == 200
    assert client.post(f"{detail}rates/{rate.pk}/delete/").status_code == 302
    assert not Rate.objects.filter(pk=rate.pk).exists()

    r = client.post(
        f"{LIST}{table.pk}/edit/",
        {"name": "Retail 2", "kind": "sell", "currency": "EUR", "markup_percent": "0"},
    )
    assert r.status_code == 302
    assert RateTable.objects.get(pk=table.pk).name == "Retail 2"


def test_a_buy_table_gets_its_trunks(portal, world):
    trunk = trunk_actions.do_create_trunk(
        actor=SYSTEM,
        fields={"name": "Carrier", "kind": "ip", "host": "sip.c.test", "addresses": ["192.0.2.1"]},
    )
    client = portal(world.sysadmin)
    body = {"name": "Cost", "kind": "buy", "currency": "USD", "markup_percent": "0"}
    assert client.post(f"{LIST}add/", {**body, "trunks": [trunk.pk]}).status_code == 302
    table = RateTable.objects.get(name="Cost")
    assert list(table.trunks.all()) == [trunk]
    assert "Carrier" in text(client.get(f"{LIST}{table.pk}/"))
    r = client.post(f"{LIST}add/", {**body, "name": "Sell", "kind": "sell", "trunks": [trunk.pk]})
    assert r.status_code == 200
    assert "only buy rate tables apply to trunks" in text(r)


def test_an_import_is_previewed_then_confirmed(portal, world):
    table = make_table()
    make_rate(table, "33", "0.0300")
    client = portal(world.sysadmin)
    url = f"{LIST}{table.pk}/import/"
    assert client.get(url).status_code == 200
    body = f"{HEADER}\n44,UK,0.0120,0,60,60,0,0\n49,DE,0.0150,0,60,60,0,0\n"
    r = client.post(url, {"file": csv_file(body), "mode": "replace"})
    assert r.status_code == 200
    page = text(r)
    assert 'data-testid="import-preview"' in page
    assert "2 to create" in page
    assert "1 to delete" in page
    assert set(Rate.objects.filter(table=table).values_list("prefix", flat=True)) == {"33"}

    token = page.split('name="token" value="')[1].split('"')[0]
    r = client.post(url, {"token": token})
    assert r.status_code == 302
    assert set(Rate.objects.filter(table=table).values_list("prefix", flat=True)) == {"44", "49"}
    # A token is good once.
    r = client.post(url, {"token": token})
    assert r.status_code == 302
    assert "expired" in text(client.get(url))


def test_a_bad_file_lists_its_rows_and_imports_nothing(portal, world):
    table = make_table()
    client = portal(world.sysadmin)
    body = f"{HEADER}\n44,UK,0.0120,0,60,60,0,0\nabc,Bad,1,0,60,60,0,0\n45,Neg,-2,0,60,60,0,0\n"
    r = client.post(f"{LIST}{table.pk}/import/", {"file": csv_file(body), "mode": "merge"})
    assert r.status_code == 200
    page = text(r)
    assert 'data-testid="import-errors"' in page
    assert "nothing was imported" in page
    assert "&#x27;abc&#x27; is not digits only" in page
    assert "must not be negative" in page
    assert not Rate.objects.filter(table=table).exists()

    r = client.post(f"{LIST}{table.pk}/import/", {"file": csv_file("a,b\n1,2\n"), "mode": "merge"})
    assert "Unknown column" in text(r)


def test_the_export_link_downloads_the_rates(portal, world):
    table = make_table()
    make_rate(table, "44", "0.0120", description="@SUM(A1)")
    r = portal(world.sysadmin).get(f"{LIST}{table.pk}/export/")
    assert r.status_code == 200
    body = b"".join(r.streaming_content).decode()
    assert body.splitlines()[0] == HEADER
    assert "44,'@SUM(A1),0.0120" in body


def test_a_table_in_use_is_not_deleted(portal, world):
    table = make_table("Used")
    make_rate(table, "44")
    BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    client = portal(world.sysadmin)
    page = text(client.get(f"{LIST}{table.pk}/delete/"))
    assert "cannot be deleted now" in page
    assert world.tenant_a.name in page
    r = client.post(f"{LIST}{table.pk}/delete/", follow=True)
    assert r.status_code == 200
    assert "is in use" in text(r)
    assert RateTable.objects.filter(pk=table.pk).exists()
    assert Rate.objects.filter(table=table).count() == 1

    spare = make_table("Spare")
    assert client.post(f"{LIST}{spare.pk}/delete/").status_code == 302
    assert not RateTable.objects.filter(pk=spare.pk).exists()


def test_a_dealer_sees_only_its_tables(portal, world):
    mine = make_table("North retail", dealer=world.north)
    south = make_table("South retail", dealer=world.south)
    buy = make_table("Provider buy", kind="buy")
    sell = make_table("Provider sell")
    client = portal(world.north_admin)
    page = text(client.get(LIST))
    assert "North retail" in page
    assert "South retail" not in page
    assert "Provider buy" not in page
    for other in (south, buy, sell):
        for suffix in ("", "edit/", "delete/", "import/", "export/", "rates/add/"):
            assert client.get(f"{LIST}{other.pk}/{suffix}").status_code == 404, suffix
        assert client.post(f"{LIST}{other.pk}/delete/").status_code == 404
    assert RateTable.objects.filter(pk__in=[south.pk, buy.pk, sell.pk]).count() == 3
    # The form offers the provider's sell table as a base, never its buy table or South's.
    form = text(client.get(f"{LIST}{mine.pk}/edit/"))
    assert "Provider sell" in form
    assert "Provider buy" not in form
    assert "South retail" not in form


@pytest.mark.parametrize("who", ["a_admin", "a_user"])
def test_tenant_users_never_open_the_table_pages(portal, world, who):
    table = make_table()
    client = portal(getattr(world, who), world.tenant_a)
    for path in (LIST, f"{LIST}add/", f"{LIST}{table.pk}/", f"{LIST}{table.pk}/export/"):
        assert client.get(path).status_code == 404, path


def test_a_tenant_admin_reads_its_call_rates(portal, world):
    client = portal(world.a_admin, world.tenant_a)
    r = client.get("/portal/call-rates/")
    assert r.status_code == 200
    assert 'data-testid="call-rates-none"' in text(r)

    base = make_table("Provider sell")
    make_rate(base, "44", "0.0100")
    table = make_table("North retail", dealer=world.north, base=base, markup="20")
    BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    page = text(client.get("/portal/call-rates/"))
    assert 'data-testid="call-rate-44"' in page
    assert "0.0120" in page
    assert "Call rates" in page
    assert portal(world.a_user, world.tenant_a).get("/portal/call-rates/").status_code == 404
    assert portal(world.sysadmin).get("/portal/call-rates/").status_code == 404
