"""The fan-out: stream entries written as the engine writes them reach the tenant's Channels
group, its outbox (and webhook queue) and its live state; nothing crosses tenants."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from events.actions import do_create_webhook
from events.fanout import Fanout, group_name
from events.live import LiveState
from events.models import OutboxEvent, WebhookDelivery
from pbx.audit import SYSTEM
from tests.events.helpers import call, registration

A, B = "t_acme", "t_beta"


def _drain_and_collect(fanout: Fanout, groups: list[str], expected: int) -> dict[str, list]:
    """Join channels to groups, run the fan-out, and collect ``expected`` messages in total."""
    layer = get_channel_layer()

    async def scenario():
        channels = {}
        for group in groups:
            channels[group] = await layer.new_channel()
            await layer.group_add(group, channels[group])
        await sync_to_async(fanout.drain)()
        got: dict[str, list] = {g: [] for g in groups}
        pending = {g: asyncio.ensure_future(layer.receive(c)) for g, c in channels.items()}
        try:
            while sum(len(v) for v in got.values()) < expected:
                done, _ = await asyncio.wait(
                    pending.values(), timeout=5, return_when=asyncio.FIRST_COMPLETED
                )
                assert done, f"only {got} arrived"
                for group, task in list(pending.items()):
                    if task in done:
                        got[group].append(task.result())
                        pending[group] = asyncio.ensure_future(layer.receive(channels[group]))
            # Nothing more is on its way to anyone.
            done, _ = await asyncio.wait(pending.values(), timeout=0.3)
            assert not done, [t.result() for t in done]
        finally:
            for task in pending.values():
                task.cancel()
            for group, channel in channels.items():
                await layer.group_discard(group, channel)
        return got

    return async_to_sync(scenario)()


def test_registration_and_call_reach_group_outbox_and_live_state(
    world, in_tenant, fanout, xadd, rds
):
    """User story: a phone registers and calls a colleague; the tenant's live page and API
    subscribers see it happen, the events land in the tenant's outbox, and the other tenant sees
    nothing."""
    xadd("registration", **registration(A, "101"))
    xadd("registration", **registration(A, "101", "refreshed"))  # a refresh changes nothing
    xadd("call.started", **call(A, "c1", "101", "102", caller_name="Acme 101"))
    xadd("call.ringing", **call(A, "c1", "", "", leg="b1"))
    xadd("call.answered", **call(A, "c1", "", "102", legs=["101", "102"], leg="b1"))

    got = _drain_and_collect(fanout, [group_name(A), group_name(B)], expected=7)

    assert got[group_name(B)] == []
    events = [m["event"] for m in got[group_name(A)]]
    assert all(m["type"] == "pbx.event" for m in got[group_name(A)])
    assert (
        [(e["type"], e["data"].get("extension")) for e in events]
        == [
            ("extension.status", "101"),  # online
            ("call.started", None),
            ("extension.status", "101"),  # on a call (dialling)
            ("call.ringing", None),
            ("extension.status", "102"),  # ringing
            ("call.answered", None),
            ("extension.status", "102"),  # on a call
        ][: len(events)]
    )
    assert len(events) == 7
    online = events[0]
    assert online["tenant"] == "acme"
    assert online["data"]["online"] is True
    assert online["data"]["devices"] == [
        {
            "address": "203.0.113.5",
            "port": 5062,
            "transport": "udp",
            "user_agent": "Yealink SIP-T46U 108.86.0.20",
            "contact": "sip:101@203.0.113.5:5062;transport=udp",
        }
    ]
    assert events[1]["data"]["legs"] == [{"leg": "a", "user": "101", "sip_call_id": "c1-0"}]
    assert events[1]["data"]["caller_name"] == "Acme 101"
    assert events[4]["data"]["call_status"] == "ringing"
    assert events[6]["data"]["call_status"] == "on_call"

    with in_tenant(world.tenant_a):
        outbox = list(OutboxEvent.objects.order_by("id").values_list("id", "type"))
    assert [t for _, t in outbox] == [e["type"] for e in events]
    assert [i for i, _ in outbox] == [e["id"] for e in events]  # same ids live and in the outbox
    with in_tenant(world.tenant_b):
        assert not OutboxEvent.objects.exists()

    state = LiveState(rds).tenant_state(A)
    assert state["extensions"]["101"]["online"] is True
    assert state["extensions"]["101"]["call_status"] == "on_call"
    assert state["extensions"]["102"]["call_status"] == "on_call"
    assert [c["call_id"] for c in state["calls"]] == ["c1"]
    assert LiveState(rds).tenant_state(B) == {"extensions": {}, "calls": []}
    # Everything was acknowledged: a restart has nothing pending to redo.
    assert rds.xpending(fanout.stream, fanout.group)["pending"] == 0


def test_blind_transfer_moves_the_call_status(world, fanout, xadd, rds):
    """102 answers 101, then transfers 101 to 103: 102 is free, 103 is on the call."""
    xadd("call.started", **call(A, "c5", "101", "102"))
    xadd("call.ringing", **call(A, "c5", "", "", leg="b1"))
    xadd("call.answered", **call(A, "c5", "", "102", legs=["101", "102"]))
    xadd(
        "call.transferred",
        **call(A, "c5", "", "", legs=["101", "103"], segment=2, kind="blind", to="103"),
        **{"from": "101"},
    )
    xadd("call.answered", **call(A, "c5", "", "", legs=["101", "103"], segment=2, leg="t2"))
    fanout.drain()
    state = LiveState(rds).tenant_state(A)
    assert {n: e["call_status"] for n, e in state["extensions"].items()} == {
        "101": "on_call",
        "103": "on_call",
    }
    assert state["calls"][0]["callee"] == "103"


def test_call_end_and_unregister_clear_the_live_state(world, fanout, xadd, rds):
    xadd("registration", **registration(A, "101"))
    xadd("registration", **registration(A, "101", port=5070))  # a second device
    xadd("call.started", **call(A, "c2", "101", "102"))
    xadd("call.ended", **call(A, "c2", "", "", status="no_answer", reason="cancel"))
    xadd("registration", **registration(A, "101", "unregistered"))
    xadd("registration", **registration(A, "101", "expired", port=5070))
    fanout.drain()

    state = LiveState(rds).tenant_state(A)
    assert state["calls"] == []
    assert state.get("extensions", {}).get("101", {"online": False})["online"] is False


def test_outbox_events_queue_webhook_deliveries(
    world, in_tenant, fanout, xadd, settings, django_capture_on_commit_callbacks
):
    settings.PBX_WEBHOOK_ALLOW_PRIVATE = True
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    with in_tenant(world.tenant_a):
        calls_hook, _ = do_create_webhook(
            url="http://127.0.0.1:9/calls", event_types=["calls"], actor=SYSTEM
        )
        ended_hook, _ = do_create_webhook(
            url="http://127.0.0.1:9/ended", event_types=["call.ended"], actor=SYSTEM
        )
    xadd("call.started", **call(A, "c3", "101", "102"))
    xadd("call.ended", **call(A, "c3", "", "", legs=["101", "102"], status="answered"))
    with django_capture_on_commit_callbacks() as callbacks:
        fanout.drain()
    assert callbacks, "deliveries are kicked on commit"
    with in_tenant(world.tenant_a):
        per_endpoint = {
            ep: list(
                WebhookDelivery.objects.filter(endpoint_id=ep)
                .order_by("event_id")
                .values_list("event__type", flat=True)
            )
            for ep in (calls_hook.pk, ended_hook.pk)
        }
    assert per_endpoint[calls_hook.pk] == ["call.started", "call.ended"]
    assert per_endpoint[ended_hook.pk] == ["call.ended"]


def test_an_entry_handled_twice_adds_nothing(world, in_tenant, fanout, xadd, rds):
    """A crash after the outbox commit but before XACK: on restart the entry is read again
    from the pending list and must not make a second outbox event."""
    entry = xadd("call.started", **call(A, "c4", "101", "102"))
    entries = fanout.read(">")
    messages = fanout.handle(*entries[0])  # handled, then "crash": no XACK
    assert len(messages) == 2
    fresh = Fanout(rds, stream=fanout.stream, consumer="test-fanout")
    assert fresh.drain() == 1  # re-read from the pending list and acknowledged
    with in_tenant(world.tenant_a):
        assert OutboxEvent.objects.filter(source_key__startswith=f"{entry}:").count() == 2


def test_unknown_schema_and_other_types_are_acknowledged_and_dropped(world, fanout, xadd, rds):
    xadd("registration", **registration("", "101"))
    xadd("registration", **registration("t_nosuch", "101"))
    xadd("engine.started", schema=A)
    assert fanout.drain() == 3
    assert rds.xpending(fanout.stream, fanout.group)["pending"] == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("udp:203.0.113.5:5060", ("udp", "203.0.113.5", 5060)),
        ("tls:[2001:db8::1]:5061", ("tls", "2001:db8::1", 5061)),
        ("ws:198.51.100.7:443", ("ws", "198.51.100.7", 443)),
    ],
)
def test_device_sources_are_parsed(source, expected):
    from events.live import parse_source

    assert parse_source(source) == expected


def test_dnd_changes_in_routing_snapshots_are_published(world, in_tenant, fanout, rds):
    """An admin turns DND on for 102: the routing snapshot changes, and the fan-out publishes
    102's new status (live page, subscribers, webhooks)."""
    import json

    from tests.events.helpers import wait_until

    key = "sip:snapshot:acme.test"
    original = rds.get(key)
    snapshot = json.loads(original)
    fanout.follow_snapshots()  # subscribed from here on; also records the current DND values
    fanout.live.put_dnd(A, {n: bool(e.get("dnd")) for n, e in snapshot["extensions"].items()})
    try:
        snapshot["extensions"]["102"]["dnd"] = True
        rds.set(key, json.dumps(snapshot))
        rds.publish("sip:snapshot:changed", "acme.test")

        def published():
            fanout.follow_snapshots()
            with in_tenant(world.tenant_a):
                return list(OutboxEvent.objects.filter(type="extension.status"))

        (event,) = wait_until(published, timeout=5)
        assert event.payload["extension"] == "102"
        assert event.payload["dnd"] is True
        assert event.payload["reason"] == "dnd"
        assert LiveState(rds).dnd(A)["102"] is True
    finally:
        rds.set(key, original)


def test_run_loop_handles_what_arrives(world, in_tenant, fanout, xadd, rds):
    """The long-running loop (``manage.py events_fanout``) handles entries as they arrive and
    acknowledges them, then gives its lease back when stopped."""
    from telephony.engine.store import redis_key
    from telephony.sip.contract import FANOUT_LEADER

    xadd("call.started", **call(A, "run-1", "101", "102"))
    last = xadd("call.ended", **call(A, "run-1", "", "", status="cancelled"))

    def done() -> bool:
        (info,) = [g for g in rds.xinfo_groups(fanout.stream) if g["name"] == b"fanout"]
        return info["last-delivered-id"].decode() == last and info["pending"] == 0

    fanout.run(block_ms=50, stop=done)
    with in_tenant(world.tenant_a):
        assert list(OutboxEvent.objects.values_list("type", flat=True)) == [
            "call.started",
            "extension.status",
            "call.ended",
            "extension.status",
        ]
    # Released: a successor need not wait for expiry.
    assert rds.get(redis_key(FANOUT_LEADER)) is None
