"""Call reports over a crafted week (tests/billing/report_data.py): the figures per extension,
trunk, DID and day/week/month in the tenant's time zone, calls without a cost, the CSV (safe
for spreadsheets), bad periods refused, and one tenant's calls never in another's report."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing import reports
from pbx.errors import ValidationFailed
from tests.billing.report_data import (
    DID,
    END,
    GONE_TRUNK,
    START,
    at,
    cdr,
    crafted_week,
    make_trunk,
    ny_tenant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def week(world):
    tenant = ny_tenant(world.tenant_a)
    trunk = make_trunk(world.tenant_a)
    crafted_week(tenant, trunk.pk)
    return tenant, trunk


def run(tenant, group_by, start=START, end=END, **filters):
    with tenant_context(tenant):
        result = reports.report(tenant, group_by, start, end, filters)
    connection.set_schema_to_public()
    return result


def figures(row, *names):
    return tuple(row[n] for n in names)


def test_by_extension_counts_made_and_answered_calls_and_their_cost(week):
    tenant, _ = week
    result = run(tenant, "extension")
    rows = {r["key"]: r for r in result.rows}
    assert list(rows) == ["101", "102"]
    assert rows["101"]["label"] == "101 Acme 101"
    names = ("calls", "answered", "missed", "talk_seconds", "average_talk_seconds", "cost")
    # 101: the internal call, two outbound calls (rated) and a busy inbound call.
    assert figures(rows["101"], *names) == (4, 3, 1, 190, 63, Decimal("0.2550"))
    assert figures(rows["101"], "inbound", "outbound", "internal", "rated") == (1, 2, 1, 2)
    # 102: the internal call, an unanswered outbound call and an inbound call; nothing rated.
    assert figures(rows["102"], *names) == (3, 2, 1, 90, 45, Decimal("0"))
    assert rows["102"]["rated"] == 0
    # The totals count the internal call once.
    assert figures(result.totals, *names) == (6, 4, 2, 220, 55, Decimal("0.2550"))
    assert result.currency == "USD"
    assert result.time_zone == "America/New_York"


def test_by_trunk_names_trunks_and_keeps_deleted_ones(week):
    tenant, trunk = week
    rows = {r["key"]: r for r in run(tenant, "trunk").rows}
    assert set(rows) == {str(trunk.pk), str(GONE_TRUNK)}
    mine = rows[str(trunk.pk)]
    assert mine["label"] == "Carrier One"
    assert figures(mine, "calls", "answered", "missed", "cost") == (4, 2, 2, Decimal("0.2400"))
    assert figures(mine, "inbound", "outbound") == (2, 2)
    gone = rows[str(GONE_TRUNK)]
    assert gone["label"] == f"Trunk {GONE_TRUNK} (deleted)"
    assert figures(gone, "calls", "cost") == (1, Decimal("0.0150"))


def test_by_did(week):
    tenant, _ = week
    [row] = run(tenant, "did").rows
    assert row["key"] == DID
    assert figures(row, "calls", "answered", "missed", "talk_seconds", "cost") == (
        2,
        1,
        1,
        30,
        Decimal("0"),
    )


def test_days_are_the_tenants_and_every_day_has_a_bucket(week):
    tenant, _ = week
    rows = run(tenant, "day").rows
    assert [r["key"] for r in rows] == [f"2026-01-{d:02d}" for d in range(5, 12)]
    assert [r["calls"] for r in rows] == [1, 1, 2, 0, 0, 1, 1]
    assert rows[1]["cost"] == Decimal("0.2400")  # 23:30 New York time, the 6th
    assert rows[6]["missed"] == 1  # 23:59 on Sunday, the 12th in UTC


def test_the_same_week_in_utc_takes_other_calls(week, world):
    tenant, _ = week
    tenant.time_zone = "UTC"  # not saved: the report reads the object's zone
    result = run(tenant, "day")
    # The 4th 23:00 New York (the 5th in UTC) comes in; Sunday 23:59 (the 12th in UTC) goes.
    assert result.totals["calls"] == 6
    assert result.rows[0]["calls"] == 2
    assert result.rows[6]["calls"] == 0
    assert result.totals["cost"] == Decimal("7.2550")


def test_weeks_and_months(week):
    tenant, _ = week
    [monday] = run(tenant, "week").rows
    assert monday["key"] == "2026-01-05"
    assert monday["calls"] == 6
    months = run(tenant, "month", date(2025, 12, 20), date(2026, 2, 3)).rows
    assert [(m["key"], m["calls"]) for m in months] == [
        ("2025-12-01", 0),
        ("2026-01-01", 8),
        ("2026-02-01", 0),
    ]
    # A week starting before the period (Wednesday) is bucketed from its Monday.
    weeks = run(tenant, "week", date(2026, 1, 7), date(2026, 1, 12)).rows
    assert [(w["key"], w["calls"]) for w in weeks] == [("2026-01-05", 4), ("2026-01-12", 1)]


def test_direction_filter(week):
    tenant, _ = week
    result = run(tenant, "extension", direction="outbound")
    assert result.totals["calls"] == 3
    assert {r["key"]: r["calls"] for r in result.rows} == {"101": 2, "102": 1}
    with pytest.raises(ValidationFailed):
        run(tenant, "extension", direction="sideways")


def test_an_empty_period(world):
    result = run(world.tenant_a, "extension", date(2020, 1, 1), date(2020, 1, 31))
    assert result.rows == []
    assert result.totals["calls"] == 0
    assert result.totals["cost"] == Decimal("0")
    assert result.currency == ""


def test_another_tenants_calls_are_never_counted(week, world):
    tenant, trunk = week
    with tenant_context(world.tenant_b):
        cdr(
            "outbound",
            "101",
            "+12125550100",
            at(6, 12),
            billsec=999,
            cost="9.0000",
            trunk=trunk.pk,
            did=DID,
        )
    connection.set_schema_to_public()
    for group_by in ("extension", "trunk", "did", "day"):
        assert run(tenant, group_by).totals["calls"] == 6, group_by
    assert run(tenant, "trunk").totals["cost"] == Decimal("0.2550")
    # And B's report has B's call only.
    assert run(world.tenant_b, "did").totals["calls"] == 1


@pytest.mark.parametrize(
    ("group_by", "start", "end", "field"),
    [
        ("caller", "2026-01-01", "2026-01-31", "group_by"),
        ("day", "2026-13-01", "2026-01-31", "start"),
        ("day", "", "2026-01-31", "start"),
        ("day", "2026-01-01", "", "end"),
        ("day", "2026-01-01", "yesterday", "end"),
        ("day", "2026-02-01", "2026-01-31", "end"),
        ("day", "2025-01-01", "2026-01-02", "end"),  # 367 days
    ],
)
def test_bad_periods_are_refused_naming_the_field(group_by, start, end, field):
    with pytest.raises(ValidationFailed) as caught:
        reports.parse_period(group_by, start, end)
    assert field in caught.value.fields


def test_a_year_is_allowed_and_the_default_is_the_month_so_far():
    assert reports.parse_period("month", "2024-01-01", "2024-12-31")[0] == "month"
    today = date(2026, 3, 17)
    assert reports.parse_period(None, None, None, today=today) == (
        "extension",
        date(2026, 3, 1),
        today,
    )


def test_report_csv_is_safe_for_spreadsheets(world):
    tenant = world.tenant_a
    with tenant_context(tenant):
        cdr("inbound", "+13125550111", "101", at(6, 12), billsec=5, did='=HYPERLINK("x")')
        cdr("inbound", "+13125550111", "101", at(6, 13), did="-1+2")
        cdr("inbound", "+13125550111", "101", at(6, 14), did="@SUM(A1)")
    connection.set_schema_to_public()
    result = run(tenant, "did", date(2026, 1, 1), date(2026, 1, 31))
    table = list(csv.reader(io.StringIO(reports.report_csv(result))))
    assert table[0][:3] == ["DID", "Calls", "Answered"]
    labels = [row[0] for row in table[1:-1]]
    assert sorted(labels) == sorted(['\'=HYPERLINK("x")', "'-1+2", "'@SUM(A1)"])
    assert table[-1][:2] == ["Total", "3"]
    # Figures stay numbers, negative ones too.
    assert reports.cell(-5, reports.time_zone(tenant)) == "-5"
    assert reports.cell(Decimal("-0.5"), reports.time_zone(tenant)) == "-0.5"


def test_raw_cdr_rows(week):
    tenant, trunk = week
    with tenant_context(tenant):
        cdrs = reports.period_cdrs(tenant, START, END)
        table = list(reports.cdr_table(cdrs, reports.time_zone(tenant)))
    connection.set_schema_to_public()
    assert table[0][:3] == ["Started", "Direction", "From"]
    assert len(table) == 7  # the header and the week's six calls, oldest first
    assert table[1][0] == "2026-01-05T10:00:00-05:00"
    outbound = table[2]
    assert outbound[2] == "101"
    assert outbound[4] == "'+12125550100"  # a number starting with + is a formula start
    assert outbound[11] == "0.2400"


def test_csv_lines_chunks():
    rows = [["a", str(i)] for i in range(1200)]
    chunks = list(reports.csv_lines(iter(rows)))
    assert len(chunks) == 3
    assert "".join(chunks).count("\n") == 1200


def test_the_queries_do_not_grow_with_the_calls(week):
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    tenant, trunk = week

    def count(group_by):
        with CaptureQueriesContext(conn) as queries:
            run(tenant, group_by)
        return len(queries)

    before = {g: count(g) for g in reports.GROUPS}
    with tenant_context(tenant):
        for i in range(40):
            cdr(
                "outbound",
                "102",
                f"+1212555{i:04d}",
                at(8, 9),
                billsec=i,
                cost="0.0100",
                trunk=trunk.pk,
            )
            cdr("internal", "101", "102", at(9, 10), billsec=i)
    connection.set_schema_to_public()
    assert {g: count(g) for g in reports.GROUPS} == before
    assert max(before.values()) <= 6
