"""The provider's trunk and DID pool pages, the dashboard's trunk column, and who may open what.

State is set up through the real actions and read back from the database; a trunk's live state
is what the engine writes to Redis (the contract's TRUNK_STATE hash and TRUNK_CALLS counts).
"""

from __future__ import annotations

import re
import time
from html import unescape

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.engine.store import redis_key
from telephony.sip.contract import ENGINE_ALIVE, TRUNK_CALLS, TRUNK_STATE
from trunks import actions
from trunks.models import DidNumber, Trunk

pytestmark = pytest.mark.django_db

TRUNKS = "/portal/trunks/"
NUMBERS = "/portal/numbers/"


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


def ip_trunk(name="Carrier One", **kw) -> Trunk:
    return actions.do_create_trunk(
        actor=SYSTEM,
        fields={
            "name": name,
            "kind": "ip",
            "host": "sip.carrier.test",
            "addresses": ["192.0.2.0/24"],
        },
        **kw,
    )


TRUNK_POST = {
    "name": "Carrier Reg",
    "owner": "",
    "kind": "register",
    "enabled": "on",
    "host": "sip.carrier.test",
    "port": "5060",
    "transport": "udp",
    "outbound_proxy": "",
    "country": "us",
    "realm": "",
    "username": "acct42",
    "auth_username": "",
    "password": "Carrier-Secret-9",
    "register_expires": "600",
    "addresses": "",
    "source_port": "0",
    "codecs": ["PCMU", "PCMA"],
    "dtmf_mode": "rfc2833",
    "max_channels": "30",
    "caller_id": "",
    "caller_id_header": "pai",
    "from_user": "",
    "from_domain": "",
    "send_diversion": "on",
    "options_interval": "30",
}


@pytest.fixture
def trunk_state(rds):
    """Write a trunk's live state as the engine does; removed after."""
    keys = []

    def write(trunk, *, state, error="", channels=0):
        key = redis_key(TRUNK_STATE, trunk=str(trunk.pk))
        calls = redis_key(TRUNK_CALLS, trunk=str(trunk.pk))
        now = str(int(time.time()))
        rds.hset(key, mapping={"state": state, "error": error, "at": now, "checked": now})
        rds.delete(calls)
        beat = redis_key(ENGINE_ALIVE, engine="engine-1")
        if channels:
            rds.hset(calls, mapping={"engine-1": channels})
            rds.set(beat, "1", ex=60)  # the engine's heartbeat: its calls count
        keys.extend([key, calls, beat])

    yield write
    for key in keys:
        rds.delete(key)


# --- trunks ----------------------------------------------------------------------------------


def test_trunk_list_empty_state_says_what_to_do_first(portal, world):
    html = portal(world.sysadmin).get(TRUNKS).content.decode()
    assert "No trunks yet: add the trunk of your carrier first" in html


def test_create_a_registration_trunk_with_a_write_only_password(portal, world):
    p = portal(world.sysadmin)
    form = p.get(f"{TRUNKS}add/").content.decode()
    for section in ("Carrier", "Authentication", "IP authentication", "Calls", "Sharing", "Health"):
        assert f"<legend>{section}</legend>" in form
    data = {**TRUNK_POST, "shared_with": [str(world.tenant_a.pk)]}
    response = p.post(f"{TRUNKS}add/", data)
    assert response.status_code == 302, field_errors(response.content.decode(), "password")
    trunk = Trunk.objects.get(name="Carrier Reg")
    assert trunk.password == "Carrier-Secret-9"
    assert trunk.codecs == ["PCMU", "PCMA"]
    assert trunk.country == "US"
    assert trunk.tenant is None
    assert trunk.dealer is None
    assert list(trunk.shared_with.all()) == [world.tenant_a]
    entry = AuditEntry.objects.get(action="trunk.create", object_id=str(trunk.pk))
    assert "Carrier-Secret-9" not in str(entry.changes)
    # The edit page never shows the password, only that one is set.
    edit = p.get(f"{TRUNKS}{trunk.pk}/").content.decode()
    assert "Carrier-Secret-9" not in edit
    assert "set (never shown)" in edit
    # Saving with the box empty keeps it; a new one replaces it.
    data = {**TRUNK_POST, "password": "", "max_channels": "40"}
    data.pop("owner")
    assert p.post(f"{TRUNKS}{trunk.pk}/", data).status_code == 302
    trunk.refresh_from_db()
    assert (trunk.password, trunk.max_channels) == ("Carrier-Secret-9", 40)
    # Sharing untouched by that save; an empty selection now unshares.
    assert list(trunk.shared_with.all()) == []  # the form posted no shared_with: none ticked
    assert p.post(f"{TRUNKS}{trunk.pk}/", {**data, "password": "New-Secret-77"}).status_code == 302
    trunk.refresh_from_db()
    assert trunk.password == "New-Secret-77"


