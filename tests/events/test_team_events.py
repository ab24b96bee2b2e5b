"""Team features through the fan-out: pickups and parks, written to the stream as the engine
writes them (``contract.EventType.CALL_PICKED_UP``, ``CALL_PARKED``, ``CALL_UNPARKED``) and
the park slots' hash (``contract.PARKED``) as the engines keep it, reach the tenant's own
Channels group and live state, and never another tenant's."""

from __future__ import annotations

import json
import time

import pytest

from events.fanout import group_name
from events.live import LiveState, next_call
from telephony.engine.store import redis_key
from telephony.sip.contract import PARKED, EventType, RingGroup
from tests.events.helpers import call
from tests.events.test_fanout import _drain_and_collect

A, B = "t_acme", "t_beta"
OUTSIDE = "+12025550100"


@pytest.fixture
def park(rds):
    """Write a slot of a tenant's ``PARKED`` hash as an engine does; removed afterwards."""
    keys = set()

    def put(schema: str, slot: str, call_id: str, caller: str, by: str, **kw) -> None:
        key = redis_key(PARKED, schema=schema)
        keys.add(key)
        entry = {"call_id": call_id, "caller": caller, "caller_name": kw.get("caller_name", ""),
                 "by": by, "at": kw.get("at", time.time()), "engine": "e1"}  # fmt: skip
        rds.hset(key, slot, json.dumps(entry))

    def remove(schema: str, slot: str) -> None:
        rds.hdel(redis_key(PARKED, schema=schema), slot)

    put.remove = remove  # type: ignore[attr-defined]
    yield put
    for key in keys:
        rds.delete(key)


def test_pickup_and_park_reach_the_own_tenant_only(world, fanout, xadd, rds, park):
    """User story: an outside call rings 102; 101 picks it up from its BLF key and parks it in
    slot 701, while at Beta 201 parks a call in Beta's own slot 701. Acme's live page shows
    who picked up and the parked call with its caller; Beta's sees only its own."""
    xadd("call.started", **call(A, "c1", OUTSIDE, "102", legs=[], caller_name="Customer"))
    xadd("call.ringing", **call(A, "c1", "", "102", legs=[]))
    xadd("call.picked_up", **call(A, "c1", "", "", legs=["101"], by="101"))
    park(A, "701", "c1", OUTSIDE, "101", caller_name="Customer")
    xadd("call.parked", **call(A, "c1", "", "", legs=[], slot="701", by="101"))
    park(B, "701", "b1", "+442071234567", "201")
    xadd("call.parked", **call(B, "b1", "", "", legs=[], slot="701", by="201"))

    got = _drain_and_collect(fanout, [group_name(A), group_name(B)], expected=9)

    a_events = [m["event"] for m in got[group_name(A)]]
    b_events = [m["event"] for m in got[group_name(B)]]
    assert {e["tenant"] for e in a_events} == {"acme"}
    assert [e["type"] for e in b_events] == ["call.parked"]
    assert b_events[0]["data"]["call_id"] == "b1"
    assert "b1" not in json.dumps(a_events)
    assert "201" not in json.dumps(a_events)
    assert [e["type"] for e in a_events if e["type"].startswith("call.")] == [
        "call.started",
        "call.ringing",
        "call.picked_up",
        "call.parked",
    ]
    picked = next(e for e in a_events if e["type"] == "call.picked_up")
    assert picked["data"]["by"] == "101"
    assert picked["data"]["caller"] == OUTSIDE  # whose call, for the watchers
    parked = next(e for e in a_events if e["type"] == "call.parked")
    assert (parked["data"]["slot"], parked["data"]["by"]) == ("701", "101")
    assert parked["data"]["caller_name"] == "Customer"
    statuses = [(e["data"]["extension"], e["data"]["call_status"])
                for e in a_events if e["type"] == "extension.status"]  # fmt: skip
    # 102 rang, stopped when 101 picked up; 101 was on the call until it parked it.
    assert statuses == [("102", "ringing"), ("101", "on_call"), ("102", ""), ("101", "")]

    state = LiveState(rds).tenant_state(A)
    (c1,) = state["calls"]
    assert (c1["state"], c1["picked_up_by"]) == ("parked", "101")
    assert c1["parked"]["slot"] == "701"
    assert [(p["slot"], p["caller"], p["caller_name"], p["by"]) for p in state["parked"]] == [
        ("701", OUTSIDE, "Customer", "101")
    ]
    beta = LiveState(rds).tenant_state(B)
    assert [(p["slot"], p["call_id"], p["by"]) for p in beta["parked"]] == [("701", "b1", "201")]

    # 102 takes the call back out of the slot: the engine empties the slot and says so.
    park.remove(A, "701")
    xadd("call.unparked", **call(A, "c1", "", "", legs=["102"], slot="701", by="102",
                                 reason="retrieved"))  # fmt: skip
    got = _drain_and_collect(fanout, [group_name(A), group_name(B)], expected=2)
    assert got[group_name(B)] == []
    state = LiveState(rds).tenant_state(A)
    assert "parked" not in state
    assert state["calls"][0]["state"] == "answered"
    assert state["extensions"]["102"]["call_status"] == "on_call"


