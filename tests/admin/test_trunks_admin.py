"""Trunks and the DID pool in the Django admin: the system admin's (``/admin/``) and the
dealers' (``/dealer-admin/``). Every write goes through ``trunks.actions`` (audited); the
password is write-only; a refusal is a form error or a message and changes nothing; a dealer
sees, offers and acts on its subtree's trunks, numbers and tenants only."""

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from tests.admin.test_dealer_admin import _form_data, _leaks
from trunks import actions
from trunks.models import DidNumber, Trunk

pytestmark = pytest.mark.django_db

SECRET = "admin-carrier-pass-9"
TRUNKS, NUMBERS = "/admin/trunks/trunk/", "/admin/trunks/didnumber/"


def test_the_system_admin_adds_a_trunk_with_a_write_only_password(portal, world):
    admin = portal(world.sysadmin)
    r = admin.get(f"{TRUNKS}add/")
    assert r.status_code == 200
    data = {
        **_form_data(r),
        "name": "Carrier Reg",
        "kind": "register",
        "host": "sip.carrier.test",
        "username": "acct9",
        "password": SECRET,
        "shared_with": [world.tenant_a.pk],
        "codecs": ["PCMU", "PCMA"],
    }
    bad = admin.post(f"{TRUNKS}add/", {**data, "host": "bad host", "realm": "a\r\nb"})
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert {"host", "realm"} <= set(errors), errors
    assert not Trunk.objects.exists()
    r = admin.post(f"{TRUNKS}add/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    trunk = Trunk.objects.get()
    assert (trunk.password, trunk.codecs, trunk.tenant, trunk.dealer) == (
        SECRET, ["PCMU", "PCMA"], None, None
    )  # fmt: skip
    assert list(trunk.shared_with.all()) == [world.tenant_a]
    created = AuditEntry.objects.get(action="trunk.create", object_id=str(trunk.pk))
    assert created.actor_id == world.sysadmin.pk
    assert SECRET not in str(created.changes)

    page = admin.get(f"{TRUNKS}{trunk.pk}/change/")
    assert SECRET not in page.content.decode()
    assert "unknown" in page.content.decode()  # the live state, before any engine checked it
    listing = admin.get(TRUNKS)
    assert "Carrier Reg" in listing.content.decode()
    # Saved without a password: the stored one stays.
    r = admin.post(f"{TRUNKS}{trunk.pk}/change/", {**_form_data(page), "max_channels": 7})
    assert r.status_code == 302, r.context["adminform"].form.errors
    trunk.refresh_from_db()
    assert (trunk.max_channels, trunk.password) == (7, SECRET)
    assert AuditEntry.objects.filter(action="trunk.update", object_id=str(trunk.pk)).exists()
    r = admin.post(f"{TRUNKS}{trunk.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not Trunk.objects.exists()
    assert AuditEntry.objects.filter(action="trunk.delete", object_id=str(trunk.pk)).exists()


def test_numbers_are_added_as_ranges_assigned_and_released(portal, world):
    admin = portal(world.sysadmin)
    r = admin.get(f"{NUMBERS}add/")
    data = {**_form_data(r), "number": "212 555 0160", "last": "212 555 0162", "country": "US"}
    r = admin.post(f"{NUMBERS}add/", data, follow=True)
    assert r.status_code == 200
    assert "3 numbers were added" in r.content.decode()
    numbers = list(DidNumber.objects.order_by("number"))
    assert [n.number for n in numbers] == ["+12125550160", "+12125550161", "+12125550162"]
    # An overlap is a form error; nothing is added.
    r = admin.post(f"{NUMBERS}add/", {**data, "number": "+12125550162", "last": "+12125550170"})
    assert r.status_code == 200
    assert r.context["adminform"].form.errors
    assert DidNumber.objects.count() == 3

    first, second = numbers[0], numbers[1]
    r = admin.post(
        NUMBERS,
        {"action": "assign", "_selected_action": [first.pk, second.pk], "tenant": "acme"},
    )
    assert r.status_code == 302
    assert set(DidNumber.objects.filter(tenant=world.tenant_a).values_list("pk", flat=True)) == {
        first.pk,
        second.pk,
    }
    assert AuditEntry.objects.filter(action="number.assign", actor=world.sysadmin).count() == 2
    # Another tenant while Acme holds it: refused on the change form.
    page = admin.get(f"{NUMBERS}{first.pk}/change/")
    r = admin.post(
        f"{NUMBERS}{first.pk}/change/", {**_form_data(page), "tenant": world.tenant_b.pk}
    )
    assert r.status_code == 200
    assert "belongs to another tenant" in str(r.context["adminform"].form.errors["tenant"])
    assert DidNumber.objects.get(pk=first.pk).tenant_id == world.tenant_a.pk
    r = admin.post(NUMBERS, {"action": "release", "_selected_action": [first.pk]})
    assert r.status_code == 302
    assert DidNumber.objects.get(pk=first.pk).tenant_id is None
    # The change form's tenant, emptied, releases too.
    page = admin.get(f"{NUMBERS}{second.pk}/change/")
    data = {**_form_data(page), "description": "Front desk"}
    data.pop("tenant")
    r = admin.post(f"{NUMBERS}{second.pk}/change/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    second.refresh_from_db()
    assert (second.tenant_id, second.description) == (None, "Front desk")
    assert AuditEntry.objects.filter(action="number.release", object_id=str(second.pk)).exists()


def test_a_dealer_admin_works_on_its_subtree_only(portal, world):
    north = portal(world.north_admin)
    south_trunk = actions.do_create_trunk(
        actor=SYSTEM,
        fields={"name": "South trunk", "host": "sip.south.test", "addresses": ["192.0.2.3"]},
        dealer=world.south,
    )
    (south_number,) = actions.do_add_numbers(
        actor=SYSTEM, number="+12125550171", dealer=world.south
    )
    r = north.get("/dealer-admin/trunks/trunk/add/")
    assert r.status_code == 200
    assert not _leaks(r)
    form = r.context["adminform"].form
    assert set(form.fields["tenant"].queryset) == {world.tenant_a}
    assert set(form.fields["shared_with"].queryset) == {world.tenant_a}
    data = {
        **_form_data(r),
        "name": "North trunk",
        "host": "sip.north.test",
        "addresses": "192.0.2.4",
        "shared_with": [world.tenant_a.pk],
    }
    # Sharing with South's tenant, posted by hand, is refused.
    r = north.post("/dealer-admin/trunks/trunk/add/", {**data, "shared_with": [world.tenant_b.pk]})
    assert r.status_code == 200
    assert "shared_with" in r.context["adminform"].form.errors
    r = north.post("/dealer-admin/trunks/trunk/add/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    mine = Trunk.objects.get(name="North trunk")
    assert (mine.dealer_id, mine.addresses) == (world.north.pk, ["192.0.2.4"])  # its own dealer's
    assert north.get(f"/dealer-admin/trunks/trunk/{south_trunk.pk}/change/").status_code == 404
    assert "South trunk" not in north.get("/dealer-admin/trunks/trunk/").content.decode()

    r = north.get("/dealer-admin/trunks/didnumber/add/")
    data = {**_form_data(r), "number": "+12125550180"}
    r = north.post("/dealer-admin/trunks/didnumber/add/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    number = DidNumber.objects.get(number="+12125550180")
    assert number.dealer_id == world.north.pk
    # South's tenant, named in the action, is not North's to give numbers to.
    listing = "/dealer-admin/trunks/didnumber/"
    north.post(listing, {"action": "assign", "_selected_action": [number.pk], "tenant": "beta"})
    assert DidNumber.objects.get(pk=number.pk).tenant_id is None
    # South's number, posted in an action, is not acted on.
    north.post(
        listing, {"action": "assign", "_selected_action": [south_number.pk], "tenant": "acme"}
    )
    assert DidNumber.objects.get(pk=south_number.pk).tenant_id is None
    north.post(listing, {"action": "assign", "_selected_action": [number.pk], "tenant": "acme"})
    assert DidNumber.objects.get(pk=number.pk).tenant_id == world.tenant_a.pk
    page = north.get(listing)
    assert "+12125550180" in page.content.decode()
    assert "+12125550171" not in page.content.decode()
