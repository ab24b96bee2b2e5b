"""White label: brands of the platform and of dealers, inherited down a three-level dealer
tree, kept apart between dealers, and shown on the sign-in page, in e-mails and in the SIP
snapshot's product name."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from branding.actions import do_create_brand
from branding.effective import brand_for_dealer, brand_for_tenant
from branding.mail import send_mail
from dealers.actions import do_create_dealer
from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from tests.branding.images import png

PNG = png(32, 32)


@pytest.fixture
def tree(world):
    """Platform -> Top (level 1) -> North (level 2, tenant Acme) -> Northeast (level 3)."""
    northeast = do_create_dealer(name="Northeast", parent=world.north, actor=SYSTEM)
    do_create_brand(
        dealer=None,
        actor=SYSTEM,
        product_name="Cloud PBX",
        company_name="Provider Ltd",
        primary_color="#112233",
        support_email="help@provider.test",
        email_from_address="noreply@provider.test",
    )
    return northeast


def test_inheritance_through_three_levels(world, tree):
    """Each level shows the nearest brand above it; blank fields come from further up."""
    northeast = tree
    assert brand_for_tenant(world.tenant_a).product_name == "Cloud PBX"
    assert brand_for_dealer(northeast).product_name == "Cloud PBX"

    do_create_brand(dealer=world.top_dealer, actor=SYSTEM, product_name="TopVoice")
    assert brand_for_tenant(world.tenant_a).product_name == "TopVoice"  # via North -> Top
    assert brand_for_dealer(northeast).product_name == "TopVoice"
    assert brand_for_tenant(world.tenant_b).product_name == "Cloud PBX"  # South: no brand

    do_create_brand(
        dealer=world.north, actor=SYSTEM, product_name="North Phones", accent_color="#aa0000"
    )
    acme = brand_for_tenant(world.tenant_a)
    assert (acme.product_name, acme.accent_color) == ("North Phones", "#aa0000")
    assert acme.primary_color == "#112233"  # not set by North or Top: the platform's
    assert acme.support_email == "help@provider.test"
    assert brand_for_dealer(northeast).product_name == "North Phones"

    do_create_brand(dealer=northeast, actor=SYSTEM, product_name="NE Talk")
    assert brand_for_dealer(northeast).product_name == "NE Talk"
    assert brand_for_tenant(world.tenant_a).product_name == "North Phones"  # not from below


def test_host_brand_is_public_and_follows_changes(world, api, tree):
    """The sign-in page of Acme's host shows North's brand (before anyone signs in), and a
    change made by North's admin shows at once (the cache is invalidated)."""
    north = api(world.north_admin).post(
        "/api/v1/brands/", {"product_name": "North Phones", "primary_color": "#003366"}
    )
    assert north.status_code == 201, north.json()
    assert north.json()["dealer_id"] == world.north.pk

    anonymous = api(None, world.tenant_a)
    body = anonymous.get("/api/v1/brand/").json()
    assert (body["name"], body["product_name"], body["primary_color"]) == (
        "North Phones",
        "North Phones",
        "#003366",
    )
    assert "email_from_address" not in body
    assert api(None, world.tenant_b).get("/api/v1/brand/").json()["name"] == "Cloud PBX"
    assert api(None).get("/api/v1/brand/").json()["name"] == "Cloud PBX"

    changed = api(world.north_admin).patch(
        f"/api/v1/brands/{north.json()['id']}/", {"product_name": "North Voice"}
    )
    assert changed.status_code == 200
    assert anonymous.get("/api/v1/brand/").json()["name"] == "North Voice"
    assert AuditEntry.objects.filter(action="brand.update", dealer=world.north).exists()

    # The portal's pages get it through the context processor (old key kept too).
    page = anonymous.client.get("/accounts/login/")
    assert page.context["brand"]["name"] == "North Voice"
    assert page.context["product_name"] == "North Voice"

    assert api(world.north_admin).delete(f"/api/v1/brands/{north.json()['id']}/").status_code == (
        204
    )
    assert anonymous.get("/api/v1/brand/").json()["name"] == "Cloud PBX"


