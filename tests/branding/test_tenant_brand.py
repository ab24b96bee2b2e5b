"""A tenant's own brand over the one it inherits: field by field tenant -> dealer chain ->
platform, the cache following every change, edited by the tenant's admin on its own host (API
and portal) and by nobody else, with bad uploads, colours and header injection refused as field
errors, readable text whatever colour is picked, and the tenant's e-mails in its brand."""

from __future__ import annotations

import random
import re

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, transaction

from branding.actions import do_create_brand, do_set_brand, do_update_brand
from branding.colours import AA_TEXT, contrast, ink, text_on
from branding.effective import CACHE_KEY, GENERATION_KEY, _redis, brand_for_dealer
from branding.effective import brand_for_tenant as effective
from branding.mail import sender_for
from branding.models import Brand
from pbx.audit import SYSTEM
from pbx.celery import app
from pbx.errors import ValidationFailed
from pbx.models import AuditEntry
from tests.branding.images import gif, png
from tests.portal.conftest import Portal

pytestmark = pytest.mark.django_db
PAGE = "/portal/branding/"
API = "/api/v1/company/brand/"


@pytest.fixture
def chain(world):
    """Platform brand; North (Acme's dealer) with its own name, accent, logo URL and sender."""
    platform = do_create_brand(
        actor=SYSTEM,
        product_name="Cloud PBX",
        company_name="Provider Ltd",
        primary_color="#112233",
        support_email="help@provider.test",
        email_from_address="noreply@provider.test",
    )
    north = do_create_brand(
        dealer=world.north,
        actor=SYSTEM,
        product_name="North Phones",
        accent_color="#aa0000",
        logo_url="https://north.test/logo.png",
        email_from_name="North Phones",
    )
    return platform, north


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(app.conf, "task_always_eager", True)


def test_each_field_comes_from_the_nearest_brand_that_sets_it(world, chain):
    assert effective(world.tenant_a).product_name == "North Phones"
    do_create_brand(
        tenant=world.tenant_a,
        actor=SYSTEM,
        product_name="Acme Voice",
        logo=SimpleUploadedFile("a.png", png(64, 32)),
        support_phone="+44 20 7946 0000",
    )
    acme = effective(world.tenant_a)
    assert acme.product_name == "Acme Voice"  # the tenant's own
    assert acme.support_phone == "+44 20 7946 0000"
    assert acme.accent_color == "#aa0000"  # North's
    assert acme.email_from_name == "North Phones"
    assert acme.primary_color == "#112233"  # the platform's
    assert acme.company_name == "Provider Ltd"
    assert acme.support_email == "help@provider.test"
    # The logo and its URL travel as a pair: the tenant's upload, never North's URL beside it.
    assert acme.logo.name.startswith(f"branding/tenant-{world.tenant_a.pk}/")
    assert acme.logo_url == ""
    # Nobody else takes the tenant's brand: not its dealer, not another tenant.
    assert brand_for_dealer(world.north).product_name == "North Phones"
    assert effective(world.tenant_b).product_name == "Cloud PBX"
    assert effective(None).product_name == "Cloud PBX"


def test_a_brand_has_one_owner_kind_and_one_brand_per_owner(world, chain):
    with pytest.raises(ValidationFailed):
        do_create_brand(dealer=world.north, tenant=world.tenant_a, actor=SYSTEM)
    with pytest.raises(IntegrityError), transaction.atomic():
        Brand.objects.create(dealer=world.south, tenant=world.tenant_b)
    do_create_brand(tenant=world.tenant_a, actor=SYSTEM, product_name="Acme Voice")
    with pytest.raises(Exception, match="already has a brand"):
        do_create_brand(tenant=world.tenant_a, actor=SYSTEM, product_name="Twice")


