"""Ring groups, paging groups, pickup groups and call park in the REST API on the tenant's
host: written through ``telephony.team`` (audited, republished); bad input is a field error
in the API's body with nothing changed; numbers shared with extensions, IVR menus and park
slots are refused; the tenant's quota of groups holds; a group something sends calls to
answers 409 naming it; another tenant's groups are 404."""

import json

import pytest
from django_tenants.utils import tenant_context

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from routing.ivr import do_create_ivr
from telephony.models import PagingGroup, ParkSettings, PickupGroup, RingGroup
from tenants.models import Tenant

from .checks import assert_field_errors, audited

pytestmark = pytest.mark.django_db

SALES = {
    "number": "600",
    "name": "Sales",
    "strategy": "hunt",
    "member_seconds": 15,
    "total_seconds": 90,
    "skip_busy": False,
    "caller_id_prefix": "Sales:",
    "members": [
        {"number": "102"},
        {"number": "101"},
        {"number": "(202) 555-0188", "external": True},
    ],
    "overflow": {"kind": "voicemail", "target": "101"},
}


def _numbers(tenant, model) -> list[str]:
    with tenant_context(tenant):
        return list(model.objects.order_by("number").values_list("number", flat=True))


@pytest.fixture
def us_acme(world):
    """Acme in the US: an outside member is normalised to E.164 with its country."""
    Tenant.objects.filter(pk=world.tenant_a.pk).update(country="US")
    world.tenant_a.refresh_from_db()
    yield world.tenant_a
    Tenant.objects.filter(pk=world.tenant_a.pk).update(country="")
    world.tenant_a.refresh_from_db()


def test_ring_groups_are_written_through_the_action(api, world, us_acme):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/ring-groups/", SALES)
    assert r.status_code == 201, r.content
    group = r.json()
    assert group["members"] == [
        {"number": "102", "external": False},
        {"number": "101", "external": False},
        {"number": "+12025550188", "external": True},
    ]
    assert (group["strategy"], group["member_seconds"], group["total_seconds"]) == ("hunt", 15, 90)
    assert (group["skip_busy"], group["enabled"], group["caller_id_prefix"]) == (
        False,
        True,
        "Sales:",
    )
    assert group["overflow"] == {"kind": "voicemail", "target": "101"}
    # The same number again: taken.
    r = admin.post("/api/v1/ring-groups/", SALES)
    assert r.status_code == 400
    assert r.json()["fields"]["number"] == ["ring group 600 'Sales' has this number"]

    url = f"/api/v1/ring-groups/{group['id']}/"
    r = admin.patch(url, {"name": "Sales team", "strategy": "ring_all"})
    assert r.status_code == 200, r.content
    assert (r.json()["name"], len(r.json()["members"])) == ("Sales team", 3)
    r = admin.patch(url, {"members": [{"number": "101"}], "overflow": None})
    assert r.json()["members"] == [{"number": "101", "external": False}]
    assert r.json()["overflow"] is None
    assert admin.get("/api/v1/ring-groups/", {"q": "team"}).json()["total"] == 1
    assert admin.get("/api/v1/ring-groups/", {"strategy": "hunt"}).json()["total"] == 0
    assert admin.get(url).json()["number"] == "600"
    assert admin.delete(url).status_code == 204
    assert _numbers(world.tenant_a, RingGroup) == []
    done = audited(world.tenant_a, world.a_admin)
    assert {"ring_group.create", "ring_group.update", "ring_group.delete"} <= done