def test_a_parked_call_that_times_out_rings_its_parker_and_a_hangup_ends_it():
    call_ = next_call(None, {"type": EventType.CALL_STARTED, "caller": "101", "callee": "102",
                             "ts": "100"})  # fmt: skip
    call_ = next_call(call_, {"type": EventType.CALL_ANSWERED, "ts": "101",
                              "legs": '[{"user": "101"}, {"user": "102"}]'})  # fmt: skip
    call_ = next_call(call_, {"type": EventType.CALL_PARKED, "slot": "702", "by": "102",
                              "ts": "110", "legs": '[{"user": "101"}]'})  # fmt: skip
    assert call_ is not None
    assert call_["state"] == "parked"
    assert call_["parked"] == {"slot": "702", "by": "102", "at": 110.0}
    assert call_["parties"] == {"101": "on_call"}
    timed_out = next_call(call_, {"type": EventType.CALL_UNPARKED, "slot": "702",
                                  "reason": "timeout", "ts": "230"})  # fmt: skip
    assert timed_out is not None
    assert (timed_out["state"], timed_out["callee"]) == ("ringing", "102")
    assert timed_out["parties"] == {"101": "on_call", "102": "ringing"}
    assert "parked" not in timed_out
    hung_up = next_call(call_, {"type": EventType.CALL_UNPARKED, "slot": "702",
                                "reason": "hangup", "ts": "140"})  # fmt: skip
    assert hung_up is None


def test_a_call_to_a_ring_group_shows_the_group_whichever_member_rings(rds, clean_live):
    live = LiveState(rds)
    now = f"{time.time():.3f}"
    for event in (
        {"type": EventType.CALL_STARTED, "caller": "101", "callee": "600", "ts": now},
        {"type": EventType.CALL_RINGING, "callee": "102", "ts": now},
    ):
        live.put_call(A, "g1", next_call(live.calls(A).get("g1"), event))
    live.put_call(A, "d1", next_call(None, {"type": EventType.CALL_STARTED, "caller": "102",
                                            "callee": "101", "ts": now}))  # fmt: skip
    groups = {"600": RingGroup(number="600", name="Sales")}
    state = live.tenant_state(A, ring_groups=groups)
    by_id = {c["call_id"]: c for c in state["calls"]}
    assert (by_id["g1"]["callee"], by_id["g1"]["called"], by_id["g1"]["group"]) == (
        "102",
        "600",
        "Sales",
    )
    assert "group" not in by_id["d1"]  # a direct call names no group
    assert state["groups"] == {"600": "Sales"}
    # Another tenant's live state knows nothing of it.
    assert live.tenant_state(B, ring_groups=groups)["calls"] == []


def test_a_malformed_slot_entry_is_passed_over(rds, park):
    park(A, "703", "c3", "101", "102")
    rds.hset(redis_key(PARKED, schema=A), "704", "not json")
    assert [p["slot"] for p in LiveState(rds).parked(A)] == ["703"]
