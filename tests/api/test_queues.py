"""Call queues and agents in the REST API on the tenant's host: queues written through
``callcenter.actions`` (agents and supervisors as extension numbers; field errors in the API's
body); agents' states set by an admin or by the agent itself land in the contract's ``AGENTS``
hash, are announced on ``AGENTS_CHANGED`` and appended to the events stream; a supervisor's
request reaches the engines as ``SuperviseCall`` on the control channel; skills are replaced;
another tenant's queues and agents are 404."""

import pytest
from django_tenants.utils import tenant_context

from callcenter.models import Queue
from pbx.audit import SYSTEM
from telephony.actions import do_create_extension
from telephony.engine.store import client, redis_key
from telephony.models import Extension
from telephony.sip import contract

from .checks import assert_field_errors, audited, events_after, events_stream_end

pytestmark = pytest.mark.django_db

SUPPORT = {
    "number": "890",
    "name": "Support",
    "strategy": "hunt",
    "agents": ["102", "101"],
    "supervisors": ["101"],
    "overflow": {"kind": "voicemail", "target": "101"},
    "vip": ["+4930123456"],
}


@pytest.fixture
def agents_hash(world):
    """Tenant A's AGENTS hash, empty before and after."""
    key = redis_key(contract.AGENTS, schema=world.tenant_a.schema_name)
    client().delete(key)
    yield key
    client().delete(key)


@pytest.fixture
def staff_is_102(world):
    """Tenant A's end user signs in as extension 102."""
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=world.a_user.pk)
    yield "102"
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=None)


def _queue(admin, **change) -> dict:
    r = admin.post("/api/v1/queues/", {**SUPPORT, **change})
    assert r.status_code == 201, r.content
    return r.json()


def test_queues_are_written_through_the_action(api, world):
    admin = api(world.a_admin, world.tenant_a)
    queue = _queue(admin)
    assert (queue["agents"], queue["supervisors"]) == (["102", "101"], ["101"])
    assert queue["overflow"] == {"kind": "voicemail", "target": "101"}
    assert (queue["music_class"], queue["greeting"], queue["auto_ready"]) == (None, None, True)
    url = f"/api/v1/queues/{queue['id']}/"
    r = admin.patch(url, {"agents": ["101"], "ring_seconds": 30})
    assert r.status_code == 200, r.content
    assert (r.json()["agents"], r.json()["ring_seconds"], r.json()["name"]) == (
        ["101"],
        30,
        "Support",
    )
    assert admin.get("/api/v1/queues/?q=Supp").json()["total"] == 1
    assert {"queue.create", "queue.update"} <= audited(world.tenant_a, world.a_admin)
    # Where calls go: an inbound rule may send calls to it, and then it is not deleted.
    kinds = admin.get("/api/v1/routing/destinations/").json()
    assert "queue" in str(kinds)
    r = admin.post(
        "/api/v1/ring-groups/",
        {"number": "861", "name": "Front", "overflow": {"kind": "queue", "target": "890"}},
    )
    assert r.status_code == 201, r.content
    group = r.json()["id"]
    r = admin.delete(url)
    assert r.status_code == 409
    assert "ring group 861 'Front'" in r.json()["message"]
    assert admin.delete(f"/api/v1/ring-groups/{group}/").status_code == 204
    assert admin.delete(url).status_code == 204
    with tenant_context(world.tenant_a):
        assert not Queue.objects.exists()


def test_bad_queues_are_field_errors(api, world):
    admin = api(world.a_admin, world.tenant_a)
    assert_field_errors(
        admin,
        "/api/v1/queues/",
        SUPPORT,
        [
            ({"name": "Evil\r\nX-Header: 1"}, "name"),
            ({"caller_id_prefix": "a\nb"}, "caller_id_prefix"),
            ({"number": "101"}, "number"),
            ({"agents": ["555"]}, "agents"),
            ({"vip": ["not a number"]}, "vip"),
            ({"overflow": {"kind": "queue", "target": "890"}}, "overflow"),
            ({"ring_seconds": 0}, "ring_seconds"),
            ({"music_class": 123456}, "music_class"),
        ],
    )
    with tenant_context(world.tenant_a):
        assert not Queue.objects.exists()