def test_bad_ring_groups_are_field_errors_and_change_nothing(api, world):
    admin = api(world.a_admin, world.tenant_a)
    base = {**SALES, "members": [{"number": "101"}]}
    cases = [
        ({"number": "101"}, "number"),  # an extension's
        ({"number": "6x0"}, "number"),
        ({"number": "705"}, "number"),  # a park slot (701-710 by default)
        ({"number": "777"}, "number"),  # reserved
        ({"name": ""}, "name"),
        ({"strategy": "random"}, "strategy"),
        ({"member_seconds": 0}, "member_seconds"),
        ({"total_seconds": 7200}, "total_seconds"),
        ({"caller_id_prefix": "Sales\r\nX-Evil: 1"}, "caller_id_prefix"),
        ({"caller_id_prefix": "A much too long prefix"}, "caller_id_prefix"),
        ({"members": [{"number": "201"}]}, "members"),  # Beta's extension
        ({"members": [{"number": "101"}, {"number": "101"}]}, "members"),
        ({"members": [{"number": "call me", "external": True}]}, "members"),
        ({"members": "101"}, "members"),
        ({"members": [{"number": ["101"]}]}, "members"),
        ({"overflow": {"kind": "ring_group", "target": "600"}}, "overflow"),  # itself
        ({"overflow": {"kind": "teleport", "target": "1"}}, "overflow"),
        ({"overflow": "101"}, "overflow"),
        ({"skip_busy": "maybe"}, "skip_busy"),
    ]
    assert_field_errors(admin, "/api/v1/ring-groups/", base, cases)
    assert admin.post("/api/v1/ring-groups/", [base]).status_code == 400
    for text in ("[" * 5000 + "]" * 5000, '{"members": ' * 400 + "1" + "}" * 400):
        r = admin.client.generic(
            "POST",
            "/api/v1/ring-groups/",
            text.encode(),
            content_type="application/json",
            HTTP_HOST="acme.test",
        )
        assert (r.status_code, r.json()["code"]) == (400, "PARSE_ERROR")
    assert _numbers(world.tenant_a, RingGroup) == []


def test_numbers_do_not_clash_across_extensions_menus_groups_and_park(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    assert admin.post("/api/v1/ring-groups/", {"number": "600", "name": "Sales"}).status_code == 201
    r = admin.post("/api/v1/paging-groups/", {"number": "600", "name": "All"})
    assert r.json()["fields"]["number"] == ["ring group 600 'Sales' has this number"]
    r = admin.post("/api/v1/paging-groups/", {"number": "650", "name": "All", "members": ["101"]})
    assert r.status_code == 201, r.content
    r = admin.post("/api/v1/ring-groups/", {"number": "650", "name": "Support"})
    assert r.json()["fields"]["number"] == ["paging group 650 'All' has this number"]
    r = admin.post("/api/v1/ivrs/", {"number": "650", "name": "Menu"})
    assert r.json()["fields"]["number"] == ["paging group 650 'All' has this number"]
    r = admin.post("/api/v1/extensions/", {"number": "600", "display_name": "Taken"})
    assert r.status_code == 409
    assert r.json()["fields"]["number"] == ["ring group 600 'Sales' has this number"]
    r = admin.post("/api/v1/extensions/", {"number": "703", "display_name": "Parked"})
    assert r.json()["fields"]["number"] == ["call park slot 703 has this number"]
    with in_tenant(world.tenant_a):
        do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main"})
    r = admin.post("/api/v1/ring-groups/", {"number": "800", "name": "Support"})
    assert r.json()["fields"]["number"] == ["IVR menu 800 'Main' has this number"]
    # Park slots may not cover another number; a free range is taken.
    r = admin.patch("/api/v1/park/", {"first": 595, "count": 10})
    assert r.status_code == 400
    assert r.json()["fields"]["first"] == ["slot 600: ring group 600 'Sales' has this number"]
    r = admin.patch("/api/v1/park/", {"first": 100, "count": 5})
    assert r.json()["fields"]["first"] == ["slot 101: extension 101 has this number"]
    r = admin.patch("/api/v1/park/", {"first": 900, "count": 3, "timeout": 60})
    assert r.status_code == 200, r.content
    assert r.json() == {"first": 900, "count": 3, "timeout": 60, "slots": ["900", "901", "902"]}
    # The old slots are free again, the new ones are not.
    r = admin.post("/api/v1/ring-groups/", {"number": "703", "name": "Support"})
    assert r.status_code == 201, r.content
    r = admin.post("/api/v1/ring-groups/", {"number": "901", "name": "Other"})
    assert r.json()["fields"]["number"] == ["call park slot 901 has this number"]


def test_park_settings_read_defaults_and_refuse_bad_values(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/park/")
    assert r.status_code == 200
    assert (r.json()["first"], r.json()["count"], r.json()["timeout"]) == (701, 10, 120)
    for change, field in (
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"timeout": 5}, "timeout"),
        ({"first": "abc"}, "first"),
        ({"first": 99999998, "count": 5}, "first"),  # longer than the tenant's numbers
    ):
        r = admin.patch("/api/v1/park/", change)
        assert r.status_code == 400, (change, r.content)
        assert field in r.json()["fields"], (change, r.json())
    with in_tenant(world.tenant_a):
        assert not ParkSettings.objects.exists()
    assert api(world.a_user, world.tenant_a).get("/api/v1/park/").status_code == 403
    assert api(world.a_user, world.tenant_a).patch("/api/v1/park/", {"count": 2}).status_code == 403
    r = admin.patch("/api/v1/park/", {"timeout": 300})
    assert r.status_code == 200
    assert AuditEntry.objects.filter(tenant=world.tenant_a, action="park_settings.update").exists()
    # Beta's park is its own.
    assert api(world.b_admin, world.tenant_b).get("/api/v1/park/").json()["timeout"] == 120


