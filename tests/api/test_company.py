"""A tenant admin edits its own company settings (permission ``tenant.settings``) on its host,
in the API and the portal; quotas and capabilities stay its dealer's."""

import pytest

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from tenants.actions import do_create_role, do_create_user
from tenants.choices import Role
from tenants.models import Tenant
from tests.conftest import PASSWORD
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db


def _user_with(world, permissions):
    name = "Office " + "+".join(permissions)
    role = do_create_role(world.tenant_a, name=name, permissions=permissions, actor=SYSTEM)
    return do_create_user(
        email=f"office.{permissions[0]}@acme.test",
        password=PASSWORD,
        role=Role.TENANT_USER,
        tenant=world.tenant_a,
        custom_role=role,
        actor=SYSTEM,
    )


def test_tenant_admin_edits_company_settings_in_api(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get("/api/v1/company/")
    assert r.status_code == 200
    assert r.json()["name"] == "Acme"
    assert r.json()["max_extensions"] == world.tenant_a.max_extensions
    r = admin.patch(
        "/api/v1/company/",
        {"name": "Acme Ltd", "time_zone": "Europe/Paris", "ext_min_length": 2},
    )
    assert r.status_code == 200, r.content
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    assert (tenant.name, tenant.time_zone, tenant.ext_min_length) == ("Acme Ltd", "Europe/Paris", 2)
    assert AuditEntry.objects.filter(action="tenant.update", tenant=tenant).exists()
    # What the dealer set cannot be changed here, and the rules of the action hold.
    r = admin.patch("/api/v1/company/", {"max_extensions": 999, "name": "Greedy"})
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["max_extensions"]
    r = admin.patch("/api/v1/company/", {"time_zone": "Mars/Olympus"})
    assert r.status_code == 400
    assert "time_zone" in r.json()["fields"]
    tenant.refresh_from_db()
    assert (tenant.name, tenant.max_extensions) == ("Acme Ltd", world.tenant_a.max_extensions)


def test_company_settings_need_the_tenant_settings_permission(api, world):
    assert api(world.a_user, world.tenant_a).get("/api/v1/company/").status_code == 403
    assert (
        api(world.a_user, world.tenant_a).patch("/api/v1/company/", {"name": "X"}).status_code
        == 403
    )
    without = _user_with(world, ["users.view"])
    assert api(without, world.tenant_a).get("/api/v1/company/").status_code == 403
    office = _user_with(world, ["tenant.settings"])
    r = api(office, world.tenant_a).patch("/api/v1/company/", {"language": "fr"})
    assert r.status_code == 200
    assert Tenant.objects.get(pk=world.tenant_a.pk).language == "fr"
    # Another tenant's admin (its token is not valid here), and the provider's host (404).
    assert api(world.b_admin, world.tenant_a).get("/api/v1/company/").status_code == 401
    assert api(world.sysadmin).get("/api/v1/company/").status_code == 404
    assert Tenant.objects.get(pk=world.tenant_a.pk).name == "Acme"


def test_company_page_in_the_portal(world):
    admin = Portal("acme.test", world.a_admin)
    page = admin.get("/portal/company/")
    assert page.status_code == 200
    assert b"/portal/company/" in page.content  # in the menu
    r = admin.post(
        "/portal/company/",
        {
            "name": "Acme Co",
            "time_zone": "UTC",
            "language": "en",
            "ext_min_length": 3,
            "ext_max_length": 6,
        },
    )
    assert r.status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).name == "Acme Co"
    r = admin.post(
        "/portal/company/",
        {
            "name": "Acme Co",
            "time_zone": "Nowhere",
            "language": "en",
            "ext_min_length": 3,
            "ext_max_length": 6,
        },
    )
    assert r.status_code == 200
    assert r.context["form"].errors["time_zone"]
    assert Portal("acme.test", world.a_user).get("/portal/company/").status_code == 404
    office = _user_with(world, ["tenant.settings"])
    assert Portal("acme.test", office).get("/portal/company/").status_code == 200
