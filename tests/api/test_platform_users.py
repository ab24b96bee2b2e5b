"""The platform's own users over the REST API (provider's host): a system admin manages every
system and dealer admin; a dealer admin the dealer admins of its subtree. Others' are 404;
every change is audited; a user made without a password is invited by e-mail."""

import pytest
from django.core import mail

from pbx.celery import app
from pbx.models import AuditEntry
from tenants.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/v1/platform-users/"


def _emails(client):
    r = client.get(URL, {"limit": 200})
    assert r.status_code == 200, r.content
    return {u["email"] for u in r.json()["items"]}


def test_system_admin_lists_and_manages_every_platform_user(api, world):
    sys = api(world.sysadmin)
    listed = _emails(sys)
    assert {"root@provider.test", "top@dealers.test", "south@dealers.test"} <= listed
    assert "admin@acme.test" not in listed  # tenant users are the tenant's
    r = sys.post(URL, {"email": "ops@provider.test", "role": "system_admin", "password": PASSWORD})
    assert r.status_code == 201, r.content
    ops = User.objects.get(pk=r.json()["id"])
    assert (ops.role, ops.is_staff, ops.dealer_id) == ("system_admin", True, None)
    r = sys.post(
        URL,
        {
            "email": "sales@south.test",
            "role": "dealer_admin",
            "dealer_id": world.south.pk,
            "password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.content
    sales = r.json()["id"]
    r = sys.patch(f"{URL}{sales}/", {"full_name": "Sam Sales", "is_active": False})
    assert r.status_code == 200
    assert r.json()["is_active"] is False
    assert sys.patch(f"{URL}{sales}/", {"password": "weak"}).json()["code"] == "WEAK_PASSWORD"
    assert sys.delete(f"{URL}{sales}/").status_code == 204
    assert not User.objects.filter(pk=sales).exists()
    actions = set(
        AuditEntry.objects.filter(
            object_type="user", object_id__in=[str(ops.pk), str(sales)]
        ).values_list("action", flat=True)
    )
    assert {"user.create", "user.update", "user.delete"} <= actions
    r = sys.post(URL, {"email": "x@provider.test", "role": "dealer_admin", "password": PASSWORD})
    assert r.status_code == 400
    assert "dealer_id" in r.json()["fields"]
    assert sys.delete(f"{URL}{world.sysadmin.pk}/").status_code == 409  # not oneself


def test_dealer_admin_manages_only_its_subtrees_dealer_admins(api, world):
    top = api(world.top_admin)
    listed = _emails(top)
    assert {"top@dealers.test", "north@dealers.test"} <= listed
    assert not listed & {"root@provider.test", "south@dealers.test"}
    r = top.post(
        URL,
        {
            "email": "helper@north.test",
            "role": "dealer_admin",
            "dealer_id": world.north.pk,
            "password": PASSWORD,
        },
    )
    assert r.status_code == 201, r.content
    assert User.objects.get(pk=r.json()["id"]).dealer_id == world.north.pk
    # No system admins, no dealer outside its subtree, nobody else's user.
    r = top.post(URL, {"email": "boss@provider.test", "role": "system_admin", "password": PASSWORD})
    assert r.status_code == 400
    assert not User.objects.filter(email="boss@provider.test").exists()
    r = top.post(
        URL,
        {
            "email": "spy@south.test",
            "role": "dealer_admin",
            "dealer_id": world.south.pk,
            "password": PASSWORD,
        },
    )
    assert r.status_code == 400
    assert not User.objects.filter(email="spy@south.test").exists()
    for other in (world.south_admin, world.sysadmin, world.a_admin):
        assert top.get(f"{URL}{other.pk}/").status_code == 404
        assert top.patch(f"{URL}{other.pk}/", {"full_name": "Hacked"}).status_code == 404
        assert top.delete(f"{URL}{other.pk}/").status_code == 404
        assert User.objects.get(pk=other.pk).full_name != "Hacked"
    # North's admin sees North's admins only, not its parent's.
    assert "top@dealers.test" not in _emails(api(world.north_admin))
    # Tenant users and the tenant hosts get nothing.
    assert api(world.a_admin, world.tenant_a).get(URL).status_code == 404
    assert api(world.sysadmin, world.tenant_a).get(URL).status_code == 404


def test_platform_user_without_password_is_invited(
    api, world, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(app.conf, "task_always_eager", True)
    with django_capture_on_commit_callbacks(execute=True):
        r = api(world.top_admin).post(URL, {"email": "new@top.test", "role": "dealer_admin"})
    assert r.status_code == 201, r.content
    assert not User.objects.get(email="new@top.test").has_usable_password()
    [message] = mail.outbox
    assert message.to == ["new@top.test"]
    assert "//localhost/portal/welcome/" in message.body  # the provider's host
    import re

    from tests.portal.conftest import Portal

    path = re.search(r"//localhost(/portal/welcome/\S+/)", message.body).group(1)
    assert Portal("acme.test").get(path).status_code == 404  # not on a tenant's host
    browser = Portal("localhost")
    good = "Dealer-Start-Pass-9"
    assert browser.post(path, {"new_password": good, "confirm_password": good}).status_code == 302
    assert browser.get("/portal/tenants/").status_code == 200
