"""A tenant's call routing in the REST API, on its own host: inbound and outbound rules,
emergency numbers, the blacklist, holidays, the routing settings (with the tenant's country)
and the destination kinds for pickers. Writes go through ``routing.actions`` (audited);
bad input is a field error or 409 with nothing changed, never a 500; another tenant's rows
are 404 and its trunks cannot be named."""

import pytest
from django_tenants.utils import tenant_context

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from routing.models import InboundRule, OutboundRule
from tenants.models import Tenant
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

DID = "+12125550120"
TRUNK = {"name": "Carrier", "kind": "ip", "host": "sip.carrier.test", "addresses": ["192.0.2.1"]}


@pytest.fixture
def acme(world):
    """Acme's DID and a provider trunk shared with Acme; a trunk of Beta's own."""
    trunk_actions.do_add_numbers(actor=SYSTEM, number=DID, tenant=world.tenant_a)
    shared = trunk_actions.do_create_trunk(actor=SYSTEM, fields=TRUNK, shared_with=[world.tenant_a])
    beta = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields={**TRUNK, "name": "Beta's"}, tenant=world.tenant_b
    )
    return shared, beta


def _count(tenant, model) -> int:
    with tenant_context(tenant):
        return model.objects.count()


def test_rules_are_written_through_the_actions(api, world, acme):
    shared, _ = acme
    admin = api(world.a_admin, world.tenant_a)
    rule = {"name": "Main line", "number": DID, "in_hours": {"kind": "extension", "target": "101"},
            "out_of_hours": {"kind": "external", "target": "+12025550188"}}  # fmt: skip
    r = admin.post("/api/v1/inbound-rules/", rule)
    assert r.status_code == 201, r.content
    created = r.json()
    assert (created["match"], created["holiday"], created["priority"]) == ("exact", None, 100)
    assert created["out_of_hours"] == {"kind": "external", "target": "+12025550188"}
    r = admin.post("/api/v1/inbound-rules/", {**rule, "name": "Again"})
    assert (r.status_code, r.json()["code"]) == (409, "CONFLICT")
    r = admin.patch(f"/api/v1/inbound-rules/{created['id']}/", {"priority": 5, "enabled": False})
    assert (r.status_code, r.json()["priority"], r.json()["enabled"]) == (200, 5, False)
    assert admin.get("/api/v1/inbound-rules/", {"enabled": "false"}).json()["total"] == 1

    r = admin.post("/api/v1/outbound-rules/", {"name": "National", "prefix": "0", "strip": 1,
                                               "prepend": "+1", "trunks": [shared.pk]})  # fmt: skip
    assert r.status_code == 201, r.content
    assert r.json()["trunks"] == [shared.pk]
    for kind, body in (
        ("emergency-numbers", {"number": "911", "caller_id": "+12125550120"}),
        ("blacklist", {"number": "+12025550166", "action": "reject", "note": "Spam"}),
        ("blacklist", {"number": "+1900", "prefix": True}),
        ("holidays", {"name": "New Year", "start": "2027-01-01", "yearly": True}),
    ):
        r = admin.post(f"/api/v1/{kind}/", body)
        assert r.status_code == 201, (kind, r.content)
    assert admin.get("/api/v1/holidays/").json()["items"][0]["end"] == "2027-01-01"
    r = admin.post("/api/v1/emergency-numbers/", {"number": "911"})
    assert r.status_code == 409
    actions = set(
        AuditEntry.objects.filter(tenant=world.tenant_a, actor=world.a_admin).values_list(
            "action", flat=True
        )
    )
    assert {"inbound_rule.create", "inbound_rule.update", "outbound_rule.create",
            "emergency_number.create", "blacklist.create", "holiday.create"} <= actions  # fmt: skip
    r = admin.delete(f"/api/v1/inbound-rules/{created['id']}/")
    assert r.status_code == 204
    assert _count(world.tenant_a, InboundRule) == 0


