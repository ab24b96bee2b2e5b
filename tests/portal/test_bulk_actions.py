"""Bulk actions on the extension and phone lists: an administrator ticks rows and enables,
disables, sets DND, deletes (after a confirmation that lists what goes with them), re-provisions
or reboots them. Each object goes through its own action (one audit entry each); a refusal is
reported by row while the others go through; an id that is not the host tenant's — another
tenant's object, which lives in another schema — is reported as not found and never touched."""

from __future__ import annotations

import html as html_lib
import json
import re
import time

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry

EXT_BULK = "/portal/extensions/bulk/"
PHONE_BULK = "/portal/phones/bulk/"


def _pks(in_tenant, tenant, model, **filters) -> dict:
    with in_tenant(tenant):
        return {o.pk: o for o in model.objects.filter(**filters)}


def foreign_extension_pk(world, in_tenant) -> int:
    """The pk of one of Beta's extensions that no extension of Acme has (schemas number their
    rows on their own, so the same pk may exist in both: pick one that does not)."""
    from telephony.actions import do_create_extension
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        acme = set(Extension.objects.values_list("pk", flat=True))
    with in_tenant(world.tenant_b):
        for n in range(20):
            free = [pk for pk in Extension.objects.values_list("pk", flat=True) if pk not in acme]
            if free:
                return free[0]
            do_create_extension(number=f"29{n}", display_name="Beta extra", actor=SYSTEM)
    raise AssertionError("no Beta-only primary key")


def messages_of(response) -> str:
    """The page's messages (what the bulk action reported), as text."""
    html = response.content.decode()
    found = re.search(r'<ul class="messages">(.*?)</ul>', html, re.S)
    return html_lib.unescape(found.group(1)) if found else ""


@pytest.fixture
def exts(world, in_tenant):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        return {e.number: e for e in Extension.objects.filter(number__in=["101", "102"])}


def test_bulk_disable_and_enable_with_a_foreign_pk(portal, world, in_tenant, exts):
    from telephony.models import Extension

    foreign = foreign_extension_pk(world, in_tenant)
    p = portal(world.a_admin, world.tenant_a)
    ids = [exts["101"].pk, exts["102"].pk, foreign]
    before = AuditEntry.objects.filter(action="extension.update").count()
    r = p.post(
        EXT_BULK,
        {"action": "disable", "pk": ids, "next": "/portal/extensions/?q=10"},
        follow=True,
    )
    assert r.redirect_chain[0] == ("/portal/extensions/?q=10", 302)  # back to the same list
    html = messages_of(r)
    assert "2 extensions disabled: 101, 102." in html
    assert f"1 not found (ids {foreign}): nothing was done to them." in html
    with in_tenant(world.tenant_a):
        assert not Extension.objects.filter(number__in=["101", "102"], enabled=True).exists()
    with in_tenant(world.tenant_b):
        assert Extension.objects.get(pk=foreign).enabled  # Beta's extension: untouched
    # One audit entry per extension, through the action.
    entries = AuditEntry.objects.filter(action="extension.update").order_by("-id")[:2]
    assert AuditEntry.objects.filter(action="extension.update").count() == before + 2
    assert {e.object_repr.split()[0] for e in entries} == {"101", "102"}
    assert all(e.tenant_id == world.tenant_a.pk for e in entries)

    r = p.post(EXT_BULK, {"action": "enable", "pk": ids}, follow=True)
    assert "2 extensions enabled: 101, 102." in messages_of(r)
    with in_tenant(world.tenant_a):
        assert Extension.objects.filter(number__in=["101", "102"], enabled=True).count() == 2


