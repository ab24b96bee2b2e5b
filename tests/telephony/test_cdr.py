"""CDRs from call events, and the call APIs (CDR list, active calls, hang-up) per tenant.

Events are written to a real Redis stream exactly as the engine's EventSink writes them (every
value text, ``ts`` in epoch seconds) and read back through a real consumer group.
"""

import json
import secrets
import time
from contextlib import contextmanager

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections

from telephony.engine.cdr import CdrConsumer
from tests.conftest import closed_port
from tests.telephony.engine_events import emit, read_cdr

pytestmark = pytest.mark.django_db


def call_events(r, stream, schema, call_id, t0=1_700_000_000.0):
    """A call 101 -> 102, answered, then blind-transferred by 102 to 103, then hung up."""
    legs = json.dumps([{"leg": "a", "user": "101"}, {"leg": "b", "user": "102"}])
    common = {"schema": schema, "call_id": call_id}
    emit(r, stream, "call.started", ts=t0, direction="internal", caller="101",
         caller_name="Acme 101", callee="102", segment=1, legs=legs, **common)  # fmt: skip
    emit(r, stream, "call.ringing", ts=t0 + 1, segment=1, **common)
    emit(r, stream, "call.answered", ts=t0 + 3, segment=1, legs=legs, **common)
    emit(r, stream, "call.transferred", ts=t0 + 10, segment=2, kind="blind",
         **{"from": "101", "to": "103"}, **common)  # fmt: skip
    emit(r, stream, "call.answered", ts=t0 + 12, segment=2, **common)
    emit(r, stream, "call.ended", ts=t0 + 20, segment=2, status="answered", reason="bye",
         **common)  # fmt: skip


def test_events_make_one_cdr_with_segments(world, r, stream, in_tenant):
    """Story: a call that was answered and then transferred is one CDR with two segments."""
    schema = world.tenant_a.schema_name
    call_events(r, stream, schema, "c-1")
    consumer = CdrConsumer(r, stream=stream, consumer="t1")
    assert consumer.drain() == 6
    cdr, segs = read_cdr(in_tenant, world.tenant_a, "c-1")
    assert (cdr.caller_number, cdr.callee_number, cdr.caller_name) == ("101", "102", "Acme 101")
    assert (cdr.status, cdr.end_reason, cdr.direction) == ("answered", "bye", "internal")
    assert (cdr.duration, cdr.billsec) == (20, 17)
    assert [(s.seq, s.kind, s.from_number, s.to_number, s.status) for s in segs] == [
        (1, "call", "101", "102", "answered"),
        (2, "blind", "101", "103", "answered"),
    ]
    assert segs[0].ended_at == segs[1].started_at  # a transfer ends the segment before it
    assert segs[0].legs[1]["user"] == "102"
    assert r.xpending(stream, "cdr")["pending"] == 0
    # Nothing of it in the other tenant.
    assert read_cdr(in_tenant, world.tenant_b, "c-1")[0] is None


def test_redelivery_is_idempotent(world, r, stream, in_tenant):
    schema = world.tenant_a.schema_name
    call_events(r, stream, schema, "c-2")
    # The same entries delivered again: a second group reads the whole stream once more (it
    # exists before the first drain, which otherwise trims what the only group acknowledged).
    again = CdrConsumer(r, stream=stream, group="cdr-replay", consumer="t2")
    again.ensure_group()
    CdrConsumer(r, stream=stream, consumer="t1").drain()
    first = read_cdr(in_tenant, world.tenant_a, "c-2")
    assert again.drain() == 6
    cdr, segs = read_cdr(in_tenant, world.tenant_a, "c-2")
    from telephony.models import Cdr

    with in_tenant(world.tenant_a):
        assert Cdr.objects.filter(call_id="c-2").count() == 1
    assert (cdr.status, cdr.duration, cdr.billsec, cdr.answered_at) == (
        first[0].status,
        first[0].duration,
        first[0].billsec,
        first[0].answered_at,
    )
    assert [(s.seq, s.started_at, s.ended_at) for s in segs] == [
        (s.seq, s.started_at, s.ended_at) for s in first[1]
    ]