def test_bad_input_is_a_field_error_and_changes_nothing(api, world, acme):
    shared, beta = acme
    admin = api(world.a_admin, world.tenant_a)
    target = {"kind": "extension", "target": "101"}
    cases = [
        ("inbound-rules", {"name": "x\r\nInjected: 1", "number": DID, "in_hours": target}, "name"),
        ("inbound-rules", {"name": "Not ours", "number": "+12125550999", "in_hours": target},
         "number"),
        ("inbound-rules", {"name": "N", "number": DID, "in_hours": "101"}, "in_hours"),
        ("inbound-rules", {"name": "N", "number": DID, "in_hours": {"kind": "fax"}}, "in_hours"),
        ("inbound-rules", {"name": "N", "number": DID, "in_hours": {"kind": "extension",
                                                                    "target": "999"}}, "in_hours"),
        ("inbound-rules", {"name": "N", "number": DID, "in_hours": target, "priority": "high"},
         "priority"),
        ("inbound-rules", {"name": "N", "match": "pattern", "number": "12(", "in_hours": target},
         "number"),
        ("inbound-rules", {"name": "N", "number": {"a": [[[]]]}, "in_hours": target}, "number"),
        ("outbound-rules", {"name": "B", "trunks": [beta.pk]}, "trunks"),
        ("outbound-rules", {"name": "B", "trunks": ["one"]}, "trunks"),
        ("outbound-rules", {"name": "B", "trunks": [2**40]}, "trunks"),
        ("outbound-rules", {"name": "B", "trunks": []}, "trunks"),
        ("outbound-rules", {"name": "B", "trunks": [shared.pk], "prefix": "9a"}, "prefix"),
        ("outbound-rules", {"name": "B", "trunks": [shared.pk], "extensions": ["999"]},
         "extensions"),
        ("emergency-numbers", {"number": "9"}, "number"),
        ("emergency-numbers", {"number": "101"}, "number"),
        ("blacklist", {"number": "call me"}, "number"),
        ("blacklist", {"number": "+12025550166", "action": "explode"}, "action"),
        ("holidays", {"name": "Bad", "start": "2027-02-30"}, "start"),
        ("holidays", {"name": "Bad", "start": "2027-02-02", "end": "2027-02-01"}, "end"),
    ]  # fmt: skip
    for kind, body, field in cases:
        r = admin.post(f"/api/v1/{kind}/", body)
        assert r.status_code == 400, (kind, body, r.content)
        assert set(r.json()) == {"code", "message", "fields"}
        assert field in r.json()["fields"], (kind, body, r.json())
    deep = '{"name": "x", "in_hours": ' + "[" * 50 + "]" * 50 + "}"
    r = admin.client.generic(
        "POST", "/api/v1/inbound-rules/", deep, content_type="application/json"
    )
    assert (r.status_code, r.json()["code"]) == (400, "PARSE_ERROR")
    assert _count(world.tenant_a, InboundRule) == _count(world.tenant_a, OutboundRule) == 0
    assert not AuditEntry.objects.filter(tenant=world.tenant_a, actor=world.a_admin).exists()


def test_settings_with_the_country_and_the_destination_kinds(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/routing/settings/")
    assert r.status_code == 200, r.content
    assert (r.json()["privacy_code"], r.json()["hours_enabled"]) == ("*67", False)
    weekly = [[[540, 1020]]] * 5 + [[], []]
    r = admin.patch(
        "/api/v1/routing/settings/",
        {"hours_enabled": True, "weekly": weekly, "country": "us", "caller_id": "2125550120",
         "allowed_countries": ["us", "ca"]},
    )  # fmt: skip
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["country"], body["caller_id"]) == ("US", "+12125550120")  # national, read in US
    assert (body["weekly"], body["allowed_countries"]) == (weekly, ["CA", "US"])
    assert Tenant.objects.get(pk=world.tenant_a.pk).country == "US"
    assert AuditEntry.objects.filter(action="routing_settings.update", actor=world.a_admin).exists()
    for bad, field in (
        ({"weekly": [[[600, 500]]] * 7}, "weekly"),
        ({"weekly": "always"}, "weekly"),
        ({"privacy_code": "67"}, "privacy_code"),
        ({"country": "XX"}, "country"),
        ({"blocked_prefixes": ["1900"]}, "blocked_prefixes"),
        ({"hours_enabled": "perhaps"}, "hours_enabled"),
        ({"caller_id": "+1212\r\n"}, "caller_id"),
    ):
        r = admin.patch("/api/v1/routing/settings/", bad)
        assert r.status_code == 400, (bad, r.content)
        assert field in r.json()["fields"], (bad, r.json())
    assert admin.get("/api/v1/routing/settings/").json() == body

    kinds = {k["kind"]: k for k in admin.get("/api/v1/routing/destinations/").json()["items"]}
    assert {"extension", "external", "reject"} <= set(kinds)
    assert {"target": "101", "label": "101 Acme 101"} in kinds["extension"]["choices"]
    assert not any("Beta" in c["label"] for c in kinds["extension"]["choices"])
    assert kinds["external"]["choices"] is None


