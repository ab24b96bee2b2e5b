"""The engine's queue and agent events, written to a real stream as the engine writes them,
become queue calls and agent state history (CDR drain), outbox events, WebSocket frames,
webhook deliveries and one wallboard frame per tenant per batch (fan-out)."""

from __future__ import annotations

import time

import pytest

from callcenter.models import AgentStateChange, QueueCall
from events.fanout import group_name
from events.models import OutboxEvent, WebhookDelivery
from events.tasks import run_endpoint
from telephony.engine.cdr import CdrConsumer
from tests.conftest import SIP_PASSWORD
from tests.events.helpers import call, wait_until
from tests.events.test_fanout import _drain_and_collect

from .conftest import A, B

pytestmark = pytest.mark.django_db


def q(schema: str, queue: str, call_id: str = "", **fields) -> dict:
    """A contact-centre event's fields as the engine writes them."""
    return {"schema": schema, "tenant_id": "1", "queue": queue,
            **({"call_id": call_id} if call_id else {}), **fields}  # fmt: skip


def test_drain_files_visits_outcomes_talk_time_and_agent_states_once(
    world, in_tenant, acme_queues, rds, stream, xadd
):
    """User story: callers wait in Sales; one is answered by 101 within the SLA and talks, one
    hangs up, one overflows after waiting too long, one asks for a callback; 101 goes not
    ready. Every entry is delivered twice; the statistics' rows are written once."""
    t = time.time() - 60
    entries = [
        ("queue.joined", q(A, "600", "c1", caller="+3212345", caller_name="Ann", position="1",
                           vip="1", ts=t)),
        ("queue.joined", q(A, "600", "c2", caller="+3299999", position="2", vip="0", ts=t + 1)),
        ("queue.sla", q(A, "600", "c1", waited="21.0", ts=t + 21)),
        ("queue.answered", q(A, "600", "c1", agent="101", waited="22.5", sla="0", ts=t + 22.5)),
        ("queue.left", q(A, "600", "c2", reason="abandoned", waited="30.0", position="1",
                         ts=t + 31)),
        # c3's join was lost: the visit is made from its later event
        ("queue.left", q(A, "600", "c3", reason="max_wait", waited="600.0", ts=t + 32)),
        ("queue.joined", q(A, "600", "c4", caller="+3277777", ts=t + 33)),
        ("queue.callback", q(A, "600", "c4", number="+3277777", state="requested", ts=t + 40)),
        ("queue.left", q(A, "600", "c4", reason="callback", waited="7", ts=t + 40)),
        ("agent.state", q(A, "600", agent="101", state="not_ready", reason="Lunch", by="phone",
                          ts=t + 50)),
        ("queue.left", q(A, "600", "c1", reason="abandoned", ts=t + 51)),  # answered is final
        ("queue.joined", q(B, "600", "b1", caller="+3255555", ts=t)),
        ("queue.bogus", q(A, "600", "c9", ts=t)),
        # c1's call ends 5 s after the answer
        ("call.ended", call(A, "c1", "", "", status="answered", ts=f"{t + 27.5:.3f}")),
    ]  # fmt: skip
    for _ in range(2):  # an entry may come twice (a crash before the XACK)
        for kind, fields in entries:
            xadd(kind, **fields)

    consumer = CdrConsumer(rds, stream=stream, consumer="t1")
    consumer.drain()

    with in_tenant(world.tenant_a):
        visits = {v.call_id: v for v in QueueCall.objects.all()}
        assert QueueCall.objects.count() == 4
        assert sorted(visits) == ["c1", "c2", "c3", "c4"]
        c1, c2, c3, c4 = (visits[c] for c in ("c1", "c2", "c3", "c4"))
        assert c1.queue == acme_queues[0]
        assert (c1.outcome, c1.agent, c1.waited_seconds, c1.within_sla, c1.sla_breached) == (
            "answered", "101", 22.5, False, True,
        )  # fmt: skip
        assert (c1.caller, c1.caller_name, c1.vip) == ("+3212345", "Ann", True)
        assert c1.talk_seconds == pytest.approx(5.0)
        assert c1.joined_at.timestamp() == pytest.approx(t, abs=0.001)
        assert (c2.outcome, c2.waited_seconds, c2.left_at is not None) == ("abandoned", 30, True)
        assert (c3.outcome, c3.waited_seconds) == ("max_wait", 600)
        assert (c3.left_at - c3.joined_at).total_seconds() == pytest.approx(600, abs=0.01)
        assert (c2.sla_breached, c2.within_sla) == (False, False)
        assert (c4.outcome, c4.callback_number) == ("callback", "+3277777")
        states = list(AgentStateChange.objects.values_list("extension", "queue_number",
                                                           "state", "reason", "by"))  # fmt: skip
        assert states == [("101", "600", "not_ready", "Lunch", "phone")]
    with in_tenant(world.tenant_b):
        assert list(QueueCall.objects.values_list("call_id", "queue_id")) == [("b1", None)]
    # Everything was acknowledged (the unknown type too): nothing is pending.
    assert rds.xpending(stream, "cdr")["pending"] == 0