def test_the_quota_of_groups_holds(api, world):
    Tenant.objects.filter(pk=world.tenant_a.pk).update(max_ring_groups=2)
    admin = api(world.a_admin, world.tenant_a)
    assert admin.post("/api/v1/ring-groups/", {"number": "600", "name": "A"}).status_code == 201
    assert admin.post("/api/v1/paging-groups/", {"number": "650", "name": "B"}).status_code == 201
    r = admin.post("/api/v1/ring-groups/", {"number": "601", "name": "C"})
    assert (r.status_code, r.json()["code"]) == (409, "QUOTA_EXCEEDED")
    assert "at most 2 ring and paging groups" in r.json()["message"]
    r = admin.post("/api/v1/paging-groups/", {"number": "651", "name": "D"})
    assert (r.status_code, r.json()["code"]) == (409, "QUOTA_EXCEEDED")
    assert _numbers(world.tenant_a, RingGroup) == ["600"]
    # Pickup groups ring nobody: they are not counted.
    r = admin.post("/api/v1/pickup-groups/", {"name": "Desk", "members": ["101"]})
    assert r.status_code == 201, r.content


def test_a_group_in_use_answers_409_naming_what_uses_it(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    sales = admin.post("/api/v1/ring-groups/", {"number": "600", "name": "Sales"}).json()
    page = admin.post("/api/v1/paging-groups/", {"number": "650", "name": "All"}).json()
    support = admin.post(
        "/api/v1/ring-groups/",
        {"number": "601", "name": "Support", "overflow": {"kind": "ring_group", "target": "600"}},
    )
    assert support.status_code == 201, support.content
    menu = admin.post("/api/v1/ivrs/", {"number": "800", "name": "Main", "options": [
        {"digit": "1", "target": {"kind": "ring_group", "target": "600"}},
        {"digit": "9", "target": {"kind": "paging", "target": "650"}}]})  # fmt: skip
    assert menu.status_code == 201, menu.content
    r = admin.delete(f"/api/v1/ring-groups/{sales['id']}/")
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert "IVR menu 800 'Main' (key 1)" in r.json()["message"]
    assert "ring group 601 'Support' (when nobody answers)" in r.json()["message"]
    r = admin.patch(f"/api/v1/ring-groups/{sales['id']}/", {"number": "602"})
    assert r.status_code == 409
    r = admin.delete(f"/api/v1/paging-groups/{page['id']}/")
    assert r.status_code == 409
    assert "IVR menu 800 'Main' (key 9)" in r.json()["message"]
    assert _numbers(world.tenant_a, RingGroup) == ["600", "601"]
    # Overflow loops are refused: 600 -> 601 -> 600.
    r = admin.patch(
        f"/api/v1/ring-groups/{sales['id']}/",
        {"overflow": {"kind": "ring_group", "target": "601"}},
    )
    assert r.status_code == 400
    assert r.json()["fields"]["overflow"] == ["the overflow leads back to this group"]
    # Once nothing points at them, they go.
    assert admin.delete(f"/api/v1/ivrs/{menu.json()['id']}/").status_code == 204
    assert admin.delete(f"/api/v1/ring-groups/{support.json()['id']}/").status_code == 204
    assert admin.delete(f"/api/v1/ring-groups/{sales['id']}/").status_code == 204
    assert admin.delete(f"/api/v1/paging-groups/{page['id']}/").status_code == 204
    # An inbound rule may send calls to a group too (the destination kinds offer them).
    admin.post("/api/v1/ring-groups/", {"number": "600", "name": "Sales"})
    kinds = {k["kind"]: k for k in admin.get("/api/v1/routing/destinations/").json()["items"]}
    assert kinds["ring_group"]["choices"] == [{"target": "600", "label": "600 Sales"}]
    assert kinds["paging"]["choices"] == []


def test_a_deleted_extension_leaves_its_groups(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/extensions/", {"number": "150", "display_name": "Temp"})
    assert r.status_code == 201, r.content
    ext_id = r.json()["id"]
    ring = admin.post("/api/v1/ring-groups/", {"number": "600", "name": "Sales", "members": [
        {"number": "150"}, {"number": "101"}]}).json()  # fmt: skip
    page = admin.post(
        "/api/v1/paging-groups/", {"number": "650", "name": "All", "members": ["150", "101"]}
    ).json()
    pick = admin.post("/api/v1/pickup-groups/", {"name": "Desk", "members": ["150"]}).json()
    assert admin.delete(f"/api/v1/extensions/{ext_id}/").status_code == 204
    assert admin.get(f"/api/v1/ring-groups/{ring['id']}/").json()["members"] == [
        {"number": "101", "external": False}
    ]
    assert admin.get(f"/api/v1/paging-groups/{page['id']}/").json()["members"] == ["101"]
    assert admin.get(f"/api/v1/pickup-groups/{pick['id']}/").json()["members"] == []
    # An extension a group overflows to is not deleted (409 naming the group).
    admin.patch(
        f"/api/v1/ring-groups/{ring['id']}/", {"overflow": {"kind": "extension", "target": "102"}}
    )
    ext_102 = admin.get("/api/v1/extensions/", {"number": "102"}).json()["items"][0]["id"]
    r = admin.delete(f"/api/v1/extensions/{ext_102}/")
    assert r.status_code == 409
    assert "ring group 600 'Sales' (when nobody answers)" in r.json()["message"]


def test_paging_and_pickup_groups(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post(
        "/api/v1/paging-groups/",
        {"number": "650", "name": "Warehouse", "duplex": True, "members": ["102", "101"]},
    )
    assert r.status_code == 201, r.content
    page = r.json()
    assert (page["members"], page["duplex"]) == (["101", "102"], True)
    url = f"/api/v1/paging-groups/{page['id']}/"
    r = admin.patch(url, {"members": ["101"], "duplex": False})
    assert (r.json()["members"], r.json()["duplex"]) == (["101"], False)
    for bad in ({"members": ["201"]}, {"members": "101"}, {"members": [1]}, {"name": "A\nB"}):
        r = admin.patch(url, bad)
        assert r.status_code == 400, (bad, r.content)
        assert set(bad) <= set(r.json()["fields"]), (bad, r.json())
    assert admin.get(url).json()["members"] == ["101"]

    r = admin.post("/api/v1/pickup-groups/", {"name": "Front desk", "members": ["101", "102"]})
    assert r.status_code == 201, r.content
    desk = r.json()
    r = admin.post("/api/v1/pickup-groups/", {"name": "Back office", "members": ["101"]})
    assert r.status_code == 201  # an extension may be in several
    r = admin.post("/api/v1/pickup-groups/", {"name": "front DESK"})
    assert r.json()["fields"]["name"] == ["another pickup group has this name"]
    r = admin.post("/api/v1/pickup-groups/", {"name": "X", "members": ["101", "101"]})
    assert r.json()["fields"]["members"] == ["given twice: 101"]
    assert admin.get("/api/v1/pickup-groups/").json()["total"] == 2
    assert admin.delete(f"/api/v1/pickup-groups/{desk['id']}/").status_code == 204
    with tenant_context(world.tenant_a):
        assert list(PickupGroup.objects.values_list("name", flat=True)) == ["Back office"]
        assert PagingGroup.objects.count() == 1
    actions = set(AuditEntry.objects.filter(tenant=world.tenant_a).values_list("action", flat=True))
    assert {"paging_group.create", "paging_group.update", "pickup_group.delete"} <= actions


def test_another_tenants_groups_are_404(api, world):
    beta = api(world.b_admin, world.tenant_b)
    ring = beta.post("/api/v1/ring-groups/", {"number": "600", "name": "Beta sales", "members": [
        {"number": "201"}]}).json()  # fmt: skip
    page = beta.post("/api/v1/paging-groups/", {"number": "650", "name": "Beta all"}).json()
    pick = beta.post("/api/v1/pickup-groups/", {"name": "Beta desk"}).json()
    admin = api(world.a_admin, world.tenant_a)
    for url in (
        f"/api/v1/ring-groups/{ring['id']}/",
        f"/api/v1/paging-groups/{page['id']}/",
        f"/api/v1/pickup-groups/{pick['id']}/",
    ):
        for method, body in (("get", None), ("patch", {"name": "Mine"}), ("delete", None)):
            r = getattr(admin, method)(url, body)
            assert (r.status_code, r.json()["code"]) == (404, "NOT_FOUND"), (method, url)
    for path in ("ring-groups", "paging-groups", "pickup-groups"):
        body = admin.get(f"/api/v1/{path}/").json()
        assert body["total"] == 0
        assert "Beta" not in json.dumps(body)
    assert _numbers(world.tenant_b, RingGroup) == ["600"]
    # Acme may use the same numbers: each tenant has its own dial plan.
    assert admin.post("/api/v1/ring-groups/", {"number": "600", "name": "Acme"}).status_code == 201


def test_the_schema_documents_the_team_endpoints(api, world):
    schema = api(world.a_admin, world.tenant_a).get("/api/v1/schema/")
    assert schema.status_code == 200
    for path in (
        b"/api/v1/ring-groups/{id}/",
        b"/api/v1/paging-groups/{id}/",
        b"/api/v1/pickup-groups/{id}/",
        b"/api/v1/park/",
    ):
        assert path in schema.content
    assert b"Seconds each member rings" in schema.content


def test_a_menu_or_disa_entry_a_group_overflows_to_is_not_deleted(api, world):
    admin = api(world.a_admin, world.tenant_a)
    menu = admin.post("/api/v1/ivrs/", {"number": "800", "name": "Main"}).json()
    disa = admin.post("/api/v1/disa/", {"name": "Road", "pin": "5937", "extension": "101"}).json()
    for number, target in (("600", {"kind": "ivr", "target": "800"}),
                           ("601", {"kind": "disa", "target": str(disa["id"])})):  # fmt: skip
        r = admin.post("/api/v1/ring-groups/", {"number": number, "name": "G", "overflow": target})
        assert r.status_code == 201, r.content
    r = admin.delete(f"/api/v1/ivrs/{menu['id']}/")
    assert r.status_code == 409
    assert "ring group 600 'G' (when nobody answers)" in r.json()["message"]
    r = admin.delete(f"/api/v1/disa/{disa['id']}/")
    assert r.status_code == 409
    assert "ring group 601 'G' (when nobody answers)" in r.json()["message"]
