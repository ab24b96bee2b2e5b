"""Queue and agent statistics over whole days of the tenant's time zone, from a known set of
queue calls and agent state changes (period edges, buckets, clipping), and their API."""

from __future__ import annotations

import csv
import io
import zoneinfo
from datetime import UTC, date, datetime, timedelta

import pytest

from callcenter import stats
from callcenter.models import AgentStateChange, QueueCall

pytestmark = pytest.mark.django_db

NY = zoneinfo.ZoneInfo("America/New_York")  # UTC-5 in January: Jan 10 is 05:00Z..05:00Z
DAY = date(2026, 1, 10)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def _visit(queue: str, call_id: str, joined: datetime, outcome: str, waited: float, **kw):
    answered = joined + timedelta(seconds=waited) if outcome == "answered" else None
    return QueueCall.objects.create(
        call_id=call_id, queue_number=queue, joined_at=joined, outcome=outcome,
        waited_seconds=waited, answered_at=answered, **kw,
    )  # fmt: skip


def _state(ext: str, queue: str, state: str, at: datetime, reason: str = ""):
    AgentStateChange.objects.create(
        extension=ext, queue_number=queue, state=state, at=at, reason=reason
    )


@pytest.fixture
def history(world, in_tenant, acme_queues):
    with in_tenant(world.tenant_a):
        _visit("600", "v1", utc(2026, 1, 10, 4, 59), "answered", 5, agent="101")  # Jan 9 NY
        _visit("600", "v2", utc(2026, 1, 10, 5, 0), "answered", 10, agent="101",
               within_sla=True, talk_seconds=60)  # fmt: skip
        _visit("600", "v3", utc(2026, 1, 10, 14, 30), "answered", 30, agent="102",
               talk_seconds=120, sla_breached=True)  # fmt: skip
        _visit("600", "v4", utc(2026, 1, 10, 15, 10), "abandoned", 50)
        _visit("600", "v5", utc(2026, 1, 11, 4, 59, 59), "max_wait", 590)
        _visit("600", "v6", utc(2026, 1, 11, 5, 0), "abandoned", 1)  # Jan 11 NY
        _visit("601", "v7", utc(2026, 1, 10, 12, 0), "callback", 5, callback_number="+3211")
        _state("101", "600", "ready", utc(2026, 1, 9, 20, 0))  # before: ready at the start
        _state("101", "600", "not_ready", utc(2026, 1, 10, 17, 0), "Lunch")
        _state("101", "601", "ready", utc(2026, 1, 10, 17, 30))  # ready in another queue
        _state("101", "600", "ready", utc(2026, 1, 10, 18, 0))
        _state("101", "600", "wrap_up", utc(2026, 1, 10, 19, 0))
        _state("101", "600", "ready", utc(2026, 1, 10, 19, 0, 10))
        _state("101", "600", "logged_out", utc(2026, 1, 10, 22, 0))
        _state("101", "601", "logged_out", utc(2026, 1, 10, 18, 30))
        _state("102", "601", "not_ready", utc(2026, 1, 11, 6, 0))  # after the period
    return world.tenant_a


def test_queue_stats_of_a_day_in_the_tenants_time_zone(in_tenant, history):
    with in_tenant(history):
        rows = stats.queue_stats(DAY, DAY, tz=NY)
    assert rows == [
        {"queue": "600", "name": "Sales", "offered": 4, "answered": 2, "abandoned": 1,
         "overflowed": 1, "callbacks": 0, "answered_within_sla": 1, "service_level": 33.3,
         "avg_wait": 170.0, "max_wait": 590.0, "avg_talk": 90.0},
        {"queue": "601", "name": "Support", "offered": 1, "answered": 0, "abandoned": 0,
         "overflowed": 0, "callbacks": 1, "answered_within_sla": 0, "service_level": None,
         "avg_wait": 5.0, "max_wait": 5.0, "avg_talk": None},
    ]  # fmt: skip


