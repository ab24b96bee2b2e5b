"""The portal on a phone (390 px wide) and from the keyboard, in Chromium: the side menu folds
into a menu button that opens and closes it, a wide table scrolls inside its own box (not the
page), and the first Tab reaches a skip link that jumps past the menu to the page's content."""

import pytest

from tests.e2e.a11y import PHONE_WIDTH, horizontal_overflow
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, sign_in


@pytest.mark.e2e
def test_menu_button_tables_and_skip_link_at_phone_width(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page() as page:
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.goto(f"{base}/portal/audit/")
        menu = page.get_by_role("button", name="Menu")
        nav = page.locator("#mainnav")
        expect(menu).to_be_visible()
        expect(nav).to_be_hidden()
        menu.click()
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(nav.get_by_role("link", name="Extensions")).to_be_visible()
        page.keyboard.press("Escape")
        expect(nav).to_be_hidden()
        expect(menu).to_be_focused()

        # The audit table is wider than the phone: it scrolls in its box, the page does not.
        box = page.locator(".tablewrap").first
        expect(box).to_have_attribute("role", "region")
        assert box.evaluate("el => el.scrollWidth > el.clientWidth")
        assert horizontal_overflow(page) == 0

        # On a desktop the menu is always shown and the button is not.
        page.set_viewport_size({"width": 1280, "height": 900})
        expect(nav.get_by_role("link", name="Extensions")).to_be_visible()
        expect(menu).to_be_hidden()

        # Keyboard: the first Tab stop is the skip link; following it focuses the content.
        page.goto(f"{base}/portal/extensions/")
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to content")
        expect(skip).to_be_focused()
        expect(skip).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(page.locator("main#main")).to_be_focused()