def _agent_events(after: str) -> list[tuple[str, ...]]:
    return [
        (f["schema"], f["queue"], f["agent"], f["state"], f["reason"], f["by"])
        for f in events_after(after, contract.EventType.AGENT_STATE)
    ]


def test_an_admin_sets_agents_states(api, world, agents_hash):
    admin = api(world.a_admin, world.tenant_a)
    queue = _queue(admin)
    r = client()
    # Nothing stored: the queue's default (auto_ready).
    got = admin.get(f"/api/v1/queues/{queue['id']}/agents/")
    assert got.status_code == 200, got.content
    assert [(a["agent"], a["state"]) for a in got.json()] == [("102", "ready"), ("101", "ready")]

    after = events_stream_end()
    pubsub = r.pubsub()
    pubsub.subscribe(redis_key(contract.AGENTS_CHANGED))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    url = f"/api/v1/queues/{queue['id']}/agents/102/state/"
    answer = admin.post(url, {"state": "not_ready", "reason": "Break"})
    assert answer.status_code == 200, answer.content
    assert [(a["queue"], a["state"], a["reason"]) for a in answer.json()] == [
        ("890", "not_ready", "Break")
    ]
    stored = contract.AgentStatus.read(r.hget(agents_hash, "890:102"))
    assert stored is not None
    assert (stored.state, stored.reason, stored.by) == ("not_ready", "Break", "api")
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert message["data"] == world.tenant_a.schema_name.encode()
    pubsub.close()
    schema = world.tenant_a.schema_name
    assert _agent_events(after) == [(schema, "890", "102", "not_ready", "Break", "api")]
    got = admin.get(f"/api/v1/queues/{queue['id']}/agents/").json()
    assert [(a["agent"], a["state"]) for a in got] == [("102", "not_ready"), ("101", "ready")]

    # Every queue of the agent at once.
    answer = admin.post("/api/v1/agents/101/state/", {"state": "logged_out"})
    assert answer.status_code == 200, answer.content
    assert [(a["queue"], a["state"]) for a in answer.json()] == [("890", "logged_out")]

    # Not an agent of the queue (101 and 102 are; an unknown extension is not found).
    with tenant_context(world.tenant_a):
        do_create_extension(number="150", display_name="New", actor=SYSTEM)
    bad = admin.post(f"/api/v1/queues/{queue['id']}/agents/150/state/", {"state": "ready"})
    assert bad.status_code == 400
    assert "agent" in bad.json()["fields"]
    assert admin.post("/api/v1/agents/150/state/", {"state": "ready"}).status_code == 400
    assert admin.post("/api/v1/agents/555/state/", {"state": "ready"}).status_code == 404
    bad = admin.post(url, {"state": "wrap_up"})
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["state"])
    assert r.hget(agents_hash, "890:150") is None


def test_an_agent_sets_its_own_state(api, world, agents_hash, staff_is_102):
    admin = api(world.a_admin, world.tenant_a)
    _queue(admin)
    _queue(admin, number="891", name="Sales", agents=["102"], auto_ready=False)
    me = api(world.a_user, world.tenant_a)
    got = me.get("/api/v1/me/agent/")
    assert got.status_code == 200, got.content
    assert got.json()["extension"] == "102"
    assert [(q["queue"], q["state"]) for q in got.json()["queues"]] == [
        ("890", "ready"),
        ("891", "logged_out"),
    ]
    r = me.post("/api/v1/me/agent/", {"state": "ready", "queue": "891"})
    assert r.status_code == 200, r.content
    assert [(q["queue"], q["state"]) for q in r.json()["queues"]] == [
        ("890", "ready"),
        ("891", "ready"),
    ]
    r = me.post("/api/v1/me/agent/", {"state": "not_ready", "reason": "Meeting"})
    assert {(q["state"], q["reason"]) for q in r.json()["queues"]} == {("not_ready", "Meeting")}
    # Not its queue's agent elsewhere, nor anybody else's state.
    assert me.post("/api/v1/me/agent/", {"state": "ready", "queue": "999"}).status_code == 404
    assert me.post("/api/v1/agents/101/state/", {"state": "ready"}).status_code == 403
    assert me.get("/api/v1/queues/").status_code == 403
    # Without an extension: nothing to be an agent as.
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=None)
    assert me.get("/api/v1/me/agent/").status_code == 404


