"""End to end, in a real browser: bulk actions on the extension list, the phone list by vendor
and model name, and an extension's SIP credentials with a working copy button.

User story: a tenant administrator ticks "select all" on the extension list (from the keyboard),
disables every extension on the page in one go and sees the count; opens the delete
confirmation for one of them and cancels; adds a phone and finds it listed as "Yealink T54W";
opens the SIP credentials of extension 1001 to set up a softphone, copies the user name with
the Copy button (the page says "Copied" for screen readers too) and sees the QR code. Every
page passes axe-core, and the new ones fit a phone's width.
"""

import pytest

from tests.e2e.a11y import PHONE_WIDTH, assert_accessible, horizontal_overflow
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, sign_in

MAC = "001565e2e0aa"


@pytest.mark.e2e
def test_bulk_disable_phone_names_and_credentials(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.goto(f"{base}/portal/extensions/")
        assert_accessible(page)

        # Select all from the keyboard, then disable them all.
        rows = page.locator('input[type=checkbox][name=pk][form="bulk"]')
        count = rows.count()
        assert count >= 3
        page.get_by_label("Select every extension on this page").focus()
        page.keyboard.press("Space")
        expect(page.locator("[data-bulk-count]")).to_have_text(f"{count} selected")
        for i in range(count):
            expect(rows.nth(i)).to_be_checked()
        page.get_by_label("With the selected extensions").select_option("disable")
        page.get_by_test_id("bulk-apply").click()
        expect(page.locator(".msg--success")).to_contain_text(f"{count} extensions disabled")
        for number in ("1001", "1002", "1003"):
            expect(page.get_by_test_id(f"extension-{number}")).to_contain_text("no")
        # Un-ticking one clears "select all"; enable the rest back, then the last one.
        page.get_by_label("Select every extension on this page").check()
        page.get_by_label("Select extension 1001").uncheck()
        expect(page.get_by_label("Select every extension on this page")).not_to_be_checked()
        page.get_by_label("With the selected extensions").select_option("enable")
        page.get_by_test_id("bulk-apply").click()
        expect(page.locator(".msg--success")).to_contain_text(f"{count - 1} extensions enabled")
        page.get_by_label("Select extension 1001").check()
        page.get_by_label("With the selected extensions").select_option("enable")
        page.get_by_test_id("bulk-apply").click()
        expect(page.locator(".msg--success")).to_contain_text("1 extension enabled: 1001")

        # The export link downloads the list as the page filters it, streamed by the real
        # (ASGI) server from the tenant's schema.
        page.goto(f"{base}/portal/extensions/?q=100")
        href = page.get_by_test_id("export-csv").get_attribute("href")
        assert "q=100" in href
        assert "export=csv" in href
        csv_text = page.evaluate("(u) => fetch(u).then((r) => r.text())", href)
        lines = csv_text.strip().splitlines()
        assert lines[0].startswith("Number,Name,Status")
        assert {line.split(",")[0] for line in lines[1:]} >= {"1001", "1002", "1003"}

        # Delete asks first, listing what goes; Cancel leaves everything.
        page.get_by_label("Select extension 1003").check()
        page.get_by_label("With the selected extensions").select_option("delete")
        page.get_by_test_id("bulk-apply").click()
        expect(page.get_by_role("heading", name="Delete 1 extension?")).to_be_visible()
        expect(page.get_by_test_id("delete-1003")).to_be_visible()
        assert_accessible(page)
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
        assert horizontal_overflow(page) == 0
        page.set_viewport_size({"width": 1280, "height": 800})
        page.get_by_role("link", name="Cancel").click()
        expect(page.get_by_test_id("extension-1003")).to_be_visible()

        # A phone, listed by vendor and model name.
        page.goto(f"{base}/portal/phones/add/")
        page.fill("#id_mac", MAC)
        page.select_option("#id_model_id", label="Yealink T54W")
        page.fill("#id_extension", "1001")
        page.get_by_role("button", name="Add phone").click()
        expect(page.locator(".msg--success")).to_contain_text(f"Phone {MAC} added")
        page.goto(f"{base}/portal/phones/")
        row = page.get_by_test_id(f"phone-{MAC}")
        expect(row.get_by_test_id("vendor")).to_have_text("Yealink")
        expect(row.get_by_test_id("model")).to_have_text("Yealink T54W")
        assert_accessible(page)

        # The SIP credentials of 1001 (linked from the phone's line), copied with a click.
        row.get_by_role("link", name="1001").click()
        expect(page.get_by_role("heading", name="SIP credentials of 1001")).to_be_visible()
        expect(page.get_by_test_id("cred-user")).to_have_text("1001")
        expect(page.get_by_test_id("cred-domain")).to_have_text("e2e.localhost")
        expect(page.get_by_test_id("qr").locator("svg")).to_be_visible()
        page.get_by_test_id("copy-user").click()
        expect(page.get_by_test_id("copy-status")).to_have_text("Copied the user name.")
        expect(page.get_by_test_id("copy-user")).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == "1001"
        assert_accessible(page)
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
        assert horizontal_overflow(page) == 0
