"""Tenant lifecycle through the API: create within the dealer's capabilities, quotas, suspend
(data kept, sign-in/API/calls refused) and delete (schema erased, only when confirmed)."""

import json

import pytest
import redis
from django.conf import settings
from django_tenants.utils import schema_exists

from tenants.models import Domain, Tenant, User

pytestmark = pytest.mark.django_db


def _new_tenant(client, slug, **extra):
    body = {"name": slug.title(), "slug": slug, "sip_domain": f"{slug}.test", **extra}
    return client.post("/api/v1/tenants/", body)


def test_system_admin_creates_tenant_with_schema_and_hosts(api, world, in_tenant):
    r = _new_tenant(api(world.sysadmin), "gamma", web_host="pbx.gamma.test", max_extensions=5)
    assert r.status_code == 201, r.content
    body = r.json()
    assert body["web_host"] == "pbx.gamma.test"
    assert body["sip_domain"] == "gamma.test"
    assert body["status"] == "active"
    tenant = Tenant.objects.get(slug="gamma")
    assert schema_exists(tenant.schema_name)
    with in_tenant(tenant):
        from telephony.models import Extension

        assert Extension.objects.count() == 0  # cloned structure, none of the template's rows


def test_duplicate_identity_is_a_conflict(api, world):
    client = api(world.sysadmin)
    r = client.post("/api/v1/tenants/", {"name": "Dup", "slug": "acme2", "sip_domain": "acme.test"})
    assert r.status_code == 409
    assert r.json()["fields"] == {
        "sip_domain": ["this SIP domain is taken"],
        "web_host": ["this host name is taken"],  # the web host defaults to the SIP domain
    }
    assert not Tenant.objects.filter(slug="acme2").exists()


def test_dealer_cannot_give_more_than_it_has(api, world):
    north = api(world.north_admin)
    r = _new_tenant(north, "big", max_extensions=world.north.max_extensions + 1)
    assert r.status_code == 400
    assert r.json()["code"] == "CAPABILITY_EXCEEDED"
    assert "max_extensions" in r.json()["fields"]
    r = _new_tenant(north, "trunky", feature_tenant_trunks=True)  # North lacks trunks
    assert r.status_code == 400
    assert "feature_tenant_trunks" in r.json()["fields"]
    assert not Tenant.objects.filter(slug__in=["big", "trunky"]).exists()
    ok = _new_tenant(north, "small", max_extensions=3)
    assert ok.status_code == 201
    assert Tenant.objects.get(slug="small").dealer_id == world.north.pk  # its own dealer


def test_sub_dealers_nest_three_levels_and_inherit_bounds(api, world):
    top = api(world.top_admin)
    level2 = top.post(
        "/api/v1/dealers/", {"name": "L2", "parent_id": world.north.pk, "max_tenants": 5}
    ).json()
    level3 = top.post(
        "/api/v1/dealers/", {"name": "L3", "parent_id": level2["id"], "max_tenants": 2}
    ).json()
    assert level3["depth"] == 4  # Top > North > L2 > L3
    r = top.post("/api/v1/dealers/", {"name": "L4", "parent_id": level3["id"], "max_tenants": 3})
    assert r.status_code == 400  # more tenants than its parent may have
    r = top.post(
        "/api/v1/dealers/", {"name": "L4", "parent_id": level3["id"], "max_extensions": 10_000}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "CAPABILITY_EXCEEDED"
    # North's admin sees the new levels below it; South's does not.
    assert {"L2", "L3"} <= {
        d["name"] for d in api(world.north_admin).get("/api/v1/dealers/").json()["items"]
    }
    assert api(world.south_admin).get(f"/api/v1/dealers/{level3['id']}/").status_code == 404
    # A parent cannot be cut below what its children hold.
    r = top.patch(f"/api/v1/dealers/{level2['id']}/", {"max_extensions": 1})
    assert r.status_code == 400
    assert "max_extensions" in r.json()["fields"]


def test_dealer_tenant_quota(api, world):
    top = api(world.top_admin)
    tiny = top.post(
        "/api/v1/dealers/", {"name": "Tiny", "parent_id": world.north.pk, "max_tenants": 1}
    ).json()
    from dealers.models import Dealer
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_user
    from tenants.choices import Role

    admin = do_create_user(
        email="tiny@d.test",
        password="Correct-Horse-42x",
        role=Role.DEALER_ADMIN,
        dealer=Dealer.objects.get(pk=tiny["id"]),
        actor=SYSTEM,
    )
    client = api(admin)
    assert _new_tenant(client, "first").status_code == 201
    r = _new_tenant(client, "second")
    assert r.status_code == 409
    assert r.json()["code"] == "QUOTA_EXCEEDED"
    assert not Tenant.objects.filter(slug="second").exists()


def test_extension_quota(api, world, in_tenant):
    sys = api(world.sysadmin)
    assert (
        sys.patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {"max_extensions": 2}).status_code == 200
    )
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/extensions/", {"number": "103", "display_name": "Over"})
    assert r.status_code == 409
    assert r.json()["code"] == "QUOTA_EXCEEDED"
    with in_tenant(world.tenant_a):
        from telephony.models import Extension

        assert not Extension.objects.filter(number="103").exists()
    r = sys.patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {"max_extensions": 1})
    assert r.status_code == 409  # cannot cut below what is in use
    assert Tenant.objects.get(pk=world.tenant_a.pk).max_extensions == 2


