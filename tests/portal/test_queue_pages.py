"""The contact centre's portal pages on a tenant's host.

A tenant administrator lists, adds, edits and deletes call queues (every setting, agents in
hunt order, supervisors), a bad form shows its errors and changes nothing, a queue in use
says by what; another tenant's queues are out of reach (404) and an end user opens none of
the admin pages. The wallboard renders its payload for admins and supervisors only. An agent
logs in and out and says ready or not ready on "My queues", which changes the agents' state
in Redis. The queue reports page shows and exports the statistics. Set-up through the real
actions; results read from the tenant's schema and Redis."""

from __future__ import annotations

import re
import time
from html import unescape

import pytest
from django.conf import settings

from callcenter import actions as cc
from callcenter.models import AgentSkill, Queue, QueueCall
from pbx.audit import SYSTEM
from telephony.sip.contract import AGENTS, QUEUE_LIVE, AgentStatus, QueueLive, WaitingCaller
from telephony.sip.contract import key as contract_key
from telephony.team import do_create_ring_group
from tests.portal.calls_helpers import call

from .pages import assert_out_of_reach, field_errors

pytestmark = pytest.mark.django_db

Q = "/portal/queues"


def queue_post(agents=(), **kw) -> dict:
    data = {
        "number": "700",
        "name": "Support",
        "enabled": "on",
        "strategy": "hunt",
        "ring_seconds": "15",
        "wrap_up_seconds": "5",
        "required_skills": "",
        "auto_ready": "on",
        "music_class": "",
        "greeting": "",
        "announce_position": "on",
        "announce_wait": "on",
        "announce_seconds": "30",
        "caller_id_prefix": "",
        "recording": "",
        "max_wait_seconds": "300",
        "max_callers": "0",
        "overflow_kind": "",
        "overflow_target": "",
        "callback_prefix": "",
        "vip": "",
        "blacklist": "",
        "sla_seconds": "20",
        "sla_percent": "80",
    }
    rows = list(agents) + [""] * 5
    for i, number in enumerate(rows):
        data[f"agent_{i}"] = number
    data.update(kw)
    return data


def make_queue(in_tenant, tenant, **fields):
    with in_tenant(tenant):
        return cc.do_create_queue(
            actor=SYSTEM, fields={"number": "700", "name": "Support", **fields}
        )


@pytest.fixture
def cc_redis(rds, world):
    """The two tenants' agent states and waiting callers, empty before and after."""

    def wipe():
        for tenant in (world.tenant_a, world.tenant_b):
            for template in (AGENTS, QUEUE_LIVE):
                rds.delete(
                    contract_key(settings.SIP_REDIS_PREFIX, template, schema=tenant.schema_name)
                )

    wipe()
    yield rds
    wipe()


def agent_state(rds, tenant, queue: str, ext: str) -> AgentStatus | None:
    key = contract_key(settings.SIP_REDIS_PREFIX, AGENTS, schema=tenant.schema_name)
    return AgentStatus.read(rds.hget(key, f"{queue}:{ext}"))


# ------------------------------------------------------------------------------ queue pages


