"""The end user's web app: sign in with an e-mail or ``extension@domain``, their own extension,
DND and call forwarding (carried in the routing snapshot for the engine), web and SIP passwords
under the tenant's policy, and their own calls only."""

from __future__ import annotations

import re

import pytest

from telephony.models import Extension
from tests.portal.calls_helpers import add_cdr
from tests.portal.conftest import SELF_SERVICE_PASSWORD as PASSWORD


def _ext(in_tenant, tenant, number):
    with in_tenant(tenant):
        return Extension.objects.get(number=number)


@pytest.mark.parametrize("login", ["dana@acme.test", "103@acme.test", "103@ACME.test"])
def test_sign_in_with_email_or_extension_at_domain(portal, world, me, login):
    p = portal(tenant=world.tenant_a)
    r = p.post("/accounts/login/", {"login": login, "password": PASSWORD})
    assert r.status_code == 302
    assert r["Location"] == "/portal/"
    r = p.get("/portal/")
    assert r["Location"] == "/portal/me/"  # a plain user lands on their own extension
    html = p.get("/portal/me/").content.decode()
    assert 'data-testid="my-number">103<' in html


def test_extension_at_domain_is_scoped_to_the_host(portal, world, me):
    # Beta's host: 103@acme.test is nobody there (and the domain is not Beta's).
    r = portal(tenant=world.tenant_b).post(
        "/accounts/login/", {"login": "103@acme.test", "password": PASSWORD}
    )
    assert r.status_code == 200
    r = portal(tenant=world.tenant_a).post(
        "/accounts/login/", {"login": "103@beta.test", "password": PASSWORD}
    )
    assert r.status_code == 200


def test_sign_in_page_says_extension_at_domain(portal, world):
    html = portal(tenant=world.tenant_a).get("/accounts/login/").content.decode()
    assert "E-mail or extension@acme.test" in html


def test_user_sets_dnd_and_forwarding_and_the_snapshot_carries_it(portal, world, me, in_tenant):
    from telephony.engine.snapshots import build_snapshot

    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/").content.decode()
    assert 'data-testid="call-settings"' in html
    assert "Users" not in html  # no admin menu for a plain user
    r = p.post(
        "/portal/me/",
        {
            "form": "settings",
            "dnd": "on",
            "forward_always": "",
            "forward_busy": "102",
            "forward_no_answer": "+4930 1234567",
            "no_answer_timeout": "25",
        },
    )
    assert r.status_code == 302
    ext = _ext(in_tenant, world.tenant_a, "103")
    assert (ext.dnd, ext.forward_always, ext.forward_busy) == (True, "", "102")
    assert (ext.forward_no_answer, ext.no_answer_timeout) == ("+49301234567", 25)
    entry = build_snapshot(world.tenant_a).extensions["103"]
    assert entry.dnd is True
    assert entry.forward_always == ""
    assert entry.forward_busy == "102"
    assert entry.forward_no_answer == "+49301234567"
    assert entry.no_answer_timeout == 25


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # The extension action's messages: the same as through the API and the CSV import.
        ("forward_always", "103", "cannot forward to itself"),
        ("forward_busy", "sip:evil@example.com", "digits"),
        ("no_answer_timeout", "2", "5 to 120 seconds"),
        ("no_answer_timeout", "500", "5 to 120 seconds"),
    ],
)
def test_bad_forwarding_is_refused_and_nothing_changes(
    portal, world, me, in_tenant, field, value, message
):
    data = {"form": "settings", "no_answer_timeout": "20", field: value}
    r = portal(me.user, world.tenant_a).post("/portal/me/", data)
    assert r.status_code == 400
    assert re.search(rf'data-field="{field}">[^<]*{message}', r.content.decode())
    ext = _ext(in_tenant, world.tenant_a, "103")
    assert (ext.forward_always, ext.forward_busy, ext.no_answer_timeout) == ("", "", 20)


def test_web_password_needs_the_current_one_and_the_tenants_policy(portal, world, me):
    p = portal(me.user, world.tenant_a)

    def change(current, new, confirm=None):
        return p.post(
            "/portal/me/",
            {
                "form": "web_password",
                "current_password": current,
                "new_password": new,
                "confirm_password": new if confirm is None else confirm,
            },
        )

    r = change("wrong-one", "Brand-New-Pass-99")
    assert r.status_code == 400
    assert "not your current password" in r.content.decode()
    r = change(PASSWORD, "Brand-New-Pass-99", "Other-Pass-99")
    assert "The two passwords differ" in r.content.decode()
    # The tenant's policy (upper, lower, digit; at least 10) from the action, on the field.
    r = change(PASSWORD, "alllowercase-long")
    html = r.content.decode()
    assert r.status_code == 400
    assert re.search(r'data-field="new_password">must contain an upper-case letter', html)
    assert re.search(r'data-field="new_password">must contain a digit', html)
    me.user.refresh_from_db()
    assert me.user.check_password(PASSWORD)  # unchanged
    r = change(PASSWORD, "Brand-New-Pass-99")
    assert r.status_code == 302
    me.user.refresh_from_db()
    assert me.user.check_password("Brand-New-Pass-99")
    assert p.get("/portal/me/").status_code == 200  # still signed in on this session


