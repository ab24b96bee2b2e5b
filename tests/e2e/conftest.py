"""The live server of the browser tests: the web server ``make run`` starts (uvicorn) in a
subprocess on a database of its own (not pytest-django's test database, whose open transactions
a separate process could not see), prepared by the same management commands as ``make run``,
with one tenant and its admin.
"""

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from pbx.processes import web_argv

ROOT = Path(__file__).resolve().parents[2]
HOST = "e2e.localhost"  # Chromium resolves *.localhost to loopback without any DNS set-up
ADMIN_EMAIL = "admin@e2e.localhost"
ADMIN_PASSWORD = "Blue-Pilot-" + secrets.token_hex(4)  # not containing the e-mail's name
# The provider's system admin, on the provider's host (localhost:<port>).
PROVIDER_HOST = "localhost"
SYSTEM_ADMIN_EMAIL = "root@provider.localhost"
SYSTEM_ADMIN_PASSWORD = "Green-Harbor-" + secrets.token_hex(4)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def chromium_page(timeout: float = 15_000):
    """A page of Debian's headless Chromium (Playwright), closed with its browser after."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout)
            yield page
        finally:
            browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin_connection():
    """A connection to the server's maintenance database as the role the settings use."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        host=db["HOST"],
        port=db["PORT"],
        user=db["USER"],
        password=db["PASSWORD"],
        dbname="postgres",
        autocommit=True,
    )


def _manage(env, *args, log_path):
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    with log_path.open("a") as log:
        log.write(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def _wait_healthy(port: int, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz", headers={"Host": f"localhost:{port}"}
    )
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the web server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not become healthy")


@pytest.fixture(scope="session")
def live_pbx(tmp_path_factory):
    """A migrated database with one tenant and its admin, served by the web server (uvicorn);
    all removed after."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    db_name = f"pbx_e2e_{worker}_{os.getpid()}"
    port = _free_port()
    log_path = tmp_path_factory.mktemp("e2e") / "server.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "pbx.settings.test"),
        "PBX_DB_NAME": db_name,
        "PBX_DB_CONN_MAX_AGE": "0",
        "PBX_DEMO_HOST": HOST,
        "PBX_DEMO_ADMIN_EMAIL": ADMIN_EMAIL,
        "PBX_DEMO_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PBX_ADMIN_EMAIL": SYSTEM_ADMIN_EMAIL,
        "PBX_ADMIN_PASSWORD": SYSTEM_ADMIN_PASSWORD,
        "PBX_HTTP_PORT": str(port),
    }
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    server = None
    with log_path.open("a") as log:
        try:
            _manage(env, "setup_pbx", log_path=log_path)
            _manage(env, "create_system_admin", log_path=log_path)
            _manage(env, "seed_demo", log_path=log_path)  # the tenant on e2e.localhost, its admin
            server = subprocess.Popen(
                web_argv(Path(sys.executable).parent, "127.0.0.1", port, workers=1),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            _wait_healthy(port, server)
            yield {
                "base": f"http://{HOST}:{port}",
                "provider": f"http://{PROVIDER_HOST}:{port}",
                "log": log_path,
            }
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
            with _admin_connection() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            _forget_snapshot()


def _forget_snapshot() -> None:
    """The tenant's routing snapshot was published to the shared Redis; take it back."""
    import redis
    from django.conf import settings

    from telephony.engine.snapshots import snapshot_key
    from telephony.engine.store import redis_key
    from telephony.sip.contract import DOMAINS

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(snapshot_key(HOST))
    r.srem(redis_key(DOMAINS), HOST)


FETCH_JSON = """async ([url, options]) => {
    const response = await fetch(url, {credentials: "omit", ...options});
    return {status: response.status, body: await response.json()};
}"""


def sign_in(page, base: str, email: str, password: str) -> None:
    """Sign in through the portal's sign-in form on ``base``'s host."""
    page.goto(f"{base}/accounts/login/?next=/portal/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
