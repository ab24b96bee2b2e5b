"""The DID pool in the REST API: the system admin (and a dealer, within what it holds) adds
numbers and ranges, assigns them to tenants and releases them; a tenant reads the numbers
assigned to it and nothing else. Bad numbers, overlaps and a number another tenant holds are
field errors or 409, never a 500, and a refused write changes nothing."""

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from trunks import actions
from trunks.models import DidNumber

pytestmark = pytest.mark.django_db


def _numbers(**filters) -> list[str]:
    return list(DidNumber.objects.filter(**filters).values_list("number", flat=True))


def test_a_range_is_added_assigned_filtered_and_released(api, world):
    sysadmin = api(world.sysadmin)
    r = sysadmin.post(
        "/api/v1/numbers/",
        {"number": "(212) 555-0100", "last": "212 555 0104", "country": "us",
         "description": "Main office"},
    )  # fmt: skip
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["total"] == 5
    assert [n["number"] for n in body["items"]] == [f"+1212555010{i}" for i in range(5)]
    assert {(n["tenant"], n["dealer"], n["description"]) for n in body["items"]} == {
        (None, None, "Main office")
    }
    assert AuditEntry.objects.filter(action="number.add", actor=world.sysadmin).exists()
    first = body["items"][0]["id"]
    r = sysadmin.post(f"/api/v1/numbers/{first}/assign/", {"tenant_id": world.tenant_a.pk})
    assert (r.status_code, r.json()["tenant"]) == (200, world.tenant_a.pk), r.content
    assert r.json()["assigned_at"]
    # One number belongs to one tenant at a time.
    r = sysadmin.post(f"/api/v1/numbers/{first}/assign/", {"tenant_id": world.tenant_b.pk})
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    assert "tenant" in r.json()["fields"]
    assert DidNumber.objects.get(pk=first).tenant_id == world.tenant_a.pk

    def listed(**query):
        items = sysadmin.get("/api/v1/numbers/", query).json()["items"]
        return [n["number"] for n in items]

    assert listed(free="false") == ["+12125550100"]
    assert len(listed(free="true")) == 4
    assert listed(tenant=world.tenant_a.pk) == ["+12125550100"]
    assert listed(q="0103") == ["+12125550103"]
    r = sysadmin.get("/api/v1/numbers/", {"tenant": "9" * 40})
    assert r.status_code == 400
    assert "tenant" in r.json()["fields"]

    r = sysadmin.patch(f"/api/v1/numbers/{first}/", {"description": "Reception"})
    assert (r.status_code, r.json()["description"]) == (200, "Reception")
    r = sysadmin.patch(f"/api/v1/numbers/{first}/", {"description": "two\r\nlines"})
    assert r.status_code == 400
    assert "description" in r.json()["fields"]
    r = sysadmin.post(f"/api/v1/numbers/{first}/release/")
    assert (r.status_code, r.json()["tenant"]) == (200, None)
    assert AuditEntry.objects.filter(action="number.release", object_id=str(first)).exists()
    assert sysadmin.delete(f"/api/v1/numbers/{first}/").status_code == 204
    assert not DidNumber.objects.filter(pk=first).exists()


def test_bad_numbers_and_overlaps_are_refused_and_change_nothing(api, world):
    sysadmin = api(world.sysadmin)
    actions.do_add_numbers(actor=SYSTEM, number="+12125550150", last="+12125550159")
    before = DidNumber.objects.count()
    cases = [
        ({"number": "+12125550155", "last": "+12125550165"}, 409, "number"),  # overlaps
        ({"number": "+12125550150"}, 409, "number"),
        ({"number": "not a number"}, 400, "number"),
        ({"number": "2125550100"}, 400, "number"),  # national without a country
        ({"number": "+12125550199", "last": "+12125550190"}, 400, "last"),  # backwards
        ({"number": "+12125000000", "last": "+12125999999"}, 400, "last"),  # too many
        ({"number": "+12125550170", "country": "XX"}, 400, "country"),
        ({"number": "+12125550170", "description": "a\nb"}, 400, "description"),
        ({"number": "+12125550170", "tenant_id": 2**40}, 400, "tenant_id"),
        ({"number": "+12125550170", "dealer_id": 999_999}, 400, "dealer_id"),
        ({"number": "+12125550170", "trunk_id": "x"}, 400, "trunk_id"),
        ({"number": ["+12125550170"]}, 400, "number"),
        ({}, 400, "number"),
    ]
    for body, status, field in cases:
        r = sysadmin.post("/api/v1/numbers/", body)
        assert r.status_code == status, (body, r.content)
        assert field in r.json()["fields"], (body, r.json())
    assert DidNumber.objects.count() == before
    number = DidNumber.objects.order_by("number").first()
    for body in ({"tenant_id": "x"}, {"tenant_id": 2**40}, {}, {"tenant_id": 999_999}):
        r = sysadmin.post(f"/api/v1/numbers/{number.pk}/assign/", body)
        assert r.status_code == 400, (body, r.content)
    assert DidNumber.objects.get(pk=number.pk).tenant_id is None


