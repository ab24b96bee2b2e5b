"""A tenant admin's "TLS certificates" page.

User story: Acme's admin opens TLS certificates, uploads the certificate of acme.test (chain
pasted, key as a file), sees which host it serves, its issuer, fingerprint and "in N days";
a certificate close to its end says "expires in N days"; a chain missing its intermediate is
refused with a field error and nothing is stored; the admin deletes it. Another tenant's admin
can neither see nor delete it, and a user without the settings permission cannot open the page.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from pbx.audit import SYSTEM
from tenants import actions
from tenants.models import TenantCertificate
from tests.certkit import DAY, NOW, pem
from tests.portal.pages import field_errors

pytestmark = pytest.mark.django_db

PAGE = "/portal/security/certificates/"


def test_admin_uploads_sees_and_deletes_a_certificate(
    portal, world, pki, django_capture_on_commit_callbacks
):
    admin = portal(world.a_admin, world.tenant_a)
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert "the platform's serves your host names" in page.content.decode()

    leaf = pki.leaf("acme.test")
    key_file = SimpleUploadedFile("acme.key", leaf.key_pem.encode())
    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post(PAGE, {"chain": leaf.chain_pem, "key_file": key_file}, follow=True)
    assert r.status_code == 200
    html = r.content.decode()
    assert "The certificate is uploaded and served now." in html
    cert = TenantCertificate.objects.get(tenant=world.tenant_a)
    assert f'data-testid="certificate-{cert.pk}"' in html
    assert leaf.fingerprint in html
    assert "<code>acme.test</code>" in html
    assert "CN=Test Intermediate CA" in html
    assert "in 89 days" in html or "in 88 days" in html
    assert "PRIVATE KEY" not in html

    with django_capture_on_commit_callbacks(execute=True):
        r = admin.post(f"{PAGE}{cert.pk}/delete/", follow=True)
    assert "The certificate is deleted" in r.content.decode()
    assert not TenantCertificate.objects.filter(pk=cert.pk).exists()


def test_a_certificate_near_its_end_warns_on_its_page_and_the_dashboard(portal, world, pki):
    admin = portal(world.a_admin, world.tenant_a)
    later = pki.leaf("acme.test", end=NOW + 40 * DAY)
    actions.do_upload_certificate(
        world.tenant_a, chain=later.chain_pem, key=later.key_pem, actor=SYSTEM
    )
    dashboard = admin.get("/portal/dashboard/").content.decode()
    assert 'data-testid="certificate-expiry"' not in dashboard
    leaf = pki.leaf("acme.test", end=NOW + 12 * DAY + DAY / 2)
    actions.do_upload_certificate(
        world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
    )
    html = admin.get(PAGE).content.decode()
    assert 'class="badge badge--pending" data-testid="expiry">expires in 12 days' in html
    html = admin.get("/portal/dashboard/").content.decode()
    assert "The TLS certificate of acme.test expires in 12 days" in html


def test_a_bad_upload_is_a_field_error_and_stores_nothing(portal, world, pki):
    admin = portal(world.a_admin, world.tenant_a)
    leaf = pki.leaf("acme.test")
    r = admin.post(PAGE, {"chain": pem(leaf.cert), "key": leaf.key_pem})
    assert r.status_code == 200
    (error,) = field_errors(r.content.decode(), "chain")
    assert "an intermediate certificate is missing" in error
    # The refused page never holds the private key (caches, back/forward), the chain may stay.
    key_body = leaf.key_pem.splitlines()[1]
    assert key_body not in r.content.decode()
    assert r["Cache-Control"] == "no-store"
    r = admin.post(PAGE, {"chain": "not a certificate", "key": "nor a key"})
    assert field_errors(r.content.decode(), "chain")
    assert not TenantCertificate.objects.exists()


def test_out_of_reach_of_other_tenants_and_plain_users(portal, world, pki):
    leaf = pki.leaf("acme.test")
    cert = actions.do_upload_certificate(
        world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
    )
    beta = portal(world.b_admin, world.tenant_b)
    assert leaf.fingerprint not in beta.get(PAGE).content.decode()
    assert beta.post(f"{PAGE}{cert.pk}/delete/").status_code == 404
    assert portal(world.a_user, world.tenant_a).get(PAGE).status_code == 404
    assert portal(world.a_user, world.tenant_a).post(f"{PAGE}{cert.pk}/delete/").status_code == 404
    assert TenantCertificate.objects.filter(pk=cert.pk).exists()