def test_a_dealer_cannot_see_or_edit_another_dealers_brand(world, api, tree):
    south = do_create_brand(dealer=world.south, actor=SYSTEM, product_name="South Tel")
    north = do_create_brand(dealer=world.north, actor=SYSTEM, product_name="North Phones")
    as_south = api(world.south_admin)
    assert as_south.patch(
        f"/api/v1/brands/{north.pk}/", {"product_name": "Hacked"}
    ).status_code == (404)
    assert as_south.delete(f"/api/v1/brands/{north.pk}/").status_code == 404
    assert as_south.get(f"/api/v1/brands/{north.pk}/").status_code == 404
    assert [b["id"] for b in as_south.get("/api/v1/brands/").json()["items"]] == [south.pk]
    # Not for another dealer, nor for the platform.
    assert as_south.post(
        "/api/v1/brands/", {"product_name": "X", "dealer_id": world.north.pk}
    ).status_code == (404)
    # A parent dealer does not manage its sub-dealer's brand either.
    assert api(world.top_admin).get(f"/api/v1/brands/{north.pk}/").status_code == 404
    # Nothing changed.
    north.refresh_from_db()
    assert north.product_name == "North Phones"
    # One brand per owner.
    again = api(world.north_admin).post("/api/v1/brands/", {"product_name": "Second"})
    assert again.status_code == 409
    # The system admin manages them all.
    assert api(world.sysadmin).get("/api/v1/brands/").json()["total"] == 3
    # Tenant admins are not platform admins: on a tenant's host the endpoint does not exist.
    assert api(world.a_admin, world.tenant_a).get("/api/v1/brands/").status_code == 404


def test_logo_upload_is_served_on_the_host(world, api, tree):
    created = api(world.north_admin).client.post(
        "/api/v1/brands/",
        {"product_name": "North Phones", "logo": SimpleUploadedFile("logo.png", PNG)},
        format="multipart",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["has_logo_upload"] is True
    logo_url = api(None, world.tenant_a).get("/api/v1/brand/").json()["logo_url"]
    assert logo_url.startswith("/api/v1/brand/logo/?v=")
    image = api(None, world.tenant_a).client.get(logo_url)
    assert image.status_code == 200
    assert image["Content-Type"] == "image/png"
    assert image["X-Content-Type-Options"] == "nosniff"
    assert b"".join(image.streaming_content) == PNG
    # Beta's host has no uploaded logo.
    assert api(None, world.tenant_b).client.get("/api/v1/brand/logo/").status_code == 404


def test_uploads_must_be_raster_images(world, api, tree):
    svg = SimpleUploadedFile("x.svg", b"<svg onload='alert(1)'/>", content_type="image/svg+xml")
    response = api(world.north_admin).client.post(
        "/api/v1/brands/", {"product_name": "N", "logo": svg}, format="multipart"
    )
    assert response.status_code == 400
    assert "logo" in response.json()["fields"]


def test_bad_colours_and_header_injection_are_refused(world, api, tree):
    response = api(world.north_admin).post(
        "/api/v1/brands/",
        {"product_name": "N", "primary_color": "red", "email_from_name": "N\r\nBcc: x@y"},
    )
    assert response.status_code == 400
    assert set(response.json()["fields"]) >= {"primary_color", "email_from_name"}


def test_mail_goes_out_from_the_brands_sender(world, tree, settings):
    settings.PBX_MAIL_SENDER_DOMAINS = ["north.test"]  # the provider sends for North's domain
    do_create_brand(
        dealer=world.north,
        actor=SYSTEM,
        product_name="North Phones",
        email_from_name="North Support",
        email_from_address="support@north.test",
    )
    send_mail("Voicemail", "You have a message.", ["staff@acme.test"], tenant=world.tenant_a)
    send_mail("Voicemail", "You have a message.", ["admin@beta.test"], tenant=world.tenant_b)
    assert [m.from_email for m in mail.outbox] == [
        "North Support <support@north.test>",
        "Cloud PBX <noreply@provider.test>",
    ]


def test_snapshot_product_name_comes_from_the_effective_brand(world, tree):
    """What ``telephony.engine.snapshots.build_snapshot`` puts in ``"product"`` (the SIP Server and
    User-Agent headers)."""
    do_create_brand(dealer=world.north, actor=SYSTEM, product_name="North Phones")
    assert brand_for_tenant(world.tenant_a).product_name == "North Phones"
    assert brand_for_tenant(world.tenant_b).product_name == "Cloud PBX"


def test_without_any_brand_the_settings_name_is_used(world, settings):
    settings.PBX_PRODUCT_NAME = "Fallback PBX"
    assert brand_for_tenant(world.tenant_a).product_name == "Fallback PBX"
