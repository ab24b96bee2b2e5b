"""A tenant administrator's DISA pages on the tenant's host: the empty list, an entry made,
its PIN never shown again (empty keeps it), field errors on their boxes, a delete that says
what still sends calls to the entry, the entry offered as a target of inbound rules and menu
keys; another tenant's entries stay out of reach (404). Set-up through the real actions;
results read from the tenant's schema."""

from __future__ import annotations

from html import unescape

import pytest

from pbx.audit import SYSTEM
from routing.disa import do_create_disa
from routing.ivr import do_create_ivr
from routing.models import Disa
from telephony.sip.contract import pin_matches

from .pages import assert_out_of_reach, field_errors

pytestmark = pytest.mark.django_db

R = "/portal/routing"


def entry_post(**kw) -> dict:
    data = {"name": "Road warriors", "pin": "402719", "extension": "101", "enabled": "on"}
    data.update(kw)
    return {k: v for k, v in data.items() if v is not None}


def test_entries_empty_then_made_edited_and_deleted(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/disa/").content.decode()
    assert "No DISA entries yet" in html
    assert 'href="/portal/routing/disa/"' in html  # in the menu
    form = p.get(f"{R}/disa/add/").content.decode()
    assert '<option value="101">' in form
    assert 'type="password"' in form
    r = p.post(f"{R}/disa/add/", entry_post())
    assert r.status_code == 302, r.content.decode()
    with in_tenant(world.tenant_a):
        entry = Disa.objects.select_related("extension").get()
        assert (entry.name, entry.extension.number, entry.enabled) == ("Road warriors", "101", True)
        assert pin_matches(entry.pin_hash, "402719")
    html = p.get(f"{R}/disa/").content.decode()
    assert "Road warriors" in html
    assert "402719" not in html
    # The edit page never shows the PIN; empty keeps it, a new one replaces it.
    edit = p.get(f"{R}/disa/{entry.pk}/").content.decode()
    assert "402719" not in edit
    assert "A PIN is set" in edit
    r = p.post(f"{R}/disa/{entry.pk}/", entry_post(name="Sales", pin="", extension="102"))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        entry.refresh_from_db()
        assert (entry.name, entry.extension.number) == ("Sales", "102")
        assert pin_matches(entry.pin_hash, "402719")
    assert p.post(f"{R}/disa/{entry.pk}/", entry_post(pin="8351")).status_code == 302
    with in_tenant(world.tenant_a):
        entry.refresh_from_db()
        assert pin_matches(entry.pin_hash, "8351")
    # Inbound rules and menu keys offer it.
    for path in ("inbound/add/", "ivr/add/"):
        page = p.get(f"{R}/{path}").content.decode()
        assert '<option value="disa"' in page, path
        assert f'value="{entry.pk}"' in page, path
    page = p.get(f"{R}/disa/{entry.pk}/delete/").content.decode()
    assert "Nothing sends calls to this entry" in page
    assert p.post(f"{R}/disa/{entry.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not Disa.objects.exists()


def test_errors_land_on_their_boxes(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.post(f"{R}/disa/add/", entry_post(pin="1111")).content.decode()
    assert field_errors(html, "pin") == ["4 to 12 digits, not all the same"]
    html = p.post(f"{R}/disa/add/", entry_post(pin="12ab")).content.decode()
    assert field_errors(html, "pin")
    html = p.post(f"{R}/disa/add/", entry_post(pin="")).content.decode()
    assert field_errors(html, "pin") == ["required"]
    html = p.post(f"{R}/disa/add/", entry_post(extension="201")).content.decode()  # Beta's
    assert field_errors(html, "extension")
    html = p.post(f"{R}/disa/add/", entry_post(name=" ")).content.decode()
    assert field_errors(html, "name")
    with in_tenant(world.tenant_a):
        assert not Disa.objects.exists()


def test_an_entry_in_use_says_by_what_and_stays(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        entry = do_create_disa(actor=SYSTEM, fields={
            "name": "Road", "pin": "402719", "extension": "101"})  # fmt: skip
        do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main", "options": [
            {"digit": "7", "target": {"kind": "disa", "target": str(entry.pk)}}]})  # fmt: skip
    p = portal(world.a_admin, world.tenant_a)
    assert "7: DISA (dial out with a PIN) Road" in p.get(f"{R}/ivr/").content.decode()
    page = p.get(f"{R}/disa/{entry.pk}/delete/").content.decode()
    assert "IVR menu 800 &#x27;Main&#x27; (key 7)" in page
    assert 'data-testid="disa-delete"' not in page
    r = p.post(f"{R}/disa/{entry.pk}/delete/", follow=True)
    assert "is in use by IVR menu 800" in unescape(r.content.decode())
    with in_tenant(world.tenant_a):
        assert Disa.objects.count() == 1


def test_another_tenants_entries_are_404(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        entry = do_create_disa(actor=SYSTEM, fields={
            "name": "Road", "pin": "402719", "extension": "101"})  # fmt: skip
    b = portal(world.b_admin, world.tenant_b)
    assert_out_of_reach(b, f"{R}/disa/{entry.pk}/", entry_post(extension="201"))
    assert "No DISA entries yet" in b.get(f"{R}/disa/").content.decode()
    with in_tenant(world.tenant_a):
        assert Disa.objects.get().name == "Road"
    user = portal(world.a_user, world.tenant_a)
    for path in ("disa/", "disa/add/"):
        assert user.get(f"{R}/{path}").status_code == 404