@contextmanager
def database_away():
    """PostgreSQL down, as a worker meets it: the default database alias points at a closed
    port on 127.0.0.1, so every query's connection attempt is refused. Without the connection
    pool, whose connections are shared by alias (the test's own among them) and whose refusal
    would come only after its timeout. The test's own connection, with its open transaction,
    is put back afterwards."""
    real = connections[DEFAULT_DB_ALIAS]
    options = {k: v for k, v in real.settings_dict["OPTIONS"].items() if k != "pool"}
    away = type(real)(
        {**real.settings_dict, "HOST": "127.0.0.1", "PORT": closed_port(), "OPTIONS": options}
    )
    connections[DEFAULT_DB_ALIAS] = away
    try:
        yield
    finally:
        away.close()
        connections[DEFAULT_DB_ALIAS] = real


def test_worker_down_then_up_loses_nothing(world, r, stream, in_tenant):
    """Story: events keep coming while no worker runs, a worker dies holding a batch, and the
    database goes away under the workers; once it and they are back, every call has its CDR."""
    schema = world.tenant_a.schema_name
    # 0. a worker that has already written a call (it knows the tenant)
    call_events(r, stream, schema, "c-0")
    running = CdrConsumer(r, stream=stream, consumer="running")
    assert running.drain() == 6
    # 1. written while no worker runs
    call_events(r, stream, schema, "c-3")
    # 2. a worker takes a batch and dies before writing it (read, never acknowledged)
    dead = CdrConsumer(r, stream=stream, consumer="dead", batch=4)
    taken = dead.read(">")
    assert len(taken) == 4
    assert r.xpending(stream, "cdr")["pending"] == 4
    # 3. the database goes away: a worker starting now fails at its first query, the running
    #    one fails each write; both leave what they read pending, acknowledged by nobody.
    call_events(r, stream, schema, "c-4")
    with database_away():
        with pytest.raises(OperationalError):
            CdrConsumer(r, stream=stream, consumer="starting").drain()
        call_events(r, stream, schema, "c-5")
        assert running.drain() == 0
    assert r.xpending(stream, "cdr")["pending"] == 4 + 8 + 6
    assert r.xlen(stream) == 3 * 6  # the stream keeps every entry not acknowledged
    for call_id in ("c-3", "c-4", "c-5"):
        assert read_cdr(in_tenant, world.tenant_a, call_id)[0] is None
    # 4. the database is back: each worker re-reads its own pending entries; the dead one's are
    #    claimed once idle long enough (0 ms here instead of 30 s).
    assert running.drain() == 6
    starting = CdrConsumer(r, stream=stream, consumer="starting")
    starting.claim_idle_ms = 0
    assert starting.drain() == 8 + 4
    assert r.xpending(stream, "cdr")["pending"] == 0
    for call_id in ("c-0", "c-3", "c-4", "c-5"):
        cdr, segs = read_cdr(in_tenant, world.tenant_a, call_id)
        assert cdr.status == "answered"
        assert len(segs) == 2


def test_events_of_unknown_schema_are_dropped_not_stuck(world, r, stream):
    emit(r, stream, "call.started", schema="t_nope", call_id="x", caller="1", callee="2")
    emit(r, stream, "registration", domain="acme.test")  # not a call event: ignored
    assert CdrConsumer(r, stream=stream, consumer="t1").drain() == 2
    assert r.xpending(stream, "cdr")["pending"] == 0


# ------------------------------------------------------------------------------------- API


def make_cdrs(world, r, stream):
    call_events(r, stream, world.tenant_a.schema_name, "a-1")
    emit(r, stream, "call.started", schema=world.tenant_a.schema_name, call_id="a-2",
         caller="102", callee="101", direction="internal", ts=1_700_000_100)  # fmt: skip
    emit(r, stream, "call.ended", schema=world.tenant_a.schema_name, call_id="a-2",
         status="busy", reason="486", ts=1_700_000_101)  # fmt: skip
    call_events(r, stream, world.tenant_b.schema_name, "b-1")
    CdrConsumer(r, stream=stream, consumer="t1").drain()