def test_cache_is_per_tenant_and_follows_dealer_and_tenant_changes(world, chain):
    _, north = chain
    assert effective(world.tenant_a).product_name == "North Phones"
    r = _redis()
    gen = int(r.get(GENERATION_KEY) or 0)
    key = CACHE_KEY.format(gen=gen, scope=world.tenant_a.schema_name)
    assert r.get(key) is not None  # cached under the tenant's own scope

    do_update_brand(north, actor=SYSTEM, product_name="North Voice")
    assert effective(world.tenant_a).product_name == "North Voice"  # the dealer's change

    own = do_set_brand(tenant=world.tenant_a, actor=SYSTEM, product_name="Acme Voice")
    assert effective(world.tenant_a).product_name == "Acme Voice"  # the tenant's own
    do_update_brand(north, actor=SYSTEM, accent_color="#005500")
    acme = effective(world.tenant_a)
    assert (acme.product_name, acme.accent_color) == ("Acme Voice", "#005500")

    do_set_brand(tenant=world.tenant_a, actor=SYSTEM, product_name="")  # back to inherited
    assert effective(world.tenant_a).product_name == "North Voice"
    assert Brand.objects.filter(pk=own.pk).exists()
    entries = AuditEntry.objects.filter(action__startswith="brand.", tenant=world.tenant_a)
    assert set(entries.values_list("action", flat=True)) == {"brand.create", "brand.update"}


