"""The active-calls page and its socket with the team features: parked calls (read from the
engines' park slots, ``contract.PARKED``), a call picked up ("picked up by 101") and a call to
a ring group (its name, from the team snapshot). Engine entries and slots are written as the
engine writes them and handled by the real fan-out; another tenant's parks never show."""

from __future__ import annotations

import dataclasses
import json
import re
import time

import pytest

from telephony.engine.snapshots import published_snapshot, snapshot_key
from telephony.engine.store import redis_key
from telephony.sip.contract import PARKED, RingGroup, TeamSnapshot
from tests.portal.calls_helpers import call
from tests.portal.test_live_socket import _open, _socket, session_for  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

A, B = "t_acme", "t_beta"
OUTSIDE = "+12025550100"


@pytest.fixture
def slots(rds):
    keys = set()

    def put(schema, slot, call_id, caller, by, caller_name=""):
        key = redis_key(PARKED, schema=schema)
        keys.add(key)
        entry = {"call_id": call_id, "caller": caller, "caller_name": caller_name, "by": by,
                 "at": time.time(), "engine": "e1"}  # fmt: skip
        rds.hset(key, slot, json.dumps(entry))

    yield put
    for key in keys:
        rds.delete(key)


@pytest.fixture
def sales_group(rds, world, live):
    """Acme's published snapshot with ring group 600 "Sales" in its team part (as the
    snapshot builder publishes ring groups)."""
    from telephony.engine.snapshots import publish_tenant

    snapshot = published_snapshot(rds, world.tenant_a.sip_domain)
    team = TeamSnapshot(ring_groups={"600": RingGroup(number="600", name="Sales <Team>")})
    rds.set(snapshot_key(world.tenant_a.sip_domain),
            dataclasses.replace(snapshot, team=team).to_json())  # fmt: skip
    yield
    publish_tenant(world.tenant_a.pk)


def _call_row(html: str, call_id: str) -> str:
    match = re.search(rf'<tr data-call="{call_id}".*?</tr>', html, re.S)
    assert match, f"no row for {call_id}"
    return match.group(0)


def test_active_calls_show_parks_pickups_and_ring_groups(portal, world, live, slots, sales_group):
    """User story: the receptionist watches the active-calls page. A customer's call to the
    Sales ring group rings 102 and is picked up by 101, who parks it in 701; a colleague's call
    is picked up too. The page shows the group, who picked up and the parked call with its
    caller and parker; Beta's parked call is not there."""
    live.add("call.started", **call(A, "g1", OUTSIDE, "600", legs=[], caller_name="Customer"))
    live.add("call.ringing", **call(A, "g1", "", "102", legs=[]))
    live.add("call.picked_up", **call(A, "g1", "", "", legs=["101"], by="101"))
    live.add("call.started", **call(A, "p1", "102", "101"))
    live.add("call.picked_up", **call(A, "p1", "", "", legs=["102", "101"], by="101"))
    slots(A, "701", "g1", OUTSIDE, "101", caller_name="Customer")
    live.add("call.parked", **call(A, "g1", "", "", legs=[], slot="701", by="101"))
    slots(B, "701", "b1", "+442071234567", "201")
    live.add("call.parked", **call(B, "b1", "", "", legs=[], slot="701", by="201"))
    live.drain()

    html = portal(world.a_admin, world.tenant_a).get("/portal/calls/").content.decode()
    group_call = _call_row(html, "g1")
    assert "Sales &lt;Team&gt; (600)" in group_call  # escaped on the page
    assert "in slot 701" in group_call
    assert "picked up by 101" in _call_row(html, "p1")
    parked = re.search(r'<tr data-slot="701".*?</tr>', html, re.S)
    assert parked, html
    assert OUTSIDE in parked.group(0)
    assert "Customer" in parked.group(0)
    assert "<td>101</td>" in parked.group(0)
    assert "+442071234567" not in html
    assert "201" not in parked.group(0)
    assert '"600": "Sales \\u003CTeam\\u003E"' in html  # the groups for the script, escaped
    dashboard = portal(world.a_admin, world.tenant_a).get("/portal/dashboard/").content.decode()
    assert re.search(r'data-testid="tile-parked">1<', dashboard)


def test_the_socket_snapshot_carries_the_own_parked_calls(world, live, slots, session_for, ws):  # noqa: F811
    slots(A, "702", "a2", "102", "101")
    slots(B, "702", "b2", "201", "202")
    acme = _socket("acme.test", session_for(world.a_admin))
    snap = ws.run(_open(acme))
    assert [(p["slot"], p["call_id"], p["by"]) for p in snap["parked"]] == [("702", "a2", "101")]
    # A park at Beta while Acme's page is open never reaches it.
    live.add("call.parked", **call(B, "b3", "", "", legs=[], slot="703", by="201"))
    live.drain()
    assert ws.run(acme.receive_nothing(timeout=0.3))
    ws.run(acme.disconnect())
