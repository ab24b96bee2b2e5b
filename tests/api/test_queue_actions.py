"""Call queues through ``callcenter.actions`` (the code the API, the portal and the admin
call): every bad field is a field error and nothing is written; numbers are shared with the
tenant's dial plan; the quota and the ``feature_queues`` capability hold; a queue something
sends calls to is not deleted (409); the engine's snapshot carries the queues as
``contract.CallCenterSnapshot`` (round trip through Redis); agents' states are written to the
contract's ``AGENTS`` hash, announced and appended to the events stream."""

import json

import pytest
from django.db import connection

from audio.models import MusicClass, Prompt, media_path
from callcenter import actions
from callcenter.agents import agent_states
from callcenter.models import AgentSkill, Queue, QueueAgent
from callcenter.snapshot import callcenter_snapshot
from pbx.audit import SYSTEM
from pbx.errors import CapabilityExceeded, Conflict, NotFound, QuotaExceeded, ValidationFailed
from telephony.engine.snapshots import published_snapshot
from telephony.engine.store import client, redis_key
from telephony.sip import contract
from tenants.models import Tenant

from .checks import events_after, events_stream_end

pytestmark = pytest.mark.django_db

SUPPORT = {
    "number": "800",
    "name": "Support",
    "strategy": "skills",
    "agents": ["102", "101"],
    "supervisors": ["101"],
    "required_skills": {"english": 3},
    "ring_seconds": 15,
    "max_wait_seconds": 300,
    "overflow": {"kind": "voicemail", "target": "101"},
    "vip": ["+4930123456", "0049XXX."],
    "blacklist": ["0900!"],
    "caller_id_prefix": "Sup:",
}


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def _errors(fields: dict, queue=None) -> dict:
    def write():
        if queue is None:
            return actions.do_create_queue(actor=SYSTEM, fields=fields)
        return actions.do_update_queue(queue, actor=SYSTEM, fields=fields)

    with pytest.raises(ValidationFailed) as caught:
        write()
    return caught.value.fields


def test_a_queue_is_written_with_its_agents_and_supervisors(acme):
    queue = actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    assert actions.queue_agents(queue) == ["102", "101"]
    assert actions.queue_supervisors(queue) == ["101"]
    assert queue.vip == ["+4930123456", "0049XXX."]
    assert queue.overflow == {"kind": "voicemail", "target": "101"}
    queue = actions.do_update_queue(queue, actor=SYSTEM, fields={"agents": ["101"], "name": "S"})
    assert (actions.queue_agents(queue), queue.name, queue.strategy) == (["101"], "S", "skills")
    assert actions.queue_supervisors(queue) == ["101"]  # not given: kept


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "Bad\r\nInvite: x"}, "name"),
        ({"caller_id_prefix": "a\x00"}, "caller_id_prefix"),
        ({"name": ""}, "name"),
        ({"number": "101"}, "number"),  # an extension's
        ({"number": "12a"}, "number"),
        ({"strategy": "random"}, "strategy"),
        ({"ring_seconds": 1}, "ring_seconds"),
        ({"max_wait_seconds": 10**6}, "max_wait_seconds"),
        ({"wrap_up_seconds": -1}, "wrap_up_seconds"),
        ({"sla_percent": 101}, "sla_percent"),
        ({"enabled": "yes"}, "enabled"),
        ({"vip": ["12ab"]}, "vip"),
        ({"blacklist": ["1" * 10] * 201}, "blacklist"),
        ({"blacklist": "0900"}, "blacklist"),
        ({"required_skills": {"english": 11}}, "required_skills"),
        ({"required_skills": {"bad skill": 2}}, "required_skills"),
        ({"agents": ["999"]}, "agents"),
        ({"agents": ["101", "101"]}, "agents"),
        ({"supervisors": "101"}, "supervisors"),
        ({"overflow": {"kind": "queue", "target": "800"}}, "overflow"),  # itself
        ({"overflow": {"kind": "extension", "target": "999"}}, "overflow"),
        ({"music_class": 999999}, "music_class"),
        ({"greeting": "x"}, "greeting"),
        ({"recording": "sometimes"}, "recording"),
        ({"callback_prefix": "9a"}, "callback_prefix"),
    ],
)
def test_bad_fields_are_field_errors_and_nothing_is_written(acme, change, field):
    assert field in _errors({**SUPPORT, **change})
    assert not Queue.objects.exists()


def test_overflow_between_queues_may_not_loop(acme):
    first = actions.do_create_queue(actor=SYSTEM, fields={"number": "800", "name": "A"})
    actions.do_create_queue(
        actor=SYSTEM,
        fields={"number": "801", "name": "B", "overflow": {"kind": "queue", "target": "800"}},
    )
    errors = _errors({"overflow": {"kind": "queue", "target": "801"}}, first)
    assert errors["overflow"] == ["the overflow leads back to this queue"]


