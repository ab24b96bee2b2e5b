"""The portal by role and by host: who sees which pages, and that writes go through the actions
(their errors come back as form field errors; a refused write changes nothing)."""

import re
import time

import pytest
from django.core import signing
from django_tenants.utils import tenant_context

from pbx.models import AuditEntry
from pbx.portal import switch
from telephony.models import Extension
from tenants.choices import Permission, Role, TenantStatus
from tenants.models import Tenant, TenantRole, User

PASSWORD = "Correct-Horse-42x"  # tests/conftest.py gives every fixture user this password


def _ext_numbers(tenant) -> set[str]:
    with tenant_context(tenant):
        return set(Extension.objects.values_list("number", flat=True))


# --- sign-in is scoped to the host ------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(portal, world):
    for p in (portal(), portal(tenant=world.tenant_a)):
        r = p.get("/portal/extensions/" if p.host != "localhost" else "/portal/tenants/")
        assert r.status_code == 302
        assert r["Location"].startswith("/accounts/login/")


def test_sign_in_form_uses_our_layout_and_allauths_fields(portal, world):
    r = portal(tenant=world.tenant_a).get("/accounts/login/")
    html = r.content.decode()
    assert r.status_code == 200
    assert 'name="login"' in html
    assert 'name="password"' in html
    assert "portal/portal.css" in html
    assert "Acme" in html
    # Every stylesheet and script comes from this server (no CDN); the CSRF token's random
    # letters may spell "cdn", so look at the addresses, not the whole page.
    assets = re.findall(r'<(?:script|link)[^>]*(?:src|href)="([^"]+)"', html)
    assert assets
    assert all(a.startswith("/") and not a.startswith("//") for a in assets), assets


def test_tenant_admin_signs_in_on_own_host_only(portal, world):
    creds = {"login": world.a_admin.email, "password": PASSWORD}
    r = portal(tenant=world.tenant_a).post("/accounts/login/", creds)
    assert r.status_code == 302
    assert r["Location"] == "/portal/"
    r = portal(tenant=world.tenant_b).post("/accounts/login/", creds)
    assert r.status_code == 200
    assert "not correct" in r.content.decode() or "errors" in r.content.decode()


@pytest.mark.parametrize("who", ["sysadmin", "north_admin"])
def test_platform_admin_password_does_not_work_on_a_tenant_host(portal, world, who):
    """Only the one-time Manage link signs a provider-side admin in on a tenant's host."""
    user = getattr(world, who)
    p = portal(tenant=world.tenant_a)
    r = p.post("/accounts/login/", {"login": user.email, "password": PASSWORD})
    assert r.status_code == 200  # the form again, with an error
    assert p.get("/portal/extensions/").status_code == 302


def test_platform_admin_session_without_the_link_is_dropped_on_a_tenant_host(portal, world):
    p = portal(world.sysadmin, world.tenant_a)  # a session, but not bound by the Manage link
    r = p.get("/portal/extensions/")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


def test_other_tenants_admin_session_is_dropped(portal, world):
    r = portal(world.b_admin, world.tenant_a).get("/portal/extensions/")
    assert r.status_code == 302
    assert r["Location"].startswith("/accounts/login/")


# --- the provider's host: tenants ---------------------------------------------------------------


def test_tenant_list_by_role(portal, world):
    html = portal(world.sysadmin).get("/portal/tenants/").content.decode()
    assert "tenant-acme" in html
    assert "tenant-beta" in html
    assert ">Tenants<" in html
    assert ">Dealers<" in html
    html = portal(world.north_admin).get("/portal/tenants/").content.decode()
    assert "tenant-acme" in html
    assert "tenant-beta" not in html
    html = portal(world.top_admin).get("/portal/tenants/").content.decode()
    assert "tenant-acme" in html
    assert "tenant-beta" not in html
    html = portal(world.south_admin).get("/portal/tenants/").content.decode()
    assert "tenant-beta" in html
    assert "tenant-acme" not in html


def test_tenant_list_search_sort_and_pages(portal, world):
    p = portal(world.sysadmin)
    html = p.get("/portal/tenants/", {"q": "acm"}).content.decode()
    assert "tenant-acme" in html
    assert "tenant-beta" not in html
    html = p.get("/portal/tenants/", {"sort": "-name"}).content.decode()
    assert html.index("tenant-beta") < html.index("tenant-acme")
    html = p.get("/portal/tenants/", {"sort": "name"}).content.decode()
    assert html.index("tenant-acme") < html.index("tenant-beta")
    assert p.get("/portal/tenants/", {"page": "999", "sort": "bogus"}).status_code == 200