def test_tenant_admin_edits_its_own_brand_over_the_api(world, api, chain, tmp_path):
    admin = api(world.a_admin, world.tenant_a)
    body = admin.get(API).json()
    assert body["product_name"] == ""
    assert body["inherited"]["product_name"] == "North Phones"
    assert body["inherited"]["logo_url"] == "https://north.test/logo.png"

    changed = admin.client.patch(
        API,
        {
            "product_name": "Acme Voice",
            "primary_color": "#336699",
            "logo": SimpleUploadedFile("logo.png", png(40, 40)),
        },
        format="multipart",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["has_logo_upload"] is True
    assert api(None, world.tenant_a).get("/api/v1/brand/").json()["name"] == "Acme Voice"
    assert api(None, world.tenant_b).get("/api/v1/brand/").json()["name"] == "Cloud PBX"
    logo = api(None, world.tenant_a).client.get("/api/v1/brand/logo/")
    assert b"".join(logo.streaming_content) == png(40, 40)

    assert admin.delete(API).status_code == 204
    assert api(None, world.tenant_a).get("/api/v1/brand/").json()["name"] == "North Phones"


def test_nobody_else_reads_or_writes_a_tenants_brand(world, api, chain):
    own = do_create_brand(tenant=world.tenant_a, actor=SYSTEM, product_name="Acme Voice")
    _, north = chain
    # Beta's admin: its token is not valid on Acme's host; on its own host it sees its own.
    assert api(world.b_admin, world.tenant_a).get(API).status_code == 401
    assert api(world.b_admin, world.tenant_b).get(API).json()["product_name"] == ""
    assert api(world.b_admin, world.tenant_b).patch(API, {"product_name": "X"}).status_code == 200
    assert effective(world.tenant_a).product_name == "Acme Voice"
    # A tenant user without the settings permission.
    assert api(world.a_user, world.tenant_a).get(API).status_code == 403
    assert api(world.a_user, world.tenant_a).patch(API, {"product_name": "X"}).status_code == 403
    # The provider's brands resource: not on a tenant's host, and it never lists tenants' brands.
    assert api(world.a_admin, world.tenant_a).get(f"/api/v1/brands/{north.pk}/").status_code == (
        404
    )
    assert api(world.a_admin, world.tenant_a).patch(
        f"/api/v1/brands/{north.pk}/", {"product_name": "Hacked"}
    ).status_code == (404)
    assert api(world.sysadmin).get(f"/api/v1/brands/{own.pk}/").status_code == 404
    assert own.pk not in [
        b["id"] for b in api(world.sysadmin).get("/api/v1/brands/").json()["items"]
    ]
    assert api(world.sysadmin).get(API).status_code == 404  # not on the provider's host
    north.refresh_from_db()
    own.refresh_from_db()
    assert (north.product_name, own.product_name) == ("North Phones", "Acme Voice")


def test_portal_page_is_the_host_tenants_only(world, chain):
    do_create_brand(tenant=world.tenant_b, actor=SYSTEM, product_name="Beta Talk")
    assert Portal("acme.test", world.a_admin).get(PAGE).status_code == 200
    # Acme's admin on Beta's host, Beta's admin on Acme's: their sign-in is not valid there,
    # so they get the sign-in page, never the form; and nothing changes.
    login = "/accounts/login/?next=/portal/branding/"
    assert Portal("beta.test", world.a_admin).get(PAGE)["Location"] == login
    hijack = Portal("beta.test", world.a_admin).post(PAGE, {"product_name": "Hijacked"})
    assert hijack["Location"] == login
    assert Portal("acme.test", world.b_admin).get(PAGE)["Location"] == login
    assert effective(world.tenant_b).product_name == "Beta Talk"
    # A tenant user; anonymous users are sent to sign in.
    assert Portal("acme.test", world.a_user).get(PAGE).status_code == 404
    assert Portal("acme.test").get(PAGE).status_code == 302
    # The menu offers it to the admin only.
    assert PAGE.encode() in Portal("acme.test", world.a_admin).get("/portal/company/").content


def test_tenant_admin_rebrands_in_the_portal(world, chain):
    browser = Portal("acme.test", world.a_admin)
    form = browser.get(PAGE)
    html = form.content.decode()
    for section in ("Names", "Logo and icon", "Colours", "E-mail sender", "Support"):
        assert f"<legend>{section}</legend>" in html
    assert 'placeholder="North Phones"' in html  # what is inherited, shown in the field
    assert 'type="color"' in html
    assert "portal/brand-preview.js" in html
    assert 'data-testid="preview-bar"' in html
    assert "Cancel" in html

    saved = browser.post(
        PAGE,
        {
            "product_name": "Acme Voice",
            "accent_color": "#ffee00",
            "email_from_name": "Acme Support",
            "email_from_address": "hello@acme.test",
            "logo": SimpleUploadedFile("logo.png", png(48, 48)),
            "favicon": SimpleUploadedFile("icon.png", png(32, 32)),
        },
    )
    assert saved.status_code == 302
    after = browser.get(saved["Location"]).content.decode()
    assert "Branding saved." in after
    assert "Low contrast" in after  # #ffee00 on the white page: said, not refused
    page = browser.get("/portal/company/")
    html = page.content.decode()
    assert re.search(r"<title>[^<]*Acme Voice</title>", html)
    assert 'data-testid="brand-name"' in html
    assert ">Acme Voice<" in html
    assert '<link rel="icon" href="/api/v1/brand/favicon/?v=' in html
    assert 'src="/api/v1/brand/logo/?v=' in html
    # A light accent gets black text (server-side), and links a darker shade.
    assert "--accent: #ffee00;" in html
    assert "--accent-text: #000000;" in html
    assert f"--accent-ink: {ink('#ffee00')};" in html
    own = Brand.objects.get(tenant=world.tenant_a)
    assert own.logo
    assert own.favicon

    # Reset to inherited: an emptied field is inherited again; the upload can be removed.
    again = browser.post(
        PAGE,
        {
            "product_name": "",
            "accent_color": "#ffee00",
            "email_from_name": "Acme Support",
            "email_from_address": "hello@acme.test",
            "remove_logo": "on",
        },
    )
    assert again.status_code == 302
    acme = effective(world.tenant_a)
    assert acme.product_name == "North Phones"
    assert not acme.logo
    assert acme.logo_url == "https://north.test/logo.png"
    assert acme.favicon  # untouched


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"logo": SimpleUploadedFile("x.svg", b"<svg onload='alert(1)'/>")}, "logo"),
        ({"logo": SimpleUploadedFile("x.png", b"\x89PNG\r\n\x1a\n broken")}, "logo"),
        ({"logo": SimpleUploadedFile("wide.gif", gif(5000, 40))}, "logo"),
        ({"favicon": SimpleUploadedFile("big.png", png(600, 600))}, "favicon"),
        ({"favicon": SimpleUploadedFile("dot.png", png(1, 1))}, "favicon"),
        ({"primary_color": "red"}, "primary_color"),
        ({"accent_color": "#12345"}, "accent_color"),
        ({"product_name": "Acme\r\nBcc: victim@example.test"}, "product_name"),
        ({"email_from_name": "Acme\nBcc: victim@example.test"}, "email_from_name"),
        ({"company_name": "Acme\u2028Ltd"}, "company_name"),
        ({"email_from_address": "not an address"}, "email_from_address"),
    ],
)
def test_bad_input_is_a_field_error_and_changes_nothing(world, chain, settings, data, field):
    settings.PBX_BRAND_ASSET_MAX_BYTES = 2 * 1024 * 1024  # the size in pixels is what is refused
    response = Portal("acme.test", world.a_admin).post(PAGE, data)
    assert response.status_code == 200
    assert field in response.context["form"].errors, response.context["form"].errors
    assert f'data-field="{field}"' in response.content.decode()
    assert not Brand.objects.filter(tenant=world.tenant_a).exists()