def test_sip_password_under_the_sip_policy(portal, world, me, in_tenant):
    p = portal(me.user, world.tenant_a)
    before = _ext(in_tenant, world.tenant_a, "103").ha1_sha256
    r = p.post(
        "/portal/me/",
        {"form": "sip_password", "new_sip_password": "Short1a", "confirm_sip_password": "Short1a"},
    )
    assert r.status_code == 400
    assert re.search(
        r'data-field="new_sip_password">must be at least \d+ characters', r.content.decode()
    )
    assert _ext(in_tenant, world.tenant_a, "103").ha1_sha256 == before
    new = "Fresh-Sip-Secret-2024"
    r = p.post(
        "/portal/me/",
        {"form": "sip_password", "new_sip_password": new, "confirm_sip_password": new},
    )
    assert r.status_code == 302
    ext = _ext(in_tenant, world.tenant_a, "103")
    assert ext.sip_password == new
    assert ext.ha1_sha256 != before


def test_user_changes_only_their_own_extension(portal, world, me, in_tenant):
    """The pages take no object id: posting another extension's number changes nothing of it,
    and the admin pages for extensions stay closed to a plain user."""
    p = portal(me.user, world.tenant_a)
    r = p.post(
        "/portal/me/",
        {"form": "settings", "number": "101", "dnd": "on", "no_answer_timeout": "20"},
    )
    assert r.status_code == 302
    assert _ext(in_tenant, world.tenant_a, "101").dnd is False
    assert _ext(in_tenant, world.tenant_a, "103").dnd is True
    other = _ext(in_tenant, world.tenant_a, "101")
    assert p.get(f"/portal/extensions/{other.pk}/").status_code == 404
    assert p.post(f"/portal/extensions/{other.pk}/", {"dnd": "on"}).status_code == 404
    assert p.post("/portal/me/", {"form": "bogus"}).status_code == 404


def test_a_user_sees_only_their_own_calls(portal, world, me):
    mine = add_cdr(world.tenant_a, "m-1", "103", "101")
    received = add_cdr(world.tenant_a, "m-2", "102", "103", status="no_answer")
    others = add_cdr(world.tenant_a, "o-1", "101", "102")
    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/calls/").content.decode()
    assert f'data-testid="cdr-{mine}"' in html
    assert f'data-testid="cdr-{received}"' in html
    assert f'data-testid="cdr-{others}"' not in html
    assert "2 total" in html
    assert p.get(f"/portal/me/calls/{mine}/").status_code == 200
    assert p.get(f"/portal/me/calls/{others}/").status_code == 404
    # The tenant's call history is an admin page.
    assert p.get("/portal/cdrs/").status_code == 404
    assert p.get(f"/portal/cdrs/{others}/").status_code == 404
    # Filters narrow their own calls only.
    html = p.get("/portal/me/calls/", {"status": "no_answer"}).content.decode()
    assert "1 total" in html
    # Another user of the same tenant without an extension sees none of them.
    html = portal(world.a_user, world.tenant_a).get("/portal/me/calls/").content.decode()
    assert "No extension is assigned" in html


def test_user_without_extension_can_still_change_web_password(portal, world):
    p = portal(world.a_user, world.tenant_a)
    html = p.get("/portal/me/").content.decode()
    assert "No extension is assigned" in html
    assert 'data-testid="web-password"' in html
    assert 'data-testid="sip-password"' not in html
    r = p.post(
        "/portal/me/",
        {
            "form": "web_password",
            "current_password": PASSWORD,
            "new_password": "short",
            "confirm_password": "short",
        },
    )
    assert r.status_code == 400
    assert "must be at least 10 characters" in r.content.decode()


def test_admin_sets_forwarding_on_the_extension_page(portal, world, in_tenant):
    ext = _ext(in_tenant, world.tenant_a, "102")
    p = portal(world.a_admin, world.tenant_a)
    assert "forward_no_answer" in p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    r = p.post(
        f"/portal/extensions/{ext.pk}/",
        {
            "display_name": ext.display_name,
            "enabled": "on",
            "forward_always": "101",
            "no_answer_timeout": "30",
        },
    )
    assert r.status_code == 302
    ext = _ext(in_tenant, world.tenant_a, "102")
    assert (ext.forward_always, ext.no_answer_timeout) == ("101", 30)


def test_extension_sign_in_on_a_sip_domain_that_is_not_an_email_domain(world, in_tenant):
    """A tenant whose SIP domain is a single label still signs its users in as ext@domain."""
    from django.test import Client

    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension
    from tenants.actions import do_create_tenant

    tenant = do_create_tenant(
        name="Lan", slug="lan", sip_domain="pbxlan", web_host="lan.test", actor=SYSTEM
    )
    with in_tenant(tenant):
        do_create_extension(
            number="700",
            display_name="Desk",
            email="desk@lan.test",
            web_password="Green-Field-Lamp-7",
            actor=SYSTEM,
        )
    client = Client(HTTP_HOST="lan.test")
    r = client.post("/accounts/login/", {"login": "700@pbxlan", "password": "Green-Field-Lamp-7"})
    assert r.status_code == 302, r.content[:2000]
    r = Client(HTTP_HOST="lan.test").post(
        "/accounts/login/", {"login": "700@pbxlan", "password": "wrong"}
    )
    assert r.status_code == 200  # the form again, with an error
    assert b"700@pbxlan" in r.content