def test_skills_are_replaced(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.put("/api/v1/agent-skills/101/", {"skills": {"english": 4, "german": 2}})
    assert r.status_code == 200, r.content
    assert r.json() == {"extension": "101", "skills": {"english": 4, "german": 2}}
    r = admin.put("/api/v1/agent-skills/101/", {"skills": {"french": 11}})
    assert r.status_code == 400
    assert "skills" in r.json()["fields"]
    assert admin.get("/api/v1/agent-skills/").json() == [
        {"extension": "101", "skills": {"english": 4, "german": 2}}
    ]
    assert admin.get("/api/v1/agent-skills/555/").status_code == 404
    assert (
        api(world.a_user, world.tenant_a)
        .put("/api/v1/agent-skills/101/", {"skills": {}})
        .status_code
        == 403
    )


def test_supervise(api, world, staff_is_102):
    admin = api(world.a_admin, world.tenant_a)
    queue = _queue(admin)
    url = f"/api/v1/queues/{queue['id']}/supervise/"
    r = client()
    pubsub = r.pubsub()
    pubsub.subscribe(redis_key(contract.CONTROL))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"
    # 102 is an agent, not a supervisor: refused, as the admin naming it and as itself.
    bad = admin.post(url, {"supervisor": "102", "agent": "101", "mode": "whisper"})
    assert (bad.status_code, list(bad.json()["fields"])) == (400, ["supervisor"])
    me = api(world.a_user, world.tenant_a)
    assert me.post(url, {"agent": "101"}).status_code == 403
    assert pubsub.get_message(timeout=0.3) is None

    sent = admin.post(url, {"supervisor": "101", "agent": "102", "mode": "whisper"})
    assert sent.status_code == 202, sent.content
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert contract.ControlMessage.from_json(message["data"]) == contract.SuperviseCall(
        schema=world.tenant_a.schema_name, supervisor="101", agent="102", mode="whisper"
    )
    # A supervisor without routing.manage asks for itself.
    admin.patch(f"/api/v1/queues/{queue['id']}/", {"supervisors": ["102"], "agents": ["101"]})
    sent = me.post(url, {"agent": "101", "mode": "barge"})
    assert sent.status_code == 202, sent.content
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert contract.ControlMessage.from_json(message["data"]) == contract.SuperviseCall(
        schema=world.tenant_a.schema_name, supervisor="102", agent="101", mode="barge"
    )
    assert me.post(url, {"supervisor": "101", "agent": "101"}).status_code == 403
    assert admin.post(url, {"supervisor": "102", "agent": "101", "mode": "x"}).status_code == 400
    pubsub.close()


def test_another_tenants_queues_and_agents_are_not_found(api, world, agents_hash):
    admin = api(world.a_admin, world.tenant_a)
    queue = _queue(admin)
    other = api(world.b_admin, world.tenant_b)
    # B's admin on B's host: A's queue id is not B's.
    for method, path, body in (
        ("get", f"/api/v1/queues/{queue['id']}/", None),
        ("patch", f"/api/v1/queues/{queue['id']}/", {"name": "Mine"}),
        ("delete", f"/api/v1/queues/{queue['id']}/", None),
        ("get", f"/api/v1/queues/{queue['id']}/agents/", None),
        ("post", f"/api/v1/queues/{queue['id']}/agents/102/state/", {"state": "ready"}),
        ("post", f"/api/v1/queues/{queue['id']}/supervise/", {"supervisor": "101", "agent": "102"}),
        ("post", "/api/v1/agents/102/state/", {"state": "ready"}),
        ("put", "/api/v1/agent-skills/102/", {"skills": {"x": 1}}),
    ):
        r = getattr(other, method)(path, body)
        assert r.status_code == 404, (method, path, r.content)
    # B's admin with a token on A's host: nothing of A's exists for it.
    intruder = api(world.b_admin, world.tenant_a)
    assert intruder.get(f"/api/v1/queues/{queue['id']}/agents/").status_code in (401, 404)
    assert other.get("/api/v1/queues/").json()["total"] == 0
    assert client().hlen(agents_hash) == 0
    with tenant_context(world.tenant_a):
        assert Queue.objects.get(pk=queue["id"]).name == "Support"