def test_fanout_sends_queue_events_and_one_wallboard_frame_per_tenant(
    world, in_tenant, acme_queues, fanout, xadd, clean_cc
):
    """User story: a supervisor's wallboard and the company's CRM socket follow the queue;
    a batch of queue events gives each one event frame per event and the wallboard one frame;
    the other company hears nothing."""
    xadd("queue.joined", **q(A, "600", "c1", caller="+3212345", position="1", vip="0"))
    xadd("agent.state", **q(A, "600", agent="102", state="ready", by="api"))
    xadd("queue.answered", **q(A, "600", "c1", agent="101", waited="3.0", sla="1"))
    xadd("queue.supervision", **q(A, "600", "c1", supervisor="102", agent="101",
                                  mode="listen"))  # fmt: skip
    groups = [group_name(A), group_name(B), f"tenant.{A}.wallboard", f"tenant.{B}.wallboard"]
    got = _drain_and_collect(fanout, groups, expected=5)

    events = [m["event"] for m in got[group_name(A)]]
    assert [(e["type"], e["topic"], e["tenant"]) for e in events] == [
        ("queue.joined", "queues", "acme"),
        ("agent.state", "queues", "acme"),
        ("queue.answered", "queues", "acme"),
        ("queue.supervision", "queues", "acme"),
    ]
    assert events[0]["data"] == {"tenant_id": "1", "queue": "600", "call_id": "c1",
                                 "caller": "+3212345", "position": "1", "vip": "0"}  # fmt: skip
    [frame] = got[f"tenant.{A}.wallboard"]
    assert frame["type"] == "wallboard.update"
    assert [x["number"] for x in frame["wallboard"]["queues"]] == ["600", "601"]
    assert got[group_name(B)] == got[f"tenant.{B}.wallboard"] == []
    with in_tenant(world.tenant_a):
        assert OutboxEvent.objects.filter(topic="queues").count() == 4
    # Handled again (a crash before the XACK) nothing is appended twice.
    fanout.handle("0-1", {"type": "queue.sla", "schema": A, "queue": "600", "call_id": "c1"})
    fanout.handle("0-1", {"type": "queue.sla", "schema": A, "queue": "600", "call_id": "c1"})
    with in_tenant(world.tenant_a):
        assert OutboxEvent.objects.filter(type="queue.sla").count() == 1


def test_call_events_of_agents_update_the_wallboard_others_do_not(
    world, in_tenant, acme_queues, fanout, xadd, clean_cc
):
    """An agent's call moves the wallboard (ringing, on a call); a call between non-agents
    of a tenant with queues does not."""
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        do_create_extension(number="103", display_name="Not an agent", sip_password=SIP_PASSWORD,
                            actor=SYSTEM)  # fmt: skip
    from telephony.engine.snapshots import publish_tenant

    publish_tenant(world.tenant_a.pk)
    xadd("call.started", **call(A, "n1", "103", "104"))
    got = _drain_and_collect(fanout, [f"tenant.{A}.wallboard"], expected=0)
    assert got[f"tenant.{A}.wallboard"] == []

    xadd("call.started", **call(A, "a1", "103", "101"))
    xadd("call.answered", **call(A, "a1", "", "101", legs=["103", "101"], leg="b1"))
    got = _drain_and_collect(fanout, [f"tenant.{A}.wallboard"], expected=1)
    [frame] = got[f"tenant.{A}.wallboard"]
    sales = frame["wallboard"]["queues"][0]
    assert {a["number"]: a["state"] for a in sales["agent_list"]} == {
        "101": "on_call",
        "102": "ready",
    }


def test_a_webhook_subscribed_to_a_queue_event_gets_it_signed(
    world, api, in_tenant, acme_queues, fanout, xadd, receiver, fast_webhooks, clean_cc
):
    """User story: the company's CRM subscribes to answered and abandoned queue calls; it
    receives those, signed, and not the other queue events."""
    bad = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/", {"url": receiver.url, "event_types": ["queue.bogus"]}
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "VALIDATION_ERROR"
    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/",
        {"url": receiver.url, "event_types": ["queue.answered", "queue.left"]},
    )
    assert response.status_code == 201, response.json()
    hook = response.json()
    receiver.secret = hook["secret"]
    receiver.start("up")
    every = api(world.a_admin, world.tenant_a).post(
        "/api/v1/webhooks/", {"url": receiver.url + "/all", "event_types": ["queues"]}
    )
    assert every.status_code == 201, every.json()

    xadd("queue.joined", **q(A, "600", "c1", caller="+3212345"))
    xadd("queue.answered", **q(A, "600", "c1", agent="101", waited="3.0", sla="1"))
    xadd("queue.left", **q(A, "600", "c2", reason="abandoned", waited="9.0"))
    xadd("agent.state", **q(A, "600", agent="101", state="wrap_up", by="engine"))
    fanout.drain()

    with in_tenant(world.tenant_a):
        assert WebhookDelivery.objects.filter(endpoint_id=hook["id"]).count() == 2
        assert WebhookDelivery.objects.filter(endpoint_id=every.json()["id"]).count() == 4
    run_endpoint(A, hook["id"])
    wait_until(lambda: len(receiver.accepted) == 2)
    bodies = [r["body"] for r in receiver.accepted]
    assert [(b["type"], b["topic"], b["data"]["call_id"]) for b in bodies] == [
        ("queue.answered", "queues", "c1"),
        ("queue.left", "queues", "c2"),
    ]
    assert bodies[1]["data"]["reason"] == "abandoned"
    assert all(r["signed"] for r in receiver.accepted)
