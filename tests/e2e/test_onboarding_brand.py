"""End to end, in a real browser against a real server, with the server's real e-mail.

User story: the service provider's system admin signs in on the provider's host and creates a
tenant with its first admin's e-mail. The invitation arrives; the new admin follows its link on
the tenant's own host, chooses a password and is signed in. The admin rebrands the company —
name, colour, logo — watching the live preview change before saving; after saving, every page
shows the brand (title, top bar, colours, logo), and the next e-mail the tenant sends (a new
user's invitation) comes from the tenant's sender in the tenant's brand. Every page on the way
passes the accessibility check.
"""

import json
import re

import pytest

from tests.branding.images import png
from tests.e2e.a11y import assert_accessible, horizontal_overflow
from tests.e2e.conftest import (
    FETCH_JSON,
    SYSTEM_ADMIN_EMAIL,
    SYSTEM_ADMIN_PASSWORD,
    api_sign_in,
    chromium_page,
    fill_sign_in,
    read_mail,
)

SLUG = "orbitjourney"
TENANT_HOST = f"{SLUG}.localhost"  # Chromium resolves *.localhost to loopback
BOSS = f"boss@{SLUG}.test"
PASSWORD = "Violet-Lantern-Orbit-58"
LINK = re.compile(r"https?://[^\s]+/portal/welcome/[^\s]+/")


