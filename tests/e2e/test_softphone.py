"""End to end, live: the web softphone in a real browser against the real PBX and real desk
phones.

User stories (extension 1001 "Alice" signs in to the web app; 1002 "Bob" and 1003 "Carol" are
pjsua2 desk phones):

- Alice opens "Phone" from her menu: it registers her extension over WSS (the engine holds one
  WSS binding, with the browser's instance id). A second tab of hers says the phone is open in
  another tab, and the engine still holds one binding; "use here" moves the phone to that tab
  (still one binding); closing it hands the phone back to the first tab.
- A wrong or expired credential is refused: the page says registration failed, and nothing is
  registered. The page renews its credential before it expires (its clock run fast), and the
  REGISTER refresh after that authenticates with the new one.
- A microphone the browser refuses: the page says so when she calls.
- Do not disturb: the page's toggle sets her extension's DND (read back over the API).
- Alice calls Bob from the dial pad; Bob answers and hears her microphone (a 600 Hz tone fed to
  Chromium as its fake capture), measured on his phone.
- Bob calls Alice: the page rings with his name and number, she accepts, each hears the other
  (his 1 kHz tone measured in her page); the keys she presses on the page's dial pad reach his
  phone as RFC 4733 digits; she holds (his phone sees the call held) and resumes; she transfers
  him to Carol (blind), whose phone rings and answers, and Bob and Carol talk.

Every process is the real one: the web server (uvicorn), ``manage.py sipengine`` with WSS on a
free port (the self-signed certificate of ``var/tls``, accepted by Chromium's
``--ignore-certificate-errors``), rtpengine. The browser is headless Debian Chromium via
Playwright with a fake microphone (``--use-file-for-fake-audio-capture``) and
``--allow-loopback-in-peer-connection`` (Chromium drops loopback ICE candidates otherwise).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pbx.processes import processes
from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import CHROMIUM_ARGS, fill_sign_in
from tests.e2e.test_live_status import _free_udp_port, demo_stack

ROOT = Path(__file__).resolve().parents[2]
HOST = "soft.localhost"  # Chromium resolves *.localhost to loopback
ADMIN_EMAIL = "admin@soft.localhost"
ADMIN_PASSWORD = "Blue-Pilot-" + secrets.token_hex(4)
ALICE_EMAIL = "alice@soft.localhost"  # extension 1001's sign-in (seed_demo: alice@<host>)
ALICE_PASSWORD = "Green-Harbour-" + secrets.token_hex(4)
SIP_PASSWORD = "Sip-Soft-Pass-" + secrets.token_hex(4)
BROWSER_TONE_HZ = 600  # what the browser's fake microphone says
DESK_TONE_HZ = 1000  # what the desk phone plays (tests/sip/pjphone.py)
# A Redis database of this test's own (emptied before and after); change it with
# PBX_E2E_SOFT_REDIS_DB when it collides with another test's.
REDIS_DB = int(os.environ.get("PBX_E2E_SOFT_REDIS_DB", "10"))
REDIS_URL = f"{os.environ.get('PBX_TEST_REDIS', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"


@pytest.fixture(scope="module")
def soft_pbx(tmp_path_factory):
    """The demo tenant (its admin; 1001-1003 with a known SIP password; 1001 may sign in),
    served by the web server, the SIP engine (UDP and WSS) and rtpengine; all removed after."""
    tmp = tmp_path_factory.mktemp("e2e-soft")
    ng_port, dtmf_port, wss_port = _free_udp_port(), _free_udp_port(), _free_udp_port()
    rtp_base = 43000 + (os.getpid() % 100) * 100
    env = {
        "PBX_RTPENGINE_NG": f"127.0.0.1:{ng_port}",
        "PBX_RTPENGINE_DTMF": f"127.0.0.1:{dtmf_port}",
        "PBX_RTP_INTERFACE": "127.0.0.1",
        "PBX_RTP_PORT_MIN": str(rtp_base),
        "PBX_RTP_PORT_MAX": str(rtp_base + 99),
        "PBX_RECORDING_DIR": str(tmp / "recordings"),
        "PBX_RUN_DIR": str(tmp / "run"),
        # The credential's ws_url: wss://soft.localhost:<this> (the host the browser used).
        "PBX_SIP_WSS_PORT": str(wss_port),
        "PBX_DEMO_USER_PASSWORD": ALICE_PASSWORD,
    }
    (tmp / "run").mkdir()
    with demo_stack(
        "soft",
        tmp / "stack.log",
        redis_url=REDIS_URL,
        host=HOST,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        sip_password=SIP_PASSWORD,
        env=env,
    ) as stack:
        made = {p.name: p.argv for p in processes(stack.env, ROOT)}
        stack.start([*made["rtpengine"], "--log-level=4"])
        stack.sip = stack.start(
            [
                *made["sip"],
                "--host=127.0.0.1",
                f"--udp-port={stack.sip_port}",
                "--tls-port=0",
                "--ws-port=0",
                f"--wss-port={wss_port}",
            ]
        )
        served = stack.serve()
        yield {
            **served,
            "wav": _tone_wav(tmp / "mic.wav", BROWSER_TONE_HZ),
            "ws_url": f"wss://{HOST}:{wss_port}",
        }


def _tone_wav(path: Path, freq: int) -> Path:
    """A minute of a steady tone for Chromium's fake microphone (it loops the file)."""
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "48000",
            "-c",
            "1",
            "-b",
            "16",
            str(path),
            "synth",
            "60",
            "sine",
            str(freq),
            "vol",
            "0.5",
        ],
        check=True,
        timeout=60,
    )
    return path


