"""The permission matrix: every endpoint and role — anonymous 401, wrong role 403, another
tenant's or dealer's object 404, permitted 2xx — and refused writes change nothing."""

import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db

# (role attribute on the world, host: "a" = tenant A's host, "public" = provider's host)
TENANT_ENDPOINTS = ["/api/v1/extensions/", "/api/v1/users/", "/api/v1/roles/", "/api/v1/audit/"]


def _client(api, world, who, host):
    user = None if who == "anon" else getattr(world, who)
    tenant = {"a": world.tenant_a, "b": world.tenant_b, "public": None}[host]
    return api(user, tenant)


@pytest.mark.parametrize("path", TENANT_ENDPOINTS)
@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anon", 401),
        ("a_user", 403),  # a tenant user without a role that grants it
        ("b_admin", 401),  # another tenant's credentials are not valid on this host
        ("south_admin", 401),  # a dealer not holding tenant A: no credentials valid there
        ("a_admin", 200),
        ("north_admin", 200),  # tenant A's own dealer
        ("top_admin", 200),  # the dealer above it
        ("sysadmin", 200),
    ],
)
def test_tenant_endpoints_list(api, world, path, who, expected):
    response = _client(api, world, who, "a").get(path)
    assert response.status_code == expected, response.content
    body = response.json()
    if expected == 200:
        assert {"total", "items"} <= body.keys()
    else:
        assert body["code"]
        assert body["message"]


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("anon", 401),
        ("a_user", 403),
        ("b_admin", 401),
        ("south_admin", 401),
        ("a_admin", 201),
        ("north_admin", 201),
        ("sysadmin", 201),
    ],
)
def test_extension_create_matrix(api, world, in_tenant, who, expected):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        before = Extension.objects.count()
    response = _client(api, world, who, "a").post(
        "/api/v1/extensions/", {"number": "556", "display_name": "New"}
    )
    assert response.status_code == expected, response.content
    with in_tenant(world.tenant_a):
        assert Extension.objects.count() == before + (1 if expected == 201 else 0)


@pytest.mark.parametrize(
    ("who", "expected"),
    [("anon", 401), ("a_user", 403), ("south_admin", 401), ("a_admin", 200), ("top_admin", 200)],
)
def test_extension_update_and_delete_matrix(api, world, in_tenant, who, expected):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    client = _client(api, world, who, "a")
    response = client.patch(f"/api/v1/extensions/{ext.pk}/", {"display_name": "Renamed"})
    assert response.status_code == expected, response.content
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
        assert (ext.display_name == "Renamed") is (expected == 200)
    response = client.delete(f"/api/v1/extensions/{ext.pk}/")
    assert response.status_code == (204 if expected == 200 else expected)
    with in_tenant(world.tenant_a):
        assert Extension.objects.filter(pk=ext.pk).exists() is (expected != 200)


def test_custom_role_grants_exactly_its_permissions(api, world):
    admin = api(world.a_admin, world.tenant_a)
    role = admin.post(
        "/api/v1/roles/", {"name": "Receptionist", "permissions": ["extensions.view"]}
    ).json()
    r = admin.patch(f"/api/v1/users/{world.a_user.pk}/", {"custom_role": role["id"]})
    assert r.status_code == 200, r.content
    staff = api(world.a_user, world.tenant_a)
    assert staff.get("/api/v1/extensions/").status_code == 200
    refused = staff.post("/api/v1/extensions/", {"number": "556", "display_name": "X"})
    assert refused.status_code == 403
    assert staff.get("/api/v1/users/").status_code == 403
    # Tenant B's roles cannot be given to tenant A's users.
    b_role = (
        api(world.b_admin, world.tenant_b)
        .post("/api/v1/roles/", {"name": "B-only", "permissions": []})
        .json()
    )
    r = admin.patch(f"/api/v1/users/{world.a_user.pk}/", {"custom_role": b_role["id"]})
    assert r.status_code == 400
    assert "custom_role" in r.json()["fields"]


@pytest.mark.parametrize(
    ("who", "host", "expected"),
    [
        ("anon", "public", 401),
        ("a_admin", "a", 403),  # a tenant admin has no platform role
        ("a_admin", "public", 401),  # and its credentials do not work on the provider's host
        ("sysadmin", "a", 404),  # platform endpoints live on the provider's host only
        ("sysadmin", "public", 200),
        ("north_admin", "public", 200),
    ],
)
def test_platform_endpoints(api, world, who, host, expected):
    for path in ("/api/v1/tenants/", "/api/v1/dealers/"):
        assert _client(api, world, who, host).get(path).status_code == expected


def test_dealer_sees_and_manages_only_its_subtree(api, world):
    north = api(world.north_admin)
    names = [t["slug"] for t in north.get("/api/v1/tenants/").json()["items"]]
    assert names == ["acme"]
    assert north.get(f"/api/v1/tenants/{world.tenant_b.pk}/").status_code == 404
    r = north.post(f"/api/v1/tenants/{world.tenant_b.pk}/suspend/")
    assert r.status_code == 404
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == "active"
    r = north.patch(f"/api/v1/tenants/{world.tenant_b.pk}/", {"name": "Hacked"})
    assert r.status_code == 404
    assert Tenant.objects.get(pk=world.tenant_b.pk).name == "Beta"

    top = api(world.top_admin)
    assert [t["slug"] for t in top.get("/api/v1/tenants/").json()["items"]] == ["acme"]
    assert {d["name"] for d in top.get("/api/v1/dealers/").json()["items"]} == {
        "Top Reseller",
        "North",
    }
    assert [d["name"] for d in api(world.south_admin).get("/api/v1/dealers/").json()["items"]] == [
        "South"
    ]
    both = {t["slug"] for t in api(world.sysadmin).get("/api/v1/tenants/").json()["items"]}
    assert {"acme", "beta"} <= both


def test_dealer_cannot_raise_its_own_limits(api, world):
    r = api(world.north_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 999})
    assert r.status_code == 403
    world.north.refresh_from_db()
    assert world.north.max_tenants == 20
    r = api(world.south_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 1})
    assert r.status_code == 404
    r = api(world.top_admin).patch(f"/api/v1/dealers/{world.north.pk}/", {"max_tenants": 10})
    assert r.status_code == 200
    assert r.json()["max_tenants"] == 10