def test_too_large_a_file_is_refused(world, chain, settings):
    settings.PBX_BRAND_ASSET_MAX_BYTES = 1024
    response = Portal("acme.test", world.a_admin).post(
        PAGE, {"logo": SimpleUploadedFile("big.png", png(200, 200) + b"\0" * 2048)}
    )
    assert "too large" in response.context["form"].errors["logo"][0]


def test_api_refuses_header_injection_and_bad_uploads(world, api, chain):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.patch(API, {"email_from_name": "A\r\nBcc: x@y.test", "accent_color": "blue"})
    assert r.status_code == 400
    assert set(r.json()["fields"]) >= {"email_from_name", "accent_color"}
    r = admin.client.patch(
        API, {"favicon": SimpleUploadedFile("f.gif", gif(4000, 4000))}, format="multipart"
    )
    assert r.status_code == 400
    assert "favicon" in r.json()["fields"]
    assert not Brand.objects.filter(tenant=world.tenant_a).exists()


def test_dealer_and_system_admins_edit_their_own_brands_in_the_portal(world, chain):
    platform, north = chain
    south_page = Portal("localhost", world.south_admin)
    assert "the brand of South" in south_page.get(PAGE).content.decode()
    assert south_page.post(PAGE, {"product_name": "South Tel"}).status_code == 302
    assert Brand.objects.get(dealer=world.south).product_name == "South Tel"
    north.refresh_from_db()
    assert north.product_name == "North Phones"  # another dealer's brand is out of reach
    assert effective(world.tenant_b).product_name == "South Tel"

    root = Portal("localhost", world.sysadmin)
    assert root.post(
        PAGE, {"product_name": "Big Cloud", "company_name": "Provider Ltd"}
    ).status_code == (302)
    platform.refresh_from_db()
    assert platform.product_name == "Big Cloud"
    # A tenant's admin never reaches its dealer's brand: the page on its host is its own.
    Portal("acme.test", world.a_admin).post(PAGE, {"product_name": "Acme Voice"})
    north.refresh_from_db()
    assert north.product_name == "North Phones"
    assert Brand.objects.get(tenant=world.tenant_a).product_name == "Acme Voice"


def test_text_on_any_colour_reads_at_4_5_to_1():
    rng = random.Random(7)
    colours = ["#000000", "#ffffff", "#777777", "#767676", "#ffee00", "#1f6feb"] + [
        "#" + "".join(rng.choice("0123456789abcdef") for _ in range(6)) for _ in range(3000)
    ]
    for colour in colours:
        assert contrast(text_on(colour), colour) >= AA_TEXT, colour
        assert contrast(ink(colour), "#e8f0fe") >= AA_TEXT, colour
        assert contrast(ink(colour), "#ffffff") >= AA_TEXT, colour


def test_invitation_and_password_reset_mail_carry_the_tenants_brand(
    world, api, chain, eager, django_capture_on_commit_callbacks
):
    do_create_brand(
        tenant=world.tenant_a,
        actor=SYSTEM,
        product_name="Acme Voice",
        company_name="Acme Ltd",
        email_from_name="Acme Support",
        email_from_address="hello@acme.test",
        support_email="support@acme.test",
    )
    assert sender_for(tenant=world.tenant_a) == "Acme Support <hello@acme.test>"
    with django_capture_on_commit_callbacks(execute=True):
        created = api(world.a_admin, world.tenant_a).post(
            "/api/v1/users/", {"email": "new@acme.test", "role": "tenant_user"}
        )
    assert created.status_code == 201, created.json()
    [invite] = mail.outbox
    assert invite.from_email == "Acme Support <hello@acme.test>"
    assert invite.subject == "Your Acme Voice account"
    assert "support@acme.test" in invite.body
    assert "Acme Ltd" in invite.body
    assert "Provider Ltd" not in invite.body
    assert "North Phones" not in invite.body

    mail.outbox.clear()
    Portal("acme.test").post("/accounts/password/reset/", {"email": "admin@acme.test"})
    [reset] = mail.outbox
    assert reset.from_email == "Acme Support <hello@acme.test>"
    assert reset.subject.startswith("[Acme Voice] ")
    assert "Acme Voice" in reset.body
    # Beta's mail is not in Acme's brand.
    assert sender_for(tenant=world.tenant_b) == "Cloud PBX <noreply@provider.test>"


