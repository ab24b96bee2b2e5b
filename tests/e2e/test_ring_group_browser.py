"""End to end, in a real browser: a sales team's ring group.

User story: the company's administrator opens Ring groups (none yet: the page says so), adds
"Sales" on 600 that rings Bob (1002) then Alice (1001) one after the other and, when nobody
answers, sends the caller to Alice's voicemail; a member nobody has (1999) is refused on its
own row. The group is listed with its members in ringing order, and the edit page shows them
in that order. Every page passes axe-core.
"""

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, chromium_page, sign_in


@pytest.mark.e2e
def test_the_admin_builds_a_ring_group(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
        page.get_by_role("link", name="Ring groups").first.click()
        expect(page.get_by_test_id("ring-groups")).to_contain_text("No ring groups yet")
        assert_accessible(page)
        page.get_by_role("link", name="Add ring group").first.click()
        assert_accessible(page)
        page.fill("#id_number", "600")
        page.fill("#id_name", "Sales")
        page.select_option("#id_strategy", "hunt")
        page.fill("#id_member_0_number", "1002")
        page.fill("#id_member_1_number", "1999")  # nobody's
        page.select_option("#id_overflow_kind", "voicemail")
        page.fill("#id_overflow_target", "1001")
        page.get_by_role("button", name="Create ring group").click()
        expect(page.locator('[data-field="member_1_number"]')).to_have_text("no extension 1999")
        assert_accessible(page)
        page.fill("#id_member_1_number", "1001")
        page.get_by_role("button", name="Create ring group").click()
        expect(page.locator(".msg--success")).to_contain_text("Ring group 600 Sales saved")
        groups = page.get_by_test_id("ring-groups")
        expect(groups).to_contain_text("1002, 1001")
        expect(groups).to_contain_text("Voicemail 1001")
        assert_accessible(page)
        page.get_by_role("link", name="Sales").click()
        expect(page.locator("#id_member_0_number")).to_have_value("1002")
        expect(page.locator("#id_member_1_number")).to_have_value("1001")
