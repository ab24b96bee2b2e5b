"""The provider's and the dealers' dashboards, and where each role lands after signing in.

Usage numbers are checked against state written by the real writers (extensions by the
actions, live state by the fan-out from engine-format events); health items go down because
their part really is down (no engine heartbeat, rtpengine stopped, an expired certificate).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pbx.audit import SYSTEM
from pbx.portal import health
from tests.portal.calls_helpers import call, registration

pytestmark = pytest.mark.django_db

A, B = "t_acme", "t_beta"
DASHBOARD = "/portal/overview/"


@pytest.fixture(autouse=True)
def fresh_health():
    health.clear_cache()
    yield
    health.clear_cache()


def _row(html: str, slug: str) -> str:
    match = re.search(rf'<tr data-testid="usage-{slug}".*?</tr>', html, re.S)
    assert match, f"no row for {slug}"
    return match.group(0)


def _cell(row: str, key: str) -> str:
    match = re.search(rf'data-testid="{key}">(.*?)</(?:div|td)>', row, re.S)
    assert match, f"no {key} in {row}"
    return re.sub(r"<[^>]+>|\s+", " ", match.group(1)).strip()


def _check(html: str, key: str) -> tuple[str, str]:
    match = re.search(
        rf'data-testid="check-{key}" data-status="(\w+)">\s*<span class="status[^"]*">\w+</span>'
        r"(.*?)</li>",
        html,
        re.S,
    )
    assert match, f"no check {key}"
    return match.group(1), re.sub(r"(<[^>]+>|\s)+", " ", match.group(2)).strip()


def _slugs(html: str) -> list[str]:
    return re.findall(r'<tr data-testid="usage-([\w-]+)"', html)


# --- landing -------------------------------------------------------------------------------


def test_system_admin_lands_on_the_dashboard_first_in_the_menu(portal, world):
    p = portal(world.sysadmin)
    response = p.get("/portal/")
    assert response.status_code == 302
    assert response["Location"] == DASHBOARD
    html = p.get(DASHBOARD).content.decode()
    nav = re.findall(r'<nav class="sidenav".*?</nav>', html, re.S)[0]
    labels = re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)
    assert labels == [
        "Dashboard",
        "Tenants",
        "Dealers",
        "Trunks",
        "Numbers",
        "Rate tables",
        "Branding",
        "SIP bans",
    ]
    assert f'href="{DASHBOARD}" aria-current="page"' in nav


def test_dealer_admin_lands_on_its_dashboard(portal, world):
    response = portal(world.north_admin).get("/portal/")
    assert response["Location"] == DASHBOARD


def test_tenant_admin_lands_on_the_tenant_dashboard_first_in_its_menu(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    response = p.get("/portal/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/dashboard/"
    html = p.get("/portal/dashboard/").content.decode()
    nav = re.findall(r'<nav class="sidenav".*?</nav>', html, re.S)[0]
    labels = re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)
    # Dashboard first; the others in their order as before.
    assert labels[:7] == [
        "Dashboard",
        "Extensions",
        "Active calls",
        "Call history",
        "Reports",
        "Registrations",
        "Phones",
    ]


def test_the_dashboard_is_not_on_a_tenant_host_nor_for_tenant_users(portal, world):
    # A session is bound to its host: elsewhere it is sent to sign in; on its own tenant's
    # host a tenant admin finds no such page.
    assert portal(world.sysadmin, world.tenant_a).get(DASHBOARD).status_code == 302
    assert portal(world.a_admin, world.tenant_a).get(DASHBOARD).status_code == 404
    assert portal(world.a_admin).get(DASHBOARD).status_code == 302
    assert portal().get(DASHBOARD).status_code == 302  # to sign-in


# --- usage ---------------------------------------------------------------------------------


def test_system_admin_sees_every_tenant_with_its_usage(portal, world, live, in_tenant):
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        do_create_extension(number="103", display_name="Third", actor=SYSTEM)
    live.add("registration", **registration(A, "101"))
    live.add("registration", **registration(A, "102", port=5064))
    live.add("registration", **registration(B, "201", domain="beta.test"))
    live.add("registration", **registration(B, "202", domain="beta.test", expires=0))
    live.add("call.started", **call(A, "c-1", "101", "102"))
    live.add("call.answered", **call(A, "c-1", "101", "102", legs=["101", "102"]))
    live.drain()

    html = portal(world.sysadmin).get(DASHBOARD).content.decode()
    assert {"acme", "beta"} <= set(_slugs(html))
    acme, beta = _row(html, "acme"), _row(html, "beta")
    assert _cell(acme, "extensions") == "3 of 50 · 6 %"
    assert _cell(acme, "online") == "2 of 3"
    assert _cell(acme, "calls") == "1 of 20 · 5 %"
    assert _cell(beta, "extensions") == "2 of 50 · 4 %"
    assert _cell(beta, "online") == "1 of 2"
    assert _cell(beta, "calls") == "0 of 20 · 0 %"
    assert f'href="/portal/tenants/{world.tenant_a.pk}/"' in acme
    assert "North" in acme  # the system admin sees each tenant's dealer

    live.add("call.ended", **call(A, "c-1", "101", "102"))
    live.add("registration", **registration(A, "102", action="unregistered", port=5064))
    live.drain()
    acme = _row(portal(world.sysadmin).get(DASHBOARD).content.decode(), "acme")
    assert _cell(acme, "online") == "1 of 3"
    assert _cell(acme, "calls") == "0 of 20 · 0 %"


def test_closest_to_a_limit_first_and_alerted(portal, world, live):
    from tenants.actions import do_set_tenant_status, do_update_tenant

    p = portal(world.sysadmin)
    # Beta at its extension limit (2 of 2), Acme with 1 call of 1 allowed.
    do_update_tenant(world.tenant_b, max_extensions=2, actor=SYSTEM)
    do_update_tenant(world.tenant_a, max_concurrent_calls=1, actor=SYSTEM)
    live.add("call.started", **call(A, "c-7", "101", "102"))
    live.drain()
    html = p.get(DASHBOARD).content.decode()
    assert _slugs(html)[:2] == ["acme", "beta"]  # both full: by name
    assert _cell(_row(html, "beta"), "extensions") == "2 of 2 · 100 % (full)"
    assert _cell(_row(html, "acme"), "calls") == "1 of 1 · 100 % (full)"
    alerts = re.findall(r'data-testid="alert">(.*?)</li>', html, re.S)
    text = [re.sub(r"<[^>]+>|\s+", " ", a).strip() for a in alerts]
    assert any("Beta uses 2 of its 2 extensions (100 %)." in t for t in text), text
    assert any("Acme uses 1 of its 1 concurrent calls (100 %)." in t for t in text), text

    do_update_tenant(world.tenant_a, max_concurrent_calls=0, actor=SYSTEM)  # no limit
    do_set_tenant_status(world.tenant_a, "suspended", actor=SYSTEM)
    html = p.get(DASHBOARD).content.decode()
    slugs = _slugs(html)
    assert slugs[0] == "beta"
    acme = _row(html, "acme")
    assert _cell(acme, "calls") == "1 · no limit"
    assert "Suspended" in acme
    assert "Acme is suspended: its users cannot sign in and its calls stop." in html


def test_no_alerts_reads_well(portal, world, settings, tmp_path):
    """All parts working, every tenant within its limits: the alerts say so in words."""
    from tests.sip.pjphone import RtpEngineProcess

    settings.SIP_TLS_CERT = _certificate(tmp_path, days=365)
    _engine_heartbeat(world)
    health.worker_heartbeat()
    proc = RtpEngineProcess()
    try:
        settings.SIP_RTPENGINE_NG = f"127.0.0.1:{proc.ng_port}"
        html = portal(world.sysadmin).get(DASHBOARD).content.decode()
    finally:
        proc.close()
        _forget_engine_heartbeat()
    assert 'data-testid="alert"' not in html, html
    assert "No alerts: every tenant is within its limits and every part is working." in html
    for key in ("engines", "media", "workers", "backlog", "certificate"):
        assert _check(html, key)[0] == "ok", _check(html, key)


# --- dealers ---------------------------------------------------------------------------------


def test_dealer_sees_only_its_subtree(portal, world):
    from tenants.actions import do_update_tenant

    do_update_tenant(world.tenant_b, name="Beta Renamed", actor=SYSTEM)
    do_update_tenant(world.tenant_a, name="Acme Renamed", actor=SYSTEM)

    north = portal(world.north_admin).get(DASHBOARD).content.decode()
    assert _slugs(north) == ["acme"]
    assert "Beta" not in north
    audit = re.findall(r'data-testid="audit-entry">(.*?)</li>', north, re.S)
    assert any("changed tenant" in e and "Acme Renamed" in e for e in audit), audit
    assert not any("Beta" in e or "South" in e for e in audit), audit

    # The reseller above North sees North's tenant; South sees only its own.
    assert _slugs(portal(world.top_admin).get(DASHBOARD).content.decode()) == ["acme"]
    south = portal(world.south_admin).get(DASHBOARD).content.decode()
    assert _slugs(south) == ["beta"]
    assert "Acme" not in south

    # The system admin sees both tenants' entries.
    root = portal(world.sysadmin).get(DASHBOARD).content.decode()
    assert "Acme Renamed" in root
    assert "Beta Renamed" in root


def test_dealer_sees_service_status_without_platform_internals(portal, world):
    html = portal(world.north_admin).get(DASHBOARD).content.decode()
    assert "Service status" in html
    assert _check(html, "engines")[0] in ("ok", "down")
    for key in ("workers", "backlog", "certificate"):
        assert f'data-testid="check-{key}"' not in html
    assert "SIP bans" not in html
    assert "rtpengine" not in html
    assert "Redis" not in html


def test_platform_audit_leaves_out_what_happens_inside_tenants(portal, world, in_tenant):
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        do_create_extension(number="188", display_name="Inside", actor=SYSTEM)
    html = portal(world.sysadmin).get(DASHBOARD).content.decode()
    audit = re.findall(r'data-testid="audit-entry">(.*?)</li>', html, re.S)
    assert audit
    assert not any("extension.create" in e for e in audit), audit


# --- health ----------------------------------------------------------------------------------


def _engine_heartbeat(world, engine="test-engine"):
    """The key a running engine keeps (telephony.sip.calls.limits), with its TTL."""
    import redis
    from django.conf import settings

    from telephony.engine.store import redis_key
    from telephony.sip.contract import ENGINE_ALIVE

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.set(redis_key(ENGINE_ALIVE, engine=engine), "1", px=15_000)


def _forget_engine_heartbeat():
    import redis
    from django.conf import settings

    from telephony.engine.store import redis_key
    from telephony.sip.contract import ENGINE_ALIVE

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(match=redis_key(ENGINE_ALIVE, engine="*")):
        r.delete(key)


@pytest.mark.xdist_group("sip-engine")
def test_engine_check_follows_a_real_engine(portal, world, settings):
    from tests.sip.engine_fixtures import clear_sip_keys, publish_world, running_engine

    clear_sip_keys(settings.REDIS_URL)
    _forget_engine_heartbeat()
    publish_world(world)
    p = portal(world.sysadmin)
    status, text = _check(p.get(DASHBOARD).content.decode(), "engines")
    assert status == "down"
    assert "No SIP engine is running" in text

    with running_engine():
        health.clear_cache()
        html = p.get(DASHBOARD).content.decode()
        assert _check(html, "engines") == ("ok", "SIP engines 1 SIP engine is running.")
        dealer = portal(world.north_admin).get(DASHBOARD).content.decode()
        assert _check(dealer, "engines")[0] == "ok"
    health.clear_cache()
    html = p.get(DASHBOARD).content.decode()
    assert _check(html, "engines")[0] == "down"
    assert "SIP engines: No SIP engine is running" in html  # and it is an alert
    dealer = portal(world.north_admin).get(DASHBOARD).content.decode()
    assert _check(dealer, "engines") == (
        "down",
        "Calls and registrations The call service is not running: phones cannot call.",
    )


def test_media_check_pings_rtpengine(portal, world, settings):
    from tests.conftest import closed_port
    from tests.sip.pjphone import RtpEngineProcess

    proc = RtpEngineProcess()
    try:
        settings.SIP_RTPENGINE_NG = f"127.0.0.1:{proc.ng_port}"
        status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "media")
        assert status == "ok"
        assert f"rtpengine at 127.0.0.1:{proc.ng_port} answers ping." in text
    finally:
        proc.close()
    health.clear_cache()
    status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "media")
    assert status == "down"
    assert "does not answer ping" in text

    settings.SIP_RTPENGINE_NG = f"127.0.0.1:{closed_port()}"
    health.clear_cache()
    status, text = _check(portal(world.north_admin).get(DASHBOARD).content.decode(), "media")
    assert (status, text) == (
        "down",
        "Call audio The media relay is not answering: calls through it have no audio.",
    )

    settings.SIP_RTPENGINE_NG = ""
    health.clear_cache()
    status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "media")
    assert status == "ok"
    assert "directly between the phones" in text


def test_worker_check_reads_the_heartbeat_and_the_queue(portal, world, rds, monkeypatch):
    from pbx.celery import app

    rds.delete(health.heartbeat_key(), "celery")
    p = portal(world.sysadmin)
    status, text = _check(p.get(DASHBOARD).content.decode(), "workers")
    assert status == "down"
    assert "The heartbeat task has never run." in text
    assert "beat" in text

    # Beat queued the heartbeat, but no worker takes it.
    app.send_task("pbx.worker_heartbeat")
    health.clear_cache()
    html = p.get(DASHBOARD).content.decode()
    assert "1 task is waiting: no worker is taking it." in _check(html, "workers")[1]
    assert _check(html, "backlog") == ("ok", "Task queue 1 task is waiting.")

    monkeypatch.setattr(health, "BACKLOG_WARNING", 1)
    health.clear_cache()
    assert _check(p.get(DASHBOARD).content.decode(), "backlog")[0] == "warning"

    health.worker_heartbeat()  # what a worker runs when it takes the task
    health.clear_cache()
    status, text = _check(p.get(DASHBOARD).content.decode(), "workers")
    assert status == "ok"
    assert "A worker ran the heartbeat task" in text
    rds.delete(health.heartbeat_key(), "celery")
    assert app.conf.beat_schedule["pbx.worker_heartbeat"]["task"] == "pbx.worker_heartbeat"


def _certificate(tmp_path, *, days: float) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sip.provider.test")])
    now = datetime.now(tz=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=400))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"sip-{days}.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


@pytest.mark.parametrize(
    ("days", "status", "words"),
    [
        (-2, "down", "Expired on"),
        (10.5, "warning", "Expires in 10 days"),
        (300.5, "ok", "Valid for 300 more days"),
    ],
)
def test_certificate_check(portal, world, settings, tmp_path, days, status, words):
    settings.SIP_TLS_CERT = _certificate(tmp_path, days=days)
    html = portal(world.sysadmin).get(DASHBOARD).content.decode()
    got, text = _check(html, "certificate")
    assert got == status
    assert words in text
    if status != "ok":
        assert f"SIP TLS certificate: {words}" in html  # an alert too
    assert 'data-testid="check-certificate"' not in (
        portal(world.north_admin).get(DASHBOARD).content.decode()
    )


def test_missing_certificate_is_a_warning(portal, world, settings, tmp_path):
    settings.SIP_TLS_CERT = str(tmp_path / "none.crt")
    status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "certificate")
    assert status == "warning"
    assert "SIP over TLS and WSS are off" in text


def test_sip_bans_are_a_note_for_the_system_admin(portal, world, rds):
    import json
    import time

    from telephony.engine.store import redis_key
    from telephony.sip.contract import BAN

    key = redis_key(BAN, ip="198.51.100.66")
    rds.set(key, json.dumps({"reason": "auth", "banned_at": time.time()}), px=60_000)
    try:
        html = portal(world.sysadmin).get(DASHBOARD).content.decode()
        assert "1 source address is banned by the SIP engines" in html
        assert "No alerts" not in html
        health.clear_cache()
        assert "banned" not in portal(world.north_admin).get(DASHBOARD).content.decode()
    finally:
        rds.delete(key)


# --- cost ------------------------------------------------------------------------------------


def _queries(p) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = p.get(DASHBOARD)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_query_count_does_not_grow_with_tenants(portal, world, monkeypatch):
    from pbx.portal.views import dashboards
    from tenants.actions import do_create_tenant

    p = portal(world.sysadmin)
    p.get(DASHBOARD)  # warm: host table
    before = _queries(p)
    made = []
    for i in range(12):
        made.append(
            do_create_tenant(
                name=f"Load {i:02}",
                slug=f"load{i:02}",
                sip_domain=f"load{i:02}.test",
                web_host=f"load{i:02}.test",
                actor=SYSTEM,
                max_extensions=5,
            )
        )
    # Making twelve schemas may outlast the signed-in user's cache (PBX_USER_CACHE_SECONDS):
    # its one reload is no cost of the tenants, so it is paid before counting.
    p.get(DASHBOARD)
    after = _queries(p)
    assert len(after) == len(before), (before, after)
    assert len([q for q in after if not q.startswith("SET search_path")]) <= 8, after
    html = p.get(DASHBOARD).content.decode()
    assert {f"load{i:02}" for i in range(12)} <= set(_slugs(html))
    assert _cell(_row(html, "load03"), "extensions") == "0 of 5 · 0 %"
    monkeypatch.setattr(dashboards, "ROWS", 5)
    html = p.get(DASHBOARD).content.decode()
    assert len(_slugs(html)) == 5
    assert "the 5 of " in html
    assert "tenants nearest their limits" in html

    north = portal(world.north_admin)
    north.get(DASHBOARD)
    assert len(_queries(north)) <= len(after) + 1


def test_a_real_worker_takes_the_heartbeat(portal, world, rds):
    """A Celery worker as ``make run`` starts it (the task comes from ``CELERY_IMPORTS``) runs
    the heartbeat beat queues, and the check turns to OK; stopped, the queue fills and the
    check says no worker takes the tasks."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from pbx.celery import app

    rds.delete(health.heartbeat_key(), "celery")
    celery = Path(sys.executable).parent / "celery"
    worker = subprocess.Popen(
        [str(celery), "-A", "pbx", "worker", "--pool", "solo", "-l", "warning", "-n", "dash@%h"],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        app.send_task("pbx.worker_heartbeat")
        deadline = time.monotonic() + 60
        while rds.get(health.heartbeat_key()) is None:
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the worker did not run the heartbeat"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        worker.stderr.close()
    status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "workers")
    assert status == "ok", text

    # The stamp grows old and tasks wait with no worker to take them.
    rds.set(health.heartbeat_key(), f"{time.time() - 600:.3f}")
    app.send_task("pbx.worker_heartbeat")
    app.send_task("pbx.worker_heartbeat")
    health.clear_cache()
    status, text = _check(portal(world.sysadmin).get(DASHBOARD).content.decode(), "workers")
    assert status == "down"
    assert "The heartbeat task last ran 10 minutes ago. 2 tasks are waiting" in text
    rds.delete(health.heartbeat_key(), "celery")