def test_deleting_a_tenant_or_a_dealer_deletes_its_brand_and_files(
    world, chain, django_capture_on_commit_callbacks
):
    """A deleted owner's logo does not stay on disk (nor its brand row, which nothing could
    reach any more); the dealer's brand is another owner's and stays when a tenant goes."""
    from branding.storage import brand_storage
    from dealers.actions import do_create_dealer, do_delete_dealer
    from tenants.actions import do_delete_tenant

    logo = SimpleUploadedFile("logo.png", png(40, 40))
    brand = do_set_brand(tenant=world.tenant_b, actor=SYSTEM, product_name="Beta", logo=logo)
    name = brand.logo.name
    assert brand_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_tenant(world.tenant_b, confirm=world.tenant_b.slug, actor=SYSTEM)
    assert not Brand.objects.filter(pk=brand.pk).exists()
    assert not brand_storage.exists(name)
    assert AuditEntry.objects.filter(action="brand.delete", object_id=str(brand.pk)).exists()

    spare = do_create_dealer(parent=None, name="Spare Dealer", actor=SYSTEM)
    dealer_brand = do_create_brand(
        dealer=spare,
        actor=SYSTEM,
        product_name="Spare",
        favicon=SimpleUploadedFile("f.png", png(32, 32)),
    )
    icon = dealer_brand.favicon.name
    with django_capture_on_commit_callbacks(execute=True):
        do_delete_dealer(spare, actor=SYSTEM)
    assert not Brand.objects.filter(pk=dealer_brand.pk).exists()
    assert not brand_storage.exists(icon)
    assert Brand.objects.filter(pk=chain[1].pk).exists()  # North's brand is untouched


def test_a_mail_sender_must_be_in_a_domain_the_provider_vouches_for(world, chain, settings):
    """A tenant admin cannot make the provider's servers send mail as someone else's domain."""
    host = world.tenant_a.domains.get(is_primary=True).domain

    def refused():
        return pytest.raises(ValidationFailed, match="Invalid brand")

    with refused() as caught:
        do_set_brand(tenant=world.tenant_a, actor=SYSTEM, email_from_address="ceo@bank.example")
    assert "email_from_address" in caught.value.fields
    assert not Brand.objects.filter(tenant=world.tenant_a).exists()
    # Its own hosts (and their subdomains), and its provider's sender domain, are fine.
    for address in (f"office@{host}", f"noreply@mail.{host}", "desk@provider.test"):
        brand = do_set_brand(tenant=world.tenant_a, actor=SYSTEM, email_from_address=address)
        assert brand.email_from_address == address
    # Another tenant's host is not.
    other = world.tenant_b.domains.get(is_primary=True).domain
    with refused():
        do_set_brand(tenant=world.tenant_a, actor=SYSTEM, email_from_address=f"x@{other}")
    # A dealer too; once the provider lists a domain it sends for, that one is allowed.
    with refused():
        do_set_brand(dealer=world.south, actor=SYSTEM, email_from_address="hi@south.example")
    settings.PBX_MAIL_SENDER_DOMAINS = ["south.example"]
    assert (
        do_set_brand(
            dealer=world.south, actor=SYSTEM, email_from_address="hi@south.example"
        ).email_from_address
        == "hi@south.example"
    )
    # The portal says the rule before the first attempt.
    page = Portal(host, world.a_admin).get(PAGE).content.decode()
    assert "these domains or their subdomains: " in page
    assert "provider.test" in page
    # The provider's own brand sends from anywhere it likes.
    assert do_set_brand(actor=SYSTEM, email_from_address="news@any.example").pk