def test_who_may_read_and_write_routing(api, world, acme):
    from tests.api.resources import Owner, Seeds

    seeds = Seeds()
    try:
        b_rule = seeds("inbound-rules", Owner(world.tenant_b, world.south))
    finally:
        seeds.close()
    admin = api(world.a_admin, world.tenant_a)
    # Tenant B's rule is not there on A's host (its id may be a row of A's: none exist).
    assert admin.get(f"/api/v1/inbound-rules/{b_rule.id}/").status_code == 404
    assert admin.delete(f"/api/v1/inbound-rules/{b_rule.id}/").status_code == 404
    assert b_rule.state()[1] is not None
    # A's token on B's host is not valid there at all.
    b_host = api(world.a_admin, world.tenant_a)
    b_host.client.defaults["HTTP_HOST"] = "beta.test"
    assert b_host.get("/api/v1/inbound-rules/").status_code == 401
    # A role with routing.view reads and cannot write; without it, 403.
    staff = api(world.a_user, world.tenant_a)
    paths = ("inbound-rules", "routing/settings", "routing/destinations", "trunks", "numbers")
    for path in (f"/api/v1/{p}/" for p in paths):
        assert staff.get(path).status_code == 403, path
    role = admin.post("/api/v1/roles/", {"name": "Routing", "permissions": ["routing.view"]})
    admin.patch(f"/api/v1/users/{world.a_user.pk}/", {"custom_role": role.json()["id"]})
    assert staff.get("/api/v1/inbound-rules/").status_code == 200
    assert staff.get("/api/v1/routing/settings/").status_code == 200
    assert staff.get("/api/v1/routing/destinations/").status_code == 200
    assert staff.patch("/api/v1/routing/settings/", {"privacy_code": "*99"}).status_code == 403
    r = staff.post("/api/v1/holidays/", {"name": "Mine", "start": "2027-05-01"})
    assert r.status_code == 403
    assert admin.get("/api/v1/routing/settings/").json()["privacy_code"] == "*67"
    # The provider's host has no tenant routing.
    assert api(world.sysadmin).get("/api/v1/inbound-rules/").status_code == 404
    assert api(world.sysadmin).get("/api/v1/routing/settings/").status_code == 404


def test_an_extensions_call_scope_is_set_through_the_api(api, world):
    """Story: the admin bars extension 102 from international calls; a made-up scope is a
    field error and changes nothing."""
    admin = api(world.a_admin, world.tenant_a)
    ext = next(e for e in admin.get("/api/v1/extensions/").json()["items"] if e["number"] == "102")
    assert ext["call_scope"] == "international"
    r = admin.patch(f"/api/v1/extensions/{ext['id']}/", {"call_scope": "national"})
    assert (r.status_code, r.json()["call_scope"]) == (200, "national")
    r = admin.patch(f"/api/v1/extensions/{ext['id']}/", {"call_scope": "galactic"})
    assert r.status_code == 400
    assert "call_scope" in r.json()["fields"]
    assert admin.get(f"/api/v1/extensions/{ext['id']}/").json()["call_scope"] == "national"