def _wait_for_mail(mail_dir, count: int, page) -> list:
    for _ in range(50):
        found = read_mail(mail_dir)
        if len(found) >= count:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"expected {count} e-mails, got {len(read_mail(mail_dir))}")


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.e2e
def test_provider_onboards_a_tenant_whose_admin_rebrands_it(live_pbx, tmp_path):
    from playwright.sync_api import expect

    provider, port, mail_dir = live_pbx["provider"], live_pbx["port"], live_pbx["mail_dir"]
    tenant_base = f"http://{TENANT_HOST}:{port}"
    already = len(read_mail(mail_dir))
    logo_path = tmp_path / "orbit-logo.png"
    logo_path.write_bytes(png(64, 64, (10, 120, 60)))

    with chromium_page(timeout=20_000) as page:
        # 1. The system admin signs in on the provider's host.
        page.goto(f"{provider}/portal/")
        assert_accessible(page)
        fill_sign_in(page, SYSTEM_ADMIN_EMAIL, SYSTEM_ADMIN_PASSWORD)
        expect(page).to_have_url(f"{provider}/portal/overview/")
        assert_accessible(page)

        # 2. ... and creates a tenant with its first admin's e-mail.
        page.goto(f"{provider}/portal/tenants/add/")
        assert_accessible(page)
        page.fill("#id_name", "Orbit Journeys")
        page.fill("#id_slug", SLUG)
        page.fill("#id_sip_domain", TENANT_HOST)
        page.fill("#id_web_host", TENANT_HOST)
        page.fill("#id_admin_email", BOSS)
        page.fill("#id_admin_name", "Bea Boss")
        page.click("form.form button.primary")
        expect(page.locator(".msg--success")).to_contain_text(f"An invitation went to {BOSS}")

        # 3. The invitation arrives, in the platform's brand (the tenant has none yet).
        invite = _wait_for_mail(mail_dir, already + 1, page)[-1]
        assert invite["To"] == BOSS
        link = LINK.search(invite.get_body(preferencelist=("plain",)).get_content()).group(0)
        assert link.startswith(f"{tenant_base}/portal/welcome/")

        # 4. The admin follows the link on the tenant's host and chooses a password.
        page.context.clear_cookies()
        page.goto(link)
        assert_accessible(page)
        page.fill("#id_new_password", PASSWORD)
        page.fill("#id_confirm_password", PASSWORD)
        page.click("form button.primary")
        expect(page.get_by_test_id("current-user")).to_contain_text(BOSS)
        assert page.url.startswith(f"{tenant_base}/portal/")

        # ... and signs in again with it on the tenant's host.
        page.click("text=Sign out")
        page.goto(f"{tenant_base}/portal/")
        fill_sign_in(page, BOSS, PASSWORD)
        expect(page.get_by_test_id("current-user")).to_contain_text(BOSS)

        # 5. The Branding page, from the menu.
        page.get_by_role("link", name="Branding").click()
        expect(page).to_have_url(f"{tenant_base}/portal/branding/")
        assert_accessible(page)
        page.set_viewport_size({"width": 390, "height": 844})
        assert horizontal_overflow(page) == 0
        page.set_viewport_size({"width": 1280, "height": 900})
        preview_name = page.get_by_test_id("preview-name")
        expect(preview_name).to_have_text("Cloud PBX")  # inherited from the platform

        # The live preview follows the form before anything is saved.
        page.fill("#id_product_name", "Orbit Voice")
        expect(preview_name).to_have_text("Orbit Voice")
        page.fill("#id_accent_color", "#0b6e4f")
        button = page.get_by_test_id("preview-button")
        expect(button).to_have_css("background-color", _rgb("#0b6e4f"))
        expect(button).to_have_css("color", "rgb(255, 255, 255)")  # white reads on dark green
        page.fill("#id_primary_color", "#f4d35e")  # a light bar: black text, and a warning
        bar = page.get_by_test_id("preview-bar")
        expect(bar).to_have_css("background-color", _rgb("#f4d35e"))
        expect(bar).to_have_css("color", "rgb(0, 0, 0)")
        expect(page.locator("#id_primary_color_warning")).to_contain_text("Low contrast")
        page.fill("#id_email_from_name", "Orbit Support")
        # A sender in the tenant's own domain (another domain would be refused).
        page.fill("#id_email_from_address", f"hello@{TENANT_HOST}")
        expect(page.get_by_test_id("preview-from")).to_have_text(
            f"Orbit Support <hello@{TENANT_HOST}>"
        )
        page.set_input_files("#id_logo", str(logo_path))
        expect(page.locator("#preview-logo")).to_have_attribute("src", re.compile(r"^blob:"))
        # Nothing saved yet: the real top bar still shows the inherited name.
        expect(page.get_by_test_id("brand-name")).to_contain_text("Cloud PBX")
        assert_accessible(page)

        page.click("form#brand-form button.primary")
        expect(page.locator(".msg--success")).to_contain_text("Branding saved.")

        # 6. The brand on every page after: title, top bar, colours, logo.
        page.goto(f"{tenant_base}/portal/users/")
        expect(page).to_have_title(re.compile(r"Orbit Voice$"))
        expect(page.get_by_test_id("brand-name")).to_contain_text("Orbit Voice")
        expect(page.locator(".topbar")).to_have_css("background-color", _rgb("#f4d35e"))
        expect(page.locator(".topbar .brand")).to_have_css("color", "rgb(0, 0, 0)")
        accent = page.evaluate(
            "getComputedStyle(document.body).getPropertyValue('--accent').trim()"
        )
        assert accent == "#0b6e4f"
        logo = page.get_by_test_id("brand-logo")
        expect(logo).to_have_attribute("src", re.compile(r"^/api/v1/brand/logo/\?v="))
        natural_width = "document.querySelector('[data-testid=brand-logo]').naturalWidth"
        assert page.evaluate(natural_width) == 64  # the uploaded image, served
        assert_accessible(page)

        # 7. An e-mail the tenant sends now (a new user's invitation) is in its brand.
        token = api_sign_in(page, BOSS, PASSWORD)
        created = page.evaluate(
            FETCH_JSON,
            [
                "/api/v1/users/",
                {
                    "method": "POST",
                    "headers": {
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                    "body": json.dumps({"email": f"crew@{SLUG}.test", "role": "tenant_user"}),
                },
            ],
        )
        assert created["status"] == 201, created
        second = _wait_for_mail(mail_dir, already + 2, page)[-1]
        assert second["To"] == f"crew@{SLUG}.test"
        assert second["From"] == f"Orbit Support <hello@{TENANT_HOST}>"
        assert second["Subject"] == "Your Orbit Voice account"
        body = second.get_body(preferencelist=("plain",)).get_content()
        assert "an account on Orbit Voice has been made for you (Orbit Journeys)" in body
        assert f"{tenant_base}/portal/welcome/" in body