def test_another_dealers_tenant_is_404(portal, world):
    p = portal(world.north_admin)
    assert p.get(f"/portal/tenants/{world.tenant_b.pk}/").status_code == 404
    assert p.post(f"/portal/tenants/{world.tenant_b.pk}/status/").status_code == 404
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == TenantStatus.ACTIVE


def test_tenant_pages_are_not_served_on_tenant_hosts(portal, world):
    assert portal(world.a_admin, world.tenant_a).get("/portal/tenants/").status_code == 404
    assert portal(world.a_admin, world.tenant_a).get("/portal/dealers/").status_code == 404


def _tenant_form(**overrides):
    data = {
        "name": "Gamma",
        "slug": "gamma",
        "sip_domain": "gamma.test",
        "web_host": "",
        "dealer": "",
        "time_zone": "UTC",
        "language": "en",
        "currency": "USD",
        "ext_min_length": 3,
        "ext_max_length": 6,
        "pw_min_length": 10,
        "pw_require_upper": "on",
        "pw_require_lower": "on",
        "pw_require_digit": "on",
        "sip_pw_min_length": 12,
        "srtp": "off",
        "max_extensions": 10,
        "max_concurrent_calls": 5,
        "max_ring_groups": 1,
        "max_queues": 1,
        "max_ivrs": 1,
        "max_conference_rooms": 1,
        "billing_mode": "none",
    }
    data.update(overrides)
    return data


def test_add_tenant_and_clash_shows_field_errors(portal, world):
    p = portal(world.sysadmin)
    r = p.post("/portal/tenants/add/", _tenant_form())
    assert r.status_code == 302, r.content.decode()
    gamma = Tenant.objects.get(slug="gamma")
    assert gamma.domains.get().domain == "gamma.test"
    r = p.post("/portal/tenants/add/", _tenant_form(name="Other", sip_domain="acme.test"))
    assert r.status_code == 200
    html = r.content.decode()
    assert 'data-field="slug"' in html
    assert 'data-field="sip_domain"' in html
    assert Tenant.objects.filter(name="Other").count() == 0


def test_dealer_admin_adds_tenant_within_own_capabilities(portal, world):
    p = portal(world.north_admin)
    form = _tenant_form(slug="northco", sip_domain="northco.test", dealer=world.north.pk)
    form["max_extensions"] = world.north.max_extensions + 1
    r = p.post("/portal/tenants/add/", form)
    assert r.status_code == 200
    assert 'data-field="max_extensions"' in r.content.decode()
    assert not Tenant.objects.filter(slug="northco").exists()
    # A dealer admin cannot place a tenant under another dealer: the choice is not offered.
    form.update(max_extensions=5, dealer=world.south.pk)
    r = p.post("/portal/tenants/add/", form)
    assert r.status_code == 200
    assert 'data-field="dealer"' in r.content.decode()
    form.update(dealer=world.north.pk)
    assert p.post("/portal/tenants/add/", form).status_code == 302
    assert Tenant.objects.get(slug="northco").dealer_id == world.north.pk


def test_edit_tenant_settings(portal, world):
    p = portal(world.north_admin)
    url = f"/portal/tenants/{world.tenant_a.pk}/"
    form = _tenant_form(name="Acme Ltd", max_extensions=60)
    r = p.post(url, form)
    assert r.status_code == 302, r.content.decode()
    assert Tenant.objects.get(pk=world.tenant_a.pk).name == "Acme Ltd"
    r = p.post(url, _tenant_form(name="Acme Ltd", ext_min_length=5, ext_max_length=4))
    assert 'data-field="ext_max_length"' in r.content.decode()
    assert AuditEntry.objects.filter(action="tenant.update", tenant=world.tenant_a).exists()


def test_tenant_sha256_digest_is_a_portal_setting(portal, world):
    """Off by default (baresip and others fail on SHA-256 challenges); the provider turns it
    on for one tenant in its settings page."""
    p = portal(world.sysadmin)
    url = f"/portal/tenants/{world.tenant_a.pk}/"
    assert 'name="sip_digest_sha256"' in p.get(url).content.decode()
    assert Tenant.objects.get(pk=world.tenant_a.pk).sip_digest_sha256 is False
    assert p.post(url, _tenant_form(name="Acme", sip_digest_sha256="on")).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).sip_digest_sha256 is True
    assert p.post(url, _tenant_form(name="Acme")).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).sip_digest_sha256 is False


