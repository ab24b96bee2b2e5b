"""End to end, live: the contact centre's wallboard follows a queue in a real browser.

User story: a tenant administrator has the wallboard open. A caller joins queue 700: without
a reload the queue shows one caller waiting, the caller's number and a waiting time that
counts up; the caller waits past the queue's 20 s service level and the board raises an
alert (``role="alert"``). Agent 1001 answers: nobody waits any more and 1001 shows "On call";
agent 1002 goes "not ready" with a reason, and the board's agent counts follow.

Every process but the engine's queue is the real one, each a process of its own on a database
of its own and a dedicated Redis database (``tests/e2e/test_live_status.py``'s stack): the web
server (uvicorn, two workers, the wallboard's WebSocket), ``manage.py sipengine`` and
``manage.py events_fanout``, which turns engine events into the wallboard's frames. The
queue's engine side is not in this branch, so the test writes what it writes, as it writes
it: the waiting callers in ``contract.QUEUE_LIVE``, agent states in ``contract.AGENTS`` and the
``queue.*``, ``agent.state`` and ``call.*`` entries on the engine's event stream.
"""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import fill_sign_in
from tests.e2e.test_live_status import (  # noqa: F401 - the stack is that module's fixture
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    REDIS_URL,
    live_stack,
)

SCHEMA = "t_demo"  # seed_demo's tenant


class Engine:
    """What the engine writes for a queue, on the stack's Redis database."""

    def __init__(self) -> None:
        import redis
        from django.conf import settings

        self.prefix = settings.SIP_REDIS_PREFIX
        self.rds = redis.Redis.from_url(REDIS_URL)

    def key(self, template: str) -> str:
        from telephony.sip.contract import key

        return key(self.prefix, template, schema=SCHEMA)

    def event(self, kind: str, **fields) -> None:
        from redis.typing import EncodableT, FieldT

        from telephony.sip.contract import EVENTS

        entry: dict[FieldT, EncodableT] = {
            "type": kind,
            "schema": SCHEMA,
            "ts": f"{time.time():.3f}",
        }
        entry.update({k: str(v) for k, v in fields.items()})
        self.rds.xadd(self.key(EVENTS), entry)

    def waiting(self, *callers) -> None:
        from telephony.sip.contract import QUEUE_LIVE, QueueLive

        self.rds.hset(
            self.key(QUEUE_LIVE), "700|e2e", QueueLive(waiting=callers, at=time.time()).to_json()
        )

    def agent(self, ext: str, state: str, reason: str = "") -> None:
        from telephony.sip.contract import AGENTS, AgentStatus

        status = AgentStatus(state=state, reason=reason, since=time.time(), by="phone")
        self.rds.hset(self.key(AGENTS), f"700:{ext}", status.to_json())
        self.event("agent.state", queue="700", agent=ext, state=state, reason=reason, by="phone")

    def close(self) -> None:
        self.rds.close()


