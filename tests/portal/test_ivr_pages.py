"""A tenant administrator's IVR menu and feature code pages on the tenant's host: the empty
list, a menu made with its keys, field errors on the boxes they belong to, a delete that says
what still sends calls to the menu, the feature code table saved and reset; another tenant's
menus stay out of reach (404). Set-up through the real actions; results read from the tenant's
schema."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pbx.audit import SYSTEM
from routing.ivr import do_create_ivr
from routing.models import IvrMenu
from telephony.features import codes
from telephony.sip.contract import FEATURE_DEFAULTS

from .pages import assert_out_of_reach, field_errors

pytestmark = pytest.mark.django_db

R = "/portal/routing"
KEYS = "0123456789*#"
KEY_NAMES = {d: d for d in "0123456789"} | {"*": "star", "#": "hash"}


def menu_post(keys: dict | None = None, **kw) -> dict:
    data = {
        "number": "800",
        "name": "Reception",
        "greeting": "",
        "invalid": "",
        "dial_extension": "on",
        "timeout": "5",
        "tries": "3",
        "timeout_kind": "",
        "timeout_target": "",
        "closed_greeting": "",
        "closed_kind": "",
        "closed_target": "",
    }
    for digit in KEYS:
        kind, target = (keys or {}).get(digit, ("", ""))
        data[f"key_{KEY_NAMES[digit]}_kind"] = kind
        data[f"key_{KEY_NAMES[digit]}_target"] = target
    data.update(kw)
    return data


def test_menus_empty_then_made_edited_and_deleted(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/ivr/").content.decode()
    assert "No IVR menus yet" in html
    assert 'href="/portal/routing/ivr/"' in html  # in the menu
    form = p.get(f"{R}/ivr/add/").content.decode()
    assert '<option value="voicemail"' in form
    assert '<option value="repeat"' in form
    assert '<option value="welcome">' in form  # a prompt to pick
    keys = {"1": ("extension", "101"), "2": ("voicemail", "102"), "*": ("repeat", "")}
    r = p.post(f"{R}/ivr/add/", menu_post(keys, timeout_kind="extension", timeout_target="102"))
    assert r.status_code == 302, field_errors(r.content.decode(), "number")
    with in_tenant(world.tenant_a):
        menu = IvrMenu.objects.get()
        assert {o.digit: o.target for o in menu.options.all()} == {
            "1": {"kind": "extension", "target": "101"},
            "2": {"kind": "voicemail", "target": "102"},
            "*": {"kind": "repeat", "target": ""},
        }
        assert menu.timeout_target == {"kind": "extension", "target": "102"}
    html = p.get(f"{R}/ivr/").content.decode()
    assert "1: Extension 101" in html
    assert "Extension 102" in html
    # The edit page shows what is stored; a change replaces the keys.
    edit = p.get(f"{R}/ivr/{menu.pk}/").content.decode()
    assert 'name="key_star_kind"' in edit
    assert re.search(r'name="key_1_target"[^>]*value="101"', edit)
    r = p.post(f"{R}/ivr/{menu.pk}/", menu_post({"0": ("hangup", "")}, name="Front desk"))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        menu.refresh_from_db()
        assert menu.name == "Front desk"
        assert [o.digit for o in menu.options.all()] == ["0"]
    # Delete: confirmed on its own page, then gone.
    page = p.get(f"{R}/ivr/{menu.pk}/delete/").content.decode()
    assert "Nothing sends calls to this menu" in page
    assert p.post(f"{R}/ivr/{menu.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not IvrMenu.objects.exists()


def test_errors_land_on_their_boxes(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.post(f"{R}/ivr/add/", menu_post(number="101")).content.decode()
    assert field_errors(html, "number") == ["extension 101 has this number"]
    html = p.post(f"{R}/ivr/add/", menu_post({"4": ("extension", "999")})).content.decode()
    assert field_errors(html, "key_4_target") == ["no extension 999"]
    html = p.post(f"{R}/ivr/add/", menu_post({"#": ("ivr", "800")})).content.decode()
    assert "repeat" in field_errors(html, "key_hash_target")[0]
    html = p.post(f"{R}/ivr/add/", menu_post(greeting="nope")).content.decode()
    assert field_errors(html, "greeting") == ["no prompt named 'nope'"]
    html = p.post(
        f"{R}/ivr/add/", menu_post(closed_kind="external", closed_target="call me")
    ).content.decode()
    assert field_errors(html, "closed_target")
    html = p.post(f"{R}/ivr/add/", menu_post(timeout="0")).content.decode()
    assert field_errors(html, "timeout")
    with in_tenant(world.tenant_a):
        assert not IvrMenu.objects.exists()


def test_a_menu_in_use_says_by_what_and_stays(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        main = do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main"})
        do_create_ivr(actor=SYSTEM, fields={"number": "801", "name": "Sales", "options": [
            {"digit": "0", "target": {"kind": "ivr", "target": "800"}}]})  # fmt: skip
    p = portal(world.a_admin, world.tenant_a)
    page = p.get(f"{R}/ivr/{main.pk}/delete/").content.decode()
    assert "IVR menu 801 &#x27;Sales&#x27; (key 0)" in page
    assert 'data-testid="ivr-delete"' not in page
    r = p.post(f"{R}/ivr/{main.pk}/delete/", follow=True)
    assert "is in use by IVR menu 801" in unescape(r.content.decode())
    with in_tenant(world.tenant_a):
        assert IvrMenu.objects.count() == 2


def test_another_tenants_menus_are_404(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        menu = do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main"})
    b = portal(world.b_admin, world.tenant_b)
    assert_out_of_reach(b, f"{R}/ivr/{menu.pk}/", menu_post(name="Mine"))
    assert "No IVR menus yet" in b.get(f"{R}/ivr/").content.decode()
    with in_tenant(world.tenant_a):
        assert IvrMenu.objects.get().name == "Main"
    user = portal(world.a_user, world.tenant_a)
    for path in ("ivr/", "ivr/add/", "feature-codes/"):
        assert user.get(f"{R}/{path}").status_code == 404


def _codes_post(**changes) -> dict:
    data = {}
    for feature, code in FEATURE_DEFAULTS.items():
        data[f"code_{feature}"] = code
        data[f"on_{feature}"] = "on"
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_feature_codes_saved_refused_and_reset(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/feature-codes/").content.decode()
    assert "Do not disturb on" in html
    assert 'value="*78"' in html
    r = p.post(f"{R}/feature-codes/", _codes_post(code_dnd_on="*11", on_forward_busy_on=None))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        effective = codes()
        assert effective["dnd_on"] == "*11"
        assert "forward_busy_on" not in effective
    html = p.post(f"{R}/feature-codes/", _codes_post(code_dnd_on="*721")).content.decode()
    (error,) = field_errors(html, "code_dnd_on")
    assert "*72 takes a number" in error
    html = p.post(f"{R}/feature-codes/", _codes_post(code_dnd_off="79")).content.decode()
    assert field_errors(html, "code_dnd_off") == ["* or # and 1 to 6 digits or *, like *78"]
    assert p.post(f"{R}/feature-codes/reset/").status_code == 302
    with in_tenant(world.tenant_a):
        assert codes() == FEATURE_DEFAULTS
    assert p.get(f"{R}/feature-codes/reset/").status_code == 405
