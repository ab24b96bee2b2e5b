"""End to end, live, with the real engine and real phones: the wallboard follows a queue as
callers join and agents answer.

User story: a tenant administrator makes queue 700 "Support" in the portal (agents 1001 and
1002, ring all) and opens the wallboard. A caller (a pjsua2 phone, extension 1003) calls 700:
without a reload the queue shows one caller waiting and its longest wait counting up; a second
caller (1004) calls: two waiting. Agent 1001's phone rings and is answered: 1001 shows "On
call" and one caller is left waiting. The first caller hangs up: the queue has answered one
call today and 1001 is in wrap-up (or ready again). The second caller gives up and hangs up
while waiting: one abandoned, nobody waiting. Agent 1002 (signed in to the portal in another
browser) says it is not ready on its "My queues" page: the board shows 1002 "Not ready".

Every process is the real one, as ``make run`` starts it (``pbx.processes``), each a process of
its own on a database of its own, a Redis database of its own and free ports: the web server
(uvicorn, two workers: the page and its WebSocket), ``manage.py sipengine`` (the queues), the
media server (the callers' music) and rtpengine, ``manage.py events_fanout`` (engine events to
the wallboard's frames) and Celery worker and beat (the CDR drain, which writes the
``QueueCall`` rows today's answered and abandoned figures are counted from). The phones are
pjsua2 (``tests/sip/pjphone.py``); the browser is headless Debian Chromium via Playwright.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

import pytest

from pbx.processes import processes
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import CHROMIUM_ARGS, _free_port, fill_sign_in
from tests.e2e.test_live_status import _free_udp_port, demo_stack

ROOT = Path(__file__).resolve().parents[2]
HOST = "wall.localhost"  # Chromium resolves *.localhost to loopback
ADMIN_EMAIL = "admin@wall.localhost"
ADMIN_PASSWORD = "Blue-Pilot-" + secrets.token_hex(4)
AGENT_EMAIL = "bob@wall.localhost"  # extension 1002's sign-in
AGENT_PASSWORD = "Green-Harbour-" + secrets.token_hex(4)
SIP_PASSWORD = "Sip-Wall-Pass-" + secrets.token_hex(4)
# A Redis database of this test's own (emptied before and after); change it with
# PBX_E2E_WALL_REDIS_DB when it collides with another test's.
REDIS_DB = int(os.environ.get("PBX_E2E_WALL_REDIS_DB", "11"))
REDIS_URL = f"{os.environ.get('PBX_TEST_REDIS', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"

# Caller 1004 (seed_demo makes 1001-1003) and extension 1002's portal user, made with the
# actions in the stack's database.
SETUP = f"""
from django_tenants.utils import tenant_context
from pbx.audit import SYSTEM
from telephony.actions import do_create_extension, do_update_extension
from telephony.models import Extension
from tenants.models import Tenant
with tenant_context(Tenant.objects.get(slug="demo")):
    do_create_extension(number="1004", display_name="Dave", sip_password="{SIP_PASSWORD}",
                        actor=SYSTEM)
    do_update_extension(Extension.objects.get(number="1002"), email="{AGENT_EMAIL}",
                        web_password="{AGENT_PASSWORD}", actor=SYSTEM)