def test_a_dealer_holds_and_assigns_only_within_its_subtree(api, world):
    north, south = api(world.north_admin), api(world.south_admin)
    r = north.post("/api/v1/numbers/", {"number": "+442071838750", "last": "+442071838751"})
    assert r.status_code == 201, r.content
    ids = [n["id"] for n in r.json()["items"]]
    assert {n["dealer"] for n in r.json()["items"]} == {world.north.pk}  # its own by default
    provider = actions.do_add_numbers(actor=SYSTEM, number="+442071838760")[0]
    souths = south.post("/api/v1/numbers/", {"number": "+442071838770"}).json()["items"]
    # Not its tenant: refused, nothing assigned.
    r = north.post(f"/api/v1/numbers/{ids[0]}/assign/", {"tenant_id": world.tenant_b.pk})
    assert r.status_code == 400
    assert "tenant_id" in r.json()["fields"]
    r = north.post(f"/api/v1/numbers/{ids[0]}/assign/", {"tenant_id": world.tenant_a.pk})
    assert r.status_code == 200
    # Its numbers stay with a dealer of its subtree.
    r = north.patch(f"/api/v1/numbers/{ids[1]}/", {"dealer_id": None})
    assert r.status_code == 400
    assert "dealer_id" in r.json()["fields"]
    r = north.patch(f"/api/v1/numbers/{ids[1]}/", {"dealer_id": world.south.pk})
    assert r.status_code == 400
    assert DidNumber.objects.get(pk=ids[1]).dealer_id == world.north.pk
    # Neither the provider's nor South's numbers answer North.
    for other in (provider.pk, souths[0]["id"]):
        for method, path, body in (
            ("get", f"/api/v1/numbers/{other}/", None),
            ("patch", f"/api/v1/numbers/{other}/", {"description": "x"}),
            ("post", f"/api/v1/numbers/{other}/assign/", {"tenant_id": world.tenant_a.pk}),
            ("post", f"/api/v1/numbers/{other}/release/", None),
            ("delete", f"/api/v1/numbers/{other}/", None),
        ):
            r = getattr(north, method)(path, body)
            assert r.status_code == 404, (method, path, r.status_code)
    assert DidNumber.objects.get(pk=provider.pk).tenant_id is None
    assert DidNumber.objects.filter(pk=souths[0]["id"], description="").exists()
    listed = {n["number"] for n in north.get("/api/v1/numbers/").json()["items"]}
    assert listed == {"+442071838750", "+442071838751"}
    assert {n["number"] for n in south.get("/api/v1/numbers/").json()["items"]} == {"+442071838770"}


def test_a_tenant_reads_its_own_numbers_only(api, world):
    a_numbers = actions.do_add_numbers(
        actor=SYSTEM, number="+12125550180", last="+12125550181", tenant=world.tenant_a,
        description="Sales",
    )  # fmt: skip
    b_number = actions.do_add_numbers(actor=SYSTEM, number="+12125550190", tenant=world.tenant_b)
    actions.do_add_numbers(actor=SYSTEM, number="+12125550195")  # free in the pool
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/numbers/")
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(n["number"], n["description"]) for n in items] == [
        ("+12125550180", "Sales"), ("+12125550181", "Sales")
    ]  # fmt: skip
    assert set(items[0]) == {"id", "number", "description", "assigned_at"}
    assert admin.get(f"/api/v1/numbers/{b_number[0].pk}/").status_code == 404
    # Read-only: the pool is the provider's to change.
    first = a_numbers[0].pk
    before = list(DidNumber.objects.values())
    for method, path, body in (
        ("post", "/api/v1/numbers/", {"number": "+12125550199"}),
        ("patch", f"/api/v1/numbers/{first}/", {"description": "Mine"}),
        ("delete", f"/api/v1/numbers/{first}/", None),
        ("post", f"/api/v1/numbers/{first}/release/", None),
        ("post", f"/api/v1/numbers/{first}/assign/", {"tenant_id": world.tenant_a.pk}),
    ):
        r = getattr(admin, method)(path, body)
        assert r.status_code == 403, (method, path, r.content)
    assert list(DidNumber.objects.values()) == before
    assert api(world.a_user, world.tenant_a).get("/api/v1/numbers/").status_code == 403
    b_items = api(world.b_admin, world.tenant_b).get("/api/v1/numbers/").json()["items"]
    assert [n["number"] for n in b_items] == ["+12125550190"]


def test_a_retried_add_replays_its_answer_and_adds_nothing(api, world):
    sysadmin = api(world.sysadmin)
    body = {"number": "+12125550130", "last": "+12125550131"}
    first = sysadmin.post("/api/v1/numbers/", body, HTTP_IDEMPOTENCY_KEY="add-0130")
    assert first.status_code == 201, first.content
    again = sysadmin.post("/api/v1/numbers/", body, HTTP_IDEMPOTENCY_KEY="add-0130")
    assert (again.status_code, again.json()) == (201, first.json())
    assert again["Idempotent-Replayed"] == "true"
    assert DidNumber.objects.filter(number__startswith="+1212555013").count() == 2
    # Without the key, the same request is a second add: 409, the numbers exist.
    assert sysadmin.post("/api/v1/numbers/", body).status_code == 409
