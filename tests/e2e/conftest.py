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
# A dealer admin (the ``live_dealer`` fixture makes it, with its dealer and one tenant).
DEALER_EMAIL = "dealer@e2e.localhost"
DEALER_PASSWORD = "Green-Harbour-" + secrets.token_hex(4)
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
    """A migrated database with one tenant and its admin and a system admin, served by the web
    server (uvicorn); all removed after. Background jobs run in the request (Celery eager) and
    e-mail is written to files in ``mail_dir`` (read them with :func:`read_mail`)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    db_name = f"pbx_e2e_{worker}_{os.getpid()}"
    port = _free_port()
    log_path = tmp_path_factory.mktemp("e2e") / "server.log"
    mail_dir = tmp_path_factory.mktemp("e2e-mail")
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
        "PBX_CELERY_EAGER": "1",  # no worker here: an invitation is sent within its request
        "PBX_TEST_MAIL_DIR": str(mail_dir),
    }
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    _forget_brands()
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
                "port": port,
                "log": log_path,
                "mail_dir": mail_dir,
                "env": env,  # the server's environment (its database) for set-up commands
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
            _forget_brands()


def read_mail(mail_dir: Path) -> list:
    """Every message the server has sent so far (Django's file backend: one file per
    connection, messages separated by a line of 79 dashes), oldest first."""
    from email import message_from_bytes, policy

    messages = []
    for path in sorted(mail_dir.iterdir(), key=lambda p: p.stat().st_mtime_ns):
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                messages.append(message_from_bytes(chunk.lstrip(), policy=policy.default))
    return messages


def _forget_brands() -> None:
    """The effective brands are cached in the shared Redis by schema name: a brand cached by an
    earlier run's server (another database) must not show on this run's tenant of that name."""
    from branding.effective import invalidate

    invalidate()


DEALER_SETUP = f"""
from dealers.actions import do_create_dealer
from pbx.audit import SYSTEM
from tenants.actions import do_create_tenant, do_create_user
dealer = do_create_dealer(name="Harbour Telecom", parent=None, actor=SYSTEM, max_tenants=5)
do_create_user(email="{DEALER_EMAIL}", password="{DEALER_PASSWORD}", role="dealer_admin",
               dealer=dealer, actor=SYSTEM)
do_create_tenant(name="Dockside", slug="dockside", sip_domain="dockside.e2e.localhost",
                 dealer=dealer, actor=SYSTEM, max_extensions=10)
"""


@pytest.fixture(scope="session")
def live_dealer(live_pbx):
    """A dealer ("Harbour Telecom") with its admin (DEALER_EMAIL) and one tenant ("Dockside"),
    made once in the live server's database."""
    _manage(live_pbx["env"], "shell", "-c", DEALER_SETUP, log_path=live_pbx["log"])
    return {"email": DEALER_EMAIL, "password": DEALER_PASSWORD}


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


def fill_sign_in(page, email: str, password: str) -> None:
    """Fill in and send the sign-in form the page shows."""
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def sign_in(page, base: str, email: str, password: str) -> None:
    """Sign in through the portal's sign-in form on ``base``'s host."""
    page.goto(f"{base}/accounts/login/?next=/portal/")
    fill_sign_in(page, email, password)
    page.wait_for_load_state()


def api_sign_in(page, email: str, password: str) -> str:
    """An API bearer token for the user, asked for by the page itself (same host, no cookie)."""
    import json

    signin = page.evaluate(
        FETCH_JSON,
        [
            "/api/v1/auth/signin/",
            {
                "method": "POST",
                "headers": {"Content-Type": "application/json"},
                "body": json.dumps({"email": email, "password": password}),
            },
        ],
    )
    assert signin["status"] == 200, signin
    return signin["body"]["access"]
