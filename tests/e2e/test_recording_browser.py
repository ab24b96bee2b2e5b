"""End to end, in a real browser: the company's call recording settings.

User story: the company's administrator opens "Call recording" from the menu, sees the
provider's default storage; choosing "Amazon S3" shows the S3 fields only (the Azure account
name stays hidden); a bucket name with capitals is refused on its field; with a good name the
settings are saved, and the page, reloaded, shows no secret but says one is stored. The page
passes axe-core and does not scroll sideways on a phone.
"""

import pytest

from tests.e2e.a11y import PHONE_WIDTH, assert_accessible, horizontal_overflow
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, sign_in

SECRET = "e2e-Secret-Key-0123456789"  # noqa: S105 - a test credential


@pytest.mark.e2e
def test_the_admin_stores_recordings_in_an_s3_bucket(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.get_by_role("navigation", name="Main").get_by_role(
            "link", name="Call recording"
        ).click()
        expect(page.get_by_role("heading", name="Call recording")).to_be_visible()
        expect(page.get_by_test_id("platform-default")).to_contain_text("disk")
        # The provider's storage: no bucket fields to fill.
        expect(page.locator("#id_bucket")).to_be_hidden()
        assert_accessible(page)

        page.select_option("#id_policy", "always")
        page.select_option("#id_storage", "s3")
        expect(page.locator("#id_bucket")).to_be_visible()
        expect(page.locator("#id_access_key")).to_be_visible()
        expect(page.locator("#id_account_name")).to_be_hidden()
        page.fill("#id_bucket", "Acme_Recordings")
        page.fill("#id_region", "eu-west-1")
        page.fill("#id_access_key", "AKIAIOSFODNN7EXAMPLE")
        page.fill("#id_secret", SECRET)
        page.fill("#id_retention_days", "90")
        page.get_by_role("button", name="Save").click()
        expect(page.locator('[data-field="bucket"]')).to_contain_text("lower-case")
        # The refused form keeps S3's fields on show, and not the secret.
        expect(page.locator("#id_bucket")).to_be_visible()
        expect(page.locator("#id_secret")).to_have_value("")
        assert_accessible(page)

        page.fill("#id_bucket", "acme-recordings")
        page.fill("#id_secret", SECRET)
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".msg--success")).to_contain_text("Call recording settings saved")
        expect(page.locator("#id_storage")).to_have_value("s3")
        expect(page.locator("#id_bucket")).to_have_value("acme-recordings")
        expect(page.locator("#id_secret")).to_have_value("")
        assert SECRET not in page.content()
        expect(page.get_by_text("A secret is stored")).to_be_visible()

        page.select_option("#id_storage", "azure")
        expect(page.locator("#id_account_name")).to_be_visible()
        expect(page.locator("#id_access_key")).to_be_hidden()
        assert_accessible(page)

        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        assert horizontal_overflow(page) == 0