def test_tenant_srtp_default_is_a_portal_setting(portal, world):
    """SRTP towards the tenant's TLS phones: off by default, set by the provider; a value the
    engine does not know is refused with a field error."""
    p = portal(world.sysadmin)
    url = f"/portal/tenants/{world.tenant_a.pk}/"
    assert 'name="srtp"' in p.get(url).content.decode()
    assert Tenant.objects.get(pk=world.tenant_a.pk).srtp == "off"
    assert p.post(url, _tenant_form(name="Acme", srtp="required")).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).srtp == "required"
    bad = p.post(url, _tenant_form(name="Acme", srtp="sometimes"))
    assert 'data-field="srtp"' in bad.content.decode()
    assert Tenant.objects.get(pk=world.tenant_a.pk).srtp == "required"


def test_suspend_and_resume_are_post_only(portal, world):
    p = portal(world.sysadmin)
    url = f"/portal/tenants/{world.tenant_b.pk}/status/"
    assert p.get(url).status_code == 405
    assert p.post(url).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == TenantStatus.SUSPENDED
    # The suspended tenant's admin is turned away on its host.
    r = portal(world.b_admin, world.tenant_b).get("/portal/extensions/")
    assert r.status_code == 403
    assert b"suspended" in r.content
    assert p.post(url).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == TenantStatus.ACTIVE


def test_delete_needs_the_typed_identifier(portal, world):
    p = portal(world.sysadmin)
    assert p.post("/portal/tenants/add/", _tenant_form(slug="doomed", sip_domain="doomed.test"))
    doomed = Tenant.objects.get(slug="doomed")
    url = f"/portal/tenants/{doomed.pk}/delete/"
    r = p.post(url, {"confirm": "acme"})
    assert r.status_code == 200
    assert 'data-field="confirm"' in r.content.decode()
    assert Tenant.objects.get(pk=doomed.pk).status == TenantStatus.ACTIVE
    assert p.post(url, {"confirm": "doomed"}).status_code == 302
    assert Tenant.objects.get(pk=doomed.pk).status == TenantStatus.DELETED


def test_csrf_is_enforced(portal, world):
    p = portal(world.sysadmin, enforce_csrf_checks=True)
    assert p.post(f"/portal/tenants/{world.tenant_b.pk}/status/").status_code == 403
    assert Tenant.objects.get(pk=world.tenant_b.pk).status == TenantStatus.ACTIVE


# --- Manage: the one-time link -----------------------------------------------------------------


def _manage(portal, world, user, tenant):
    r = portal(user).post(f"/portal/tenants/{tenant.pk}/manage/")
    assert r.status_code == 302, r.content
    match = re.fullmatch(r"http://([^/]+)(/portal/switch/[^/]+/)", r["Location"])
    assert match, r["Location"]
    return match.group(1), match.group(2)


@pytest.mark.parametrize("who", ["sysadmin", "top_admin", "north_admin"])
def test_manage_signs_the_admin_into_the_tenant_once(portal, world, who):
    host, path = _manage(portal, world, getattr(world, who), world.tenant_a)
    assert host == "acme.test"
    browser = portal(tenant=world.tenant_a)
    page = browser.get(path)
    assert page.status_code == 200
    assert b"data-autosubmit" in page.content
    r = browser.post(path)
    assert r.status_code == 302
    assert r["Location"] == "/portal/"
    r = browser.get("/portal/extensions/")
    assert r.status_code == 200
    assert b"extension-101" in r.content
    assert b"Switch to administrator" in r.content
    # The link is spent; another browser cannot use it.
    assert portal(tenant=world.tenant_a).post(path).status_code == 400
    # Switching back signs out on the tenant host and returns to the provider's portal.
    r = browser.post("/portal/switch-back/")
    assert r["Location"] == "http://localhost/portal/tenants/"
    assert browser.get("/portal/extensions/").status_code == 302


def test_manage_link_is_bound_to_its_tenant_and_to_the_admins_scope(portal, world):
    _, path = _manage(portal, world, world.sysadmin, world.tenant_a)
    assert portal(tenant=world.tenant_b).post(path).status_code == 400
    assert (
        portal(world.south_admin).post(f"/portal/tenants/{world.tenant_a.pk}/manage/").status_code
        == 404
    )
    assert (
        portal(world.sysadmin).get(f"/portal/tenants/{world.tenant_a.pk}/manage/").status_code
        == 405
    )


