"""End to end: a crashed SIP engine comes back on its own and takes nothing else down.

User story: the PBX runs as ``make run`` runs it (supervisord with the configuration from
``pbx.processes``: web with two workers on HTTPS and web-http on plain HTTP, Celery worker and
beat, SIP engine, rtpengine, fan-out).
Two desk phones (pjsua2) are registered and in a call when the SIP engine dies with
``kill -9``, as a crash would. Within seconds supervisord starts a new engine; the other
processes were never stopped (same pids) and the web server and API answered throughout; the
phones' registrations are still listed (they live in Redis) and the new engine routes a new
call to them without their registering again; the call that was cut off gets its CDR, closed
by the new engine's start-up (``telephony.engine.state.close_orphaned_calls``) with the reason
``engine_restart``.
"""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pbx.processes import https_files
from tests.e2e.conftest import _admin_connection, _free_port, _manage, _wait_healthy
from tests.e2e.test_live_status import _free_udp_port, _stop, _wait_sip

ROOT = Path(__file__).resolve().parents[2]
HOST = "sup.localhost"
ADMIN_EMAIL = "admin@sup.localhost"
ADMIN_PASSWORD = "Red-Harbor-" + secrets.token_hex(4)
SIP_PASSWORD = "Sip-Sup-Pass-" + secrets.token_hex(4)
REDIS_DB = int(os.environ.get("PBX_E2E_SUP_REDIS_DB", "12"))
REDIS_URL = f"{os.environ.get('PBX_TEST_REDIS', 'redis://127.0.0.1:6379').rstrip('/')}/{REDIS_DB}"
PROCESSES = ("web", "web-http", "worker", "beat", "sip", "rtpengine", "fanout")


class Supervised:
    def __init__(self, conf: Path, env: dict[str, str], proc: subprocess.Popen) -> None:
        self.conf, self.env, self.proc = conf, env, proc

    def ctl(self, *args: str) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).with_name("supervisorctl")), "-c", str(self.conf), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env=self.env,
        )
        return done.stdout.strip()

    def pid(self, name: str) -> int:
        out = self.ctl("pid", name)
        return int(out) if out.isdigit() else 0

    def pids(self) -> dict[str, int]:
        return {name: self.pid(name) for name in PROCESSES}


@pytest.fixture
def supervised_pbx(tmp_path):
    """A migrated database with the demo tenant, and every process of ``make run`` under
    supervisord (the real configuration), on free ports; all removed after."""
    import redis

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    db_name = f"pbx_e2e_sup_{worker}_{os.getpid()}"
    http_port, https_port = _free_port(), _free_port()
    sip_port, ng_port = _free_udp_port(), _free_udp_port()
    rtp_base = 40000 + (os.getpid() % 200) * 100
    run_dir, log_dir = tmp_path / "run", tmp_path / "log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "pbx.settings.prod",
        "PBX_DB_NAME": db_name,
        "PBX_REDIS_URL": REDIS_URL,
        "PBX_CELERY_EAGER": "0",
        "PBX_DEMO_HOST": HOST,
        "PBX_DEMO_ADMIN_EMAIL": ADMIN_EMAIL,
        "PBX_DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PBX_DEMO_SIP_PASSWORD": SIP_PASSWORD,
        "PBX_HTTP_HOST": "127.0.0.1",
        "PBX_HTTP_PORT": str(http_port),
        "PBX_HTTPS_PORT": str(https_port),
        "PBX_WEB_WORKERS": "2",
        "PBX_SIP_HOST": "127.0.0.1",
        "PBX_SIP_PORT": str(sip_port),
        "PBX_SIP_TLS_PORT": "0",
        "PBX_SIP_WS_PORT": "0",
        "PBX_SIP_WSS_PORT": "0",
        "PBX_RTPENGINE_NG": f"127.0.0.1:{ng_port}",
        "PBX_RTP_PORT_MIN": str(rtp_base),
        "PBX_RTP_PORT_MAX": str(rtp_base + 99),
        "PBX_RUN_DIR": str(run_dir),
        "PBX_LOG_DIR": str(log_dir),
        "PBX_LOG_LEVEL": "INFO",
    }
    rds = redis.Redis.from_url(REDIS_URL)
    rds.flushdb()
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    log_path = tmp_path / "setup.log"
    proc = None
    try:
        _manage(env, "setup_pbx", log_path=log_path)
        _manage(env, "seed_demo", log_path=log_path)
        conf = run_dir / "supervisord.conf"
        subprocess.run(
            [sys.executable, "-m", "pbx.processes", "supervisord", "--out", str(conf)],
            cwd=ROOT,
            env=env,
            check=True,
        )
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("supervisord")), "-n", "-c", str(conf)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        _wait_healthy(http_port, proc, timeout=90)  # web-http, plain
        # web, on HTTPS with make run's certificate (it names 127.0.0.1).
        tls = ssl.create_default_context(cafile=str(https_files(env, ROOT)[0]))
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"https://127.0.0.1:{https_port}/healthz", verify=tls, timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the HTTPS web server never answered"
                time.sleep(0.3)
        _wait_sip(sip_port, proc)
        yield {
            "sup": Supervised(conf, env, proc),
            "http": f"https://127.0.0.1:{https_port}",
            "tls": tls,
            "proxy": f"sip:127.0.0.1:{sip_port};lr",
            "sip_port": sip_port,
            "logs": log_dir,
        }
    finally:
        _stop(proc)
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        rds.flushdb()
        rds.close()