def test_cdr_api_lists_own_tenant_only_with_filters(world, api, r, stream, in_tenant):
    make_cdrs(world, r, stream)
    a = api(world.a_admin, world.tenant_a)
    body = a.get("/api/v1/cdrs/").json()
    assert [c["call_id"] for c in body["items"]] == ["a-2", "a-1"]  # newest first
    assert body["items"][1]["segments"][1]["to_number"] == "103"
    assert a.get("/api/v1/cdrs/", {"status": "busy"}).json()["items"][0]["call_id"] == "a-2"
    ids = [c["call_id"] for c in a.get("/api/v1/cdrs/", {"extension": "103"}).json()["items"]]
    assert ids == ["a-1"]  # 103 only took part through the transfer
    page = a.get("/api/v1/cdrs/", {"limit": 1}).json()
    assert len(page["items"]) == 1
    assert page["next"]
    nxt = a.client.get(page["next"]).json()
    connection.set_schema_to_public()
    assert [c["call_id"] for c in nxt["items"]] == ["a-1"]
    # tenant B sees its own call only; A's record id is 404 on B's host
    b = api(world.b_admin, world.tenant_b)
    assert [c["call_id"] for c in b.get("/api/v1/cdrs/").json()["items"]] == ["b-1"]
    # (Schemas number rows on their own: of A's two ids, B's one record can hold at most one.)
    with in_tenant(world.tenant_b):
        from telephony.models import Cdr

        b_ids = set(Cdr.objects.values_list("pk", flat=True))
    a_id = next(c["id"] for c in body["items"] if c["id"] not in b_ids)
    assert b.get(f"/api/v1/cdrs/{a_id}/").status_code == 404
    # a user without extensions.view gets 403, anonymous 401
    assert api(world.a_user, world.tenant_a).get("/api/v1/cdrs/").status_code == 403
    assert api(None, world.tenant_a).get("/api/v1/cdrs/").status_code == 401


def test_active_calls_isolation_and_hangup(world, api, r):
    ka = f"sip:calls:{world.tenant_a.schema_name}"
    kb = f"sip:calls:{world.tenant_b.schema_name}"
    call = {
        "call_id": "live-a",
        "state": "answered",
        "caller": "101",
        "caller_name": "Acme 101",
        "callee": "102",
        "started_at": time.time(),
        "answered_at": time.time(),
        "legs": [{"leg": "a", "user": "101"}],
    }
    r.hset(ka, "live-a", json.dumps(call))
    r.hset(kb, "live-b", json.dumps({**call, "call_id": "live-b", "caller": "201"}))
    pubsub = r.pubsub()
    pubsub.subscribe("sip:control")
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    try:
        a = api(world.a_admin, world.tenant_a)
        body = a.get("/api/v1/active-calls/").json()
        assert body["total"] == 1
        assert body["items"][0]["call_id"] == "live-a"
        assert a.get("/api/v1/active-calls/live-b/").status_code == 404
        assert a.post("/api/v1/active-calls/live-b/hangup/").status_code == 404
        assert (
            api(world.a_user, world.tenant_a)
            .post("/api/v1/active-calls/live-a/hangup/")
            .status_code
            == 403
        )
        assert a.post("/api/v1/active-calls/live-a/hangup/").status_code == 202
        # Pub/sub is global to the Redis server (not per database): other test runs may
        # publish too, so look for ours among what arrives.
        deadline = time.monotonic() + 5
        msg = None
        while time.monotonic() < deadline:
            m = pubsub.get_message(timeout=1)
            if m and m["type"] == "message" and b"live-a" in m["data"]:
                msg = m
                break
        assert msg is not None
        assert json.loads(msg["data"]) == {
            "op": "hangup",
            "schema": world.tenant_a.schema_name,
            "call_id": "live-a",
        }
        b = api(world.b_admin, world.tenant_b)
        assert [c["call_id"] for c in b.get("/api/v1/active-calls/").json()["items"]] == ["live-b"]
    finally:
        pubsub.close()
        r.delete(ka, kb)


def test_forwarded_call_files_a_forward_segment(world, r, stream, in_tenant):
    """Story: 101 calls 102, who forwards on no answer to 103; 103 answers. One CDR, the
    forward a segment of its own from 102 to 103, and 102's part closed where it started."""
    schema, t0 = world.tenant_a.schema_name, 1_700_000_000.0
    common = {"schema": schema, "call_id": "fw-1"}
    emit(r, stream, "call.started", ts=t0, direction="internal", caller="101", callee="102",
         segment=1, **common)  # fmt: skip
    emit(r, stream, "call.ringing", ts=t0 + 1, segment=1, **common)
    emit(r, stream, "call.forwarded", ts=t0 + 21, segment=2, kind="forward",
         reason="no_answer", callee="103", **{"from": "102", "to": "103"}, **common)  # fmt: skip
    emit(r, stream, "call.answered", ts=t0 + 23, segment=2, kind="forward", **common)
    emit(r, stream, "call.ended", ts=t0 + 30, segment=2, kind="forward", status="answered",
         reason="bye", **common)  # fmt: skip
    assert CdrConsumer(r, stream=stream, consumer="t1").drain() == 5
    cdr, segs = read_cdr(in_tenant, world.tenant_a, "fw-1")
    assert cdr.status == "answered"
    assert [(s.seq, s.kind, s.from_number, s.to_number) for s in segs] == [
        (1, "call", "101", "102"),
        (2, "forward", "102", "103"),
    ]
    assert segs[0].ended_at == segs[1].started_at


