"""The tenant admin's call pages (dashboard, live extensions, active calls, call history,
registrations), webhooks, and the system admin's SIP bans: who may open each, what they show,
and that writes go through the actions."""

from __future__ import annotations

import json
import re
import time

import pytest
from django_tenants.utils import tenant_context

from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from pbx.models import AuditEntry
from tenants.choices import Permission, Role
from tests.portal.calls_helpers import add_cdr, call, registration

A, B = "t_acme", "t_beta"

TENANT_ADMIN_PAGES = [
    "/portal/dashboard/",
    "/portal/extensions/",
    "/portal/calls/",
    "/portal/cdrs/",
    "/portal/registrations/",
    "/portal/webhooks/",
    "/portal/webhooks/add/",
    "/portal/webhooks/deliveries/",
]


# --- who may open what --------------------------------------------------------------------------


@pytest.mark.parametrize("path", TENANT_ADMIN_PAGES)
def test_tenant_admin_pages_by_role(portal, world, live, path):
    assert portal(world.a_admin, world.tenant_a).get(path).status_code == 200
    # A plain user has none of these permissions: 404, not a hint that the page exists.
    assert portal(world.a_user, world.tenant_a).get(path).status_code == 404
    # Another tenant's admin is nobody on this host.
    r = portal(world.b_admin, world.tenant_a).get(path)
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")
    # None of these pages exists on the provider's host.
    assert portal(world.sysadmin).get(path).status_code == 404


def test_custom_role_sees_calls_but_not_webhooks(portal, world, live):
    from pbx.audit import SYSTEM
    from tenants import actions

    role = actions.do_create_role(
        world.tenant_a, name="Reception", permissions=[Permission.EXTENSIONS_VIEW], actor=SYSTEM
    )
    user = actions.do_create_user(
        email="desk@acme.test",
        password="Correct-Horse-42x",
        role=Role.TENANT_USER,
        tenant=world.tenant_a,
        custom_role=role,
        actor=SYSTEM,
    )
    p = portal(user, world.tenant_a)
    for path in ("/portal/dashboard/", "/portal/calls/", "/portal/cdrs/", "/portal/extensions/"):
        assert p.get(path).status_code == 200, path
    assert p.get("/portal/webhooks/").status_code == 404
    html = p.get("/portal/calls/").content.decode()
    assert "Active calls" in html
    assert "Webhooks" not in html
    # Viewing calls is not ending them.
    assert p.post("/portal/calls/x-1/hangup/").status_code == 404


def test_sip_bans_are_for_the_system_admin_on_the_provider_host(portal, world, rds, live):
    rds.set("sip:ban:203.0.113.9", json.dumps({"reason": "auth", "banned_at": time.time()}), ex=600)
    p = portal(world.sysadmin)
    r = p.get("/portal/sip-bans/")
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-testid="ban-203.0.113.9"' in html
    assert "auth" in html
    assert "SIP bans" in html  # in the system admin's menu
    for who, tenant in ((world.north_admin, None), (world.a_admin, world.tenant_a)):
        assert portal(who, tenant).get("/portal/sip-bans/").status_code == 404
        assert portal(who, tenant).post("/portal/sip-bans/203.0.113.9/clear/").status_code == 404
    assert rds.exists("sip:ban:203.0.113.9")
    r = p.post("/portal/sip-bans/203.0.113.9/clear/")
    assert r.status_code == 302
    assert not rds.exists("sip:ban:203.0.113.9")
    assert AuditEntry.objects.filter(action="sip_ban.clear", object_id="203.0.113.9").exists()
    r = p.post("/portal/sip-bans/203.0.113.9/clear/", follow=True)
    assert "not banned" in r.content.decode()


# --- live extensions and active calls -------------------------------------------------------------


def _row(html: str, number: str) -> str:
    match = re.search(rf'<tr data-testid="extension-{number}".*?</tr>', html, re.S)
    assert match, f"no row for {number}"
    return match.group(0)