def test_bulk_dnd_set_and_clear(portal, world, in_tenant, exts):
    from telephony.models import Extension

    p = portal(world.a_admin, world.tenant_a)
    r = p.post(EXT_BULK, {"action": "dnd_on", "pk": [exts["101"].pk]}, follow=True)
    assert "1 extension set to do not disturb: 101." in messages_of(r)
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(number="101").dnd
        assert not Extension.objects.get(number="102").dnd
    r = p.post(EXT_BULK, {"action": "dnd_off", "pk": [exts["101"].pk]}, follow=True)
    assert "taken off do not disturb: 101" in messages_of(r)
    with in_tenant(world.tenant_a):
        assert not Extension.objects.get(number="101").dnd


def test_bulk_delete_confirms_with_what_goes_then_deletes(portal, world, in_tenant):
    from provisioning.actions import do_add_device
    from telephony.actions import do_create_extension
    from telephony.models import Extension
    from tenants.models import User

    with in_tenant(world.tenant_a):
        ext, _ = do_create_extension(
            number="160",
            display_name="Going",
            email="going@acme.test",
            web_password="Purple-Walrus-93z",
            actor=SYSTEM,
        )
        spare, _ = do_create_extension(number="161", display_name="Going too", actor=SYSTEM)
        do_add_device(
            mac="001565000160",
            model_id="yealink-t54w",
            label="Lobby",
            lines=[{"index": 1, "extension": "160"}],
            actor=SYSTEM,
        )
    foreign = foreign_extension_pk(world, in_tenant)
    p = portal(world.a_admin, world.tenant_a)
    ids = [ext.pk, spare.pk, foreign]
    confirm = p.post(EXT_BULK, {"action": "delete", "pk": ids})
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert "Delete 2 extensions?" in html
    assert "line 1 of phone 001565000160 (Lobby)" in html
    assert "the portal sign-in of going@acme.test" in html
    assert f"ids {foreign}" in html
    with in_tenant(world.tenant_a):
        assert Extension.objects.filter(pk__in=[ext.pk, spare.pk]).count() == 2  # not yet
    r = p.post(EXT_BULK, {"action": "delete", "confirm": "yes", "pk": ids}, follow=True)
    html = messages_of(r)
    assert "2 extensions deleted: 160, 161." in html
    assert "1 not found" in html
    with in_tenant(world.tenant_a):
        assert not Extension.objects.filter(pk__in=[ext.pk, spare.pk]).exists()
    assert not User.objects.filter(email="going@acme.test").exists()
    with in_tenant(world.tenant_b):
        assert Extension.objects.filter(pk=foreign).exists()
    assert AuditEntry.objects.filter(action="extension.delete", object_id=str(ext.pk)).exists()


def test_bulk_needs_the_manage_permission_and_a_post(portal, world, in_tenant, exts):
    from telephony.models import Extension

    ids = [exts["101"].pk]
    assert (
        portal(world.a_user, world.tenant_a)
        .post(EXT_BULK, {"action": "disable", "pk": ids})
        .status_code
        == 404
    )
    assert (
        portal(world.a_user, world.tenant_a)
        .post(PHONE_BULK, {"action": "reboot", "pk": ids})
        .status_code
        == 404
    )
    assert portal(world.a_admin, world.tenant_a).get(EXT_BULK).status_code == 405
    # Beta's admin on Beta's host: the ids are looked up in Beta's schema, never Acme's.
    portal(world.b_admin, world.tenant_b).post(EXT_BULK, {"action": "disable", "pk": ids})
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(number="101").enabled


def test_bulk_without_an_action_or_selection_says_so(portal, world, exts):
    p = portal(world.a_admin, world.tenant_a)
    r = p.post(EXT_BULK, {"action": "explode", "pk": [exts["101"].pk]}, follow=True)
    assert "Choose what to do with the selected extensions." in messages_of(r)
    r = p.post(EXT_BULK, {"action": "disable"}, follow=True)
    assert "No extensions were selected." in messages_of(r)
    # A "next" off this host is not followed.
    r = p.post(EXT_BULK, {"action": "disable", "next": "https://evil.example/"})
    assert r["Location"] == "/portal/extensions/"


# --- phones ---------------------------------------------------------------------------------