def test_stream_is_trimmed_only_of_what_every_group_acknowledged(world, r, stream):
    """The engine adds events without trimming; a drain removes the entries every consumer
    group (here ``cdr`` and a lagging ``fanout``) has acknowledged, and nothing else."""
    from telephony.sip.events import trim_acknowledged

    r.xgroup_create(stream, "fanout", id="0", mkstream=True)
    ids = [emit(r, stream, "registration", schema=world.tenant_a.schema_name) for _ in range(10)]
    # fan-out has been given 6 entries and acknowledged the first 2 only (4 pending).
    given = r.xreadgroup("fanout", "f1", {stream: ">"}, count=6)[0][1]
    r.xack(stream, "fanout", *[i for i, _ in given[:2]])
    assert CdrConsumer(r, stream=stream, consumer="t1").drain() == 10  # trims on its way out
    assert [i for i, _ in r.xrange(stream)] == ids[2:]  # fan-out still needs these
    r.xack(stream, "fanout", *[i for i, _ in given[2:]])
    assert trim_acknowledged(r, stream) == 4
    assert [i for i, _ in r.xrange(stream)] == ids[6:]  # never given to fan-out yet
    r.xreadgroup("fanout", "f1", {stream: ">"})
    assert trim_acknowledged(r, stream) == 0  # delivered but pending: kept
    r.xack(stream, "fanout", *ids[6:])
    assert trim_acknowledged(r, stream) == 4
    assert r.xlen(stream) == 0


def test_a_restarted_engine_closes_the_calls_its_previous_run_left(world, r, stream, in_tenant):
    """Story: the engine is killed mid-call (no ``call.ended`` ever written). Its next run
    finds the call in the Redis mirror, ends it there and in the event stream, and the call
    gets a closed CDR; a call carried by another engine is left alone."""
    from telephony.engine.state import close_orphaned_calls

    schema = world.tenant_a.schema_name
    prefix = f"test:{secrets.token_hex(3)}:"
    mirror = f"{prefix}sip:calls:{schema}"
    legs = [{"leg": "a", "user": "101"}, {"leg": "b", "user": "102"}]
    emit(r, f"{prefix}{stream}", "call.started", schema=schema, call_id="cut-1", segment=1,
         caller="101", callee="102", legs=json.dumps(legs))  # fmt: skip
    emit(r, f"{prefix}{stream}", "call.answered", schema=schema, call_id="cut-1", segment=1)
    t0 = time.time()
    r.hset(mirror, "cut-1", json.dumps({"call_id": "cut-1", "state": "answered",
           "answered_at": t0, "legs": legs, "engine": "127.0.0.1:5060", "segment": 1}))  # fmt: skip
    r.hset(mirror, "theirs", json.dumps({"call_id": "theirs", "engine": "10.0.0.2:5060"}))
    try:
        closed = close_orphaned_calls(r, prefix=prefix, engine_id="127.0.0.1:5060", stream=stream)
        assert closed == 1
        assert r.hkeys(mirror) == [b"theirs"]
        consumer = CdrConsumer(r, stream=f"{prefix}{stream}", consumer="t-restart")
        assert consumer.drain() == 3
        cdr, segs = read_cdr(in_tenant, world.tenant_a, "cut-1")
        assert (cdr.status, cdr.end_reason) == ("answered", "engine_restart")
        assert cdr.ended_at is not None
        assert cdr.ended_at.timestamp() >= t0 - 1
        assert segs
        assert all(s.ended_at is not None for s in segs)
        # A second start finds nothing more to close.
        assert close_orphaned_calls(r, prefix=prefix, engine_id="127.0.0.1:5060") == 0
    finally:
        r.delete(mirror, f"{prefix}{stream}")


