"""A tenant's identifier and host names follow one set of rules (tenants.validators), applied by
the tenant actions: the API, the portal and the admin each refuse a bad SIP domain, web host or
identifier with a field error, and a bad value stored earlier can still be corrected."""

import pytest

from pbx.audit import SYSTEM
from tenants.actions import do_create_tenant
from tenants.models import Domain, Tenant
from tenants.validators import hostname_problems, identifier_problems
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db

BAD = [
    ("sip_domain", "acme corp.test"),  # a space
    ("sip_domain", "acme_corp.test"),  # an underscore
    ("sip_domain", "-acme.test"),  # a hyphen at the start of a label
    ("sip_domain", "acme.test:5060"),  # a port
    ("sip_domain", "10.0.0.5"),  # an address
    ("web_host", "pbx..acme.test"),  # an empty label
    ("web_host", "x" * 64 + ".test"),  # a label over 63 characters
    ("slug", "acme-corp"),  # a hyphen, against the field's own hint
    ("slug", "9lives"),
    ("slug", "deleted7"),  # the tombstones' names
]


def _body(field, value):
    body = {"name": "Named", "slug": "named", "sip_domain": "named.test", "web_host": "named.test"}
    return {**body, field: value}


def _admin_form(**values):
    from tenants.admin import TENANT_EDITABLE

    probe = Tenant()
    form = {n: getattr(probe, n) for n in TENANT_EDITABLE}
    form = {k: ("on" if v is True else v) for k, v in form.items() if v is not False}
    return {**form, "domains-TOTAL_FORMS": 0, "domains-INITIAL_FORMS": 0, **values}


@pytest.mark.parametrize(("field", "value"), BAD)
def test_api_refuses_bad_names_with_a_field_error(api, world, field, value):
    r = api(world.sysadmin).post("/api/v1/tenants/", _body(field, value))
    assert r.status_code == 400, r.content
    assert r.json()["code"] == "VALIDATION_ERROR"
    assert list(r.json()["fields"]) == [field]
    assert not Tenant.objects.filter(name="Named").exists()


def test_portal_and_admin_refuse_bad_names_with_field_errors(world):
    portal = Portal("localhost", world.sysadmin)
    for field, value in BAD[::3]:
        r = portal.post("/portal/tenants/add/", {**_admin_form(), **_body(field, value)})
        assert r.status_code == 200
        assert r.context["form"].errors.get(field), (field, r.context["form"].errors)
        r = portal.post("/admin/tenants/tenant/add/", _admin_form(**_body(field, value)))
        assert r.status_code == 200, (field, value)
        assert r.context["adminform"].form.errors.get(field), (field, value)
    assert not Tenant.objects.filter(name="Named").exists()


def test_names_are_normalised_the_same_everywhere(api, world):
    r = api(world.sysadmin).post(
        "/api/v1/tenants/",
        {"name": "Umlaut", "slug": "Umlaut", "sip_domain": " Bücher.Test. "},
    )
    assert r.status_code == 201, r.content
    assert (r.json()["slug"], r.json()["sip_domain"]) == ("umlaut", "xn--bcher-kva.test")
    assert r.json()["web_host"] == "xn--bcher-kva.test"


def _broken_tenant():
    """A tenant stored before the rules existed: a SIP domain and web host with a space."""
    tenant = do_create_tenant(name="Old", slug="oldco", sip_domain="oldco.test", actor=SYSTEM)
    Tenant.objects.filter(pk=tenant.pk).update(sip_domain="old co.test")
    Domain.objects.filter(tenant=tenant).update(domain="old co.test")
    assert hostname_problems("old co.test")
    assert not identifier_problems("oldco")
    return Tenant.objects.get(pk=tenant.pk)


def test_stored_bad_names_can_be_edited_and_corrected_in_portal(world):
    tenant = _broken_tenant()
    portal = Portal("localhost", world.sysadmin)
    page = portal.get(f"/portal/tenants/{tenant.pk}/")
    assert page.status_code == 200
    form = {k: v for k, v in page.context["form"].initial.items() if v not in (None, False)}
    # Another setting can be saved without touching the broken host names...
    r = portal.post(f"/portal/tenants/{tenant.pk}/", {**form, "name": "Old Co"})
    assert r.status_code == 302, r.context["form"].errors if r.context else r
    assert Tenant.objects.get(pk=tenant.pk).name == "Old Co"
    # ... "Manage" does not send the admin to a broken URL ...
    r = portal.post(f"/portal/tenants/{tenant.pk}/manage/")
    assert r.status_code == 302
    assert r["Location"] == f"/portal/tenants/{tenant.pk}/"
    # ... a correction is judged by the rules, then saved.
    r = portal.post(f"/portal/tenants/{tenant.pk}/", {**form, "sip_domain": "old_co.test"})
    assert r.status_code == 200
    assert r.context["form"].errors["sip_domain"]
    fixed = {**form, "name": "Old Co", "sip_domain": "oldco.test", "web_host": "pbx.oldco.test"}
    r = portal.post(f"/portal/tenants/{tenant.pk}/", fixed)
    assert r.status_code == 302
    tenant.refresh_from_db()
    assert tenant.sip_domain == "oldco.test"
    assert tenant.domains.get(is_primary=True).domain == "pbx.oldco.test"


def test_stored_bad_names_can_be_edited_and_corrected_in_api_and_admin(api, world):
    tenant = _broken_tenant()
    sys = api(world.sysadmin)
    r = sys.patch(f"/api/v1/tenants/{tenant.pk}/", {"time_zone": "Europe/Berlin"})
    assert r.status_code == 200, r.content
    r = sys.patch(f"/api/v1/tenants/{tenant.pk}/", {"web_host": "old co.test"})
    assert r.status_code == 400
    assert list(r.json()["fields"]) == ["web_host"]
    r = sys.patch(f"/api/v1/tenants/{tenant.pk}/", {"sip_domain": "acme.test"})
    assert r.status_code == 409
    assert list(r.json()["fields"]) == ["sip_domain"]
    r = sys.patch(f"/api/v1/tenants/{tenant.pk}/", {"web_host": "oldco.test"})
    assert r.status_code == 200
    assert r.json()["web_host"] == "oldco.test"
    portal = Portal("localhost", world.sysadmin)
    url = f"/admin/tenants/tenant/{tenant.pk}/change/"
    assert portal.get(url).status_code == 200
    form = _admin_form(name="Old", sip_domain="old co.test", web_host="oldco.test")
    r = portal.post(url, {**form, "sip_domain": "old co.test", "name": "Renamed"})
    assert r.status_code == 302, r.context["adminform"].form.errors
    assert Tenant.objects.get(pk=tenant.pk).name == "Renamed"
    r = portal.post(url, {**form, "sip_domain": "old_co.test"})
    assert r.status_code == 200
    assert r.context["adminform"].form.errors["sip_domain"]
    r = portal.post(url, {**form, "sip_domain": "oldco.test"})
    assert r.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).sip_domain == "oldco.test"
