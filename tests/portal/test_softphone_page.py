"""The web softphone's page in the end user's web app (``/portal/me/phone/``): in the user's
menu, loading JsSIP from our own static files (no CDN), with what the script needs to fetch the
user's own credential and DND; a clear page without an extension or with the web phone off; the
pop-out window without the menu. The SIP password never reaches the page. (What the page does in
a browser: tests/e2e/test_softphone.py.)"""

from __future__ import annotations

import re

import pytest

from telephony.models import Extension

URL = "/portal/me/phone/"


def _softphone(html: str) -> dict[str, str]:
    tag = re.search(r"<div class=\"softphone\" data-softphone([^>]*)>", html, re.S)
    assert tag is not None, "no softphone on the page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(1)))


def test_the_phone_is_in_the_users_menu_and_carries_its_config(portal, world, me):
    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/").content.decode()
    assert f'href="{URL}"' in html
    assert ">Phone</a>" in html
    r = p.get(URL)
    assert r.status_code == 200
    html = r.content.decode()
    assert '<script src="/static/vendor/jssip/jssip.min.js" defer></script>' in html
    assert '<script src="/static/portal/softphone.js" defer></script>' in html
    assert "//cdn" not in html
    assert "https://" not in html.split("<body", 1)[0]
    config = _softphone(html)
    assert config["credential-url"] == "/api/v1/me/softphone/"
    assert config["dnd-url"] == "/api/v1/me/dnd/"
    assert config["lock"] == f"{world.tenant_a.schema_name}:103"
    assert config["take"] == "0"
    assert config["csrf"]
    assert 'aria-current="page">Phone<' in html
    assert "Sip-Secret-Pass-77" not in html  # the SIP password stays on the server
    assert 'href="/portal/me/calls/"' in html  # the call history
    for key in "0123456789":
        assert f'data-key="{key}"' in html
    assert 'data-key="*" aria-label="star"' in html
    assert 'data-key="#" aria-label="hash"' in html


def test_the_pop_out_window_has_no_menu_and_takes_the_phone(portal, world, me):
    html = portal(me.user, world.tenant_a).get(URL, {"window": "1"}).content.decode()
    assert 'id="mainnav"' not in html
    assert _softphone(html)["take"] == "1"
    assert "data-popout" not in html


def test_no_extension_or_the_phone_off_is_said_plainly(portal, world, me, in_tenant):
    p = portal(me.user, world.tenant_a)
    with in_tenant(world.tenant_a):
        Extension.objects.filter(pk=me.pk).update(web_softphone=False)
    html = p.get(URL).content.decode()
    assert 'data-testid="phone-unavailable"' in html
    assert "data-softphone" not in html
    assert "jssip.min.js" not in html
    with in_tenant(world.tenant_a):
        Extension.objects.filter(pk=me.pk).update(web_softphone=True, enabled=False)
    assert 'data-testid="phone-unavailable"' in p.get(URL).content.decode()
    # An admin of the tenant without an extension of its own.
    html = portal(world.a_admin, world.tenant_a).get(URL).content.decode()
    assert 'data-testid="phone-no-extension"' in html
    assert "data-softphone" not in html


@pytest.mark.parametrize("who", ["anonymous", "other_tenant"])
def test_strangers_get_no_phone(portal, world, me, who):
    if who == "anonymous":
        r = portal(tenant=world.tenant_a).get(URL)
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/")
    else:
        # Acme's user on Beta's host: not signed in there, nothing of Beta's shown.
        r = portal(me.user, world.tenant_b).get(URL)
        assert r.status_code in (302, 403, 404)
        assert b"data-softphone" not in r.content