def _launch(pw, wav: Path, *, microphone: bool = True):
    args = [
        *CHROMIUM_ARGS,
        "--ignore-certificate-errors",  # the engine's self-signed WSS certificate
        "--allow-loopback-in-peer-connection",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    if microphone:
        args.append("--use-fake-ui-for-media-stream")  # the permission prompt says yes
    return pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)


def _sign_in(page, base: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{base}/accounts/login/")
    fill_sign_in(page, ALICE_EMAIL, ALICE_PASSWORD)
    # Where a plain user lands: her own pages ("My queues": 1001 is an agent of the demo's).
    expect(page).to_have_url(re.compile(rf"^{re.escape(base)}/portal/me/"))


def _open_phone(context, base: str, *, sign_in: bool = True):
    """A tab of ``context`` on Alice's phone page, reached as she would: sign in, then "Phone"
    in her menu."""
    from playwright.sync_api import expect

    page = context.new_page()
    page.set_default_timeout(20_000)
    if sign_in:
        _sign_in(page, base)
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Phone").click()
        expect(page).to_have_url(f"{base}/portal/me/phone/")
    else:
        page.goto(f"{base}/portal/me/phone/")
    return page


class Admin:
    """The tenant admin's API client (registrations, extensions)."""

    def __init__(self, base: str) -> None:
        port = base.rsplit(":", 1)[1]
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Host": HOST}, timeout=20
        )
        token = self.client.post(
            "/api/v1/auth/signin/", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()["access"]
        self.client.headers["Authorization"] = f"Bearer {token}"

    def bindings(self, number: str = "1001") -> list[dict]:
        r = self.client.get("/api/v1/registrations/", params={"extension": number})
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def wait_binding(self, *, not_from: set[int] = frozenset()) -> dict:
        """Until 1001 has exactly one binding, from a source port not in ``not_from`` (a
        socket the browser opened since); returns it."""
        deadline = time.monotonic() + 20
        while True:
            found = self.bindings()
            if len(found) == 1 and found[0]["source_port"] not in not_from:
                return found[0]
            assert time.monotonic() < deadline, f"1001's bindings: {found}"
            time.sleep(0.2)

    def dnd(self, number: str = "1001") -> bool:
        items = self.client.get("/api/v1/extensions/", params={"q": number}).json()["items"]
        return next(e["dnd"] for e in items if e["number"] == number)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def admin(soft_pbx):
    client = Admin(soft_pbx["base"])
    yield client
    client.close()


def _status(page):
    return page.get_by_test_id("phone-status")


def _registered(page) -> None:
    from playwright.sync_api import expect

    expect(_status(page)).to_have_attribute("data-state", "registered")
    expect(_status(page)).to_have_text("Registered: calls to 1001 ring here")


def _stack_log(pbx) -> str:
    return pbx["log"].read_text(errors="replace")[-6000:]


@pytest.mark.e2e
def test_one_registration_per_browser_across_tabs(soft_pbx, admin):
    from playwright.sync_api import expect, sync_playwright

    base = soft_pbx["base"]
    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            context = browser.new_context()
            first = _open_phone(context, base)
            _registered(first)
            assert_accessible(first)
            binding = admin.wait_binding()
            assert binding["transport"] == "WSS"
            assert binding["user_agent"].startswith("PBX web phone")
            instance = binding["instance"]
            assert re.fullmatch(r"<urn:uuid:[0-9a-f-]{36}>", instance), instance
            first_port = binding["source_port"]

            # A second tab of the same browser: the phone stays in the first.
            second = _open_phone(context, base, sign_in=False)
            expect(_status(second)).to_have_attribute("data-state", "elsewhere")
            expect(second.get_by_test_id("phone-elsewhere")).to_be_visible()
            assert_accessible(second)
            _registered(first)
            assert [b["source_port"] for b in admin.bindings()] == [first_port]

            # "Use the phone here": the second tab takes it, the first steps back; the new
            # socket's REGISTER replaced the binding (same instance), it did not add one.
            second.get_by_role("button", name="Use the phone here").click()
            _registered(second)
            expect(_status(first)).to_have_attribute("data-state", "elsewhere")
            binding = admin.wait_binding(not_from={first_port})
            assert binding["instance"] == instance
            second_port = binding["source_port"]

            # Closing the tab that holds the phone hands it back to the first.
            second.close()
            _registered(first)
            binding = admin.wait_binding(not_from={first_port, second_port})
            assert binding["instance"] == instance
            assert binding["transport"] == "WSS"
        except Exception:
            sys.stderr.write(_stack_log(soft_pbx))
            raise
        finally:
            browser.close()


def _answer_with(body: dict):
    """A route handler answering the request with ``body`` (JSON)."""

    def handle(route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    return handle


def _alice_credential(soft_pbx, schema: str, *, now: float, password: str = "") -> dict:
    """What /api/v1/me/softphone/ answers Alice, signed as the web app signs (same key, schema
    and HA1) for the time ``now``; ``password``: a wrong one instead."""
    from django.conf import settings

    from telephony.sip import contract

    secret = contract.derive_secret(settings.SECRET_KEY, contract.WEB_CREDENTIAL_LABEL)
    ha1 = contract.ha1("MD5", "1001", HOST, SIP_PASSWORD)
    cred = contract.issue_web_credential(secret, schema, "1001", ha1, now=now)
    return {
        "extension": "1001",
        "display_name": "Alice",
        "uri": f"sip:1001@{HOST}",
        "authorization_user": cred.username,
        "password": password or cred.password,
        "expires": cred.expires,
        "expires_in": max(0, cred.expires - int(time.time())),
        "ws_url": soft_pbx["ws_url"],
    }


@pytest.mark.e2e
def test_a_wrong_or_expired_credential_is_refused(soft_pbx, admin):
    from playwright.sync_api import expect, sync_playwright

    from telephony.sip import contract

    base = soft_pbx["base"]

    def wrong(schema: str) -> dict:
        return _alice_credential(soft_pbx, schema, now=time.time(), password="0" * 43)

    def expired(schema: str) -> dict:
        past = time.time() - contract.WEB_CREDENTIAL_SECONDS - 60
        return _alice_credential(soft_pbx, schema, now=past)

    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            for spoil in (wrong, expired):
                # A browser profile of its own (its own instance id), signed in as Alice.
                context = browser.new_context()
                page = context.new_page()
                _sign_in(page, base)
                html = page.evaluate("async () => (await fetch('/portal/me/phone/')).text()")
                schema = re.search(r'data-lock="([^":]+):1001"', html).group(1)

                context.route("**/api/v1/me/softphone/", _answer_with(spoil(schema)))
                before = {b["source_port"] for b in admin.bindings()}
                page.goto(f"{base}/portal/me/phone/")
                expect(_status(page)).to_have_attribute("data-state", "failed")
                expect(_status(page)).to_contain_text("Registration failed: 401")
                assert {b["source_port"] for b in admin.bindings()} <= before, spoil.__name__
                context.close()
        except Exception:
            sys.stderr.write(_stack_log(soft_pbx))
            raise
        finally:
            browser.close()


@pytest.mark.e2e
def test_the_credential_is_renewed_and_the_next_register_uses_it(soft_pbx):
    """The page's clock runs fast (Playwright's clock): 55 minutes into the hour a credential
    lasts, the page asks for a new one, and the REGISTER refresh after that authenticates with
    it (the engine answers 200) while the page stays registered."""
    from playwright.sync_api import expect, sync_playwright

    base = soft_pbx["base"]
    frames: list[tuple[str, str]] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: frames.append(("out", str(payload))))
        ws.on("framereceived", lambda payload: frames.append(("in", str(payload))))

    def register_oks(since: int = 0) -> int:
        return sum(
            1
            for way, text in frames[since:]
            if way == "in"
            and text.startswith("SIP/2.0 200")
            and re.search(r"CSeq: \d+ REGISTER", text)
        )

    def until(check, what: str) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, what
            page.wait_for_timeout(100)  # lets Playwright deliver the socket's frames

    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            context = browser.new_context()
            context.clock.install()
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("websocket", watch)
            _sign_in(page, base)
            page.goto(f"{base}/portal/me/phone/")
            _registered(page)
            until(lambda: register_oks() >= 1, "no 200 to the first REGISTER")
            lock = page.locator("[data-softphone]").get_attribute("data-lock")
            fresh = _alice_credential(soft_pbx, lock.split(":", 1)[0], now=time.time() + 120)
            asked: list[str] = []
            answer = _answer_with(fresh)

            def renewal(route) -> None:
                asked.append(route.request.method)
                answer(route)

            context.route("**/api/v1/me/softphone/", renewal)
            assert not any(fresh["authorization_user"] in text for _, text in frames)
            page.clock.fast_forward("55:01")  # the renewal and a REGISTER refresh are due
            until(lambda: asked == ["POST"], "the page did not renew its credential")
            until(lambda: register_oks() >= 2, "the REGISTER refresh got no 200")
            mark = len(frames)
            page.clock.fast_forward("05:00")  # the next refresh
            until(lambda: register_oks(mark) >= 1, "the refresh after the renewal got no 200")
            sent = [t for way, t in frames[mark:] if way == "out" and t.startswith("REGISTER ")]
            assert any(f'username="{fresh["authorization_user"]}"' in t for t in sent), sent
            _registered(page)
            expect(page.get_by_test_id("phone-status")).to_have_attribute(
                "data-state", "registered"
            )
        except Exception:
            sys.stderr.write(_stack_log(soft_pbx))
            raise
        finally:
            browser.close()


@pytest.mark.e2e
def test_a_refused_microphone_is_explained(soft_pbx):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"], microphone=False)
        try:
            page = _open_phone(browser.new_context(), soft_pbx["base"])
            _registered(page)
            page.get_by_label("Number").fill("1002")
            page.get_by_role("button", name="Call", exact=True).click()
            problem = page.get_by_test_id("phone-mic-problem")
            expect(problem).to_be_visible()
            expect(problem).to_contain_text("refused the microphone")
            expect(page.get_by_test_id("phone-call")).to_be_hidden()
            assert_accessible(page)
        finally:
            browser.close()


@pytest.mark.e2e
def test_the_dnd_toggle_sets_the_extensions_dnd(soft_pbx, admin):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            page = _open_phone(browser.new_context(), soft_pbx["base"])
            dnd = page.get_by_label("Do not disturb")
            expect(dnd).to_be_enabled()
            expect(dnd).not_to_be_checked()
            dnd.check()
            expect(page.locator("[data-dnd-note]")).to_have_text("Calls to you do not ring.")
            assert admin.dnd() is True
            page.reload()
            expect(page.get_by_label("Do not disturb")).to_be_checked()
            page.get_by_label("Do not disturb").uncheck()
            expect(page.locator("[data-dnd-note]")).to_have_text("Calls ring again.")
            assert admin.dnd() is False
        finally:
            browser.close()


# --- calls with media -----------------------------------------------------------------------

PEAK_FREQUENCY_JS = """async () => {
    // The loudest frequency of what the page plays from the call (its <audio> element's stream).
    const stream = document.querySelector("[data-remote-audio]").srcObject;
    if (!stream) return 0;
    const ctx = new AudioContext();
    await ctx.resume();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    ctx.createMediaStreamSource(stream).connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    let best = 0;
    for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        analyser.getFloatFrequencyData(bins);
        let peak = 0;
        for (let j = 1; j < bins.length; j++) if (bins[j] > bins[peak]) peak = j;
        if (bins[peak] > -70) best = peak * ctx.sampleRate / analyser.fftSize;
    }
    ctx.close();
    return best;
}"""


def _desk_hears(desk, call: int, hz: int) -> float:
    from tests.media.phone import peak_frequency

    desk.wait_audio(call)
    pcm, rate = desk.record(call, 1.0)
    heard = peak_frequency(pcm.astype("float64"), rate)
    assert abs(heard - hz) < 25, f"the desk phone heard {heard:.0f} Hz, not {hz} Hz"
    return heard


@pytest.fixture
def desk_phones(soft_pbx):
    from tests.sip.pjphone import Phone

    made = []

    def make(name: str, number: str):
        phone = Phone(name)
        made.append(phone)
        return phone, phone.account(number, HOST, soft_pbx["proxy"], SIP_PASSWORD)

    yield make
    for phone in made:
        phone.close()


@pytest.mark.e2e
def test_the_browser_calls_a_desk_phone_which_hears_it(soft_pbx, desk_phones):
    from playwright.sync_api import expect, sync_playwright

    bob, _ = desk_phones("bob", "1002")
    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            page = _open_phone(browser.new_context(), soft_pbx["base"])
            _registered(page)
            for key in "1002":
                page.get_by_role("group", name=re.compile("Dial pad")).get_by_role(
                    "button", name=key, exact=True
                ).click()
            expect(page.get_by_label("Number")).to_have_value("1002")
            page.get_by_role("button", name="Call", exact=True).click()
            incoming = bob.incoming()
            assert "1001" in incoming["msg"].split("\r\n\r\n", 1)[0]
            bob.answer(incoming["call"], 200)
            bob.wait_state(incoming["call"], "CONFIRMED")
            expect(page.get_by_test_id("call-state")).to_have_text("Connected")
            _desk_hears(bob, incoming["call"], BROWSER_TONE_HZ)
            page.get_by_role("button", name="Hang up").click()
            bob.wait_state(incoming["call"], "DISCONNECTED")
            expect(page.get_by_test_id("phone-call")).to_be_hidden()
        except Exception:
            sys.stderr.write(_stack_log(soft_pbx))
            raise
        finally:
            browser.close()


@pytest.mark.e2e
def test_a_desk_phone_calls_the_browser_dtmf_hold_and_blind_transfer(soft_pbx, desk_phones):
    from playwright.sync_api import expect, sync_playwright

    bob, bob_acc = desk_phones("bob", "1002")
    carol, _ = desk_phones("carol", "1003")
    with sync_playwright() as pw:
        browser = _launch(pw, soft_pbx["wav"])
        try:
            page = _open_phone(browser.new_context(), soft_pbx["base"])
            _registered(page)
            call = bob.call(bob_acc, f"sip:1001@{HOST}")

            # It rings, with Bob's name and number; Alice accepts.
            ringing = page.get_by_role("alertdialog", name="Incoming call")
            expect(ringing).to_be_visible()
            expect(page.get_by_test_id("incoming-name")).to_have_text("Bob")
            expect(page.get_by_test_id("incoming-number")).to_have_text("1002")
            assert_accessible(page)
            ringing.get_by_role("button", name="Accept").click()
            bob.wait_state(call, "CONFIRMED")
            expect(page.get_by_test_id("call-state")).to_have_text("Connected")

            # Two-way audio: Bob hears the browser's microphone, the page plays Bob's tone.
            bob.play(call)
            _desk_hears(bob, call, BROWSER_TONE_HZ)
            heard = page.evaluate(PEAK_FREQUENCY_JS)
            assert abs(heard - DESK_TONE_HZ) < 30, f"the page played {heard:.0f} Hz"

            # Keys pressed on the page reach Bob's phone as RFC 4733 events.
            pad = page.get_by_role("group", name=re.compile("Dial pad"))
            for key, name in (("4", "4"), ("2", "2"), ("#", "hash")):
                pad.get_by_role("button", name=name, exact=True).click()
                got = bob.wait("dtmf", call=call)
                assert got["digit"] == key
                assert got["method"] == "RFC2833"
            expect(page.get_by_test_id("phone-dtmf-sent")).to_have_text("Sent: 42#")

            # Hold: Bob's phone sees the call held, then resumed.
            page.get_by_role("button", name="Hold").click()
            bob.wait("media", call=call, status=["REMOTE_HOLD"])
            expect(page.get_by_test_id("call-state")).to_have_text("On hold")
            page.get_by_role("button", name="Resume").click()
            bob.wait("media", call=call, status=["ACTIVE"])
            expect(page.get_by_test_id("call-state")).to_have_text("Connected")

            # Blind transfer to Carol: her phone rings, she answers, Bob and Carol talk.
            page.get_by_label("Transfer to").fill("1003")
            page.get_by_role("button", name="Transfer", exact=True).click()
            to_carol = carol.incoming()
            carol.answer(to_carol["call"], 200)
            carol.wait_state(to_carol["call"], "CONFIRMED")
            expect(page.get_by_test_id("phone-call")).to_be_hidden()
            carol.play(to_carol["call"])
            _desk_hears(bob, call, DESK_TONE_HZ)  # Carol's tone, no longer the browser's
            bob.hangup(call)
            carol.wait_state(to_carol["call"], "DISCONNECTED")
        except Exception:
            sys.stderr.write(_stack_log(soft_pbx))
            raise
        finally:
            browser.close()
