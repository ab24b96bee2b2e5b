"""End to end, in a real browser: a sales team's ring group.

User story: the company's administrator opens Ring groups (the demo company's Sales group, 600,
is there), adds "Support" on 610 that rings Carol (1003) then Alice (1001) one after the other
and, when nobody answers, sends the caller to Alice's voicemail; a member nobody has (1999) is
refused on its own row. The group is listed with its members in ringing order, and the edit
page shows them in that order. Every page passes axe-core. (The empty list is the portal
tests' business: tests/portal/test_team_pages.py.)
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
        expect(page.get_by_test_id("ring-groups")).to_contain_text("Sales")
        assert_accessible(page)
        page.get_by_role("link", name="Add ring group").first.click()
        assert_accessible(page)
        page.fill("#id_number", "610")
        page.fill("#id_name", "Support")
        page.select_option("#id_strategy", "hunt")
        page.fill("#id_member_0_number", "1003")
        page.fill("#id_member_1_number", "1999")  # nobody's
        page.select_option("#id_overflow_kind", "voicemail")
        page.fill("#id_overflow_target", "1001")
        page.get_by_role("button", name="Create ring group").click()
        expect(page.locator('[data-field="member_1_number"]')).to_have_text("no extension 1999")
        assert_accessible(page)
        page.fill("#id_member_1_number", "1001")
        page.get_by_role("button", name="Create ring group").click()
        expect(page.locator(".msg--success")).to_contain_text("Ring group 610 Support saved")
        groups = page.get_by_test_id("ring-groups")
        expect(groups).to_contain_text("1003, 1001")
        expect(groups).to_contain_text("Voicemail 1001")
        assert_accessible(page)
        page.get_by_role("link", name="Support").click()
        expect(page.locator("#id_member_0_number")).to_have_value("1003")
        expect(page.locator("#id_member_1_number")).to_have_value("1001")