"""


@pytest.fixture(scope="module")
def call_centre(tmp_path_factory):
    """A migrated database with the demo tenant (its admin; extensions 1001-1004 with a known
    SIP password; 1002 may sign in), served by every process of ``make run``; all removed
    after."""
    from tests.sip.test_media_features import tone_media

    ng_port, dtmf_port, media_port = _free_udp_port(), _free_udp_port(), _free_port()
    # Media ports of their own, away from the other tests' rtpengines (30000 + pid % 300).
    rtp_base = 41000 + (os.getpid() % 100) * 200
    tmp = tmp_path_factory.mktemp("e2e-wall")
    run_dir = tmp / "run"
    run_dir.mkdir()
    media = {
        "PBX_RTPENGINE_NG": f"127.0.0.1:{ng_port}",
        "PBX_RTPENGINE_DTMF": f"127.0.0.1:{dtmf_port}",
        "PBX_RTP_INTERFACE": "127.0.0.1",
        "PBX_RTP_PORT_MIN": str(rtp_base),
        "PBX_RTP_PORT_MAX": str(rtp_base + 99),
        "PBX_RECORDING_DIR": str(tmp / "recordings"),
        "PBX_MEDIA_CONTROL": f"127.0.0.1:{media_port}",
        "PBX_MEDIA_RTP_PORT_MIN": str(rtp_base + 100),
        "PBX_MEDIA_RTP_PORT_MAX": str(rtp_base + 199),
        # Every shipped prompt and the default music on hold as short tones (the media server
        # plays the queue's greeting, music and announcements from here).
        "PBX_MEDIA_DIR": tone_media(str(tmp / "media")),
        "PBX_RUN_DIR": str(run_dir),
    }
    with demo_stack(
        "wall",
        tmp / "stack.log",
        redis_url=REDIS_URL,
        host=HOST,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        sip_password=SIP_PASSWORD,
        env=media,
    ) as stack:
        stack.manage("shell", "-c", SETUP)
        made = {p.name: p.argv for p in processes(stack.env, ROOT)}
        # rtpengine and the media server first: the engine connects to both.
        stack.start([*made["rtpengine"], "--log-level=4"])
        stack.start(made["media"])
        stack.engine(made["sip"])
        stack.start([*made["fanout"], "--consumer=e2e-wall"])
        # The CDR drain: beat sends it every 2 s, the worker runs it.
        stack.start(made["worker"])
        stack.start(made["beat"])
        yield stack.serve()


def _seconds(text: str) -> int:
    minutes, _, seconds = text.strip().partition(":")
    return int(minutes) * 60 + int(seconds)


class Board:
    """Queue 700 on the wallboard, read as a person reads it: its region (the section named by
    its heading), a figure by its term ("Waiting"), an agent's state in the "Agents" table, the
    callers in the "Callers waiting" table."""

    def __init__(self, page) -> None:
        self.page = page
        self.queue = page.get_by_role("region", name="700 Support")

    def figure(self, term: str):
        return self.queue.locator(f"dl > div:has(> dt:text-is('{term}')) > dd")

    def agent(self, number: str):
        row = self.queue.get_by_role("table", name="Agents").get_by_role("row")
        return row.filter(has=self.page.get_by_role("cell", name=re.compile(rf"^{number}\b")))

    def state(self, number: str):
        return self.agent(number).locator(".badge")

    def callers(self):
        return self.queue.get_by_role("table", name="Callers waiting").locator("tbody tr")


@pytest.mark.e2e
def test_wallboard_follows_real_callers_and_agents(call_centre):
    from playwright.sync_api import expect, sync_playwright

    from tests.sip.pjphone import Phone

    base, proxy = call_centre["base"], call_centre["proxy"]
    expect.set_options(timeout=15_000)  # a frame follows the drain, every 2 s
    phones: list[Phone] = []

    def phone(name: str, number: str, **kw) -> tuple[Phone, int]:
        p = Phone(name, **kw)
        phones.append(p)
        return p, p.account(number, HOST, proxy, SIP_PASSWORD)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            # Every wallboard socket the page opens: one for the whole story (a socket that
            # dropped and came back would bring a fresh board and hide a missing frame).
            sockets: list[str] = []
            page.on(
                "websocket",
                lambda ws: sockets.append(ws.url) if "/wallboard/" in ws.url else None,
            )
            page.goto(f"{base}/accounts/login/")
            fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
            expect(page).to_have_url(f"{base}/portal/dashboard/")
            # The admin makes queue 700: agents 1001 and 1002, every ready agent rung at once.
            nav = page.get_by_role("navigation", name="Main")
            nav.get_by_role("link", name="Queues").click()
            page.get_by_role("link", name="Add queue").click()
            page.fill("#id_number", "700")
            page.fill("#id_name", "Support")
            page.select_option("#id_strategy", label="Ring all available agents")
            page.get_by_label("Agent 1", exact=True).fill("1001")
            page.get_by_label("Agent 2", exact=True).fill("1002")
            page.get_by_role("button", name="Create queue").click()
            expect(page).to_have_url(f"{base}/portal/queues/")
            expect(page.get_by_test_id("queues")).to_contain_text("Support")

            # The agents' phones ring as soon as they are offered a call (a 180 from the
            # phone itself); the callers' phones are on other desks.
            agent1, _ = phone("agent-1001", "1001", auto_ring=True)
            agent2, _ = phone("agent-1002", "1002", auto_ring=True)
            ann, ann_acc = phone("caller-1003", "1003")
            dave, dave_acc = phone("caller-1004", "1004")

            nav.get_by_role("link", name="Wallboard").click()
            expect(page).to_have_url(f"{base}/portal/queues/wallboard/")
            expect(page.get_by_test_id("live-connection")).to_have_text("live")
            board = Board(page)
            expect(board.figure("Waiting")).to_have_text("0")
            expect(board.state("1001")).to_have_text("Ready")
            expect(board.state("1002")).to_have_text("Ready")
            expect(board.callers()).to_have_text(["Nobody is waiting."])
            # A marker that a reload would wipe: every change below arrives over the socket.
            page.evaluate("window.__notReloaded = true")

            # The first caller: one waiting, its wait counting up; both agents' phones ring.
            first = ann.call(ann_acc, f"sip:700@{HOST}")
            ann.wait_state(first, "CONFIRMED")  # the media server took it: it hears music
            expect(board.figure("Waiting")).to_have_text("1")
            expect(board.callers()).to_have_count(1)
            expect(board.callers().first).to_contain_text("1003")
            longest = board.figure("Longest wait")
            expect(longest).to_have_text(re.compile(r"^0:\d\d$"))
            seen = _seconds(longest.inner_text())
            expect(longest).not_to_have_text(longest.inner_text(), timeout=5_000)
            assert _seconds(longest.inner_text()) > seen
            ring1 = agent1.incoming()
            ring2 = agent2.incoming()

            # The second caller: two waiting, in the order they came.
            second = dave.call(dave_acc, f"sip:700@{HOST}")
            dave.wait_state(second, "CONFIRMED")
            expect(board.figure("Waiting")).to_have_text("2")
            expect(board.callers()).to_have_count(2)
            expect(board.callers().nth(0)).to_contain_text("1003")
            expect(board.callers().nth(1)).to_contain_text("1004")
            assert_accessible(page)

            # 1001 answers after a ring: it talks to the first caller; 1002 stops ringing for
            # it (and is offered the second caller, and does not answer).
            agent1.answer(ring1["call"], 200)
            agent1.wait_state(ring1["call"], "CONFIRMED")
            agent2.wait_state(ring2["call"], "DISCONNECTED")
            expect(board.state("1001")).to_have_text("On call")
            expect(board.figure("Waiting")).to_have_text("1")
            expect(board.callers()).to_have_count(1)
            expect(board.callers().first).to_contain_text("1004")
            expect(board.figure("Answered today")).to_have_text("1")  # the drain's row

            # The first caller hangs up: 1001 wraps up (10 s), then is ready again.
            ann.hangup(first)
            ann.wait_state(first, "DISCONNECTED")
            agent1.wait_state(ring1["call"], "DISCONNECTED")
            expect(board.state("1001")).to_have_text(re.compile(r"^(Wrap-up|Ready)$"))
            expect(board.figure("Answered today")).to_have_text("1")
            expect(board.figure("Abandoned today")).to_have_text("0")

            # The second caller gives up while it waits.
            dave.hangup(second)
            dave.wait_state(second, "DISCONNECTED")
            expect(board.figure("Waiting")).to_have_text("0")
            expect(board.callers()).to_have_text(["Nobody is waiting."])
            expect(board.figure("Abandoned today")).to_have_text("1")
            expect(board.figure("Answered today")).to_have_text("1")
            expect(board.figure("Longest wait")).to_have_text("0:00")

            # 1002 goes "not ready" from its own "My queues" page, in another browser.
            agent_page = browser.new_context().new_page()
            agent_page.set_default_timeout(20_000)
            agent_page.goto(f"{base}/accounts/login/")
            fill_sign_in(agent_page, AGENT_EMAIL, AGENT_PASSWORD)
            agent_page.goto(f"{base}/portal/me/queues/")
            mine = agent_page.get_by_role("table").get_by_role("row")
            row = mine.filter(has=agent_page.get_by_role("cell", name="700 Support"))
            expect(row).to_contain_text("Ready")
            row.get_by_label("Reason").fill("Lunch")
            row.get_by_role("button", name="Not ready").click()
            expect(row).to_contain_text("Not ready (Lunch)")
            expect(board.state("1002")).to_have_text("Not ready")
            expect(board.agent("1002")).to_contain_text("Lunch")
            # A quiet spell longer than the channel layer's 5 s blocking read: the board stays
            # on its one socket.
            page.wait_for_timeout(8_000)
            expect(page.get_by_test_id("live-connection")).to_have_text("live")
            assert page.evaluate("window.__notReloaded") is True
            assert len(sockets) == 1, sockets
        except Exception:
            sys.stderr.write(call_centre["log"].read_text()[-8000:])
            raise
        finally:
            for p in phones:
                p.close()
            browser.close()