def test_invalid_trunk_shows_the_actions_errors_on_the_fields(portal, world):
    p = portal(world.sysadmin)
    data = {**TRUNK_POST, "username": "", "password": "", "host": "bad host!", "addresses": ""}
    response = p.post(f"{TRUNKS}add/", data)
    assert response.status_code == 200
    html = response.content.decode()
    assert field_errors(html, "username") == ["a registration trunk needs the account name"]
    assert field_errors(html, "password") == ["a registration trunk needs the password"]
    assert field_errors(html, "host")
    ip = {**TRUNK_POST, "kind": "ip", "addresses": "192.0.2.1\nnot-an-ip"}
    html = p.post(f"{TRUNKS}add/", ip).content.decode()
    assert field_errors(html, "addresses") == ["'not-an-ip' is not an IP address or network"]
    assert not Trunk.objects.exists()


def test_trunk_list_shows_live_state_error_and_channels(portal, world, trunk_state):
    up = ip_trunk("Alpha", shared_with=[world.tenant_a])
    failed = ip_trunk("Bravo")
    Trunk.objects.filter(pk=up.pk).update(max_channels=10)
    trunk_state(up, state="up", channels=3)
    trunk_state(failed, state="failed", error="403 Forbidden from the registrar")
    html = portal(world.sysadmin).get(TRUNKS).content.decode()
    assert re.search(rf'data-testid="trunk-state-{up.pk}">up<', html)
    assert re.search(rf'data-testid="trunk-state-{failed.pk}">failed<', html)
    assert "403 Forbidden from the registrar" in html
    assert re.search(rf'data-testid="trunk-channels-{up.pk}">3 of 10<', html)
    assert re.search(rf'data-testid="trunk-channels-{failed.pk}">0 of no limit<', html)
    # The list refreshes itself (htmx polls the same page and swaps the rows).
    assert 'hx-trigger="every 10s"' in html
    # The provider dashboard's trunk column.
    dash = portal(world.sysadmin).get("/portal/overview/").content.decode()
    row = re.search(rf'data-testid="dash-trunk-{up.pk}".*?</tr>', dash, re.S).group(0)
    assert ">up<" in row
    assert "3 of 10" in row
    csv_text = b"".join(portal(world.sysadmin).get(f"{TRUNKS}?export=csv").streaming_content)
    assert b"Bravo,provider,IP" in csv_text
    assert b"403 Forbidden" in csv_text


def test_delete_confirmation_says_what_goes(portal, world):
    trunk = ip_trunk("Gamma", shared_with=[world.tenant_a])
    actions.do_add_numbers(actor=SYSTEM, number="+12125550150", trunk=trunk)
    p = portal(world.sysadmin)
    html = p.get(f"{TRUNKS}{trunk.pk}/delete/").content.decode()
    assert "+12125550150" in html
    assert "stay in the pool" in html
    assert "It is shared with Acme" in html
    assert Trunk.objects.filter(pk=trunk.pk).exists()
    assert p.post(f"{TRUNKS}{trunk.pk}/delete/").status_code == 302
    assert not Trunk.objects.filter(pk=trunk.pk).exists()
    assert DidNumber.objects.get(number="+12125550150").trunk is None


def test_dealer_sees_and_manages_only_its_subtrees_trunks(portal, world):
    mine = ip_trunk("North trunk", dealer=world.north, shared_with=[world.tenant_a])
    theirs = ip_trunk("South trunk", dealer=world.south)
    provider = ip_trunk("Provider trunk")
    p = portal(world.north_admin)
    html = p.get(TRUNKS).content.decode()
    assert "North trunk" in html
    assert "South trunk" not in html
    assert "Provider trunk" not in html
    assert p.get(f"{TRUNKS}{mine.pk}/").status_code == 200
    for other in (theirs, provider):
        assert p.get(f"{TRUNKS}{other.pk}/").status_code == 404
        assert p.post(f"{TRUNKS}{other.pk}/delete/").status_code == 404
    assert Trunk.objects.filter(pk__in=[theirs.pk, provider.pk]).count() == 2
    # The owner choices hold only its subtree; no "provider" owner for a dealer.
    add = p.get(f"{TRUNKS}add/").content.decode()
    assert f'value="d:{world.north.pk}"' in add
    assert f'value="d:{world.south.pk}"' not in add
    assert "The provider" not in add
    # Sharing is offered only with its own tenants.
    assert "Beta" not in add
    forged = {**TRUNK_POST, "owner": f"d:{world.south.pk}"}
    assert p.post(f"{TRUNKS}add/", forged).status_code == 200  # not a valid choice
    assert not Trunk.objects.filter(name="Carrier Reg").exists()


