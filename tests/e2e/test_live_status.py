"""End to end, live: a real browser watches a real phone register and call.

User story: a tenant administrator has the extension list open. A desk phone (pjsua2) registers
for extension 1001 and its row turns "online" without a reload; it calls 1002 (another
registered phone), which answers, and the row shows "on call"; the caller hangs up and the row
is back to "online".

Everything runs as in production, each a process of its own on a database of its own and a
dedicated Redis database: the web server (uvicorn with two workers: portal and the portal's
WebSocket), ``manage.py sipengine`` (SIP on free loopback ports), and ``manage.py
events_fanout`` (engine events to the live-state cache and the tenant's Channels group). The
browser is headless Debian Chromium via Playwright.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.processes import web_argv
from tests.e2e.conftest import (
    CHROMIUM_ARGS,
    _admin_connection,
    _free_port,
    _manage,
    _wait_healthy,
    fill_sign_in,
)

ROOT = Path(__file__).resolve().parents[2]
HOST = "live.localhost"  # Chromium resolves *.localhost to loopback
ADMIN_EMAIL = "admin@live.localhost"
ADMIN_PASSWORD = "Blue-Pilot-" + secrets.token_hex(4)
SIP_PASSWORD = "Sip-Live-Pass-" + secrets.token_hex(4)
# A Redis database of this test's own (test workers use 1-15 by xdist worker number; change it
# with PBX_E2E_LIVE_REDIS_DB when that collides). It is emptied before and after.
REDIS_DB = int(os.environ.get("PBX_E2E_LIVE_REDIS_DB", "13"))
REDIS_URL = f"{os.environ.get('PBX_TEST_REDIS', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"


def _free_udp_port() -> int:
    """A port free for both UDP and TCP (the engine listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken on TCP: try another
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def _wait_sip(port: int, engine: subprocess.Popen, timeout: float = 60) -> None:
    """Until the engine answers an OPTIONS over UDP (readiness by protocol, not a delay)."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.3)
        local = s.getsockname()[1]
        while time.monotonic() < deadline:
            if engine.poll() is not None:
                raise RuntimeError(f"the SIP engine exited with {engine.returncode}")
            branch = "z9hG4bK" + uuid.uuid4().hex[:12]
            probe = (
                f"OPTIONS sip:{HOST} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{HOST}>;tag={uuid.uuid4().hex[:8]}\r\n"
                f"To: <sip:{HOST}>\r\n"
                f"Call-ID: {uuid.uuid4().hex}@probe\r\n"
                "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            s.sendto(probe.encode(), ("127.0.0.1", port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0 "):
                    return
            except (TimeoutError, ConnectionRefusedError):
                continue
    raise RuntimeError("the SIP engine did not answer OPTIONS")


def _start(args, env, log) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Stack:
    """The processes of one stack (see :func:`demo_stack`): started into its log, on its
    environment, and stopped in reverse order when the stack ends."""

    def __init__(self, env: dict[str, str], log, log_path: Path) -> None:
        self.env, self.log, self.log_path = env, log, log_path
        self.http_port, self.sip_port = int(env["PBX_HTTP_PORT"]), int(env["PBX_SIP_PORT"])
        self.procs: list[subprocess.Popen] = []
        self.sip: subprocess.Popen | None = None

    def manage(self, *args: str) -> None:
        _manage(self.env, *args, log_path=self.log_path)

    def start(self, args) -> subprocess.Popen:
        proc = _start(args, self.env, self.log)
        self.procs.append(proc)
        return proc

    def engine(self, args) -> subprocess.Popen:
        """The SIP engine (``args`` run ``sipengine``), on the stack's UDP port only."""
        self.sip = self.start(
            [
                *args,
                "--host=127.0.0.1",
                f"--udp-port={self.sip_port}",
                "--tls-port=0",
                "--ws-port=0",
                "--wss-port=0",
            ]
        )
        return self.sip

    def serve(self) -> dict:
        """The web server as make run starts it: uvicorn with two workers, so the page's
        socket and the fan-out's group messages may meet in different processes; returns once
        it and the engine answer."""
        server = self.start(
            web_argv(Path(sys.executable).parent, "127.0.0.1", self.http_port, workers=2)
        )
        _wait_healthy(self.http_port, server)
        assert self.sip is not None
        _wait_sip(self.sip_port, self.sip)
        return {
            "base": f"http://{self.env['PBX_DEMO_HOST']}:{self.http_port}",
            "proxy": f"sip:127.0.0.1:{self.sip_port};lr",
            "procs": self.procs,
            "log": self.log_path,
        }


@contextlib.contextmanager
def demo_stack(
    name: str,
    log_path: Path,
    *,
    redis_url: str,
    host: str,
    admin_email: str,
    admin_password: str,
    sip_password: str,
    env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """A migrated database of its own with the demo tenant on ``host`` (its admin; extensions
    1001-1003 with ``sip_password``) and ``redis_url`` emptied; its processes (started with the
    stack's methods) stopped, the database dropped and Redis emptied after."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    db_name = f"pbx_e2e_{name}_{worker}_{os.getpid()}"
    full_env = {
        **os.environ,
        # The development settings take every service from the environment, so the processes
        # share this database and this Redis database and nothing else.
        "DJANGO_SETTINGS_MODULE": "pbx.settings.dev",
        "PBX_DEBUG": "0",
        # This stack's web server is plain HTTP (web_argv); HTTPS: tests/e2e/test_https.py.
        "PBX_HTTPS": "0",
        "PBX_DB_NAME": db_name,
        "PBX_DB_CONN_MAX_AGE": "0",
        "PBX_REDIS_URL": redis_url,
        "PBX_CELERY_EAGER": "0",
        "PBX_DEMO_HOST": host,
        "PBX_DEMO_ADMIN_EMAIL": admin_email,
        "PBX_DEMO_ADMIN_PASSWORD": admin_password,
        "PBX_DEMO_SIP_PASSWORD": sip_password,
        "PBX_HTTP_PORT": str(_free_port()),
        "PBX_SIP_HOST": "127.0.0.1",
        "PBX_SIP_PORT": str(_free_udp_port()),
        "PBX_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    rds = redis.Redis.from_url(redis_url)
    rds.flushdb()
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    with log_path.open("a") as log:
        stack = Stack(full_env, log, log_path)
        try:
            stack.manage("setup_pbx")
            stack.manage("seed_demo")
            yield stack
        finally:
            for proc in reversed(stack.procs):
                _stop(proc)
            with _admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            rds.flushdb()
            rds.close()


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory):
    """A migrated database with one tenant (its admin; extensions 1001-1003 with a known SIP
    password), served by the web server, the SIP engine and the fan-out; all removed after."""
    with demo_stack(
        "live",
        tmp_path_factory.mktemp("e2e-live") / "stack.log",
        redis_url=REDIS_URL,
        host=HOST,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        sip_password=SIP_PASSWORD,
    ) as stack:
        manage = [sys.executable, "manage.py"]
        stack.engine([*manage, "sipengine"])
        stack.start([*manage, "events_fanout", "--consumer=e2e-live"])
        yield stack.serve()


@pytest.mark.e2e
def test_extension_row_follows_a_real_phone_live(live_stack):
    from playwright.sync_api import expect, sync_playwright

    from tests.sip.pjphone import Phone

    base = live_stack["base"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        desk = other = None
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(f"{base}/accounts/login/")
            fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
            expect(page).to_have_url(f"{base}/portal/dashboard/")  # where an admin lands
            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Extensions"
            ).click()
            expect(page).to_have_url(f"{base}/portal/extensions/")
            status = page.get_by_test_id("status-1001")
            expect(status).to_have_text("offline")
            # The socket is open and its snapshot applied before the phone appears.
            expect(page.get_by_test_id("live-connection")).to_have_text("live")
            # A marker that a reload would wipe: every change below arrives over the socket.
            page.evaluate("window.__notReloaded = true")

            desk = Phone("desk")
            acc = desk.account("1001", HOST, live_stack["proxy"], SIP_PASSWORD)
            expect(status).to_have_text("online")
            row = page.get_by_test_id("extension-1001")
            expect(row).to_contain_text("UDP 127.0.0.1")
            other = Phone("other")
            other_acc = other.account("1002", HOST, live_stack["proxy"], SIP_PASSWORD)
            expect(page.get_by_test_id("status-1002")).to_have_text("online")

            call = desk.call(acc, f"sip:1002@{HOST}")
            incoming = other.incoming()["call"]
            other.answer(incoming, 200)
            desk.wait_state(call, "CONFIRMED")
            expect(status).to_have_text("on call")
            expect(page.get_by_test_id("status-1002")).to_have_text("on call")

            desk.hangup(call)
            desk.wait_state(call, "DISCONNECTED")
            other.wait_state(incoming, "DISCONNECTED")
            expect(status).to_have_text("online")
            expect(page.get_by_test_id("status-1002")).to_have_text("online")
            assert page.evaluate("window.__notReloaded") is True

            # Unregistering takes the row offline again.
            other.unregister(other_acc)
            expect(page.get_by_test_id("status-1002")).to_have_text("offline")
        except Exception:
            sys.stderr.write(live_stack["log"].read_text()[-6000:])
            raise
        finally:
            for phone in (desk, other):
                if phone is not None:
                    phone.close()
            browser.close()