def test_extension_list_renders_live_state_before_any_update(portal, world, live):
    """The page is right on load: rendered from the live-state cache the fan-out keeps."""
    live.add(
        "registration",
        **registration(
            A, "101", user_agent="Yealink SIP-T46U", port=5072, source="udp:198.51.100.7:5072"
        ),
    )
    live.add("registration", **registration(B, "201", domain="beta.test"))
    live.drain()
    p = portal(world.a_admin, world.tenant_a)
    html = p.get("/portal/extensions/").content.decode()
    row = _row(html, "101")
    assert 'data-testid="status-101">online<' in row
    assert "UDP 198.51.100.7:5072" in row
    assert "Yealink SIP-T46U" in row
    assert 'data-testid="status-102">offline<' in _row(html, "102")
    assert "portal/live.js" in html

    live.add("call.started", **call(A, "c-1", "101", "102"))
    live.add("call.ringing", **call(A, "c-1", "101", "102"))
    live.drain()
    html = p.get("/portal/extensions/").content.decode()
    assert 'data-testid="status-101">on call<' in _row(html, "101")
    assert 'data-testid="status-102">ringing<' in _row(html, "102")
    live.add("call.answered", **call(A, "c-1", "101", "102", legs=["101", "102"]))
    live.drain()
    html = p.get("/portal/extensions/").content.decode()
    assert 'data-testid="status-102">on call<' in _row(html, "102")
    # Beta's phone is not on Acme's page.
    assert "201" not in html


def test_dnd_shows_on_the_extension_list(portal, world, live, in_tenant):
    from pbx.audit import SYSTEM
    from telephony.actions import do_update_extension
    from telephony.engine.snapshots import publish_tenant
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        do_update_extension(Extension.objects.get(number="102"), actor=SYSTEM, dnd=True)
    publish_tenant(world.tenant_a.pk)  # on commit in production; the test transaction is open
    live.drain()  # the fan-out follows the snapshot change
    html = portal(world.a_admin, world.tenant_a).get("/portal/extensions/").content.decode()
    assert re.search(r'class="badge badge--dnd" data-live="dnd">DND', _row(html, "102"))
    assert 'data-live="dnd" hidden' in _row(html, "101")


