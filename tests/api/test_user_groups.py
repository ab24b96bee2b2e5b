"""User groups in the REST API on the tenant's host (PortSIP's user groups): written through
``telephony.user_groups`` (validated, audited); members are the tenant's own extensions only;
bad input is a field error with nothing changed; a taken name is 409; deleting an extension
takes it out of its groups; another tenant's group is 404."""

import pytest
from django_tenants.utils import tenant_context

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.models import Extension, UserGroup

pytestmark = pytest.mark.django_db

GROUP = {"name": "Sales Dept", "description": "Inside sales", "members": ["102", "101"]}


def _groups(tenant) -> list[tuple[str, list[str]]]:
    with tenant_context(tenant):
        return [
            (g.name, sorted(g.members.values_list("number", flat=True)))
            for g in UserGroup.objects.order_by("name")
        ]


def test_groups_are_written_through_the_actions_and_audited(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/user-groups/", GROUP)
    assert r.status_code == 201, r.content
    group = r.json()
    assert (group["name"], group["description"]) == ("Sales Dept", "Inside sales")
    assert group["members"] == ["101", "102"]  # ordered by number
    url = f"/api/v1/user-groups/{group['id']}/"
    r = admin.patch(url, {"name": "Sales", "members": ["101"]})
    assert r.status_code == 200, r.content
    assert (r.json()["name"], r.json()["members"]) == ("Sales", ["101"])
    r = admin.patch(url, {"description": "Field sales"})  # members untouched
    assert r.json()["members"] == ["101"]
    listed = admin.get("/api/v1/user-groups/", {"q": "field"}).json()
    assert listed["total"] == 1
    assert listed["items"][0]["members"] == ["101"]
    assert admin.delete(url).status_code == 204
    assert _groups(world.tenant_a) == []
    with tenant_context(world.tenant_a):
        assert Extension.objects.filter(number__in=["101", "102"]).count() == 2  # kept
    done = AuditEntry.objects.filter(tenant=world.tenant_a, actor=world.a_admin)
    entries = [
        (e.action, e.changes) for e in done.filter(action__startswith="user_group.").order_by("id")
    ]
    assert [a for a, _ in entries] == [
        "user_group.create",
        "user_group.update",
        "user_group.update",
        "user_group.delete",
    ]
    assert entries[0][1]["members"] == ["101", "102"]
    assert entries[1][1]["members"] == [["101", "102"], ["101"]]
    assert entries[2][1] == {"description": ["Inside sales", "Field sales"]}


def test_bad_input_is_a_field_error_and_changes_nothing(api, world):
    admin = api(world.a_admin, world.tenant_a)
    assert (
        admin.post("/api/v1/user-groups/", {"name": "Support", "members": ["101"]}).status_code
        == 201
    )
    before = _groups(world.tenant_a)
    cases = [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "Sales\r\nX-Injected: 1"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"description": "two\nlines"}, "description"),
        ({"members": ["999"]}, "members"),
        ({"members": ["201"]}, "members"),  # tenant B's extension
        ({"members": "101"}, "members"),
    ]
    for change, field in cases:
        r = admin.post("/api/v1/user-groups/", {**GROUP, **change})
        assert r.status_code == 400, (change, r.content)
        assert field in r.json()["fields"], (change, r.json())
    r = admin.post("/api/v1/user-groups/", {"name": "support", "members": []})
    assert r.status_code == 409
    assert r.json()["fields"] == {"name": ["another group has this name"]}
    assert _groups(world.tenant_a) == before


def test_deleting_an_extension_takes_it_out_of_its_groups(api, world):
    admin = api(world.a_admin, world.tenant_a)
    assert (
        admin.post("/api/v1/extensions/", {"number": "150", "display_name": "Temp"}).status_code
        == 201
    )
    r = admin.post("/api/v1/user-groups/", {"name": "Desk", "members": ["101", "150"]})
    assert r.status_code == 201, r.content
    ext = admin.get("/api/v1/extensions/", {"number": "150"}).json()["items"][0]
    assert admin.delete(f"/api/v1/extensions/{ext['id']}/").status_code == 204
    assert _groups(world.tenant_a) == [("Desk", ["101"])]
    assert admin.get(f"/api/v1/user-groups/{r.json()['id']}/").json()["members"] == ["101"]


def test_another_tenants_group_is_not_found_and_never_listed(api, world):
    from telephony.user_groups import do_create_user_group

    with tenant_context(world.tenant_b):
        theirs = do_create_user_group(actor=SYSTEM, fields={"name": "Beta team", "members": []})
    admin = api(world.a_admin, world.tenant_a)
    assert admin.get("/api/v1/user-groups/").json()["total"] == 0
    url = f"/api/v1/user-groups/{theirs.pk}/"
    assert admin.get(url).status_code == 404
    assert admin.patch(url, {"name": "Mine"}).status_code == 404
    assert admin.delete(url).status_code == 404
    assert _groups(world.tenant_b) == [("Beta team", [])]