def test_an_outside_call_files_its_trunk_did_numbers_and_caller_id(world, api, r, stream):
    """Story: a carrier's call to Acme's DID, and an outbound call of extension 101, show in
    the call history with their trunk, DID, dialled and E.164 numbers and the caller ID the
    far end saw; the last non-empty value of each wins, whichever event carried it, and a
    value the record cannot hold is ignored. The API filters by direction, trunk and DID."""
    schema = world.tenant_a.schema_name
    t0 = 1_700_000_000.0
    inbound = {"schema": schema, "call_id": "in-1", "segment": 1}
    emit(r, stream, "call.started", ts=t0, direction="inbound", caller="+12025550147",
         callee="101", trunk=7, did="+12125550100", **inbound)  # fmt: skip
    # call.routed carries the facts again; an empty value keeps what the record has.
    emit(r, stream, "call.routed", ts=t0 + 0.5, direction="inbound", trunk=7,
         did="+12125550100", number="+12025550147", presented="", **inbound)  # fmt: skip
    emit(r, stream, "call.answered", ts=t0 + 2, **inbound)
    emit(r, stream, "call.ended", ts=t0 + 9, status="answered", reason="bye caller", **inbound)
    outbound = {"schema": schema, "call_id": "out-1", "segment": 1}
    emit(r, stream, "call.started", ts=t0 + 20, direction="outbound", caller="101",
         callee="02125550199", dialled="02125550199", **outbound)  # fmt: skip
    # Failover: the first trunk tried, then the second; the record keeps the one used last.
    emit(r, stream, "call.routed", ts=t0 + 20.1, trunk=7, number="+12125550199",
         presented="+12125550100", **outbound)  # fmt: skip
    emit(r, stream, "call.routed", ts=t0 + 20.2, trunk=8, number="+12125550199",
         presented="anonymous", **outbound)  # fmt: skip
    # Not an id, not a direction: ignored, not a crash and not a stuck entry.
    emit(r, stream, "call.routed", ts=t0 + 20.3, trunk="x" * 40, direction="sideways",
         **outbound)  # fmt: skip
    emit(r, stream, "call.ended", ts=t0 + 30, status="busy", reason="486", **outbound)
    assert CdrConsumer(r, stream=stream, consumer="t1").drain() == 9

    a = api(world.a_admin, world.tenant_a)
    items = {c["call_id"]: c for c in a.get("/api/v1/cdrs/").json()["items"]}
    facts = ("direction", "trunk", "did", "dialled", "number", "presented")
    assert [items["in-1"][f] for f in facts] == [
        "inbound",
        7,
        "+12125550100",
        "",
        "+12025550147",
        "",
    ]
    assert [items["out-1"][f] for f in facts] == [
        "outbound",
        8,
        "",
        "02125550199",
        "+12125550199",
        "anonymous",
    ]
    assert (items["in-1"]["status"], items["in-1"]["billsec"]) == ("answered", 7)

    def listed(**query):
        r = a.get("/api/v1/cdrs/", query)
        assert r.status_code == 200, r.content
        return [c["call_id"] for c in r.json()["items"]]

    assert listed(direction="inbound") == ["in-1"]
    assert listed(trunk=8) == ["out-1"]
    assert listed(trunk=7) == ["in-1"]
    assert listed(did="+12125550100") == ["in-1"]
    assert listed(did=" 12125550100") == ["in-1"]  # a "+" sent unencoded arrives as a space
    assert listed(q="+12125550199") == ["out-1"]
    for bad in ("x", "0", str(2**40)):
        r = a.get("/api/v1/cdrs/", {"trunk": bad})
        assert r.status_code == 400, (bad, r.content)
        assert "trunk" in r.json()["fields"]
    # Tenant B's history has none of it.
    assert (
        api(world.b_admin, world.tenant_b).get("/api/v1/cdrs/", {"trunk": 7}).json()["items"] == []
    )


def test_live_calls_and_webhook_events_carry_a_trunk_calls_facts(world):
    """Story: the live calls view shows a trunk call's trunk, DID and numbers as the engine
    sends them (the last non-empty value). (Webhooks and WebSocket clients get each event's
    own fields, these among them, from the fan-out as they are.)"""
    from events.live import next_call

    started = {"type": "call.started", "ts": "1", "caller": "+12025550147", "callee": "101",
               "direction": "inbound", "trunk": "7", "did": "+12125550100"}  # fmt: skip
    call = next_call(None, started)
    routed = {"type": "call.routed", "ts": "2", "number": "+12025550147", "did": ""}
    call = next_call(call, routed)
    assert {k: call.get(k) for k in ("direction", "trunk", "did", "number")} == {
        "direction": "inbound",
        "trunk": "7",
        "did": "+12125550100",
        "number": "+12025550147",
    }
    assert call["parties"] == {"+12025550147": "on_call"}