def test_numbers_are_shared_with_the_dial_plan(acme):
    from telephony.team import do_create_ring_group

    do_create_ring_group(actor=SYSTEM, fields={"number": "600", "name": "Sales"})
    assert _errors({**SUPPORT, "number": "600"})["number"] == [
        "ring group 600 'Sales' has this number"
    ]
    actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    assert _errors({**SUPPORT, "name": "Again"})["number"] == [
        "queue 800 'Support' has this number"
    ]


def test_a_queue_number_is_taken_for_the_other_features(acme):
    """The other way round: an extension or ring group may not take a queue's number, and
    what a queue overflows to is not deleted from under it."""
    from telephony.actions import do_create_extension, do_delete_extension
    from telephony.team import do_create_ring_group

    actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    with pytest.raises(ValidationFailed) as caught:
        do_create_ring_group(actor=SYSTEM, fields={"number": "800", "name": "Sales"})
    assert caught.value.fields["number"] == ["queue 800 'Support' has this number"]
    with pytest.raises((ValidationFailed, Conflict)) as refused:
        do_create_extension(
            number="800", display_name="Clash", sip_password="Sip-Secret-Pass-77", actor=SYSTEM
        )
    assert "queue 800" in str(refused.value.fields or refused.value.message)
    ext, *_ = do_create_extension(
        number="150", display_name="Night", sip_password="Sip-Secret-Pass-77", actor=SYSTEM
    )
    actions.do_update_queue(
        Queue.objects.get(number="800"),
        actor=SYSTEM,
        fields={"overflow": {"kind": "extension", "target": "150"}},
    )
    with pytest.raises(Conflict) as blocked:
        do_delete_extension(ext, actor=SYSTEM)
    assert "queue 800 'Support' (overflow)" in blocked.value.message
    # A queue keeps its own number when it is changed.
    queue = actions.do_update_queue(
        Queue.objects.get(number="800"), actor=SYSTEM, fields={"number": "800", "name": "S2"}
    )
    assert queue.name == "S2"


def test_quota_and_capability(acme):
    Tenant.objects.filter(pk=acme.pk).update(max_queues=1)
    actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    with pytest.raises(QuotaExceeded):
        actions.do_create_queue(actor=SYSTEM, fields={"number": "801", "name": "Two"})
    assert Queue.objects.count() == 1
    acme.feature_queues = False
    try:
        with pytest.raises(CapabilityExceeded):
            actions.do_create_queue(actor=SYSTEM, fields={"number": "802", "name": "Three"})
        with pytest.raises(CapabilityExceeded):
            actions.do_set_agent_state(actor=SYSTEM, extension="101", state="ready")
    finally:
        acme.feature_queues = True


def test_a_queue_something_sends_calls_to_is_not_deleted(acme):
    from telephony.team import do_create_ring_group

    queue = actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    other = actions.do_create_queue(
        actor=SYSTEM,
        fields={"number": "801", "name": "B", "overflow": {"kind": "queue", "target": "800"}},
    )
    group = do_create_ring_group(
        actor=SYSTEM,
        fields={"number": "600", "name": "Sales", "overflow": {"kind": "queue", "target": "800"}},
    )
    with pytest.raises(Conflict) as caught:
        actions.do_delete_queue(queue, actor=SYSTEM)
    assert "ring group 600 'Sales' (when nobody answers)" in caught.value.message
    assert "queue 801 'B' (overflow)" in caught.value.message
    # Renumbering it would strand them as well.
    with pytest.raises(Conflict):
        actions.do_update_queue(queue, actor=SYSTEM, fields={"number": "809"})
    from telephony.team import do_delete_ring_group

    do_delete_ring_group(group, actor=SYSTEM)
    actions.do_update_queue(other, actor=SYSTEM, fields={"overflow": None})
    actions.do_delete_queue(queue, actor=SYSTEM)
    assert not Queue.objects.filter(number="800").exists()
    assert not QueueAgent.objects.filter(queue_id=queue.pk).exists()


def test_deleting_an_agent_extension_leaves_its_queues(acme):
    from telephony.actions import do_create_extension, do_delete_extension

    ext, *_ = do_create_extension(
        number="150", display_name="Temp", sip_password="Sip-Secret-Pass-77", actor=SYSTEM
    )
    queue = actions.do_create_queue(
        actor=SYSTEM, fields={**SUPPORT, "agents": ["150", "101"], "supervisors": ["150"]}
    )
    do_delete_extension(ext, actor=SYSTEM)
    assert actions.queue_agents(queue) == ["101"]
    assert actions.queue_supervisors(queue) == []
    assert [q.agent("150") for q in callcenter_snapshot().queues.values()] == [None]