def _logs(log_dir: Path) -> str:
    out = []
    for f in sorted(log_dir.glob("*.log")):
        out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}")
    return "\n".join(out)


class HealthPoller(threading.Thread):
    """Polls /healthz (database and cache checked) and an API list every 100 ms."""

    def __init__(self, base: str, token: str, tls: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.base, self.token, self.tls = base, token, tls
        self.ok = 0
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=5, verify=self.tls) as client:
            while not self.stop.is_set():
                for path, headers in (
                    ("/healthz", {"Host": "localhost"}),
                    (
                        "/api/v1/extensions/",
                        {"Host": HOST, "Authorization": f"Bearer {self.token}"},
                    ),
                ):
                    try:
                        r = client.get(path, headers=headers)
                        if r.status_code == 200:
                            self.ok += 1
                        else:
                            self.failures.append(f"{path}: {r.status_code}")
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{path}: {exc!r}")
                time.sleep(0.1)


@pytest.mark.e2e
def test_killed_engine_restarts_alone_and_the_cut_call_gets_its_cdr(supervised_pbx):
    from tests.sip.pjphone import Phone

    pbx = supervised_pbx
    sup: Supervised = pbx["sup"]
    api = httpx.Client(base_url=pbx["http"], headers={"Host": HOST}, timeout=20, verify=pbx["tls"])
    desk = other = None
    poller = None
    try:
        token = api.post(
            "/api/v1/auth/signin/", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        ).json()["access"]
        api.headers["Authorization"] = f"Bearer {token}"

        desk = Phone("desk")
        acc = desk.account("1001", HOST, pbx["proxy"], SIP_PASSWORD)
        other = Phone("other")
        other_acc = other.account("1002", HOST, pbx["proxy"], SIP_PASSWORD)
        call = desk.call(acc, f"sip:1002@{HOST}")
        incoming = other.incoming()["call"]
        other.answer(incoming, 200)
        desk.wait_state(call, "CONFIRMED")
        deadline = time.monotonic() + 10
        while not api.get("/api/v1/active-calls/").json()["items"]:
            assert time.monotonic() < deadline, "the call never showed in the active calls"
            time.sleep(0.2)

        before = sup.pids()
        assert all(before.values()), before
        poller = HealthPoller(pbx["http"], token, pbx["tls"])
        poller.start()
        time.sleep(0.5)

        os.kill(before["sip"], signal.SIGKILL)
        killed_at = time.monotonic()
        while True:
            new_pid = sup.pid("sip")
            if new_pid and new_pid != before["sip"]:
                break
            assert time.monotonic() - killed_at < 15, "supervisord did not restart the engine"
            time.sleep(0.1)
        _wait_sip(pbx["sip_port"], sup.proc, timeout=30)
        back_in = time.monotonic() - killed_at
        assert back_in < 15, f"the engine answered SIP again only after {back_in:.1f} s"
        time.sleep(1.0)
        poller.stop.set()
        poller.join(10)

        # Nothing else was stopped or restarted; the web and the API never failed.
        after = sup.pids()
        assert {k: v for k, v in after.items() if k != "sip"} == {
            k: v for k, v in before.items() if k != "sip"
        }
        assert poller.failures == [], poller.failures[:5]
        assert poller.ok >= 10

        # The registrations survived the engine (Redis), and the new engine routes to them.
        regs = {r["extension"] for r in api.get("/api/v1/registrations/").json()["items"]}
        assert {"1001", "1002"} <= regs
        second = other.call(other_acc, f"sip:1001@{HOST}")
        ringing = desk.incoming(timeout=20)["call"]
        desk.answer(ringing, 200)
        other.wait_state(second, "CONFIRMED")
        other.hangup(second)
        desk.wait_state(ringing, "DISCONNECTED")

        # The call the crash cut off: the phones hang up (the new engine does not know it)...
        desk.hangup(call)
        desk.wait_state(call, "DISCONNECTED", timeout=40)
        # ...and it has its CDR, closed by the engine's restart.
        deadline = time.monotonic() + 30
        while True:
            cdrs = api.get("/api/v1/cdrs/").json()["items"]
            cut = [c for c in cdrs if c.get("end_reason") == "engine_restart"]
            if cut:
                break
            assert time.monotonic() < deadline, f"no CDR for the cut call: {cdrs}"
            time.sleep(0.5)
        assert len(cut) == 1
        assert cut[0]["status"] == "answered"
        assert cut[0]["ended_at"]
        assert not api.get("/api/v1/active-calls/").json()["items"]
    except Exception:
        sys.stderr.write(_logs(pbx["logs"]))
        raise
    finally:
        if poller is not None:
            poller.stop.set()
        for phone in (desk, other):
            if phone is not None:
                phone.close()
        api.close()