@pytest.mark.e2e
def test_wallboard_follows_callers_and_agents_live(live_stack):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    from telephony.sip.contract import WaitingCaller

    base = live_stack["base"]
    engine = Engine()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/accounts/login/")
            fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
            expect(page).to_have_url(f"{base}/portal/dashboard/")
            # The admin makes queue 700 with agents 1001 and 1002 (20 s service level).
            nav = page.get_by_role("navigation", name="Main")
            nav.get_by_role("link", name="Queues").click()
            page.get_by_role("link", name="Add queue").click()
            page.fill("#id_number", "700")
            page.fill("#id_name", "Support")
            page.get_by_label("Agent 1", exact=True).fill("1001")
            page.get_by_label("Agent 2", exact=True).fill("1002")
            page.get_by_role("button", name="Create queue").click()
            expect(page).to_have_url(f"{base}/portal/queues/")
            expect(page.get_by_test_id("queues")).to_contain_text("Support")
            nav.get_by_role("link", name="Wallboard").click()
            expect(page).to_have_url(f"{base}/portal/queues/wallboard/")
            expect(page.get_by_test_id("live-connection")).to_have_text("live")
            waiting = page.get_by_test_id("wb-waiting-700")
            expect(waiting).to_have_text("0")
            expect(page.get_by_test_id("wb-agents-700-ready")).to_have_text("2")
            assert_accessible(page)
            # A marker that a reload would wipe: every change below arrives over the socket.
            page.evaluate("window.__notReloaded = true")

            # A caller joins the queue (it has been ringing through the menu for 15 s).
            ann = WaitingCaller(call_id="q1", caller="+12025550123", caller_name="Ann",
                                since=time.time() - 15)  # fmt: skip
            engine.waiting(ann)
            engine.event("queue.joined", queue="700", call_id="q1", caller=ann.caller,
                         caller_name="Ann", position="1", vip="0")  # fmt: skip
            expect(waiting).to_have_text("1")
            caller = page.get_by_test_id("wb-caller-700-1")
            expect(caller).to_contain_text("+12025550123")
            expect(caller).to_contain_text("Ann")
            # The waiting time counts up in the page between frames.
            longest = page.get_by_test_id("wb-longest-700")
            expect(longest).to_have_text("0:17", timeout=5_000)
            # Past the 20 s service level: the engine's queue.sla, and the board alerts.
            alerts = page.get_by_test_id("wb-alerts-700")
            expect(alerts).to_be_empty()
            time.sleep(max(0.0, ann.since + 21 - time.time()))
            engine.event("queue.sla", queue="700", call_id="q1", waited="21.0")
            expect(alerts).to_contain_text("Ann has waited")
            expect(alerts).to_have_attribute("role", "alert")
            assert_accessible(page)

            # Agent 1001 answers: the caller leaves the queue for 1001's phone.
            engine.event("call.started", call_id="q1", caller=ann.caller, callee="1001",
                         direction="inbound")  # fmt: skip
            engine.event("call.ringing", call_id="q1", caller=ann.caller, callee="1001")
            expect(page.get_by_test_id("wb-state-700-1001")).to_have_text("Ringing")
            engine.waiting()
            engine.event("queue.answered", queue="700", call_id="q1", agent="1001",
                         waited="22.0", sla="0")  # fmt: skip
            engine.event("call.answered", call_id="q1", caller=ann.caller, callee="1001",
                         legs=json.dumps([{"leg": "b", "user": "1001"}]))  # fmt: skip
            expect(waiting).to_have_text("0")
            expect(page.get_by_test_id("wb-state-700-1001")).to_have_text("On call")
            expect(page.get_by_test_id("wb-agents-700-on_call")).to_have_text("1")
            expect(page.get_by_test_id("wb-agents-700-ready")).to_have_text("1")
            expect(page.get_by_test_id("wb-callers-700")).to_contain_text("Nobody is waiting.")

            # 1002 takes a break from its phone.
            engine.agent("1002", "not_ready", "Lunch")
            expect(page.get_by_test_id("wb-state-700-1002")).to_have_text("Not ready")
            expect(page.get_by_test_id("wb-agent-700-1002")).to_contain_text("Lunch")
            expect(page.get_by_test_id("wb-agents-700-not_ready")).to_have_text("1")
            expect(page.get_by_test_id("wb-agents-700-ready")).to_have_text("0")

            # The call ends: 1001 is ready again (its wrap-up is the engine's to start).
            engine.event("call.ended", call_id="q1", caller=ann.caller, callee="1001",
                         reason="normal")  # fmt: skip
            expect(page.get_by_test_id("wb-state-700-1001")).to_have_text("Ready")
            assert page.evaluate("window.__notReloaded") is True
        except Exception:
            sys.stderr.write(live_stack["log"].read_text()[-6000:])
            raise
        finally:
            engine.close()
            browser.close()