def test_the_snapshot_carries_the_queues(acme, django_capture_on_commit_callbacks):
    music = MusicClass.objects.create(name="Jazz")
    prompt = Prompt.objects.create(name="queue-hello", file="prompts/acme/hello.wav")
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_set_agent_skills(
            acme_ext("102"), actor=SYSTEM, skills={"english": 5, "german": 2}
        )
        actions.do_create_queue(
            actor=SYSTEM, fields={**SUPPORT, "music_class": music.pk, "greeting": prompt.pk}
        )
    expected = contract.Queue(
        number="800",
        name="Support",
        strategy="skills",
        agents=(
            contract.QueueAgent(number="102", skills={"english": 5, "german": 2}),
            contract.QueueAgent(number="101", skills={}),
        ),
        required_skills={"english": 3},
        ring_seconds=15.0,
        max_wait_seconds=300.0,
        overflow=contract.RouteTarget(kind="voicemail", target="101"),
        music_class=str(music.pk),
        greeting=media_path("prompts/acme/hello.wav"),
        vip=("+4930123456", "0049XXX."),
        blacklist=("0900!",),
        supervisors=("101",),
        caller_id_prefix="Sup:",
    )
    assert callcenter_snapshot().queues == {"800": expected}
    published = published_snapshot(client(), acme.sip_domain)
    assert published is not None
    assert published.callcenter.queues == {"800": expected}
    assert str(music.pk) in published.media.moh_classes
    # Skills are replaced and republished. (The test's transaction never commits: the
    # publish already run stays queued and would stand for the next one.)
    connection.run_on_commit.clear()
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_set_agent_skills(acme_ext("102"), actor=SYSTEM, skills={"french": 7})
    published = published_snapshot(client(), acme.sip_domain)
    assert published is not None
    assert published.callcenter.queues["800"].agent("102") == contract.QueueAgent(
        number="102", skills={"french": 7}
    )
    assert set(AgentSkill.objects.values_list("skill", flat=True)) == {"french"}
    with pytest.raises(ValidationFailed):
        actions.do_set_agent_skills(acme_ext("102"), actor=SYSTEM, skills={"french": 0})


def acme_ext(number: str):
    from telephony.models import Extension

    return Extension.objects.get(number=number)


def test_agent_states_are_written_announced_and_streamed(acme):
    actions.do_create_queue(actor=SYSTEM, fields=SUPPORT)
    actions.do_create_queue(
        actor=SYSTEM, fields={"number": "801", "name": "B", "agents": ["101"], "auto_ready": False}
    )
    queues = list(Queue.objects.prefetch_related("agents__extension"))
    key = redis_key(contract.AGENTS, schema=connection.schema_name)
    r = client()
    r.delete(key)
    # Nothing stored: each queue's default.
    states = agent_states(queues)
    assert states[("800", "101")].state == "ready"
    assert states[("801", "101")].state == "logged_out"

    after = events_stream_end()
    pubsub = r.pubsub()
    pubsub.subscribe(redis_key(contract.AGENTS_CHANGED))
    assert pubsub.get_message(timeout=2)["type"] == "subscribe"

    written = actions.do_set_agent_state(
        actor=SYSTEM, extension="101", state="not_ready", reason="Lunch"
    )
    assert set(written) == {"800", "801"}
    stored = contract.AgentStatus.read(r.hget(key, contract.agent_field("801", "101")))
    assert stored is not None
    assert (stored.state, stored.reason, stored.by) == ("not_ready", "Lunch", "api")
    assert stored.since > 0
    message = pubsub.get_message(timeout=2)
    assert message is not None
    assert message["data"] == connection.schema_name.encode()
    events = events_after(after, "agent.state")
    assert [(e["queue"], e["agent"], e["state"], e["reason"], e["by"]) for e in events] == [
        ("800", "101", "not_ready", "Lunch", "api"),
        ("801", "101", "not_ready", "Lunch", "api"),
    ]
    assert {e["schema"] for e in events} == {connection.schema_name}
    assert {e["tenant_id"] for e in events} == {str(acme.pk)}
    pubsub.close()

    actions.do_set_agent_state(actor=SYSTEM, extension="101", state="ready", queue="801")
    states = agent_states(queues)
    assert states[("801", "101")].state == "ready"
    assert states[("800", "101")].state == "not_ready"

    with pytest.raises(ValidationFailed):
        actions.do_set_agent_state(actor=SYSTEM, extension="102", state="ready", queue="801")
    with pytest.raises(ValidationFailed):
        actions.do_set_agent_state(actor=SYSTEM, extension="101", state="wrap_up")
    with pytest.raises(ValidationFailed):
        actions.do_set_agent_state(
            actor=SYSTEM, extension="101", state="not_ready", reason="a\r\nb"
        )
    with pytest.raises(NotFound):
        actions.do_set_agent_state(actor=SYSTEM, extension="999", state="ready")
    with pytest.raises(NotFound):
        actions.do_set_agent_state(actor=SYSTEM, extension="101", state="ready", queue="799")
    r.delete(key)
    assert json.loads(contract.AgentStatus().to_json())["state"] == "logged_out"
