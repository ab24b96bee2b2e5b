"""Tenants' TLS certificates in the system admin's Django admin: uploaded for any tenant
through ``tenants.actions`` (checked and audited), shown read-only without the key, deleted;
a bad upload is a form error and stores nothing."""

import pytest

from pbx.models import AuditEntry
from tenants.models import TenantCertificate
from tests.certkit import TestPki, pem, trust

pytestmark = pytest.mark.django_db

CERTS = "/admin/tenants/tenantcertificate/"


def test_the_system_admin_uploads_and_deletes_a_tenants_certificate(
    portal, world, settings, tmp_path
):
    pki = TestPki()
    trust(settings, tmp_path, pki)
    admin = portal(world.sysadmin)
    assert admin.get(f"{CERTS}add/").status_code == 200
    leaf = pki.leaf("beta.test")

    bad = admin.post(
        f"{CERTS}add/",
        {"tenant": world.tenant_b.pk, "chain": pem(leaf.cert), "key": leaf.key_pem},
    )
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert "intermediate certificate is missing" in errors["chain"][0]
    assert not TenantCertificate.objects.exists()

    data = {"tenant": world.tenant_b.pk, "chain": leaf.chain_pem, "key": leaf.key_pem}
    r = admin.post(f"{CERTS}add/", data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    cert = TenantCertificate.objects.get(tenant=world.tenant_b)
    entry = AuditEntry.objects.get(action="certificate.upload", object_id=str(cert.pk))
    assert entry.actor_id == world.sysadmin.pk
    assert entry.changes["hosts"] == ["beta.test"]

    page = admin.get(f"{CERTS}{cert.pk}/change/").content.decode()
    assert leaf.fingerprint in page
    assert "PRIVATE KEY" not in page
    assert "beta.test" in admin.get(CERTS).content.decode()

    r = admin.post(f"{CERTS}{cert.pk}/delete/", {"post": "yes"})
    assert r.status_code == 302
    assert not TenantCertificate.objects.exists()
    assert AuditEntry.objects.filter(action="certificate.delete", object_id=str(cert.pk)).exists()


def test_tenant_admins_do_not_reach_it(portal, world):
    assert portal(world.a_admin, world.tenant_a).get(CERTS).status_code in (302, 404)