def test_manage_link_expires(portal, world):
    class Stale(signing.TimestampSigner):
        def timestamp(self):
            return signing.b62_encode(int(time.time()) - switch.MAX_AGE - 5)

    token = switch.make_token(world.sysadmin, world.tenant_a)
    claims = signing.TimestampSigner(salt=switch.SALT).unsign_object(token)
    stale = Stale(salt=switch.SALT).sign_object(claims)
    browser = portal(tenant=world.tenant_a)
    assert browser.get(f"/portal/switch/{stale}/").status_code == 400
    assert browser.post(f"/portal/switch/{stale}/").status_code == 400
    assert browser.post(f"/portal/switch/{token[:-2]}xx/").status_code == 400
    assert browser.post(f"/portal/switch/{token}/").status_code == 302


# --- the provider's host: dealers ----------------------------------------------------------------


def test_dealer_tree_by_role(portal, world):
    html = portal(world.sysadmin).get("/portal/dealers/").content.decode()
    for d in (world.top_dealer, world.north, world.south):
        assert f"dealer-{d.pk}" in html
    html = portal(world.top_admin).get("/portal/dealers/").content.decode()
    assert f"dealer-{world.north.pk}" in html
    assert f"dealer-{world.south.pk}" not in html
    assert f"/portal/dealers/{world.north.pk}/" in html  # top manages its sub-dealer
    assert f"/portal/dealers/{world.top_dealer.pk}/" not in html  # but not itself
    assert portal(world.north_admin).get(f"/portal/dealers/{world.north.pk}/").status_code == 404


def test_dealer_admin_adds_a_sub_dealer(portal, world):
    from dealers.models import Dealer

    form = {
        "name": "East",
        "parent": world.top_dealer.pk,
        "max_tenants": 5,
        "is_active": "on",
        "max_extensions": 10,
        "max_concurrent_calls": 5,
        "max_ring_groups": 1,
        "max_queues": 1,
        "max_ivrs": 1,
        "max_conference_rooms": 1,
        "billing_mode": "none",
    }
    assert portal(world.top_admin).post("/portal/dealers/add/", form).status_code == 302
    east = Dealer.objects.get(name="East")
    assert east.parent_id == world.top_dealer.pk
    r = portal(world.top_admin).post(
        "/portal/dealers/add/", {**form, "name": "Big", "max_tenants": 10**6}
    )
    assert 'data-field="max_tenants"' in r.content.decode()
    assert not Dealer.objects.filter(name="Big").exists()


# --- a tenant's host: extensions ---------------------------------------------------------------