def test_tenant_admins_cannot_open_provider_trunk_pages(portal, world):
    trunk = ip_trunk()
    # On its own host: 404; on the provider's its sign-in is not valid (sign-in page).
    p = portal(world.a_admin, world.tenant_a)
    for path in (TRUNKS, f"{TRUNKS}{trunk.pk}/", NUMBERS, f"{TRUNKS}add/"):
        assert p.get(path).status_code == 404
    p = portal(world.a_admin)
    for path in (TRUNKS, f"{TRUNKS}{trunk.pk}/", NUMBERS):
        response = p.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    # Nor a tenant user on its own host.
    assert portal(world.a_user, world.tenant_a).get(TRUNKS).status_code == 404


# --- the DID pool ----------------------------------------------------------------------------


def test_number_pool_empty_add_range_filter_and_export(portal, world):
    p = portal(world.sysadmin)
    assert "No numbers yet: add the numbers" in p.get(NUMBERS).content.decode()
    response = p.post(
        f"{NUMBERS}add/",
        {"number": "212 555 0100", "last": "212 555 0104", "country": "us", "holder": ""},
    )
    assert response.status_code == 302
    numbers = list(DidNumber.objects.order_by("number").values_list("number", flat=True))
    assert numbers == [f"+1212555010{i}" for i in range(5)]
    # One assigned: the filters split free and assigned.
    actions.do_assign_number(
        DidNumber.objects.get(number="+12125550102"), world.tenant_a, actor=SYSTEM
    )
    html = p.get(NUMBERS, {"status": "assigned"}).content.decode()
    assert re.findall(r'data-testid="number-(\+\d+)"', html) == ["+12125550102"]
    html = p.get(NUMBERS, {"status": "free", "q": "0104"}).content.decode()
    assert re.findall(r'data-testid="number-(\+\d+)"', html) == ["+12125550104"]
    html = p.get(NUMBERS, {"tenant": world.tenant_a.pk}).content.decode()
    assert re.findall(r'data-testid="number-(\+\d+)"', html) == ["+12125550102"]
    csv_text = b"".join(p.get(NUMBERS, {"status": "assigned", "export": "csv"}).streaming_content)
    lines = csv_text.decode().strip().splitlines()
    assert lines[0].startswith("Number,Held by,Tenant")
    assert len(lines) == 2
    assert lines[1].startswith("'+12125550102,provider,Acme")


def test_invalid_and_duplicate_numbers_are_field_errors(portal, world):
    p = portal(world.sysadmin)
    html = p.post(f"{NUMBERS}add/", {"number": "12345", "holder": ""}).content.decode()
    assert field_errors(html, "number") == [
        "in international form (+ and the country code), or set a country"
    ]
    actions.do_add_numbers(actor=SYSTEM, number="+12125550120")
    response = p.post(
        f"{NUMBERS}add/", {"number": "+12125550118", "last": "+12125550122", "holder": ""}
    )
    assert response.status_code == 200
    assert field_errors(response.content.decode(), "number") == [
        "already in the pool: +12125550120"
    ]
    assert DidNumber.objects.count() == 1
    html = p.post(
        f"{NUMBERS}add/", {"number": "+12125550200", "last": "+12125550100", "holder": ""}
    ).content.decode()
    assert field_errors(html, "last") == ["the same length as the first, and not before it"]


