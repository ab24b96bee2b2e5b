"""Speed dials and hot desking in the REST API on the tenant's host: an extension's speed
dials listed, set (validation errors as field errors, CR/LF included) and cleared; a desk
phone's hot desk flag and who is logged in there, logging in and out; another tenant's
extension is 404 and nothing of it changes; a user without extensions.manage may only read."""

import pytest

from pbx.models import AuditEntry
from telephony.models import Extension, SpeedDial

pytestmark = pytest.mark.django_db


def extension_pk(in_tenant, tenant, number: str) -> int:
    """The primary key of ``tenant``'s extension ``number``."""
    with in_tenant(tenant):
        return Extension.objects.get(number=number).pk


def test_speed_dials_are_listed_set_and_cleared(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    pk = extension_pk(in_tenant, world.tenant_a, "101")
    url = f"/api/v1/extensions/{pk}/speed-dials/"
    assert admin.get(url).json() == []
    r = admin.post(url, {"code": "2", "number": "102"})
    assert r.status_code == 200, r.content
    r = admin.post(url, {"code": "45", "number": "+4930123456"})
    assert r.json() == [
        {"code": "2", "number": "102"},
        {"code": "45", "number": "+4930123456"},
    ]
    assert admin.delete(f"{url}2/").status_code == 204
    assert admin.delete(f"{url}2/").status_code == 404
    assert admin.get(url).json() == [{"code": "45", "number": "+4930123456"}]
    assert (
        AuditEntry.objects.filter(
            action="extension.speed_dial", tenant=world.tenant_a, actor=world.a_admin
        ).count()
        == 3
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "1", "number": "102"}, "code"),
        ({"code": "123", "number": "102"}, "code"),
        ({"code": "2", "number": "102\r\nVia: x"}, "number"),
        ({"code": "2", "number": "102\n"}, "number"),
        ({"code": "2", "number": "bob"}, "number"),
        ({"code": "2", "number": "101"}, "number"),
        ({"code": "2"}, "number"),
    ],
)
def test_a_bad_speed_dial_is_a_400_field_error(api, world, in_tenant, body, field):
    admin = api(world.a_admin, world.tenant_a)
    pk = extension_pk(in_tenant, world.tenant_a, "101")
    r = admin.post(f"/api/v1/extensions/{pk}/speed-dials/", body)
    assert r.status_code == 400, r.content
    assert field in r.json()["fields"]
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()


def test_hot_desk_flag_login_and_logout(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    desk = extension_pk(in_tenant, world.tenant_a, "101")
    r = admin.post(f"/api/v1/extensions/{desk}/hotdesk/", {"user": "102"})
    assert r.status_code == 400  # not a hot desk yet
    assert "hot_desk" in r.json()["fields"]
    r = admin.patch(f"/api/v1/extensions/{desk}/", {"hot_desk": True, "hotdesk_user": "102"})
    assert r.status_code == 200, r.content
    assert (r.json()["hot_desk"], r.json()["hotdesk_user"]) == (True, "")  # read-only
    r = admin.post(f"/api/v1/extensions/{desk}/hotdesk/", {"user": "102"})
    assert r.status_code == 200, r.content
    assert r.json()["hotdesk_user"] == "102"
    assert admin.get(f"/api/v1/extensions/{desk}/").json()["hotdesk_user"] == "102"
    listed = admin.get("/api/v1/extensions/?number=101").json()["items"][0]
    assert (listed["hot_desk"], listed["hotdesk_user"]) == (True, "102")
    r = admin.post(f"/api/v1/extensions/{desk}/hotdesk/", {"user": "999"})
    assert (r.status_code, list(r.json()["fields"])) == (400, ["user"])
    r = admin.delete(f"/api/v1/extensions/{desk}/hotdesk/")
    assert (r.status_code, r.json()["hotdesk_user"]) == (200, "")


def test_another_tenants_extension_is_404_and_unchanged(api, world, in_tenant):
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    beta = api(world.b_admin, world.tenant_b)
    with in_tenant(world.tenant_a):  # ids are per schema: one that beta has no extension of
        ext, _ = do_create_extension(number="150", display_name="Desk", actor=SYSTEM)
        Extension.objects.filter(pk=ext.pk).update(hot_desk=True)
    with in_tenant(world.tenant_b):
        assert not Extension.objects.filter(pk=ext.pk).exists()
    pk = ext.pk
    assert beta.get(f"/api/v1/extensions/{pk}/speed-dials/").status_code == 404
    r = beta.post(f"/api/v1/extensions/{pk}/speed-dials/", {"code": "2", "number": "102"})
    assert r.status_code == 404
    assert beta.delete(f"/api/v1/extensions/{pk}/speed-dials/2/").status_code == 404
    assert beta.post(f"/api/v1/extensions/{pk}/hotdesk/", {"user": "102"}).status_code == 404
    assert beta.delete(f"/api/v1/extensions/{pk}/hotdesk/").status_code == 404
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()
        assert Extension.objects.get(pk=pk).hotdesk_user == ""


def test_a_user_without_manage_may_not_change_them(api, world, in_tenant):
    user = api(world.a_user, world.tenant_a)
    pk = extension_pk(in_tenant, world.tenant_a, "101")
    r = user.post(f"/api/v1/extensions/{pk}/speed-dials/", {"code": "2", "number": "102"})
    assert r.status_code in (403, 404)
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()