def test_suspend_refuses_sign_in_api_and_calls_and_keeps_data(api, world, in_tenant):
    sys = api(world.sysadmin)
    r = sys.post(f"/api/v1/tenants/{world.tenant_a.pk}/suspend/")
    assert r.status_code == 200
    assert r.json()["status"] == "suspended"
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/extensions/")
    assert r.status_code == 403
    assert r.json()["code"] == "TENANT_SUSPENDED"
    signin = admin.client.post(
        "/api/v1/auth/signin/",
        {"email": "admin@acme.test", "password": "Correct-Horse-42x"},
        format="json",
    )
    assert signin.status_code == 401
    # The SIP engine learns it from the routing snapshot (calls and registrations refused).
    from telephony.engine.snapshots import publish_tenant

    publish_tenant(world.tenant_a.pk)
    snap = json.loads(redis.Redis.from_url(settings.REDIS_URL).get("sip:snapshot:acme.test"))
    assert snap["status"] == "suspended"
    # Nothing was erased; the system admin still manages it; resuming restores access.
    with in_tenant(world.tenant_a):
        from telephony.models import Extension

        assert Extension.objects.count() == 2
    assert sys.post(f"/api/v1/tenants/{world.tenant_a.pk}/resume/").json()["status"] == "active"
    assert admin.get("/api/v1/extensions/").status_code == 200


def test_delete_needs_confirmation_then_erases(api, world):
    sys = api(world.sysadmin)
    created = _new_tenant(sys, "doomed").json()
    tenant = Tenant.objects.get(pk=created["id"])
    schema = tenant.schema_name
    r = sys.delete(f"/api/v1/tenants/{tenant.pk}/")
    assert r.status_code == 400
    assert r.json()["code"] == "CONFIRMATION_REQUIRED"
    assert schema_exists(schema)
    r = sys.delete(f"/api/v1/tenants/{tenant.pk}/", {"confirm": "wrong"})
    assert r.status_code == 400
    assert schema_exists(schema)
    r = sys.delete(f"/api/v1/tenants/{tenant.pk}/", {"confirm": "doomed"})
    assert r.status_code == 204
    assert not schema_exists(schema)
    assert not Domain.objects.filter(domain="doomed.test").exists()
    assert not User.objects.filter(tenant_id=tenant.pk).exists()
    assert Tenant.objects.get(pk=tenant.pk).status == "deleted"
    assert sys.get(f"/api/v1/tenants/{tenant.pk}/").status_code == 404
    assert "doomed" not in json.dumps(sys.get("/api/v1/tenants/").json()["items"])
    # The identifiers are free again.
    assert _new_tenant(sys, "doomed").status_code == 201


def test_dealer_cannot_delete_other_dealers_tenant(api, world):
    r = api(world.south_admin).delete(f"/api/v1/tenants/{world.tenant_a.pk}/", {"confirm": "acme"})
    assert r.status_code == 404
    assert Tenant.objects.get(pk=world.tenant_a.pk).status == "active"
