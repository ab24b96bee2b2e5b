"""End to end, in a real browser against a real server.

User story: a dealer admin signs in on the provider's portal, follows "Dealer admin" to the
dealers' Django admin, finds its tenant there, opens it and its delete page, and reads its
sub-dealers and audit trail — every page accessible and without horizontal scroll on a phone.
"""

import pytest

from tests.e2e.a11y import PHONE_WIDTH, assert_accessible, horizontal_overflow
from tests.e2e.conftest import DEALER_EMAIL, DEALER_PASSWORD, chromium_page, fill_sign_in


@pytest.mark.e2e
def test_dealer_admin_reaches_its_django_admin_from_the_portal(live_pbx, live_dealer):
    from playwright.sync_api import expect

    base = live_pbx["base"].replace("e2e.localhost", "localhost")  # the provider's host
    with chromium_page(timeout=15_000) as page:
        page.goto(f"{base}/dealer-admin/")
        expect(page).to_have_url(f"{base}/accounts/login/?next=%2Fdealer-admin%2F")
        fill_sign_in(page, DEALER_EMAIL, DEALER_PASSWORD)
        expect(page).to_have_url(f"{base}/dealer-admin/")
        page.goto(f"{base}/portal/tenants/")
        page.click("nav >> text=Dealer admin")
        expect(page).to_have_url(f"{base}/dealer-admin/")

        page.get_by_role("rowheader", name="Tenants").get_by_role("link").click()
        expect(page.locator("#result_list")).to_contain_text("Dockside")
        pages = {"tenants": page.url}
        page.click("#result_list >> text=Dockside")
        expect(page.locator("#id_name")).to_have_value("Dockside")
        pages["tenant"] = page.url
        page.click("a.deletelink")
        expect(page.locator("#id_confirm")).to_be_visible()
        pages["delete"] = page.url
        pages["add"] = f"{base}/dealer-admin/tenants/tenant/add/"
        pages["dealers"] = f"{base}/dealer-admin/dealers/dealer/"
        pages["audit"] = f"{base}/dealer-admin/pbx/auditentry/"
        pages["home"] = f"{base}/dealer-admin/"
        for name, url in pages.items():
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(url)
            assert_accessible(page)
            page.set_viewport_size({"width": PHONE_WIDTH, "height": 800})
            page.goto(url)
            assert horizontal_overflow(page) == 0, name
        page.goto(pages["audit"])
        expect(page.locator("#result_list")).to_contain_text("tenant.create")
