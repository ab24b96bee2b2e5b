"""The Django admin: the system admin's, on the provider's host, writing through the actions."""

from pbx.models import AuditEntry
from tenants.choices import Role
from tenants.models import Tenant, TenantRole, User


def test_admin_is_for_the_system_admin_on_the_provider_host(portal, world):
    assert portal(world.sysadmin).get("/admin/").status_code == 200
    assert portal(world.north_admin).get("/admin/").status_code == 302
    for model in ("tenant", "user", "tenantrole", "auditentry"):
        url = f"/admin/tenants/{model}/" if model != "auditentry" else "/admin/pbx/auditentry/"
        assert portal(world.sysadmin).get(url).status_code == 200, url
    assert portal(world.sysadmin).get("/admin/dealers/dealer/").status_code == 200
    r = portal(world.sysadmin).get(f"/admin/tenants/tenant/{world.tenant_a.pk}/change/")
    assert r.status_code == 200
    assert b"acme.test" in r.content


def test_admin_writes_go_through_the_actions(portal, world):
    p = portal(world.sysadmin)
    form = {
        "email": "new@acme.test",
        "full_name": "New",
        "role": Role.TENANT_USER,
        "tenant": world.tenant_a.pk,
        "is_active": "on",
        "password": "Quiet-Lamp-2024x",
    }
    r = p.post("/admin/tenants/user/add/", form)
    assert r.status_code == 302, r.content.decode()[-3000:]
    user = User.objects.get(email="new@acme.test")
    assert AuditEntry.objects.filter(action="user.create", object_id=str(user.pk)).exists()
    # A refusal from the action shows on the form and writes nothing.
    r = p.post("/admin/tenants/user/add/", {**form, "email": "weak@acme.test", "password": "abc"})
    assert r.status_code == 200
    assert not User.objects.filter(email="weak@acme.test").exists()
    r = p.post(
        "/admin/tenants/tenantrole/add/",
        {"tenant": world.tenant_a.pk, "name": "Ops", "permissions": ["audit.view"]},
    )
    assert r.status_code == 302
    assert TenantRole.objects.get(name="Ops").permissions == ["audit.view"]
    assert AuditEntry.objects.filter(action="role.create").exists()
    r = p.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [world.tenant_b.pk]}
    )
    assert r.status_code == 302
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == "suspended"
    # The audit trail cannot be edited.
    entry = AuditEntry.objects.first()
    assert p.post(f"/admin/pbx/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
