"""Speed dials and hot desking of an extension in the tenant's portal: speed dials set
(bad values shown as field errors, CR/LF included) and removed; an extension made a hot desk,
a user logged in there and out, and who is where shown on both extensions' pages. A user
without extensions.manage may look but not change; another tenant's extension is 404."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pbx.audit import SYSTEM
from telephony.actions import do_create_extension
from telephony.models import Extension, SpeedDial
from tests.api.test_desk import extension_pk

pytestmark = pytest.mark.django_db


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


def test_speed_dials_set_refused_and_removed(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    pk = extension_pk(in_tenant, world.tenant_a, "101")
    url = f"/portal/extensions/{pk}/desk/"
    assert 'data-testid="desk-link"' in p.get(f"/portal/extensions/{pk}/").content.decode()
    assert 'data-testid="no-speed-dials"' in p.get(url).content.decode()
    r = p.post(url, {"form": "speed_dial", "code": "3", "number": "+4930123"})
    assert r.status_code == 302
    html = p.get(url).content.decode()
    assert "<td>3</td><td>+4930123</td>" in html
    for code, number, field in (
        ("1", "102", "code"),
        ("3", "102\r\nX: y", "number"),
        ("3", "101", "number"),
        ("3", "", "number"),
    ):
        r = p.post(url, {"form": "speed_dial", "code": code, "number": number})
        assert r.status_code == 200
        assert field_errors(r.content.decode(), field), (code, number)
    with in_tenant(world.tenant_a):
        assert list(SpeedDial.objects.values_list("code", "number")) == [("3", "+4930123")]
    r = p.post(url, {"form": "clear_speed_dial", "code": "3"})
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()


def test_hot_desk_login_and_logout_shown_on_both_pages(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    desk = extension_pk(in_tenant, world.tenant_a, "101")
    user = extension_pk(in_tenant, world.tenant_a, "102")
    url = f"/portal/extensions/{desk}/desk/"
    assert 'data-testid="hotdesk-login"' not in p.get(url).content.decode()
    assert p.post(url, {"form": "hot_desk", "hot_desk": "on"}).status_code == 302
    r = p.post(url, {"form": "hotdesk_login", "user": "999"})
    assert field_errors(r.content.decode(), "user") == ["no such extension"]
    assert p.post(url, {"form": "hotdesk_login", "user": "102"}).status_code == 302
    assert 'data-testid="hotdesk-user">102<' in p.get(url).content.decode()
    assert "hot desk: 102 logged in" in p.get(f"/portal/extensions/{desk}/").content.decode()
    other = p.get(f"/portal/extensions/{user}/desk/").content.decode()
    assert 'data-testid="logged-in-at">desk 101<' in other
    assert p.post(url, {"form": "hotdesk_logout"}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(pk=desk).hotdesk_user == ""
    assert p.post(url, {"form": "hot_desk"}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(pk=desk).hot_desk is False


def test_read_only_users_and_other_tenants(portal, world, in_tenant):
    with in_tenant(world.tenant_a):  # ids are per schema: one that beta has no extension of
        ext, _ = do_create_extension(number="150", display_name="Desk", actor=SYSTEM)
    with in_tenant(world.tenant_b):
        assert not Extension.objects.filter(pk=ext.pk).exists()
    url = f"/portal/extensions/{ext.pk}/desk/"
    beta = portal(world.b_admin, world.tenant_b)
    assert beta.get(url).status_code == 404
    assert beta.post(url, {"form": "speed_dial", "code": "3", "number": "1"}).status_code == 404
    staff = portal(world.a_user, world.tenant_a)
    r = staff.post(url, {"form": "speed_dial", "code": "3", "number": "102"})
    assert r.status_code in (302, 403, 404)
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()


def test_a_user_sets_its_own_speed_dials(portal, world, me, in_tenant):
    """Story: Dana (extension 103, a plain user) opens "My speed dials" from "My extension",
    sets 5 to an outside number (a bad one is refused) and removes it; she sees the desk she
    is logged in at. Her page never shows another extension's speed dials."""
    from telephony.desk import do_hotdesk_login, do_set_speed_dial

    p = portal(me.user, world.tenant_a)
    assert 'data-testid="my-speed-dials-link"' in p.get("/portal/me/").content.decode()
    with in_tenant(world.tenant_a):
        do_set_speed_dial(Extension.objects.get(number="101"), "5", "102", actor=SYSTEM)
        desk = Extension.objects.get(number="102")
        Extension.objects.filter(pk=desk.pk).update(hot_desk=True)
        desk.refresh_from_db()
        do_hotdesk_login(desk, "103", actor=SYSTEM)
    html = p.get("/portal/me/speed-dials/").content.decode()
    assert 'data-testid="no-speed-dials"' in html
    assert "You are logged in at desk 102" in html
    r = p.post("/portal/me/speed-dials/", {"form": "speed_dial", "code": "5", "number": "x\n1"})
    assert field_errors(r.content.decode(), "number")
    r = p.post("/portal/me/speed-dials/", {"form": "speed_dial", "code": "5", "number": "+4930"})
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        mine = SpeedDial.objects.filter(extension__number="103")
        assert list(mine.values_list("code", "number")) == [("5", "+4930")]
    assert (
        p.post("/portal/me/speed-dials/", {"form": "clear_speed_dial", "code": "5"}).status_code
        == 302
    )
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.filter(extension__number="103").exists()
        assert SpeedDial.objects.filter(extension__number="101").exists()
