"""A dealer's tenant and extension limits are totals for its whole subtree (PortSIP's meaning):
its own tenants (and their extension quotas) plus what it hands its sub-dealers stay within
them. Sub-dealers can no longer each receive the parent's full allowance."""

import pytest

from dealers.models import Dealer
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.fixture
def parent(api, world):
    r = api(world.sysadmin).post(
        "/api/v1/dealers/", {"name": "Parent", "max_tenants": 4, "max_extensions": 40}
    )
    assert r.status_code == 201, r.content
    return r.json()["id"]


def _dealer(client, parent, name, **limits):
    return client.post("/api/v1/dealers/", {"name": name, "parent_id": parent, **limits})


def _tenant(client, dealer, slug, **extra):
    body = {"name": slug, "slug": slug, "sip_domain": f"{slug}.test", "dealer_id": dealer}
    return client.post("/api/v1/tenants/", {**body, **extra})


def test_sub_dealers_share_the_parents_tenant_limit(api, world, parent):
    sys = api(world.sysadmin)
    assert _dealer(sys, parent, "S1", max_tenants=3, max_extensions=10).status_code == 201
    r = _dealer(sys, parent, "S2", max_tenants=3, max_extensions=10)  # 3 + 3 > 4
    assert r.status_code == 409
    assert r.json()["code"] == "QUOTA_EXCEEDED"
    assert "max_tenants" in r.json()["fields"]
    assert not Dealer.objects.filter(name="S2").exists()
    assert _dealer(sys, parent, "S2", max_tenants=1, max_extensions=10).status_code == 201
    # All four handed to sub-dealers: the parent itself has no tenant left.
    r = _tenant(sys, parent, "own", max_extensions=1)
    assert r.status_code == 409
    assert r.json()["code"] == "QUOTA_EXCEEDED"
    assert "dealer" in r.json()["fields"]
    assert not Tenant.objects.filter(slug="own").exists()


def test_extension_quotas_add_up_across_tenants_and_sub_dealers(api, world, parent):
    sys = api(world.sysadmin)
    s1 = _dealer(sys, parent, "S1", max_tenants=1, max_extensions=25).json()["id"]
    assert _tenant(sys, parent, "first", max_extensions=10).status_code == 201
    r = _tenant(sys, parent, "second", max_extensions=10)  # 25 + 10 + 10 > 40
    assert r.status_code == 409
    assert "max_extensions" in r.json()["fields"]
    assert _tenant(sys, parent, "second", max_extensions=5).status_code == 201
    # Raising a tenant's or a sub-dealer's share beyond what is left is refused too ...
    second = Tenant.objects.get(slug="second")
    r = sys.patch(f"/api/v1/tenants/{second.pk}/", {"max_extensions": 6})
    assert r.status_code == 409
    assert Tenant.objects.get(pk=second.pk).max_extensions == 5
    r = sys.patch(f"/api/v1/dealers/{s1}/", {"max_extensions": 26})
    assert r.status_code == 409
    assert Dealer.objects.get(pk=s1).max_extensions == 25
    # ... lowering is fine, and then the freed room can be used.
    assert sys.patch(f"/api/v1/dealers/{s1}/", {"max_extensions": 20}).status_code == 200
    assert sys.patch(f"/api/v1/tenants/{second.pk}/", {"max_extensions": 10}).status_code == 200
    # The parent cannot be cut below what it has handed out (20 + 10 + 10).
    r = sys.patch(f"/api/v1/dealers/{parent}/", {"max_extensions": 39})
    assert r.status_code == 409
    assert sys.patch(f"/api/v1/dealers/{parent}/", {"max_extensions": 40}).status_code == 200


def test_a_sub_dealer_admin_works_within_its_share(api, world, parent):
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_user
    from tenants.choices import Role

    sys = api(world.sysadmin)
    s1 = _dealer(sys, parent, "S1", max_tenants=2, max_extensions=10).json()["id"]
    admin = do_create_user(
        email="s1@dealers.test",
        password="Correct-Horse-42x",
        role=Role.DEALER_ADMIN,
        dealer=Dealer.objects.get(pk=s1),
        actor=SYSTEM,
    )
    own = api(admin)
    # Its sub-dealer takes one of its two tenants; unset limits take what is left, no more.
    sub = _dealer(own, s1, "S1a")
    assert sub.status_code == 201, sub.content
    assert (sub.json()["max_tenants"], sub.json()["max_extensions"]) == (2, 10)
    r = own.patch(f"/api/v1/dealers/{sub.json()['id']}/", {"max_tenants": 1, "max_extensions": 4})
    assert r.status_code == 200, r.content
    made = _tenant(own, s1, "mine")  # an unset quota: what S1 has left (6)
    assert made.status_code == 201, made.content
    assert made.json()["max_extensions"] == 6
    assert _tenant(own, s1, "toomany", max_extensions=1).status_code == 409