@pytest.fixture
def registered(rds):
    """``registered(domain, number)``: a binding in the engines' location store, as the
    registrar writes it; removed after the test."""
    from telephony.engine.store import redis_key
    from telephony.sip.contract import LOCATION

    keys = []

    def add(domain: str, number: str) -> None:
        now = time.time()
        contact = f"sip:{number}@192.0.2.10:5060"
        binding = {
            "contact": contact,
            "transport": "udp",
            "source_host": "192.0.2.10",
            "source_port": 5060,
            "user_agent": "Yealink SIP-T54W 96.86.0.70",
            "expires_at": now + 600,
            "registered_at": now,
        }
        key = redis_key(LOCATION, domain=domain, user=number)
        rds.hset(key, contact, json.dumps(binding))
        keys.append(key)

    yield add
    for key in keys:
        rds.delete(key)


def _add_phone(mac, lines, *, fetched=False):
    from django.utils import timezone

    from provisioning.actions import do_add_device
    from provisioning.models import Device

    device = do_add_device(
        mac=mac,
        model_id="yealink-t54w",
        label="",
        lines=[{"index": i, "extension": n} for i, n in enumerate(lines, 1)],
        actor=SYSTEM,
    )
    if fetched:
        Device.objects.filter(pk=device.pk).update(last_fetch_at=timezone.now())
    return device


def test_bulk_reprovision_reports_each_phone(portal, world, in_tenant, registered):
    from provisioning.models import Device

    with in_tenant(world.tenant_a):
        online = _add_phone("001565000001", ["101"], fetched=True)
        no_lines = _add_phone("001565000002", [])
        never = _add_phone("001565000003", ["102"])
        acme_pks = set(Device.objects.values_list("pk", flat=True))
    with in_tenant(world.tenant_b):
        beta_pk = next(  # a pk Beta has and Acme has not (schemas number rows on their own)
            pk
            for pk in (_add_phone(f"00156500009{i}", ["201"], fetched=True).pk for i in range(9))
            if pk not in acme_pks
        )
    registered("acme.test", "101")
    registered("beta.test", "201")
    ids = [online.pk, no_lines.pk, never.pk, beta_pk]
    r = portal(world.a_admin, world.tenant_a).post(
        PHONE_BULK, {"action": "reprovision", "pk": ids}, follow=True
    )
    html = messages_of(r)
    assert "1 phone asked to re-provision: 001565000001." in html
    assert "2 refused:" in html
    assert "001565000002 — The phone has no lines, so the PBX cannot reach it." in html
    assert "001565000003 — This phone has never registered, so it cannot be told to fetch" in html
    assert f"1 not found (ids {beta_pk})" in html
    with in_tenant(world.tenant_a):
        status = dict(Device.objects.values_list("mac", "status"))
    assert status["001565000001"] == "reprovision"
    assert status["001565000002"] == "new"
    assert status["001565000003"] == "new"  # nothing pretended
    with in_tenant(world.tenant_b):
        assert Device.objects.get(pk=beta_pk).status == "new"
    assert AuditEntry.objects.filter(action="device.reprovision").count() == 1


def test_bulk_delete_phones_after_confirmation(portal, world, in_tenant):
    from provisioning.models import Device
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        one = _add_phone("001565000011", ["101"])
        two = _add_phone("001565000012", [])
    p = portal(world.a_admin, world.tenant_a)
    confirm = p.post(PHONE_BULK, {"action": "delete", "pk": [one.pk, two.pk]})
    html = confirm.content.decode()
    assert "Delete 2 phones?" in html
    assert "line 1: 101" in html
    r = p.post(
        PHONE_BULK, {"action": "delete", "confirm": "yes", "pk": [one.pk, two.pk]}, follow=True
    )
    assert "2 phones deleted: 001565000011, 001565000012." in messages_of(r)
    with in_tenant(world.tenant_a):
        assert not Device.objects.filter(pk__in=[one.pk, two.pk]).exists()
        assert Extension.objects.filter(number="101").exists()  # the extension stays
