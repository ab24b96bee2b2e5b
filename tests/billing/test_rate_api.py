"""Rate tables and rates over the API: CRUD, the rules of every value, CSV import (per-row
errors, nothing half-imported, dry run, merge and replace) and export, who sees what (a dealer
only its subtree's tables and the provider's sell tables as bases; never another dealer's or
the provider's buy tables), and a tenant's own call rates, read-only.

State is made through the actions and read back from the database.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from billing import rate_tables as actions
from billing.models import BillingAccount, Rate, RateTable
from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.engine.snapshots import published_snapshot, snapshot_key
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

TABLES, RATES = "/api/v1/rate-tables/", "/api/v1/rates/"
HEADER = ",".join(
    (
        "prefix",
        "description",
        "per_minute",
        "connection_fee",
        "first_interval",
        "next_interval",
        "free_seconds",
        "grace_seconds",
    )
)


def make_table(name="Retail", *, dealer=None, kind="sell", base=None, markup="0") -> RateTable:
    return actions.do_create_rate_table(
        actor=SYSTEM,
        fields={"name": name, "kind": kind, "base": base, "markup_percent": Decimal(markup)},
        dealer=dealer,
    )


def make_rate(table, prefix, per_minute="0.0100", **kw) -> Rate:
    return actions.do_create_rate(
        table, actor=SYSTEM, fields={"prefix": prefix, "per_minute": per_minute, **kw}
    )


def rows(table) -> dict[str, tuple]:
    return {
        r.prefix: (r.description, r.per_minute, r.connection_fee, r.first_interval)
        for r in Rate.objects.filter(table=table)
    }


def upload(client, table, text: str, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    body = {"file": SimpleUploadedFile("rates.csv", text.encode(), content_type="text/csv")}
    return client.client.post(f"{TABLES}{table.pk}/import/?{query}", body, format="multipart")


@pytest.fixture
def admin(api, world):
    return api(world.sysadmin)


# ------------------------------------------------------------------------------ CRUD


def test_a_system_admin_creates_reads_changes_and_deletes_a_table_and_its_rates(admin):
    r = admin.post(TABLES, {"name": "Retail", "kind": "sell", "currency": "eur"})
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["owner"], body["currency"], body["rate_count"]) == ("provider", "EUR", 0)
    tid = body["id"]

    r = admin.post(RATES, {"table_id": tid, "prefix": "+44", "per_minute": "0.0125"})
    assert r.status_code == 201, r.content
    assert r.json()["prefix"] == "44"  # the "+" is dropped
    rid = r.json()["id"]
    assert admin.get(f"{TABLES}{tid}/").json()["rate_count"] == 1
    assert admin.get(RATES, {"table": tid}).json()["total"] == 1

    r = admin.patch(f"{RATES}{rid}/", {"per_minute": "0.0200", "first_interval": 30})
    assert r.status_code == 200, r.content
    assert Rate.objects.get(pk=rid).per_minute == Decimal("0.02")

    r = admin.patch(f"{TABLES}{tid}/", {"description": "Standard prices", "markup_percent": "5"})
    assert r.status_code == 200, r.content
    assert RateTable.objects.get(pk=tid).description == "Standard prices"

    assert admin.delete(f"{RATES}{rid}/").status_code == 204
    assert admin.delete(f"{TABLES}{tid}/").status_code == 204
    assert not RateTable.objects.filter(pk=tid).exists()
    actions_logged = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"rate_table.create", "rate.create", "rate.update", "rate_table.delete"} <= (
        actions_logged
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("prefix", "44a"),
        ("prefix", ""),
        ("prefix", "12345678901234567"),
        ("per_minute", "-1"),
        ("per_minute", "0.00001"),
        ("connection_fee", "abc"),
        ("first_interval", 0),
        ("next_interval", 3601),
        ("free_seconds", -1),
        ("grace_seconds", -5),
    ],
)
def test_a_bad_rate_value_is_a_field_error_and_nothing_is_written(admin, field, value):
    table = make_table()
    body = {"table_id": table.pk, "prefix": "44", "per_minute": "0.01", field: value}
    r = admin.post(RATES, body)
    assert r.status_code == 400, r.content
    assert field in r.json()["fields"], r.json()
    assert not Rate.objects.filter(table=table).exists()


def test_a_prefix_twice_in_a_table_is_refused(admin):
    table = make_table()
    make_rate(table, "44")
    r = admin.post(RATES, {"table_id": table.pk, "prefix": "44", "per_minute": "0.01"})
    assert r.status_code == 400
    assert "already has a rate" in r.json()["fields"]["prefix"][0]
    other = make_rate(table, "49")
    r = admin.patch(f"{RATES}{other.pk}/", {"prefix": "44"})
    assert r.status_code == 400
    assert Rate.objects.get(pk=other.pk).prefix == "49"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "X", "currency": "EURO"}, "currency"),
        ({"name": "X", "currency": "1$"}, "currency"),
        ({"name": "X", "markup_percent": "-100"}, "markup_percent"),
        ({"name": "X", "markup_percent": "1000.001"}, "markup_percent"),
        ({"name": "X", "kind": "rent"}, "kind"),
        ({"name": "X", "base_id": 999999}, "base_id"),
    ],
)
def test_a_bad_table_value_is_a_field_error(admin, body, field):
    before = RateTable.objects.count()
    r = admin.post(TABLES, body)
    assert r.status_code == 400, r.content
    assert field in r.json()["fields"], r.json()
    assert RateTable.objects.count() == before


def test_a_name_is_unique_per_owner(admin, world):
    make_table("Retail")
    r = admin.post(TABLES, {"name": "retail"})
    assert r.status_code == 400
    assert "already exists" in r.json()["fields"]["name"][0]
    # Another owner may use it.
    assert admin.post(TABLES, {"name": "Retail", "dealer_id": world.north.pk}).status_code == 201


def test_a_base_must_not_close_a_loop(admin):
    a = make_table("A")
    b = make_table("B", base=a, markup="10")
    c = make_table("C", base=b)
    r = admin.patch(f"{TABLES}{a.pk}/", {"base_id": c.pk})
    assert r.status_code == 400
    assert "loop" in r.json()["fields"]["base"][0]
    r = admin.patch(f"{TABLES}{a.pk}/", {"base_id": a.pk})
    assert r.status_code == 400
    assert RateTable.objects.get(pk=a.pk).base_id is None


def test_trunks_are_for_buy_tables_only(admin):
    trunk = trunk_actions.do_create_trunk(
        actor=SYSTEM,
        fields={"name": "Carrier", "kind": "ip", "host": "sip.c.test", "addresses": ["192.0.2.1"]},
    )
    r = admin.post(TABLES, {"name": "Sell", "kind": "sell", "trunks": [trunk.pk]})
    assert r.status_code == 400
    assert "trunks" in r.json()["fields"]
    r = admin.post(TABLES, {"name": "Carrier cost", "kind": "buy", "trunks": [trunk.pk]})
    assert r.status_code == 201, r.content
    assert r.json()["trunks"] == [trunk.pk]
    assert list(RateTable.objects.get(pk=r.json()["id"]).trunks.all()) == [trunk]


def test_a_table_in_use_is_not_deleted_and_the_answer_says_why(admin, world):
    table = make_table("Used")
    make_rate(table, "44")
    BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    r = admin.delete(f"{TABLES}{table.pk}/")
    assert r.status_code == 409
    assert world.tenant_a.name in r.json()["message"]
    assert Rate.objects.filter(table=table).count() == 1

    base = make_table("Base")
    make_table("Derived", base=base)
    r = admin.delete(f"{TABLES}{base.pk}/")
    assert r.status_code == 409
    assert "Derived" in r.json()["message"]
    assert RateTable.objects.filter(pk=base.pk).exists()


def test_the_effective_rates_of_a_table(admin):
    base = make_table("Base")
    make_rate(base, "44", "0.0100")
    derived = make_table("Derived", base=base, markup="10")
    make_rate(derived, "49", "0.0300")
    body = admin.get(f"{TABLES}{derived.pk}/effective/").json()
    assert body["total"] == 2
    assert [(i["prefix"], i["per_minute"]) for i in body["items"]] == [
        ("44", "0.0110"),
        ("49", "0.0300"),
    ]
    assert admin.get(f"{TABLES}{derived.pk}/effective/", {"q": "49"}).json()["total"] == 1


# ------------------------------------------------------------------------------ CSV


GOOD = f"""{HEADER}
44,United Kingdom,0.0120,0,60,60,0,0
+49,Germany,0.0150,0.0100,30,6,0,3
1,North America,0.0050,0,1,1,0,0
"""


def test_an_import_creates_the_rows_of_the_file(admin):
    table = make_table()
    r = upload(admin, table, GOOD)
    assert r.status_code == 200, r.content
    assert r.json()["created"] == 3
    assert rows(table)["49"] == ("Germany", Decimal("0.015"), Decimal("0.01"), 30)
    assert AuditEntry.objects.filter(action="rate_table.import").count() == 1


def test_a_dry_run_reports_and_writes_nothing(admin):
    table = make_table()
    make_rate(table, "44", "0.0120", description="United Kingdom")
    make_rate(table, "33", "0.0300")
    before = rows(table)
    r = upload(admin, table, GOOD, dry_run=1, mode="replace")
    assert r.status_code == 200, r.content
    report = r.json()
    assert report["dry_run"] is True
    assert (report["created"], report["updated"], report["unchanged"], report["deleted"]) == (
        2,
        0,
        1,
        1,
    )
    assert report["examples"]["deleted"] == ["33"]
    assert rows(table) == before
    assert not AuditEntry.objects.filter(action="rate_table.import").exists()


BAD = f"""{HEADER}
44,United Kingdom,0.0120,0,60,60,0,0
4x4,Bad prefix,0.01,0,60,60,0,0
49,Negative,-0.01,0,60,60,0,0
33,Too precise,0.00001,0,60,60,0,0
34,Zero interval,0.01,0,0,60,0,0
44,Twice,0.02,0,60,60,0,0
,Empty,0.01,0,60,60,0,0
351,Short row,0.01
"""


def test_bad_rows_are_reported_one_by_one_and_nothing_is_imported(admin):
    table = make_table()
    make_rate(table, "1", "0.0050")
    before = rows(table)
    for params in ({}, {"dry_run": 1}, {"mode": "replace"}):
        r = upload(admin, table, BAD, **params)
        assert r.status_code == 400, r.content
        errors = {(e["row"], e["column"]) for e in r.json()["fields"]["rows"]}
        assert errors == {
            (3, "prefix"),
            (4, "per_minute"),
            (5, "per_minute"),
            (6, "first_interval"),
            (7, "prefix"),
            (8, "prefix"),
            (9, ""),
        }, r.json()
        assert rows(table) == before
    messages = {e["row"]: e["message"] for e in r.json()["fields"]["rows"]}
    assert "also on row 2" in messages[7]
    assert "not digits" in messages[3]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("prefix,per_minute\n44,0.01\n", "Missing required column"),
        (HEADER + ",rebate\n44,UK,0.01,0,60,60,0,0,1\n", "Unknown column"),
        ("\n", "empty"),
        (HEADER + "\n", "no rows"),
    ],
)
def test_a_file_with_wrong_columns_is_refused_as_a_whole(admin, text, words):
    table = make_table()
    r = upload(admin, table, text)
    assert r.status_code == 400
    assert words in r.json()["message"], r.json()
    assert not Rate.objects.filter(table=table).exists()


def test_merge_keeps_other_rows_and_replace_drops_them(admin):
    table = make_table()
    make_rate(table, "44", "0.0100", description="United Kingdom")
    make_rate(table, "33", "0.0300")
    r = upload(admin, table, GOOD, mode="merge")
    assert (r.json()["updated"], r.json()["created"]) == (1, 2)
    assert set(rows(table)) == {"44", "49", "1", "33"}
    assert rows(table)["44"][1] == Decimal("0.012")

    r = upload(admin, table, GOOD, mode="replace")
    assert (r.json()["deleted"], r.json()["unchanged"]) == (1, 3)
    assert set(rows(table)) == {"44", "49", "1"}


def test_an_export_is_the_import_s_format_and_round_trips(admin):
    table = make_table()
    upload(admin, table, GOOD)
    make_rate(table, "7", "0.0400", description='=HYPERLINK("http://evil")')
    r = admin.get(f"{TABLES}{table.pk}/export/")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    text = b"".join(r.streaming_content).decode()
    lines = list(csv.reader(io.StringIO(text)))
    assert lines[0] == HEADER.split(",")
    evil = next(line for line in lines if line[0] == "7")
    assert evil[1].startswith("'=")  # a spreadsheet shows it as text, never runs it
    before = rows(table)

    copy = make_table("Copy")
    r = upload(admin, copy, text)
    assert r.status_code == 200, r.content
    assert rows(copy) == before


def test_an_oversized_file_is_refused(admin, settings):
    from billing import rate_csv

    table = make_table()
    text = HEADER + "\n" + "".join(f"{n},,0.01,0,60,60,0,0\n" for n in range(10, 30))
    original = rate_csv.RateImporter.max_rows
    rate_csv.RateImporter.max_rows = 5
    try:
        r = upload(admin, table, text)
    finally:
        rate_csv.RateImporter.max_rows = original
    assert r.status_code == 400
    assert "more than 5 rows" in r.json()["message"]
    assert not Rate.objects.filter(table=table).exists()


# ------------------------------------------------------------------------------ who sees what


def test_a_dealer_manages_its_own_tables_and_bases_them_on_the_provider_s_sell_tables(api, world):
    north = api(world.north_admin)
    sell = make_table("Provider sell")
    buy = make_table("Provider buy", kind="buy")
    south = make_table("South retail", dealer=world.south)

    r = north.post(TABLES, {"name": "North retail", "base_id": sell.pk, "markup_percent": "15"})
    assert r.status_code == 201, r.content
    mine = RateTable.objects.get(pk=r.json()["id"])
    assert mine.dealer == world.north  # a dealer's table is its dealer's

    listed = {t["id"] for t in north.get(TABLES).json()["items"]}
    assert listed == {mine.pk}
    for other in (sell, buy, south):
        assert north.get(f"{TABLES}{other.pk}/").status_code == 404
        assert north.patch(f"{TABLES}{other.pk}/", {"name": "Mine"}).status_code == 404
        assert north.delete(f"{TABLES}{other.pk}/").status_code == 404
        assert north.get(f"{TABLES}{other.pk}/export/").status_code == 404
        assert upload(north, other, GOOD).status_code == 404
    # Not on the provider's buy table, nor another dealer's.
    for other in (buy, south):
        r = north.post(TABLES, {"name": f"Over {other.pk}", "base_id": other.pk})
        assert r.status_code == 400
        assert r.json()["fields"]["base_id"] == ["unknown table"]
    # Rates of tables it does not manage are out of sight and out of reach.
    south_rate = make_rate(south, "44")
    assert north.get(RATES, {"table": south.pk}).json()["total"] == 0
    assert north.get(f"{RATES}{south_rate.pk}/").status_code == 404
    assert north.patch(f"{RATES}{south_rate.pk}/", {"per_minute": "9"}).status_code == 404
    r = north.post(RATES, {"table_id": south.pk, "prefix": "1", "per_minute": "0.01"})
    assert r.status_code == 400
    assert Rate.objects.get(pk=south_rate.pk).per_minute == Decimal("0.01")
    assert RateTable.objects.get(pk=south.pk).name == "South retail"
    # Nor may it hand a table to another dealer.
    r = north.post(TABLES, {"name": "Gift", "dealer_id": world.south.pk})
    assert r.status_code == 400


def test_a_parent_dealer_manages_its_sub_dealer_s_tables(api, world):
    table = make_table("North retail", dealer=world.north)
    top = api(world.top_admin)
    assert top.get(f"{TABLES}{table.pk}/").status_code == 200
    assert top.patch(f"{TABLES}{table.pk}/", {"description": "Checked"}).status_code == 200
    assert api(world.north_admin).get(f"{TABLES}{table.pk}/").status_code == 200
    assert api(world.south_admin).get(f"{TABLES}{table.pk}/").status_code == 404


@pytest.mark.parametrize("who", ["a_admin", "a_user", "b_admin"])
def test_tenants_never_reach_the_tables(api, world, who):
    table = make_table("Retail")
    user = getattr(world, who)
    for client in (api(user, user.tenant), api(user)):
        assert client.get(TABLES).status_code in (401, 404)
        assert client.get(f"{TABLES}{table.pk}/").status_code in (401, 404)
        assert client.post(TABLES, {"name": "Mine"}).status_code in (401, 404)
        assert client.get(RATES).status_code in (401, 404)
    assert RateTable.objects.count() == 1


def test_a_tenant_admin_reads_its_own_call_rates_only(api, world):
    base = make_table("Provider sell")
    make_rate(base, "44", "0.0100")
    table = make_table("North retail", dealer=world.north, base=base, markup="20")
    make_rate(table, "49", "0.0300")
    other = make_table("South retail", dealer=world.south)
    make_rate(other, "33", "0.9000")
    BillingAccount.objects.create(tenant=world.tenant_a, rate_table=table)
    BillingAccount.objects.create(tenant=world.tenant_b, rate_table=other)

    body = api(world.a_admin, world.tenant_a).get("/api/v1/call-rates/").json()
    assert body["table"] == "North retail"
    assert [(i["prefix"], i["per_minute"]) for i in body["items"]] == [
        ("44", "0.0120"),
        ("49", "0.0300"),
    ]
    # Read-only, and not for a user without the tenant's settings permission.
    client = api(world.a_admin, world.tenant_a)
    assert client.post("/api/v1/call-rates/", {}).status_code == 405
    assert api(world.a_user, world.tenant_a).get("/api/v1/call-rates/").status_code == 403
    # Another tenant's admin, on this tenant's host, is not let in.
    assert api(world.b_admin, world.tenant_a).get("/api/v1/call-rates/").status_code in (401, 404)


def test_a_tenant_without_a_table_has_no_call_rates(api, world):
    body = api(world.a_admin, world.tenant_a).get("/api/v1/call-rates/").json()
    assert (body["table"], body["total"], body["items"]) == (None, 0, [])


def test_a_base_in_another_currency_is_refused(admin):
    dollars = make_table("Dollars")
    r = admin.post(TABLES, {"name": "Euros", "currency": "EUR", "base_id": dollars.pk})
    assert r.status_code == 400
    assert "USD" in r.json()["fields"]["base"][0]
    assert not RateTable.objects.filter(name="Euros").exists()


def test_a_changed_rate_reaches_the_snapshots_of_tenants_on_derived_tables(
    world, django_capture_on_commit_callbacks
):
    """Story: the provider raises a rate of its base table; acme pays through its dealer's
    table marked up 10 % over it, beta through an unrelated table. After the commit acme's
    published snapshot has the new price (marked up); beta's is not rebuilt."""
    base = make_table("Base")
    rate = make_rate(base, "44", "0.0100")
    dealer = make_table("Dealer", base=base, dealer=world.north, markup="10")
    lone = make_table("Lone")
    BillingAccount.objects.create(tenant=world.tenant_a, mode="prepaid", rate_table=dealer)
    BillingAccount.objects.create(tenant=world.tenant_b, mode="prepaid", rate_table=lone)
    r = redis.Redis.from_url(settings.REDIS_URL)
    try:
        for domain in (world.tenant_a.sip_domain, world.tenant_b.sip_domain):
            r.delete(snapshot_key(domain))
        with django_capture_on_commit_callbacks(execute=True):
            actions.do_update_rate(rate, actor=SYSTEM, fields={"per_minute": "0.0200"})
        published = published_snapshot(r, world.tenant_a.sip_domain)
        assert published.billing.rate_for("+4420").per_minute == 220  # 0.022 in units
        assert published_snapshot(r, world.tenant_b.sip_domain) is None
    finally:
        r.close()