def test_queues_empty_then_made_edited_and_deleted(portal, world, in_tenant, cc_redis):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{Q}/").content.decode()
    assert 'data-testid="no-queues"' in html
    assert "Contact centre" in html
    assert 'href="/portal/queues/"' in html
    form = p.get(f"{Q}/add/").content.decode()
    legends = ("Distribution", "Waiting experience", "Limits and overflow", "Callback",
               "VIP and blocked callers", "Service level", "Supervisors", "Agents")  # fmt: skip
    for legend in legends:
        assert f"<legend>{legend}</legend>" in form
    assert '<option value="101">101 · ' in form  # the agent picker's suggestions
    assert '<option value="ring_group"' in form  # an overflow kind
    r = p.post(
        f"{Q}/add/",
        queue_post(
            ["102", "101"],
            overflow_kind="voicemail",
            overflow_target="101",
            vip="+12025550100\n+1202555*",
            blacklist="+19005550100",
            required_skills="french=5\nbilling=2",
            supervisors=["101"],
            callback="on",
            callback_prefix="9",
        ),
    )
    assert r.status_code == 302, [
        (n, field_errors(r.content.decode(), n)) for n in ("number", "agent_0", "agents")
    ]
    with in_tenant(world.tenant_a):
        queue = Queue.objects.get()
        assert [a.extension.number for a in queue.agents.all()] == ["102", "101"]
        assert queue.overflow == {"kind": "voicemail", "target": "101"}
        assert queue.vip == ["+12025550100", "+1202555*"]
        assert queue.blacklist == ["+19005550100"]
        assert queue.required_skills == {"french": 5, "billing": 2}
        assert [e.number for e in queue.supervisors.all()] == ["101"]
        assert (queue.strategy, queue.ring_seconds, queue.callback) == ("hunt", 15, True)
    html = p.get(f"{Q}/").content.decode()
    assert "Voicemail 101" in html
    assert "In order" in html
    assert re.search(rf'data-testid="agents-{queue.pk}">2<', html)
    assert re.search(rf'data-testid="waiting-{queue.pk}">0<', html)
    edit = p.get(f"{Q}/{queue.pk}/").content.decode()
    assert re.search(r'name="agent_0"[^>]*value="102"', edit)
    assert "french=5" in edit
    r = p.post(f"{Q}/{queue.pk}/", queue_post(["101"], name="Helpdesk", strategy="ring_all"))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        queue.refresh_from_db()
        assert (queue.name, queue.strategy, queue.overflow, queue.vip) == (
            "Helpdesk", "ring_all", None, [])  # fmt: skip
        assert [a.extension.number for a in queue.agents.all()] == ["101"]
        assert not queue.supervisors.exists()
    page = p.get(f"{Q}/{queue.pk}/delete/").content.decode()
    assert "Nothing sends calls to this queue" in page
    assert p.post(f"{Q}/{queue.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not Queue.objects.exists()


def test_a_bad_queue_form_shows_errors_and_changes_nothing(portal, world, in_tenant):
    queue = make_queue(in_tenant, world.tenant_a, agents=["101"])
    p = portal(world.a_admin, world.tenant_a)
    html = p.post(f"{Q}/add/", queue_post(number="101")).content.decode()
    assert field_errors(html, "number")  # an extension has this number
    html = p.post(f"{Q}/add/", queue_post(["101", "999"], number="721")).content.decode()
    assert field_errors(html, "agent_1")
    assert field_errors(html, "agent_0") == []
    html = p.post(f"{Q}/add/", queue_post(number="721", sla_percent="120")).content.decode()
    assert field_errors(html, "sla_percent")
    html = p.post(f"{Q}/add/", queue_post(number="721", required_skills="french")).content
    assert field_errors(html.decode(), "required_skills")
    html = p.post(
        f"{Q}/add/", queue_post(number="721", overflow_kind="ivr", overflow_target="899")
    ).content.decode()
    assert field_errors(html, "overflow_target")
    r = p.post(f"{Q}/{queue.pk}/", queue_post(["999"], name="Changed"))
    assert r.status_code == 200
    with in_tenant(world.tenant_a):
        assert list(Queue.objects.values_list("number", "name")) == [("700", "Support")]
        assert [a.extension.number for a in Queue.objects.get().agents.all()] == ["101"]


def test_a_queue_in_use_says_by_what_and_stays(portal, world, in_tenant):
    queue = make_queue(in_tenant, world.tenant_a)
    with in_tenant(world.tenant_a):
        do_create_ring_group(actor=SYSTEM, fields={"number": "600", "name": "Sales",
                             "overflow": {"kind": "queue", "target": "700"}})  # fmt: skip
        cc.do_create_queue(actor=SYSTEM, fields={"number": "720", "name": "Backup",
                           "overflow": {"kind": "queue", "target": "700"}})  # fmt: skip
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{Q}/{queue.pk}/delete/").content.decode()
    assert "ring group 600" in unescape(html).lower()
    assert "queue 720 'Backup' (overflow)" in unescape(html)
    assert 'data-testid="group-delete"' not in html
    r = p.post(f"{Q}/{queue.pk}/delete/", follow=True)
    assert r.status_code == 200
    assert 'class="msg msg--error"' in r.content.decode()
    with in_tenant(world.tenant_a):
        assert Queue.objects.filter(number="700").exists()


def test_empty_agents_and_no_extensions(portal, world, in_tenant):
    queue = make_queue(in_tenant, world.tenant_a)
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{Q}/").content.decode()
    assert re.search(rf'data-testid="agents-{queue.pk}"><span class="note">none', html)
    board = p.get(f"{Q}/wallboard/").content.decode()
    assert "No agents." in board
    assert "Nobody is waiting." in board
    # A tenant without extensions: the agent picker says so.
    b = portal(world.b_admin, world.tenant_b)
    with in_tenant(world.tenant_b):
        from telephony.models import Extension

        Extension.objects.all().delete()
    assert 'data-testid="no-agents"' in b.get(f"{Q}/add/").content.decode()


def test_another_tenants_queue_is_404_and_users_open_no_admin_page(portal, world, in_tenant):
    queue = make_queue(in_tenant, world.tenant_a)
    b = portal(world.b_admin, world.tenant_b)
    assert_out_of_reach(b.client, f"{Q}/{queue.pk}/", queue_post(name="Taken"))
    with in_tenant(world.tenant_a):
        assert Queue.objects.get().name == "Support"
    user = portal(world.a_user, world.tenant_a)
    for path in ("", "add/", f"{queue.pk}/", f"{queue.pk}/delete/", "wallboard/", "reports/"):
        assert user.get(f"{Q}/{path}").status_code == 404, path
    assert user.post(f"{Q}/wallboard/supervise/", {"queue": "700"}).status_code == 404
    html = user.get("/portal/me/").content.decode()
    assert 'href="/portal/queues/"' not in html


def test_agent_skills_page(portal, world, in_tenant):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    make_queue(in_tenant, world.tenant_a, agents=["101"])
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/extensions/{ext.pk}/skills/").content.decode()
    assert "700 Support" in html
    r = p.post(f"/portal/extensions/{ext.pk}/skills/", {"skills": "french=7\nbilling=3"})
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        assert dict(AgentSkill.objects.values_list("skill", "level")) == {
            "french": 7, "billing": 3}  # fmt: skip
    html = p.post(f"/portal/extensions/{ext.pk}/skills/", {"skills": "french=11"}).content
    assert field_errors(html.decode(), "skills")
    html = p.post(f"/portal/extensions/{ext.pk}/skills/", {"skills": "nonsense"}).content
    assert field_errors(html.decode(), "skills")
    with in_tenant(world.tenant_a):
        assert AgentSkill.objects.count() == 2
    assert (
        portal(world.a_user, world.tenant_a).get(f"/portal/extensions/{ext.pk}/skills/").status_code
        == 404
    )


# -------------------------------------------------------------------------------- wallboard


def test_wallboard_renders_the_payload(portal, world, in_tenant, cc_redis, me):
    make_queue(in_tenant, world.tenant_a, agents=["101", "103"], supervisors=["103"])
    live = contract_key(settings.SIP_REDIS_PREFIX, QUEUE_LIVE, schema=world.tenant_a.schema_name)
    now = time.time()
    waiting = QueueLive(
        waiting=(
            WaitingCaller(call_id="c1", caller="+12025550100", caller_name="Ann", since=now - 95),
        ),  # fmt: skip
        at=now,
    )
    cc_redis.hset(live, "700|e1", waiting.to_json())
    with in_tenant(world.tenant_a):
        cc.do_set_agent_state(
            actor=SYSTEM, extension="101", state="not_ready", reason="Lunch", by="api"
        )
    admin = portal(world.a_admin, world.tenant_a)
    html = admin.get(f"{Q}/wallboard/").content.decode()
    assert 'data-testid="wb-queue-700"' in html
    assert re.search(r'data-testid="wb-waiting-700">1<', html)
    assert re.search(r'data-testid="wb-longest-700"[^>]*>1:3[45]<', html)
    assert "+12025550100" in html
    assert "Ann" in html
    assert re.search(r'data-testid="wb-agents-700-not_ready">1<', html)
    assert "Lunch" in html
    # Waiting longer than the SLA's 20 s: an alert.
    assert re.search(r'role="alert" data-testid="wb-alerts-700"><p class="wbalert">Ann', html)
    # The supervisor (103, a plain user) sees their queue; the admin without an extension has
    # no supervise buttons.
    sup = portal(me.user, world.tenant_a)
    html = sup.get(f"{Q}/wallboard/").content.decode()
    assert 'data-testid="wb-queue-700"' in html
    assert 'href="/portal/queues/wallboard/"' in html  # in the supervisor's menu
    assert sup.get(f"{Q}/").status_code == 404


def test_wallboard_supervise_button(portal, world, in_tenant, cc_redis, me, live):
    make_queue(in_tenant, world.tenant_a, agents=["101"], supervisors=["103"])
    sup = portal(me.user, world.tenant_a)
    html = sup.get(f"{Q}/wallboard/").content.decode()
    assert 'data-testid="wb-listen-700-101"' not in html  # 101 is on no call
    # 101 answers a call (the fan-out's live state): the buttons appear, for 103's phone.
    schema = world.tenant_a.schema_name
    live.add("call.started", **call(schema, "k1", "+12025550100", "101", legs=[]))
    live.add("call.answered", **call(schema, "k1", "+12025550100", "101", legs=["101"]))
    live.drain()
    html = sup.get(f"{Q}/wallboard/").content.decode()
    assert re.search(r'data-testid="wb-state-700-101">On call<', html)
    for mode in ("listen", "whisper", "barge"):
        assert f'data-testid="wb-{mode}-700-101"' in html
    # An admin without an extension of their own has none.
    admin = portal(world.a_admin, world.tenant_a).get(f"{Q}/wallboard/").content.decode()
    assert 'data-testid="wb-state-700-101">On call<' in admin
    assert 'data-testid="wb-listen-700-101"' not in admin
    r = sup.post(
        f"{Q}/wallboard/supervise/",
        {"queue": "700", "agent": "101", "mode": "whisper"},
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert r.status_code == 200, r.content
    assert r.json()["message"].startswith("Your phone (103) rings")
    # 102 is not the queue's agent: the action's refusal, as JSON.
    r = sup.post(
        f"{Q}/wallboard/supervise/",
        {"queue": "700", "agent": "102", "mode": "listen"},
        HTTP_X_REQUESTED_WITH="fetch",
    )
    assert r.status_code == 400
    assert r.json()["message"]
    r = sup.post(f"{Q}/wallboard/supervise/", {"queue": "799", "agent": "101", "mode": "barge"})
    assert r.status_code == 404
    r = sup.post(f"{Q}/wallboard/supervise/", {"queue": "700", "agent": "101", "mode": "shout"})
    assert r.status_code == 302


# -------------------------------------------------------------------------------- my queues


def test_my_queues_buttons_change_the_redis_state(portal, world, in_tenant, cc_redis, me):
    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/queues/").content.decode()
    assert 'data-testid="no-queues"' in html
    make_queue(in_tenant, world.tenant_a, agents=["103"])
    with in_tenant(world.tenant_a):
        cc.do_create_queue(actor=SYSTEM, fields={"number": "721", "name": "Sales",
                                                  "agents": ["103", "101"]})  # fmt: skip
    html = p.get("/portal/me/queues/").content.decode()
    assert 'href="/portal/me/queues/"' in html  # in the agent's menu
    assert 'data-testid="my-queue-700"' in html
    assert 'data-testid="my-queue-721"' in html
    A = world.tenant_a
    r = p.post("/portal/me/queues/", {"queue": "700", "state": "not_ready", "reason": "Lunch"})
    assert r.status_code == 302
    status = agent_state(cc_redis, A, "700", "103")
    assert (status.state, status.reason, status.by) == ("not_ready", "Lunch", "portal")
    assert agent_state(cc_redis, A, "721", "103") is None or agent_state(
        cc_redis, A, "721", "103").state != "not_ready"  # fmt: skip
    html = p.get("/portal/me/queues/").content.decode()
    assert re.search(r'data-testid="state-700" data-state="not_ready">Not ready \(Lunch\)', html)
    # All queues at once.
    assert p.post("/portal/me/queues/", {"queue": "", "state": "logged_out"}).status_code == 302
    for number in ("700", "721"):
        assert agent_state(cc_redis, A, number, "103").state == "logged_out"
    assert p.post("/portal/me/queues/", {"queue": "721", "state": "ready"}).status_code == 302
    assert agent_state(cc_redis, A, "721", "103").state == "ready"
    assert agent_state(cc_redis, A, "700", "103").state == "logged_out"
    # Not their queue, or another tenant's: 404; nothing changes.
    with in_tenant(world.tenant_a):
        cc.do_create_queue(actor=SYSTEM, fields={"number": "722", "name": "Other",
                                                  "agents": ["101"]})  # fmt: skip
    assert p.post("/portal/me/queues/", {"queue": "722", "state": "ready"}).status_code == 404
    assert agent_state(cc_redis, A, "722", "103") is None
    assert agent_state(cc_redis, A, "722", "101") is None


def test_my_queues_without_an_extension(portal, world):
    html = portal(world.a_user, world.tenant_a).get("/portal/me/queues/").content.decode()
    assert 'data-testid="no-extension"' in html


# ---------------------------------------------------------------------------------- reports


def test_queue_reports_and_csv(portal, world, in_tenant):
    from django.utils import timezone

    queue = make_queue(in_tenant, world.tenant_a, agents=["101"])
    now = timezone.now()
    with in_tenant(world.tenant_a):
        QueueCall.objects.create(call_id="c1", queue=queue, queue_number="700", caller="+1202",
                                 joined_at=now, answered_at=now, agent="101",
                                 outcome="answered", waited_seconds=5, talk_seconds=60,
                                 within_sla=True)  # fmt: skip
        QueueCall.objects.create(call_id="c2", queue=queue, queue_number="700", caller="+1203",
                                 joined_at=now, left_at=now, outcome="abandoned",
                                 waited_seconds=40, sla_breached=True)  # fmt: skip
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{Q}/reports/").content.decode()
    assert 'data-testid="queue-stats"' in html
    assert 'data-testid="agent-stats"' in html
    assert "700" in html
    assert "101" in html
    day = now.date().isoformat()
    r = p.get(f"{Q}/reports/", {"start": day, "end": day, "queue": "700", "bucket": "day",
                                "export": "queues"})  # fmt: skip
    assert r.status_code == 200
    assert r["Content-Type"].startswith("text/csv")
    body = b"".join(r.streaming_content).decode()
    assert "700" in body
    r = p.get(f"{Q}/reports/", {"start": day, "end": day, "export": "agents"})
    assert "101" in b"".join(r.streaming_content).decode()
    html = p.get(f"{Q}/reports/", {"start": day, "end": "2000-01-01"}).content.decode()
    assert 'data-testid="report-errors"' in html
