"""End to end, in a real browser against a real server.

User story: the provider's system admin signs in on the provider's host and lands on the
dashboard: the tenants with their use of their limits (the demo tenant's three extensions
among them), the platform's health in words and the alerts. The page passes axe-core's
serious and critical rules and fits a 390 px phone screen without sideways scrolling.
"""

import re

import pytest

from tests.e2e.a11y import PHONE_WIDTH, assert_accessible, horizontal_overflow
from tests.e2e.conftest import (
    SYSTEM_ADMIN_EMAIL,
    SYSTEM_ADMIN_PASSWORD,
    chromium_page,
    fill_sign_in,
)


@pytest.mark.e2e
def test_system_admin_lands_on_an_accessible_dashboard(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["provider"]
    with chromium_page(timeout=15_000) as page:
        page.goto(f"{base}/portal/")
        fill_sign_in(page, SYSTEM_ADMIN_EMAIL, SYSTEM_ADMIN_PASSWORD)
        expect(page).to_have_url(f"{base}/portal/overview/")
        expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link").first).to_have_text("Dashboard")

        demo = page.get_by_test_id("usage-demo")
        # Other browser tests on this server add extensions to the demo tenant: the exact
        # figures are tests/portal/test_dashboards.py's; here, the quota and its words.
        expect(demo.get_by_test_id("extensions")).to_have_text(
            re.compile(r"^\s*\d+ of 100 · \d+ %")
        )
        expect(demo.get_by_role("link", name="Demo Company")).to_have_attribute(
            "href", re.compile(r"^/portal/tenants/\d+/$")
        )
        # No SIP engine runs beside this web server: the health says so, and so do the alerts.
        expect(page.get_by_test_id("check-engines")).to_have_attribute("data-status", "down")
        expect(page.get_by_test_id("alerts")).to_contain_text("No SIP engine is running")
        for key in ("media", "workers", "backlog", "certificate"):
            expect(page.get_by_test_id(f"check-{key}")).to_be_visible()
        assert_accessible(page)

        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        page.reload()
        expect(page.get_by_test_id("usage-demo")).to_be_visible()
        assert horizontal_overflow(page) == 0
        assert_accessible(page)