def test_buckets_and_one_queue(in_tenant, history):
    with in_tenant(history):
        hours = stats.queue_stats(DAY, DAY, queue="600", bucket="hour", tz=NY)
        days = stats.queue_stats(DAY - timedelta(days=1), DAY, queue="600", bucket="day", tz=NY)
        utc_day = stats.queue_stats(DAY, DAY, queue="600", tz=zoneinfo.ZoneInfo("UTC"))
    assert [(r["bucket"], r["offered"], r["answered"]) for r in hours] == [
        ("2026-01-10T00:00:00-05:00", 1, 1),
        ("2026-01-10T09:00:00-05:00", 1, 1),
        ("2026-01-10T10:00:00-05:00", 1, 0),
        ("2026-01-10T23:00:00-05:00", 1, 0),
    ]
    assert [(r["bucket"], r["offered"]) for r in days] == [
        ("2026-01-09T00:00:00-05:00", 1),
        ("2026-01-10T00:00:00-05:00", 4),
    ]
    # The same day in UTC holds v1 (04:59Z), not v5 (Jan 11, 04:59Z).
    assert utc_day[0]["offered"] == 4
    assert utc_day[0]["overflowed"] == 0


def test_agent_stats_clip_state_time_to_the_period(in_tenant, history):
    with in_tenant(history):
        rows = stats.agent_stats(DAY, DAY, tz=NY)
        only = stats.agent_stats(DAY, DAY, agent="102", tz=NY)
    by = {r["agent"]: r for r in rows}
    assert sorted(by) == ["101", "102"]
    # 05:00-17:00 ready, 17:00-17:30 not ready in 600 (lunch) and nothing in 601, 17:30-19:00
    # ready (in 601, then in both, then in 600), 19:00:00-19:00:10 wrap-up, then ready to
    # 22:00; logged out after.
    assert by["101"] == {
        "agent": "101", "name": "Acme 101", "answered": 1, "talk_seconds": 60.0,
        "avg_talk": 60.0, "logged_in_seconds": 61200.0, "ready_seconds": 43200.0 + 1800 + 3600 + 10790,
        "not_ready_seconds": 1800.0, "wrap_up_seconds": 10.0,
    }  # fmt: skip
    assert by["102"]["answered"] == 1
    assert by["102"]["logged_in_seconds"] == 0.0  # its only change is after the period
    assert [r["agent"] for r in only] == ["102"]


def test_stats_api_permissions_csv_errors_and_isolation(api, world, in_tenant, history):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=world.tenant_a.pk).update(time_zone="America/New_York")
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/queue-stats/?from=2026-01-10&to=2026-01-10")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert (body["from"], body["to"], body["time_zone"]) == (
        "2026-01-10", "2026-01-10", "America/New_York"
    )  # fmt: skip
    assert [(x["queue"], x["offered"]) for x in body["rows"]] == [("600", 4), ("601", 1)]
    r = admin.get("/api/v1/queue-stats/?from=2026-01-10&to=2026-01-10&queue=600&bucket=day")
    assert [(x["bucket"], x["answered"]) for x in r.json()["rows"]] == [
        ("2026-01-10T00:00:00-05:00", 2)
    ]
    r = admin.get("/api/v1/agent-stats/?from=2026-01-10&to=2026-01-10&agent=101")
    assert [(x["agent"], x["not_ready_seconds"]) for x in r.json()["rows"]] == [("101", 1800.0)]

    r = admin.get("/api/v1/queue-stats/?from=2026-01-10&to=2026-01-10&format=csv")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert table[0][:4] == ["queue", "name", "offered", "answered"]
    assert [row[:3] for row in table[1:]] == [["600", "Sales", "4"], ["601", "Support", "1"]]
    r = admin.get("/api/v1/agent-stats/?from=2026-01-10&to=2026-01-10&format=csv")
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert [row[0] for row in table] == ["agent", "101", "102"]

    for bad, field in (
        ("from=2026-13-01", "from"),
        ("from=2026-01-10&to=2026-01-09", "to"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("bucket=week", "bucket"),
        ("format=xml", "format"),
    ):
        r = admin.get(f"/api/v1/queue-stats/?{bad}")
        assert r.status_code == 400, bad
        assert field in r.json()["fields"], bad

    # A tenant user without tenant.settings: 403; nobody signed in: 401.
    assert api(world.a_user, world.tenant_a).get("/api/v1/queue-stats/").status_code == 403
    assert api(None, world.tenant_a).get("/api/v1/agent-stats/").status_code == 401
    # Another tenant's admin on its own host sees its own (no) figures; on Acme's host 404.
    r = api(world.b_admin, world.tenant_b).get("/api/v1/queue-stats/?from=2026-01-10")
    assert (r.status_code, r.json()["rows"]) == (200, [])
    r = api(world.b_admin, world.tenant_b).get("/api/v1/agent-stats/?from=2026-01-10")
    assert (r.status_code, r.json()["rows"]) == (200, [])
    assert api(world.b_admin, world.tenant_a).get("/api/v1/queue-stats/").status_code in (
        401,
        404,
    )
