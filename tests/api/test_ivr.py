"""IVR menus in the REST API on the tenant's host: created, changed (keys replaced as a set)
and deleted through ``routing.ivr`` (audited); bad input is a field error in the API's body
with nothing changed; a menu in use answers 409; another tenant's menu is 404; the
destination kinds list offers menus and mailboxes for inbound rules."""

import pytest
from django_tenants.utils import tenant_context

from routing.models import IvrMenu

from .checks import assert_field_errors, audited

pytestmark = pytest.mark.django_db

MENU = {
    "number": "800",
    "name": "Reception",
    "greeting": "welcome",
    "timeout": 8,
    "options": [
        {"digit": "1", "target": {"kind": "extension", "target": "101"}},
        {"digit": "2", "target": {"kind": "voicemail", "target": "102"}},
        {"digit": "0", "target": {"kind": "repeat", "target": ""}},
    ],
    "timeout_target": {"kind": "extension", "target": "102"},
}


def _menus(tenant) -> list[str]:
    with tenant_context(tenant):
        return list(IvrMenu.objects.values_list("number", flat=True))


def test_menus_are_written_through_the_action(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/ivrs/", MENU)
    assert r.status_code == 201, r.content
    menu = r.json()
    assert [o["digit"] for o in menu["options"]] == ["0", "1", "2"]
    assert menu["options"][0]["target"] == {"kind": "repeat", "target": ""}
    assert (menu["timeout"], menu["tries"], menu["closed_target"]) == (8, 3, None)
    r = admin.post("/api/v1/ivrs/", MENU)
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")

    url = f"/api/v1/ivrs/{menu['id']}/"
    r = admin.patch(url, {"name": "Front desk", "use_hours": True})
    assert r.status_code == 200, r.content
    assert (r.json()["name"], len(r.json()["options"])) == ("Front desk", 3)
    r = admin.patch(url, {"options": [{"digit": "#", "target": {"kind": "hangup"}}]})
    assert [o["digit"] for o in r.json()["options"]] == ["#"]
    assert admin.get("/api/v1/ivrs/", {"q": "front"}).json()["total"] == 1
    assert admin.get(url).json()["number"] == "800"

    # A menu that another one leads to is not deleted (409 naming it).
    r = admin.post("/api/v1/ivrs/", {"number": "801", "name": "Sales", "options": [
        {"digit": "9", "target": {"kind": "ivr", "target": "800"}}]})  # fmt: skip
    assert r.status_code == 201, r.content
    sales = r.json()["id"]
    r = admin.delete(url)
    assert r.status_code == 409
    assert "IVR menu 801 'Sales' (key 9)" in r.json()["message"]
    assert _menus(world.tenant_a) == ["800", "801"]
    assert admin.delete(f"/api/v1/ivrs/{sales}/").status_code == 204
    assert admin.delete(url).status_code == 204
    assert _menus(world.tenant_a) == []
    done = audited(world.tenant_a, world.a_admin)
    assert {"ivr_menu.create", "ivr_menu.update", "ivr_menu.delete"} <= done


def test_bad_input_is_a_field_error_and_changes_nothing(api, world):
    admin = api(world.a_admin, world.tenant_a)
    cases = [
        ({"number": "102"}, "number"),
        ({"number": "8x0"}, "number"),
        ({"name": ""}, "name"),
        ({"greeting": "nope"}, "greeting"),
        ({"timeout": 600}, "timeout"),
        ({"tries": 0}, "tries"),
        ({"options": [{"digit": "A", "target": {"kind": "extension", "target": "101"}}]},
         "options"),
        ({"options": [{"digit": "1", "target": {"kind": "extension", "target": "201"}}]},
         "options"),  # Beta's extension
        ({"timeout_target": {"kind": "ivr", "target": "800"}}, "timeout_target"),  # itself
        ({"closed_target": "101"}, "closed_target"),
    ]  # fmt: skip
    assert_field_errors(admin, "/api/v1/ivrs/", MENU, cases)
    r = admin.post("/api/v1/ivrs/", {**MENU, "options": "1:101"})
    assert r.status_code == 400
    r = admin.post("/api/v1/ivrs/", [MENU])
    assert r.status_code == 400
    assert _menus(world.tenant_a) == []


def test_another_tenants_menu_is_404(api, world):
    beta = {**MENU, "options": [], "timeout_target": {"kind": "extension", "target": "202"}}
    r = api(world.b_admin, world.tenant_b).post("/api/v1/ivrs/", beta)
    assert r.status_code == 201, r.content
    beta_menu = r.json()["id"]
    admin = api(world.a_admin, world.tenant_a)
    url = f"/api/v1/ivrs/{beta_menu}/"
    with tenant_context(world.tenant_a):
        assert not IvrMenu.objects.filter(pk=beta_menu).exists()
    for method, body in (("get", None), ("patch", {"name": "Mine"}), ("delete", None)):
        r = getattr(admin, method)(url, body)
        assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND"), method
    assert admin.get("/api/v1/ivrs/").json()["total"] == 0
    assert _menus(world.tenant_b) == ["800"]
    # A plain user reads nothing of it; the menu is Beta's own number space.
    assert api(world.a_user, world.tenant_a).get("/api/v1/ivrs/").status_code == 403


def test_inbound_rules_pick_menus_and_mailboxes(api, world):
    admin = api(world.a_admin, world.tenant_a)
    assert admin.post("/api/v1/ivrs/", {**MENU, "options": []}).status_code == 201
    assert admin.get("/api/v1/ivrs/").json()["items"][0]["options"] == []
    kinds = {k["kind"]: k for k in admin.get("/api/v1/routing/destinations/").json()["items"]}
    assert kinds["ivr"]["choices"] == [{"target": "800", "label": "800 Reception"}]
    assert {c["target"] for c in kinds["voicemail"]["choices"]} == {"101", "102"}
    schema = admin.get("/api/v1/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/ivrs/{id}/" in schema.content
