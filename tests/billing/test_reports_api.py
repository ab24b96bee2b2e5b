"""The call report and the scheduled reports in the API: figures and CSV for the host tenant
only, clear 400 bodies for a bad period, grouping or format, and one tenant's schedules out of
another's reach."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import ReportSchedule
from pbx.audit import SYSTEM
from tests.billing.report_data import DID, at, cdr, crafted_week, make_trunk, ny_tenant

pytestmark = pytest.mark.django_db

URL = "/api/v1/reports/calls/"
WEEK = {"start": "2026-01-05", "end": "2026-01-11"}


@pytest.fixture
def week(world):
    tenant = ny_tenant(world.tenant_a)
    trunk = make_trunk(world.tenant_a)
    crafted_week(tenant, trunk.pk)
    # Tenant B's call on the same day, from a number that is an extension of A's too.
    with tenant_context(world.tenant_b):
        cdr("outbound", "101", "+12125550100", at(6, 12), billsec=99, cost="9.0000", did=DID)
    connection.set_schema_to_public()
    return trunk


def test_the_report_as_json(api, world, week):
    r = api(world.a_admin, world.tenant_a).get(URL, {**WEEK, "group_by": "extension"})
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["time_zone"] == "America/New_York"
    assert body["currency"] == "USD"
    rows = {row["key"]: row for row in body["rows"]}
    assert (rows["101"]["calls"], rows["101"]["cost"]) == (4, "0.2550")
    assert (rows["102"]["calls"], rows["102"]["cost"]) == (3, "0.0000")
    assert body["totals"]["calls"] == 6  # B's call is not A's
    by_did = api(world.a_admin, world.tenant_a).get(URL, {**WEEK, "group_by": "did"}).json()
    assert [(row["key"], row["calls"]) for row in by_did["rows"]] == [(DID, 2)]


def test_the_report_and_the_calls_as_csv(api, world, week):
    client = api(world.a_admin, world.tenant_a)
    r = client.get(URL, {**WEEK, "group_by": "day", "format": "csv"})
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    assert 'filename="acme-calls-by-day-2026-01-05-2026-01-11-' in r["Content-Disposition"]
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert table[0][0] == "Day"
    assert [row[1] for row in table[1:8]] == ["1", "1", "2", "0", "0", "1", "1"]
    assert table[-1][:2] == ["Total", "6"]
    r = client.get(URL, {**WEEK, "format": "csv", "rows": "cdrs", "direction": "outbound"})
    assert r.status_code == 200
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(table) == 1 + 3
    assert {row[1] for row in table[1:]} == {"outbound"}
    connection.set_schema_to_public()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"group_by": "caller"}, "group_by"),
        ({"start": "2026-02-30", "end": "2026-03-01"}, "start"),
        ({"start": "2026-01-01", "end": "soon"}, "end"),
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end"),
        ({"start": "2024-01-01", "end": "2025-06-01"}, "end"),
        ({"start": "2026-01-01"}, "end"),
        ({"direction": "sideways"}, "direction"),
        ({"format": "xml"}, "format"),
        ({"format": "csv", "rows": "everything"}, "rows"),
        ({"rows": "cdrs"}, "rows"),
    ],
)
def test_bad_input_is_a_clear_400(api, world, query, field):
    r = api(world.a_admin, world.tenant_a).get(URL, query)
    assert r.status_code == 400, r.content
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert field in body["fields"], body


def test_no_dates_is_the_month_so_far(api, world):
    r = api(world.a_admin, world.tenant_a).get(URL, {"group_by": "week"})
    assert r.status_code == 200
    assert r.json()["start"].endswith("-01")


def test_who_may_read_reports(api, world):
    assert api(world.a_user, world.tenant_a).get(URL).status_code == 403
    assert api(world.b_admin, world.tenant_a).get(URL).status_code == 401
    assert api(world.sysadmin).get(URL).status_code == 404


SCHEDULES = "/api/v1/report-schedules/"


def test_schedules_are_checked(api, world):
    client = api(world.a_admin, world.tenant_a)
    r = client.post(SCHEDULES, {"name": "Monthly", "recipients": ["boss@acme.test", "nope"]})
    assert r.status_code == 400
    assert "nope" in r.json()["fields"]["recipients"][0]
    many = [f"u{i}@acme.test" for i in range(21)]
    r = client.post(SCHEDULES, {"name": "Monthly", "recipients": many})
    assert r.status_code == 400
    assert "at most 20" in r.json()["fields"]["recipients"][0]
    r = client.post(SCHEDULES, {"name": "Monthly", "recipients": [], "group_by": "caller"})
    assert set(r.json()["fields"]) >= {"recipients", "group_by"}
    r = client.post(SCHEDULES, {"name": "Bad\nname", "recipients": "a@acme.test"})
    assert "name" in r.json()["fields"]
    assert not ReportSchedule.objects.filter(tenant=world.tenant_a).exists()

    r = client.post(
        SCHEDULES,
        {
            "name": "Weekly by trunk",
            "frequency": "weekly",
            "group_by": "trunk",
            "recipients": "boss@acme.test, Ops@acme.test; boss@acme.test",
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["recipients"] == ["boss@acme.test", "Ops@acme.test"]
    assert (body["frequency"], body["group_by"], body["enabled"]) == ("weekly", "trunk", True)
    r = client.patch(f"{SCHEDULES}{body['id']}/", {"enabled": False, "frequency": "yearly"})
    assert r.status_code == 400
    r = client.patch(f"{SCHEDULES}{body['id']}/", {"enabled": False})
    assert r.json()["enabled"] is False


def test_a_tenant_cannot_reach_another_tenants_schedules(api, world):
    from billing.report_schedules import do_create_report_schedule

    theirs = do_create_report_schedule(
        world.tenant_b, actor=SYSTEM, fields={"name": "B's", "recipients": "b@beta.test"}
    )
    client = api(world.a_admin, world.tenant_a)
    assert client.get(SCHEDULES).json()["total"] == 0
    for method, body in (("get", None), ("patch", {"name": "Mine"}), ("delete", None)):
        r = getattr(client, method)(f"{SCHEDULES}{theirs.pk}/", body)
        assert r.status_code == 404, method
    theirs.refresh_from_db()
    assert theirs.name == "B's"
    assert api(world.b_admin, world.tenant_b).get(SCHEDULES).json()["total"] == 1
