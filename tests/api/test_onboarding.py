"""Onboarding: creating a tenant (API or portal) can create its first admin, who gets a branded
e-mail with a link to choose a password on the tenant's host. The link works once, expires, and
only on that host; the password follows the tenant's policy, shown on the page."""

import re

import pytest
from django.core import mail

from branding.effective import brand_for_tenant
from branding.mail import sender_for
from pbx.celery import app
from pbx.models import AuditEntry
from tenants.models import Tenant, User
from tests.conftest import Api
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db

LINK = re.compile(r"(https?)://([^/\s]+)(/portal/welcome/[^\s]+/)")


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(app.conf, "task_always_eager", True)


def _create(client, slug, admin, django_capture_on_commit_callbacks, **extra):
    body = {"name": slug.title(), "slug": slug, "sip_domain": f"{slug}.test", **extra}
    with django_capture_on_commit_callbacks(execute=True):
        return client.post("/api/v1/tenants/", {**body, "admin": admin})


def test_tenant_created_with_its_first_admin_who_is_invited(
    api, world, eager, django_capture_on_commit_callbacks
):
    r = _create(
        api(world.north_admin),
        "newco",
        {"email": "Boss@NewCo.test", "full_name": "Bea Boss"},
        django_capture_on_commit_callbacks,
        web_host="pbx.newco.test",
        max_extensions=5,
    )
    assert r.status_code == 201, r.content
    assert "admin" not in r.json()
    tenant = Tenant.objects.get(slug="newco")
    boss = User.objects.get(tenant=tenant)
    assert (boss.email, boss.role, boss.full_name) == (
        "boss@newco.test",
        "tenant_admin",
        "Bea Boss",
    )
    assert not boss.has_usable_password()
    assert AuditEntry.objects.filter(action="user.invite", object_id=str(boss.pk)).exists()
    [message] = mail.outbox
    assert message.to == ["boss@newco.test"]
    assert message.from_email == sender_for(tenant=tenant)  # in the tenant's brand
    assert brand_for_tenant(tenant).product_name in message.subject
    scheme, host, path = LINK.search(message.body).groups()
    assert (scheme, host) == ("http", "pbx.newco.test")  # the tenant's host, the caller's scheme

    # The link is for the tenant's host only.
    assert Portal("localhost").get(path).status_code == 404
    assert Portal("acme.test").get(path).status_code == 404
    browser = Portal("pbx.newco.test")
    page = browser.get(path)
    assert page.status_code == 200
    assert "At least 10 characters" in page.content.decode()  # the rules, before any attempt
    weak = browser.post(path, {"new_password": "short", "confirm_password": "short"})
    assert weak.status_code == 200
    assert weak.context["form"].errors["new_password"]
    good = "Brand-New-Start-42"
    done = browser.post(path, {"new_password": good, "confirm_password": good})
    assert done.status_code == 302
    assert browser.get("/portal/users/").status_code == 200  # signed in, as the tenant admin
    # Used once: the link is dead now; the password works for the API too.
    assert Portal("pbx.newco.test").get(path).status_code == 404
    signin = Api("pbx.newco.test").post(
        "/api/v1/auth/signin/", {"email": "boss@newco.test", "password": good}
    )
    assert signin.status_code == 200


def test_invite_links_expire(api, world, eager, settings, django_capture_on_commit_callbacks):
    r = _create(
        api(world.sysadmin),
        "lateco",
        {"email": "boss@lateco.test"},
        django_capture_on_commit_callbacks,
    )
    assert r.status_code == 201, r.content
    path = LINK.search(mail.outbox[0].body).group(3)
    settings.PASSWORD_RESET_TIMEOUT = -1  # every link is older than that
    assert Portal("lateco.test").get(path).status_code == 404


def test_bad_admin_is_refused_and_nothing_is_created(api, world, eager):
    r = api(world.sysadmin).post(
        "/api/v1/tenants/",
        {"name": "X", "slug": "xco", "sip_domain": "xco.test", "admin": {"email": "not-mail"}},
    )
    assert r.status_code == 400
    assert "admin" in r.json()["fields"]
    assert not Tenant.objects.filter(slug="xco").exists()
    assert mail.outbox == []


def test_portal_creates_tenant_with_invited_admin(world, eager, django_capture_on_commit_callbacks):
    from tenants.admin import TENANT_EDITABLE

    probe = Tenant()
    form = {n: getattr(probe, n) for n in TENANT_EDITABLE}
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    form.update(
        name="Portal Co",
        slug="portalco",
        sip_domain="portalco.test",
        dealer="",
        admin_email="admin@portalco.test",
        admin_name="Pat",
    )
    with django_capture_on_commit_callbacks(execute=True):
        r = Portal("localhost", world.sysadmin).post("/portal/tenants/add/", form)
    assert r.status_code == 302, r.context["form"].errors if r.context else r
    user = User.objects.get(email="admin@portalco.test")
    assert user.tenant.slug == "portalco"
    assert user.role == "tenant_admin"
    [message] = mail.outbox
    assert "//portalco.test/portal/welcome/" in message.body


def test_invite_link_without_a_request_uses_the_settings(world, settings):
    from tenants.invites import invite_url

    settings.PBX_PORTAL_URL_SCHEME = ""
    settings.PBX_HTTP_PORT = 8000
    settings.PBX_HTTPS = False
    assert invite_url(world.a_user).startswith("http://acme.test:8000/portal/welcome/")
    # make run's default: the web server's own HTTPS listener.
    settings.PBX_HTTPS, settings.PBX_HTTPS_PORT = True, 8443
    assert invite_url(world.a_user).startswith("https://acme.test:8443/portal/welcome/")
    settings.PBX_PORTAL_URL_SCHEME = "https"
    assert invite_url(world.a_user).startswith("https://acme.test/portal/welcome/")
    settings.PBX_PORTAL_URL_PORT = "8443"
    assert invite_url(world.sysadmin).startswith("https://localhost:8443/portal/welcome/")


def test_tenant_admin_invites_a_user_without_a_password(
    api, world, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        r = api(world.a_admin, world.tenant_a).post(
            "/api/v1/users/", {"email": "newbie@acme.test", "full_name": "Nia"}
        )
    assert r.status_code == 201, r.content
    assert not User.objects.get(email="newbie@acme.test").has_usable_password()
    [message] = mail.outbox
    assert message.to == ["newbie@acme.test"]
    assert "//acme.test/portal/welcome/" in message.body
