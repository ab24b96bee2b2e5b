"""The wallboard: its payload from the engines' waiting callers, agent states, live calls and
today's queue calls; its API; and the live socket (who may open it, what each one sees, an
update after a fan-out batch)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from channels.testing import WebsocketCommunicator
from django_tenants.utils import schema_context

from callcenter.models import Queue, QueueCall
from callcenter.wallboard import wallboard
from events.live import LiveState
from telephony.models import Extension
from telephony.sip.contract import AgentStatus, QueueLive, WaitingCaller, agent_field
from tests.events.test_pubsub import _refused, _session_for
from tests.sockets import committed

from .conftest import A, make_queue

pytestmark = pytest.mark.django_db


def _engines_wrote(rds, schema: str, now: float) -> None:
    """Two engines hold callers of queue 600; agent 101 is in wrap-up and on a call, 102 not
    ready; nobody set a state in 601 (not auto-ready: logged out)."""
    live = {
        "600|e1": QueueLive(waiting=(WaitingCaller("c1", "+3212345", "Ann", now - 30),), at=now),
        "600|e2": QueueLive(
            waiting=(WaitingCaller("c2", "+3299999", "", now - 5, vip=True, callback=""),), at=now
        ),
    }
    rds.hset(f"cc:live:{schema}", mapping={k: v.to_json() for k, v in live.items()})
    rds.hset(
        f"cc:agents:{schema}",
        mapping={
            agent_field("600", "101"): AgentStatus("wrap_up", "", now - 3, now + 7, "engine")
            .to_json(),
            agent_field("600", "102"): AgentStatus("not_ready", "Lunch", now - 60, 0, "phone")
            .to_json(),
        },
    )  # fmt: skip
    LiveState(rds).put_call(schema, "x1", {"state": "answered", "started_at": now - 2,
                                           "parties": {"101": "on_call"}})  # fmt: skip


def test_payload(world, in_tenant, acme_queues, rds, clean_cc, clean_live):
    now = time.time()
    joined = datetime.fromtimestamp(now - 1, tz=UTC)
    with in_tenant(world.tenant_a):
        for i, (outcome, within) in enumerate(
            [("answered", True), ("answered", False), ("abandoned", False), ("max_wait", False)]
        ):
            QueueCall.objects.create(call_id=f"t{i}", queue_number="600", joined_at=joined,
                                     outcome=outcome, within_sla=within)  # fmt: skip
        QueueCall.objects.create(call_id="old", queue_number="600", outcome="answered",
                                 joined_at=datetime(2020, 1, 1, tzinfo=UTC))  # fmt: skip
    _engines_wrote(rds, A, now)

    board = wallboard(A, redis=rds, now=now)
    assert board["at"] == round(now, 3)
    sales, support = board["queues"]
    assert sales["callers"] == [
        {"caller": "+3299999", "caller_name": "", "since": now - 5, "vip": True, "callback": ""},
        {"caller": "+3212345", "caller_name": "Ann", "since": now - 30, "vip": False,
         "callback": ""},
    ]  # fmt: skip
    assert (sales["number"], sales["name"], sales["waiting"], sales["longest_wait"]) == (
        "600", "Sales", 2, 30.0,
    )  # fmt: skip
    assert (sales["answered"], sales["abandoned"], sales["overflowed"]) == (2, 1, 1)
    assert (sales["service_level"], sales["sla_percent"], sales["sla_seconds"]) == (33.3, 80, 20)
    assert sales["alert"] is True
    assert sales["alerts"] == [
        "Service level 33.3% is below the 80% target.",
        "Ann has waited 30 s (over 20 s).",
    ]
    assert sales["agents"] == {"ready": 0, "not_ready": 1, "logged_out": 0, "wrap_up": 0,
                               "on_call": 1, "ringing": 0}  # fmt: skip
    assert sales["agent_list"] == [
        {"number": "101", "name": "Acme 101", "state": "on_call", "reason": "",
         "since": now - 3},
        {"number": "102", "name": "Acme 102", "state": "not_ready", "reason": "Lunch",
         "since": now - 60},
    ]  # fmt: skip
    assert (support["waiting"], support["longest_wait"], support["callers"]) == (0, 0.0, [])
    assert (support["service_level"], support["alert"], support["alerts"]) == (None, False, [])
    assert support["agents"]["logged_out"] == 1
    assert support["agent_list"][0]["since"] is None

    # The call ends and the wrap-up is over: 101 counts as ready again.
    LiveState(rds).put_call(A, "x1", None)
    later = wallboard(A, redis=rds, now=now + 8, queues=["600"])
    assert [q["number"] for q in later["queues"]] == ["600"]
    assert later["queues"][0]["agents"]["ready"] == 1

    # Beta has no queues: an empty board, nothing of Acme's.
    assert wallboard(world.tenant_b, redis=rds)["queues"] == []


def test_wallboard_api(api, world, in_tenant, acme_queues, clean_cc):
    admin = api(world.a_admin, world.tenant_a).get("/api/v1/wallboard/")
    assert admin.status_code == 200
    assert [q["number"] for q in admin.json()["queues"]] == ["600", "601"]
    assert api(world.a_user, world.tenant_a).get("/api/v1/wallboard/").status_code == 403
    with in_tenant(world.tenant_a):
        Extension.objects.filter(number="102").update(user=world.a_user)
        Queue.objects.get(number="600").supervisors.add(Extension.objects.get(number="102"))
    mine = api(world.a_user, world.tenant_a).get("/api/v1/wallboard/")
    assert mine.status_code == 200
    assert [q["number"] for q in mine.json()["queues"]] == ["600"]
    assert api(None, world.tenant_a).get("/api/v1/wallboard/").status_code == 401
    beta = api(world.b_admin, world.tenant_b).get("/api/v1/wallboard/")
    assert (beta.status_code, beta.json()["queues"]) == (200, [])


PATH = "/ws/portal/wallboard/"


def _socket(host: str, cookie: bytes | None = None):
    from pbx.asgi import application

    headers = [(b"host", host.encode())]
    if cookie is not None:
        headers += [(b"cookie", cookie), (b"origin", f"https://{host}".encode())]
    return WebsocketCommunicator(application, PATH, headers=headers)


def test_live_socket(world, fanout, xadd, rds, clean_cc, ws):
    """User story: the tenant admin's wallboard shows every queue, a supervisor's only the
    queues they supervise; both get an update after a batch of queue events; a user who
    supervises nothing, another tenant's admin and anonymous visitors are refused."""
    from django.contrib.sessions.models import Session

    def setup():
        with schema_context(A):
            make_queue("600", agents=("101",), supervisors=("102",), name="Sales")
            make_queue("601", agents=("102",), name="Support")

    def link(user):
        with schema_context(A):
            Extension.objects.filter(number="102").update(user=user)

    def teardown():
        with schema_context(A):
            Queue.objects.all().delete()
            Extension.objects.filter(number="102").update(user=None)
        Session.objects.filter(session_key__in=keys).delete()

    committed(setup)
    keys = [_session_for(u) for u in (world.a_admin, world.a_user, world.b_admin)]
    admin_c, user_c, beta_c = (f"sessionid={k}".encode() for k in keys)
    try:

        async def refusals():
            error, code = await _refused(_socket("acme.test"))
            assert (code, error["code"]) == (4401, "NOT_AUTHENTICATED")
            error, code = await _refused(_socket("acme.test", user_c))  # supervises nothing
            assert (code, error["code"]) == (4403, "PERMISSION_DENIED")
            error, code = await _refused(_socket("acme.test", beta_c))  # not Acme's
            assert code == 4401

        ws.run(refusals())
        committed(lambda: link(world.a_user))

        async def open_(cookie):
            comm = _socket("acme.test", cookie)
            connected, _ = await comm.connect()
            assert connected
            first = await comm.receive_json_from(timeout=5)
            assert first["type"] == "wallboard"
            return comm, first["wallboard"]

        admin, board = ws.run(open_(admin_c))
        assert [q["number"] for q in board["queues"]] == ["600", "601"]
        supervisor, board = ws.run(open_(user_c))
        assert [q["number"] for q in board["queues"]] == ["600"]

        now = time.time()
        rds.hset(f"cc:live:{A}", "600|e1",
                 QueueLive(waiting=(WaitingCaller("c1", "+3212345", "", now),), at=now)
                 .to_json())  # fmt: skip
        xadd("queue.joined", schema=A, queue="600", call_id="c1", caller="+3212345")
        xadd("queue.sla", schema=A, queue="600", call_id="c1", waited="20.0")
        fanout.drain()

        async def update(comm):
            frame = await comm.receive_json_from(timeout=5)
            assert frame["type"] == "wallboard.update"
            assert await comm.receive_nothing(timeout=0.3)  # one frame for the batch
            return frame["wallboard"]

        seen = ws.run(update(admin))
        assert [(q["number"], q["waiting"]) for q in seen["queues"]] == [("600", 1), ("601", 0)]
        seen = ws.run(update(supervisor))
        assert [(q["number"], q["waiting"]) for q in seen["queues"]] == [("600", 1)]

        async def ping(comm):
            await comm.send_to(text_data="not json")
            await comm.send_json_to({"action": "ping"})
            assert (await comm.receive_json_from(timeout=3))["type"] == "pong"

        ws.run(ping(admin))
        ws.run(admin.disconnect())
        ws.run(supervisor.disconnect())
    finally:
        committed(teardown)
        rds.delete(f"cc:live:{A}")