def _next(pubsub, timeout: float = 3.0):
    """The next message of a Redis subscription (polled until ``timeout``), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=deadline - time.monotonic())
        if message is not None:
            return message
    return None


def test_active_calls_page_and_hangup(portal, world, live, rds):
    live.add("call.started", **call(A, "c-9", "101", "102"))
    live.add("call.started", **call(B, "b-9", "201", "202"))
    live.drain()
    # The engine's own mirror of its calls, which a hang-up is checked against.
    rds.hset("sip:calls:t_acme", "c-9", json.dumps({"call_id": "c-9"}))
    rds.hset("sip:calls:t_beta", "b-9", json.dumps({"call_id": "b-9"}))
    p = portal(world.a_admin, world.tenant_a)
    html = p.get("/portal/calls/").content.decode()
    assert 'data-testid="call-c-9"' in html
    assert 'data-hangup="c-9"' in html
    assert "b-9" not in html

    control = rds.pubsub()
    control.subscribe("sip:control")
    assert _next(control)["type"] == "subscribe"  # listening before anything is sent
    try:
        r = p.post("/portal/calls/c-9/hangup/", HTTP_X_REQUESTED_WITH="fetch")
        assert r.status_code == 202
        message = _next(control)
        assert json.loads(message["data"]) == {"op": "hangup", "schema": A, "call_id": "c-9"}
        # Another tenant's call is not there for Acme's admin; nothing is sent.
        r = p.post("/portal/calls/b-9/hangup/", HTTP_X_REQUESTED_WITH="fetch")
        assert r.status_code == 404
        assert _next(control, timeout=0.3) is None
    finally:
        control.close()
    assert AuditEntry.objects.filter(action="call.hangup", object_id="c-9").exists()
    # Without the script: a redirect back with a message.
    r = p.post("/portal/calls/gone/hangup/", follow=True)
    assert "no longer in progress" in r.content.decode()


def test_registrations_page_lists_this_tenants_phones(portal, world, rds, live):
    now = time.time()
    binding = {
        "contact": "sip:101@198.51.100.7:5072",
        "transport": "udp",
        "source_host": "198.51.100.7",
        "source_port": 5072,
        "user_agent": "Yealink SIP-T46U",
        "expires_at": now + 300,
        "registered_at": now,
    }
    rds.hset("sip:loc:acme.test:101", "c1", json.dumps(binding))
    rds.hset("sip:loc:beta.test:201", "c1", json.dumps({**binding, "user_agent": "Beta phone"}))
    try:
        html = portal(world.a_admin, world.tenant_a).get("/portal/registrations/").content.decode()
        assert 'data-testid="registration-101"' in html
        assert "198.51.100.7:5072" in html
        assert "Beta phone" not in html
    finally:
        rds.delete("sip:loc:acme.test:101", "sip:loc:beta.test:201")


# --- call history and dashboard ----------------------------------------------------------------


@pytest.fixture
def cdrs(world, live):
    """Acme: 30 calls (101 -> 102, every third missed), one 102 -> 101; Beta: one call."""
    ids = [
        add_cdr(
            world.tenant_a,
            f"a-{i}",
            "101",
            "102",
            status="no_answer" if i % 3 == 0 else "answered",
            ago=600 + i * 60,
        )
        for i in range(30)
    ]
    ids.append(add_cdr(world.tenant_a, "a-back", "102", "101", ago=300))
    beta = add_cdr(world.tenant_b, "b-1", "201", "202")
    return {"acme": ids, "beta": beta}


def test_cdr_list_search_filter_sort_and_pages(portal, world, cdrs):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get("/portal/cdrs/").content.decode()
    assert "31 total" in html
    assert "page 1 of 2" in html
    assert html.count('data-testid="cdr-') == 25
    # Newest first by default: the 102 -> 101 call heads the list.
    first = re.search(r'data-testid="cdr-(\d+)"', html).group(1)
    assert int(first) == cdrs["acme"][-1]
    html = p.get("/portal/cdrs/", {"status": "no_answer"}).content.decode()
    assert "10 total" in html
    # Filters survive paging and sorting links.
    html = p.get("/portal/cdrs/", {"status": "answered", "direction": "internal"}).content.decode()
    assert "21 total" in html
    assert re.search(r'href="\?[^"]*status=answered[^"]*sort=', html)
    html = p.get("/portal/cdrs/", {"extension": "101", "direction": "internal"}).content.decode()
    assert "31 total" in html
    assert re.search(r'href="\?[^"]*extension=101[^"]*page=2', html)
    html = p.get("/portal/cdrs/", {"q": "a-back"}).content.decode()
    assert "1 total" in html
    html = p.get("/portal/cdrs/", {"sort": "duration", "extension": "102"}).content.decode()
    assert "31 total" in html
    detail = p.get(f"/portal/cdrs/{cdrs['acme'][0]}/")
    assert detail.status_code == 200
    assert "a-0" in detail.content.decode()


def test_another_tenants_cdr_is_not_found(portal, world, cdrs, in_tenant):
    from telephony.models import Cdr

    with in_tenant(world.tenant_a):
        acme_ids = set(Cdr.objects.values_list("pk", flat=True))
    with in_tenant(world.tenant_b):
        beta_only = Cdr.objects.exclude(pk__in=acme_ids).values_list("pk", flat=True).first()
    if beta_only is None:  # ids are per schema and may coincide; then use an unused id
        beta_only = max(acme_ids) + 1000
    p = portal(world.a_admin, world.tenant_a)
    assert p.get(f"/portal/cdrs/{beta_only}/").status_code == 404
    html = p.get("/portal/cdrs/", {"q": "b-1"}).content.decode()
    assert "No calls match" in html


def test_dashboard_charts_match_the_stats(portal, world, cdrs, live):
    from datetime import timedelta

    from django.utils import timezone

    from telephony.stats import call_stats

    live.add("registration", **registration(A, "101"))
    live.drain()
    r = portal(world.a_admin, world.tenant_a).get("/portal/dashboard/")
    html = r.content.decode()
    assert r.status_code == 200
    for chart in ("chart-hours", "chart-outcome", "chart-busiest"):
        assert f'data-testid="{chart}"' in html
    now = timezone.now()
    with tenant_context(world.tenant_a):
        stats = call_stats(world.tenant_a, now - timedelta(hours=24), now)
    assert f'data-testid="outcome-answered">{stats["totals"]["answered"]}<' in html
    assert f'data-testid="outcome-missed">{stats["totals"]["missed"]}<' in html
    assert f'data-testid="tile-total">{stats["totals"]["total"]}<' in html
    assert 'data-testid="tile-online">1<' in html
    assert html.count('class="seg seg--missed"') >= 1
    # One bar group per hour of the period, labels in the tenant's time zone.
    assert html.count('<g class="bar">') == len(stats["per_hour"])
    week = portal(world.a_admin, world.tenant_a).get("/portal/dashboard/?period=7d")
    assert week.content.decode().count('<g class="bar">') >= 7 * 24


# --- webhooks ----------------------------------------------------------------------------------


@pytest.fixture
def loopback_webhooks(settings):
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    return settings


def test_webhook_crud_secret_once_and_errors(portal, world, loopback_webhooks, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    r = p.post(
        "/portal/webhooks/add/",
        {"url": "http://127.0.0.1:9/hooks", "event_types": ["calls"], "enabled": "on"},
    )
    assert r.status_code == 200
    html = r.content.decode()
    secret = re.search(r'data-testid="webhook-secret">([^<]+)<', html).group(1)
    assert secret.startswith("whsec_")
    with in_tenant(world.tenant_a):
        hook = WebhookEndpoint.objects.get(url="http://127.0.0.1:9/hooks")
        assert hook.secret == secret
        assert hook.event_types == ["calls"]
    # Shown once: not on the edit page or the list.
    assert secret not in p.get(f"/portal/webhooks/{hook.pk}/").content.decode()
    assert secret not in p.get("/portal/webhooks/").content.decode()
    # The action's rule comes back on the field; nothing is created.
    r = p.post("/portal/webhooks/add/", {"url": "ftp://example.com/x", "event_types": ["*"]})
    assert r.status_code == 200
    assert 'data-field="url"' in r.content.decode()
    # Rotate the secret and disable.
    r = p.post(
        f"/portal/webhooks/{hook.pk}/",
        {"url": hook.url, "event_types": ["calls", "extension.status"], "rotate_secret": "on"},
    )
    new_secret = re.search(r'data-testid="webhook-secret">([^<]+)<', r.content.decode()).group(1)
    assert new_secret != secret
    with in_tenant(world.tenant_a):
        hook.refresh_from_db()
        assert (hook.enabled, hook.event_types) == (False, ["calls", "extension.status"])
    # Another tenant's admin cannot reach it (their host has no such endpoint).
    other = portal(world.b_admin, world.tenant_b)
    assert other.get(f"/portal/webhooks/{hook.pk}/").status_code == 404
    r = p.post(f"/portal/webhooks/{hook.pk}/delete/")
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        assert not WebhookEndpoint.objects.filter(pk=hook.pk).exists()


def test_webhook_replay_from_an_event_and_delivery_log(portal, world, loopback_webhooks, in_tenant):
    from events.actions import NewEvent, do_append_events, do_create_webhook
    from pbx.audit import SYSTEM

    with in_tenant(world.tenant_a):
        events = do_append_events(
            [NewEvent("call.started", {"call_id": f"r-{i}"}) for i in range(4)]
            + [NewEvent("extension.status", {"extension": "101"})]
        )
        hook, _secret = do_create_webhook(
            url="http://127.0.0.1:9/replay", event_types=["calls"], actor=SYSTEM, enabled=False
        )
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/webhooks/{hook.pk}/").content.decode()
    assert f"<td>{events[0].pk}</td>" in html  # recent events, to pick an id from
    r = p.post(f"/portal/webhooks/{hook.pk}/replay/", {"from_event_id": events[1].pk}, follow=True)
    html = r.content.decode()
    assert "3 events queued" in html  # calls only: the extension.status event is not matched
    with in_tenant(world.tenant_a):
        replayed = list(WebhookDelivery.objects.filter(endpoint=hook).order_by("event_id"))
        assert [d.event_id for d in replayed] == [e.pk for e in events[1:4]]
        assert all(d.replay for d in replayed)
    assert html.count('data-testid="delivery-') == 3
    assert "replay" in html
    r = p.post(f"/portal/webhooks/{hook.pk}/replay/", {"from_event_id": 10**9}, follow=True)
    assert "No such event" in r.content.decode()
    html = p.get("/portal/webhooks/deliveries/", {"state": "delivered"}).content.decode()
    assert "No deliveries" in html
    with in_tenant(world.tenant_a):
        assert OutboxEvent.objects.count() >= 5