def test_bulk_assign_release_and_delete_with_confirmation(portal, world):
    p = portal(world.sysadmin)
    made = actions.do_add_numbers(actor=SYSTEM, number="+12125550130", last="+12125550133")
    ids = [str(n.pk) for n in made[:3]]
    response = p.post(
        f"{NUMBERS}bulk/", {"action": "assign", "tenant": world.tenant_b.pk, "pk": ids}
    )
    assert response.status_code == 302
    assigned = DidNumber.objects.filter(tenant=world.tenant_b).values_list("number", flat=True)
    assert sorted(assigned) == ["+12125550130", "+12125550131", "+12125550132"]
    # Assigning one already held by B to A is refused, the rest go on.
    p.post(
        f"{NUMBERS}bulk/",
        {"action": "assign", "tenant": world.tenant_a.pk, "pk": [ids[0], str(made[3].pk)]},
    )
    assert DidNumber.objects.get(pk=made[0].pk).tenant == world.tenant_b
    assert DidNumber.objects.get(pk=made[3].pk).tenant == world.tenant_a
    p.post(f"{NUMBERS}bulk/", {"action": "release", "pk": ids[:2]})
    assert DidNumber.objects.filter(tenant__isnull=True).count() == 2
    # Delete shows what goes first; only the confirmed POST deletes.
    html = p.post(f"{NUMBERS}bulk/", {"action": "delete", "pk": ids}).content.decode()
    assert "Delete 3 numbers?" in html
    assert "calls to it are refused" in html
    assert DidNumber.objects.count() == 4
    p.post(f"{NUMBERS}bulk/", {"action": "delete", "confirm": "yes", "pk": ids})
    assert list(DidNumber.objects.values_list("number", flat=True)) == ["+12125550133"]
    # One by one: release and delete buttons.
    last = made[3]
    assert p.post(f"{NUMBERS}{last.pk}/release/").status_code == 302
    assert DidNumber.objects.get(pk=last.pk).tenant is None
    assert p.post(f"{NUMBERS}{last.pk}/assign/", {"tenant": world.tenant_a.pk}).status_code == 302
    assert DidNumber.objects.get(pk=last.pk).tenant == world.tenant_a
    assert p.post(f"{NUMBERS}{last.pk}/delete/").status_code == 302
    assert not DidNumber.objects.exists()


def test_number_edit_changes_description_and_trunk(portal, world):
    trunk = ip_trunk()
    number = actions.do_add_numbers(actor=SYSTEM, number="+12125550140")[0]
    p = portal(world.sysadmin)
    assert "Assign to" in p.get(f"{NUMBERS}{number.pk}/").content.decode()
    response = p.post(f"{NUMBERS}{number.pk}/", {"description": "Sales line", "trunk": trunk.pk})
    assert response.status_code == 302
    number.refresh_from_db()
    assert (number.description, number.trunk) == ("Sales line", trunk)


def test_dealer_sees_only_its_numbers_and_assigns_only_to_its_tenants(portal, world):
    mine = actions.do_add_numbers(actor=SYSTEM, number="+12125550160", dealer=world.north)[0]
    theirs = actions.do_add_numbers(actor=SYSTEM, number="+12125550161", dealer=world.south)[0]
    providers = actions.do_add_numbers(actor=SYSTEM, number="+12125550162")[0]
    p = portal(world.north_admin)
    html = p.get(NUMBERS).content.decode()
    assert "+12125550160" in html
    assert "+12125550161" not in html
    assert "+12125550162" not in html
    for other in (theirs, providers):
        assert p.get(f"{NUMBERS}{other.pk}/").status_code == 404
        assert p.post(f"{NUMBERS}{other.pk}/delete/").status_code == 404
    # A bulk request naming others' ids touches nothing of theirs.
    p.post(
        f"{NUMBERS}bulk/",
        {"action": "assign", "tenant": world.tenant_a.pk, "pk": [theirs.pk, providers.pk]},
    )
    assert DidNumber.objects.filter(tenant__isnull=False).count() == 0
    # Beta is not a tenant it sees: refused.
    p.post(f"{NUMBERS}{mine.pk}/assign/", {"tenant": world.tenant_b.pk})
    assert DidNumber.objects.get(pk=mine.pk).tenant is None
    p.post(f"{NUMBERS}{mine.pk}/assign/", {"tenant": world.tenant_a.pk})
    assert DidNumber.objects.get(pk=mine.pk).tenant == world.tenant_a
    # It adds numbers to its own pool (never the provider's).
    add = p.get(f"{NUMBERS}add/").content.decode()
    assert "The provider" not in add
    p.post(f"{NUMBERS}add/", {"number": "+12125550170", "holder": str(world.north.pk)})
    assert DidNumber.objects.get(number="+12125550170").dealer == world.north