def test_extension_list_search_and_sort(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get("/portal/extensions/").content.decode()
    assert "extension-101" in html
    assert "extension-102" in html
    assert "extension-201" not in html
    html = p.get("/portal/extensions/", {"q": "102"}).content.decode()
    assert "extension-102" in html
    assert "extension-101" not in html
    html = p.get("/portal/extensions/", {"sort": "-number"}).content.decode()
    assert html.index("extension-102") < html.index("extension-101")


def test_add_extension_shows_the_generated_password_once(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    r = p.post(
        "/portal/extensions/add/", {"number": "150", "display_name": "Desk", "enabled": "on"}
    )
    assert r.status_code == 200
    password = re.search(rb'data-testid="sip-password">([^<]+)<', r.content).group(1).decode()
    with tenant_context(world.tenant_a):
        assert Extension.objects.get(number="150").sip_password == password
    html = p.get("/portal/extensions/").content.decode()
    assert "extension-150" in html
    assert password not in html


def test_extension_errors_show_on_their_fields(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    before = _ext_numbers(world.tenant_a)
    r = p.post("/portal/extensions/add/", {"number": "12x", "display_name": "Bad"})
    assert 'data-field="number"' in r.content.decode()
    assert "digits only" in r.content.decode()
    r = p.post("/portal/extensions/add/", {"number": "101", "display_name": "Dup"})
    assert "already in use" in r.content.decode()
    r = p.post(
        "/portal/extensions/add/", {"number": "151", "display_name": "W", "sip_password": "short"}
    )
    assert 'data-field="sip_password"' in r.content.decode()
    assert _ext_numbers(world.tenant_a) == before


def test_edit_and_delete_extension(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    with tenant_context(world.tenant_a):
        ext = Extension.objects.get(number="102")
    r = p.post(f"/portal/extensions/{ext.pk}/", {"display_name": "Reception", "enabled": "on"})
    assert r.status_code == 302, r.content.decode()
    with tenant_context(world.tenant_a):
        assert Extension.objects.get(pk=ext.pk).display_name == "Reception"
    assert p.get(f"/portal/extensions/{ext.pk}/delete/").status_code == 405
    assert p.post(f"/portal/extensions/{ext.pk}/delete/").status_code == 302
    assert "102" not in _ext_numbers(world.tenant_a)


def test_another_tenants_extension_is_404(portal, world):
    with tenant_context(world.tenant_b):
        other = Extension.objects.get(number="201")
    p = portal(world.a_admin, world.tenant_a)
    # Ids are per schema: look the id up in tenant A's schema, where it is not 201.
    r = p.get(f"/portal/extensions/{other.pk + 1000}/")
    assert r.status_code == 404


# --- a tenant's host: roles, users, audit, the plain user --------------------------------------


def test_plain_user_sees_only_their_own_page(portal, world):
    p = portal(world.a_user, world.tenant_a)
    r = p.get("/portal/")
    assert r.status_code == 302
    assert r["Location"] == "/portal/me/"
    html = p.get("/portal/me/").content.decode()
    assert "My extension" in html
    assert ">Extensions<" not in html
    assert ">Users<" not in html
    for url in ("/portal/extensions/", "/portal/users/", "/portal/roles/", "/portal/audit/"):
        assert p.get(url).status_code == 404, url


def test_plain_user_with_an_extension_sees_it(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    form = {
        "number": "160",
        "display_name": "Pat",
        "email": "pat@acme.test",
        "web_password": "Secret-Desk-2024x",
        "enabled": "on",
    }
    assert p.post("/portal/extensions/add/", form).status_code == 200
    pat = User.objects.get(email="pat@acme.test", tenant=world.tenant_a)
    html = portal(pat, world.tenant_a).get("/portal/me/").content.decode()
    assert 'data-testid="my-number">160<' in html


def test_custom_role_grants_read_only_extensions(portal, world):
    from pbx.audit import SYSTEM
    from tenants import actions

    role = actions.do_create_role(
        world.tenant_a, name="Viewer", permissions=[Permission.EXTENSIONS_VIEW], actor=SYSTEM
    )
    viewer = actions.do_create_user(
        email="viewer@acme.test",
        password=PASSWORD,
        role=Role.TENANT_USER,
        tenant=world.tenant_a,
        custom_role=role,
        actor=SYSTEM,
    )
    p = portal(viewer, world.tenant_a)
    html = p.get("/portal/extensions/").content.decode()
    assert "extension-101" in html
    assert "Add extension" not in html
    assert ">Users<" not in html
    assert p.get("/portal/extensions/add/").status_code == 404
    assert (
        p.post("/portal/extensions/add/", {"number": "170", "display_name": "X"}).status_code == 404
    )
    assert p.get("/portal/users/").status_code == 404


def test_users_and_roles_pages(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    r = p.post(
        "/portal/roles/add/",
        {"name": "Helpdesk", "permissions": [Permission.USERS_VIEW, Permission.EXTENSIONS_VIEW]},
    )
    assert r.status_code == 302, r.content.decode()
    role = TenantRole.objects.get(tenant=world.tenant_a, name="Helpdesk")
    r = p.post("/portal/roles/add/", {"name": "Bad", "permissions": ["nope"]})
    assert r.status_code == 200
    assert not TenantRole.objects.filter(name="Bad").exists()
    form = {
        "email": "Help@Acme.test",
        "full_name": "Help Desk",
        "role": Role.TENANT_USER,
        "custom_role": role.pk,
        "password": "Quiet-Lamp-2024x",
    }
    assert p.post("/portal/users/add/", form).status_code == 302
    helper = User.objects.get(email="help@acme.test", tenant=world.tenant_a)
    assert helper.custom_role_id == role.pk
    r = p.post("/portal/users/add/", {**form, "password": "weak"})
    assert 'data-field="password"' in r.content.decode()
    html = portal(helper, world.tenant_a).get("/portal/users/").content.decode()
    assert "user-admin@acme.test" in html
    assert "Add user" not in html
    assert "admin@beta.test" not in html
    r = p.post("/portal/users/add/", {**form, "email": "admin@acme.test"})
    assert 'data-field="email"' in r.content.decode()
    assert p.post(f"/portal/users/{helper.pk}/delete/").status_code == 302
    assert not User.objects.filter(pk=helper.pk).exists()
    assert p.post(f"/portal/users/{world.b_admin.pk}/delete/").status_code == 404


def test_audit_log_shows_this_tenants_entries_only(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    p.post("/portal/extensions/add/", {"number": "180", "display_name": "Audit me"})
    html = p.get("/portal/audit/", {"q": "extension.create"}).content.decode()
    assert "180 Audit me" in html
    assert "Beta 201" not in html
