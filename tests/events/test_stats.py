"""Dashboard figures from CDRs: calls per hour, answered vs missed, busiest extensions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def _cdr(number: int, started: datetime, status: str, caller: str, callee: str) -> None:
    from telephony.models import Cdr

    Cdr.objects.create(
        call_id=f"stats-{number}",
        started_at=started,
        status=status,
        caller_number=caller,
        callee_number=callee,
    )


def test_calls_per_hour_answered_missed_and_busiest(world, api, in_tenant):
    """User story: the tenant admin's dashboard shows yesterday's traffic by hour."""
    t0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    with in_tenant(world.tenant_a):
        _cdr(1, t0 + timedelta(minutes=5), "answered", "101", "102")
        _cdr(2, t0 + timedelta(minutes=50), "no_answer", "102", "101")
        _cdr(3, t0 + timedelta(hours=1, minutes=1), "answered", "101", "+15550100")
        _cdr(4, t0 + timedelta(hours=1, minutes=2), "busy", "+15550111", "101")
        _cdr(5, t0 + timedelta(hours=3), "failed", "102", "999")
        _cdr(6, t0 - timedelta(minutes=1), "answered", "101", "102")  # before the period
    with in_tenant(world.tenant_b):
        _cdr(7, t0 + timedelta(minutes=10), "answered", "201", "202")

    response = api(world.a_admin, world.tenant_a).get(
        "/api/v1/stats/calls/",
        {"since": t0.isoformat(), "until": (t0 + timedelta(hours=4)).isoformat(), "top": 2},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["totals"] == {
        "total": 5,
        "answered": 2,
        "missed": 2,
        "failed": 1,
        "in_progress": 0,
    }
    assert [(h["total"], h["answered"], h["missed"]) for h in body["per_hour"]] == [
        (2, 1, 1),
        (2, 1, 1),
        (0, 0, 0),
        (1, 0, 0),
    ]
    assert body["per_hour"][0]["hour"] == "2025-03-03T09:00:00+00:00"
    assert body["busiest_extensions"] == [
        {"extension": "101", "calls": 4, "made": 2, "received": 2},
        {"extension": "102", "calls": 3, "made": 2, "received": 1},
    ]

    beta = api(world.b_admin, world.tenant_b).get(
        "/api/v1/stats/calls/",
        {"since": t0.isoformat(), "until": (t0 + timedelta(hours=4)).isoformat()},
    )
    assert beta.json()["totals"]["total"] == 1  # its own calls only


def test_stats_period_is_bounded_and_scoped(world, api):
    client = api(world.a_admin, world.tenant_a)
    too_long = client.get(
        "/api/v1/stats/calls/", {"since": "2025-01-01T00:00:00Z", "until": "2025-03-01T00:00:00Z"}
    )
    assert too_long.status_code == 400
    assert client.get("/api/v1/stats/calls/").status_code == 200  # the last 24 hours
    assert api(world.a_user, world.tenant_a).get("/api/v1/stats/calls/").status_code == 403
    assert api(world.a_admin, world.tenant_b).get("/api/v1/stats/calls/").status_code == 401
    assert api(world.sysadmin).get("/api/v1/stats/calls/").status_code == 404
