"""End to end, in a real browser: a company's receptionist menu and its star codes.

User story: the company's administrator opens IVR menus (the demo's main menu, 800, is
there), adds "Reception" on 801 where 1 rings Alice (1001), 2 leaves a message for Bob (1002)
and * plays the menu again; a key sent to a number nobody has is refused on that key's row.
The menu is listed with its keys.
Then, under Feature codes, they move "do not disturb on" to *11, are told why *721 cannot be
used, and put every default back. Every page passes axe-core.
"""

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, sign_in


@pytest.mark.e2e
def test_the_admin_builds_a_menu_and_changes_a_feature_code(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.get_by_role("link", name="IVR menus").first.click()
        expect(page.get_by_test_id("ivr-menus")).to_contain_text("Main menu")
        assert_accessible(page)
        page.get_by_role("link", name="Add IVR menu").click()
        assert_accessible(page)
        page.fill("#id_number", "801")
        page.fill("#id_name", "Reception")
        page.select_option("#id_key_1_kind", "extension")
        page.fill("#id_key_1_target", "1001")
        page.select_option("#id_key_2_kind", "voicemail")
        page.fill("#id_key_2_target", "1999")  # nobody's
        page.select_option("#id_key_star_kind", "repeat")
        page.get_by_role("button", name="Create menu").click()
        expect(page.locator('[data-field="key_2_target"]')).to_have_text(
            "no mailbox 1999: no extension has this number"
        )
        assert_accessible(page)
        page.fill("#id_key_2_target", "1002")
        page.get_by_role("button", name="Create menu").click()
        expect(page.locator(".msg--success")).to_contain_text("IVR menu 801 Reception saved")
        menus = page.get_by_test_id("ivr-menus")
        expect(menus).to_contain_text("1: Extension 1001")
        expect(menus).to_contain_text("2: Voicemail 1002")
        expect(menus).to_contain_text("*: Repeat the menu")
        assert_accessible(page)

        page.get_by_role("link", name="Feature codes").first.click()
        assert_accessible(page)
        page.get_by_label("Do not disturb on: code").fill("*11")
        page.get_by_role("button", name="Save feature codes").click()
        expect(page.locator(".msg--success")).to_contain_text("Feature codes saved")
        expect(page.get_by_label("Do not disturb on: code")).to_have_value("*11")
        page.get_by_label("Do not disturb on: code").fill("*721")
        page.get_by_role("button", name="Save feature codes").click()
        expect(page.locator('[data-field="code_dnd_on"]')).to_contain_text("*72 takes a number")
        assert_accessible(page)
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Reset to defaults").click()
        expect(page.locator(".msg--success")).to_contain_text("default code again")
        expect(page.get_by_label("Do not disturb on: code")).to_have_value("*78")
