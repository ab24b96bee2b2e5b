"""DISA entries in the REST API on the tenant's host: created, changed and deleted through
``routing.disa`` (audited); the PIN is write-only (never in an answer, only ``pin_set``); bad
input is a field error in the API's body with nothing changed; an entry in use answers 409;
another tenant's entry is 404; inbound rules and the destination kinds list offer entries."""

import pytest
from django_tenants.utils import tenant_context

from pbx.models import AuditEntry
from routing.models import Disa
from telephony.sip.contract import pin_matches

from .checks import assert_field_errors

pytestmark = pytest.mark.django_db

ENTRY = {"name": "Road warriors", "pin": "402719", "extension": "101"}


def _entries(tenant) -> list[str]:
    with tenant_context(tenant):
        return list(Disa.objects.values_list("name", flat=True))


def test_entries_are_written_through_the_action_and_the_pin_never_comes_back(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/disa/", ENTRY)
    assert r.status_code == 201, r.content
    entry = r.json()
    assert entry["name"] == "Road warriors"
    assert (entry["extension"], entry["enabled"], entry["pin_set"]) == ("101", True, True)
    assert "pin" not in entry
    assert "402719" not in r.content.decode()
    url = f"/api/v1/disa/{entry['id']}/"
    r = admin.patch(url, {"name": "Sales on the road", "extension": "102"})
    assert r.status_code == 200, r.content
    assert (r.json()["name"], r.json()["extension"]) == ("Sales on the road", "102")
    with tenant_context(world.tenant_a):
        assert pin_matches(Disa.objects.get().pin_hash, "402719")  # unchanged
    assert admin.patch(url, {"pin": "8351"}).status_code == 200
    with tenant_context(world.tenant_a):
        assert pin_matches(Disa.objects.get().pin_hash, "8351")
    listed = admin.get("/api/v1/disa/", {"q": "road"}).json()
    assert listed["total"] == 1
    assert "pin" not in listed["items"][0]
    assert admin.get(url).json()["pin_set"] is True

    # An IVR key that leads to it keeps it (409 naming the menu).
    target = {"kind": "disa", "target": str(entry["id"])}
    r = admin.post("/api/v1/ivrs/", {"number": "800", "name": "Main", "options": [
        {"digit": "7", "target": target}]})  # fmt: skip
    assert r.status_code == 201, r.content
    menu = r.json()["id"]
    r = admin.delete(url)
    assert r.status_code == 409
    assert "IVR menu 800 'Main' (key 7)" in r.json()["message"]
    assert admin.delete(f"/api/v1/ivrs/{menu}/").status_code == 204
    assert admin.delete(url).status_code == 204
    assert _entries(world.tenant_a) == []
    done = AuditEntry.objects.filter(tenant=world.tenant_a, actor=world.a_admin)
    actions = set(done.values_list("action", flat=True))
    assert {"disa.create", "disa.update", "disa.delete"} <= actions
    assert all("8351" not in str(e.changes) for e in done)


def test_bad_input_is_a_field_error_and_changes_nothing(api, world):
    admin = api(world.a_admin, world.tenant_a)
    cases = [
        ({"pin": "12"}, "pin"),
        ({"pin": "0000"}, "pin"),
        ({"pin": "12ab"}, "pin"),
        ({"pin": ""}, "pin"),
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"extension": "999"}, "extension"),
        ({"extension": "201"}, "extension"),  # Beta's
        ({"extension": ["101"]}, "extension"),
        ({"enabled": "maybe"}, "enabled"),
    ]
    assert_field_errors(admin, "/api/v1/disa/", ENTRY, cases)
    r = admin.post("/api/v1/disa/", {"name": "No extension", "pin": "4826"})
    assert r.status_code == 400
    assert "extension" in r.json()["fields"]
    assert admin.post("/api/v1/disa/", [ENTRY]).status_code == 400
    assert _entries(world.tenant_a) == []


def test_another_tenants_entry_is_404(api, world):
    r = api(world.b_admin, world.tenant_b).post("/api/v1/disa/", {**ENTRY, "extension": "201"})
    assert r.status_code == 201, r.content
    beta_entry = r.json()["id"]
    admin = api(world.a_admin, world.tenant_a)
    url = f"/api/v1/disa/{beta_entry}/"
    with tenant_context(world.tenant_a):
        assert not Disa.objects.filter(pk=beta_entry).exists()
    for method, body in (("get", None), ("patch", {"name": "Mine"}), ("delete", None)):
        r = getattr(admin, method)(url, body)
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND"), method
    assert admin.get("/api/v1/disa/").json()["total"] == 0
    # Beta's entry is no target for Acme's rules either.
    r = admin.post("/api/v1/ivrs/", {"number": "800", "name": "Main", "options": [
        {"digit": "1", "target": {"kind": "disa", "target": str(beta_entry)}}]})  # fmt: skip
    assert r.status_code == 400
    assert _entries(world.tenant_b) == ["Road warriors"]
    assert api(world.a_user, world.tenant_a).get("/api/v1/disa/").status_code == 403


def test_inbound_rules_pick_entries(api, world):
    admin = api(world.a_admin, world.tenant_a)
    entry = admin.post("/api/v1/disa/", ENTRY).json()
    kinds = {k["kind"]: k for k in admin.get("/api/v1/routing/destinations/").json()["items"]}
    assert kinds["disa"]["choices"] == [{"target": str(entry["id"]), "label": "Road warriors"}]
    schema = admin.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/disa/{id}/" in schema.content


def test_an_extension_an_entry_dials_out_as_is_not_deleted(api, world):
    admin = api(world.a_admin, world.tenant_a)
    entry = admin.post("/api/v1/disa/", {**ENTRY, "extension": "102"}).json()
    (ext,) = [e for e in admin.get("/api/v1/extensions/").json()["items"] if e["number"] == "102"]
    r = admin.delete(f"/api/v1/extensions/{ext['id']}/")
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert "DISA entry 'Road warriors'" in r.json()["message"]
    assert admin.delete(f"/api/v1/disa/{entry['id']}/").status_code == 204
    assert admin.delete(f"/api/v1/extensions/{ext['id']}/").status_code == 204
