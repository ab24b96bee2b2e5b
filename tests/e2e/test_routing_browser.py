"""End to end, in a real browser: outside calls set up from both portals.

User story: the provider's system admin adds the carrier's IP trunk and shares it with the demo
company, adds a range of ten DID numbers and assigns one of them to the company from the pool's
bulk bar. The company's administrator finds the number under Numbers, follows "Make a rule" to
send it to extension 1001 (1002 out of hours), adds an outbound rule over the shared trunk, and
opens the office on Mondays 09:00 to 17:00. Every new page passes axe-core.
"""

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    SYSTEM_ADMIN_EMAIL,
    SYSTEM_ADMIN_PASSWORD,
    chromium_page,
    sign_in,
)

TENANT = "Demo Company"
TRUNK = "E2E Carrier"
DID = "+12125550103"


def _forget_carriers() -> None:
    """The carrier snapshot the server published to the shared Redis, and trunk states that
    engine tests left there under small trunk ids: take them away."""
    import redis
    from django.conf import settings

    from telephony.engine.store import redis_key
    from telephony.sip.contract import CARRIERS

    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(redis_key(CARRIERS))
    for pattern in ("sip:trunk:*", "sip:trunkcalls:*"):
        for key in r.scan_iter(match=redis_key(pattern)):
            r.delete(key)


@pytest.mark.e2e
def test_provider_sets_up_a_trunk_and_numbers_and_the_tenant_routes_them(live_pbx):
    from playwright.sync_api import expect

    provider, base = live_pbx["provider"], live_pbx["base"]
    _forget_carriers()
    try:
        with chromium_page(timeout=15_000) as page:
            # --- the provider: a trunk shared with the company --------------------------------
            sign_in(page, provider, SYSTEM_ADMIN_EMAIL, SYSTEM_ADMIN_PASSWORD)
            page.goto(f"{provider}/portal/trunks/")
            expect(page.get_by_text("No trunks yet")).to_be_visible()
            assert_accessible(page)
            page.get_by_role("link", name="Add trunk").click()
            assert_accessible(page)
            page.fill("#id_name", TRUNK)
            page.select_option("#id_kind", "ip")
            page.fill("#id_host", "sip.carrier.example")
            page.fill("#id_addresses", "192.0.2.10\n198.51.100.0/24")
            page.fill("#id_max_channels", "20")
            page.get_by_label("PCMU").check()
            page.get_by_label(TENANT).check()
            page.get_by_role("button", name="Create trunk").click()
            expect(page.locator(".msg--success")).to_contain_text(f"Trunk {TRUNK} created")
            row = page.get_by_test_id("trunk-e2e-carrier")
            expect(row).to_contain_text("unknown")  # no engine runs here to check it
            expect(row).to_contain_text("0 of 20")
            assert_accessible(page)

            # --- a range of numbers, one assigned from the bulk bar ---------------------------
            page.goto(f"{provider}/portal/numbers/add/")
            assert_accessible(page)
            page.fill("#id_number", "+1 212 555 0100")
            page.fill("#id_last", "+1 212 555 0109")
            page.fill("#id_country", "US")
            page.select_option("#id_trunk", label=TRUNK)
            page.get_by_role("button", name="Add numbers").click()
            expect(page.locator(".msg--success")).to_contain_text("Added 10 numbers")
            expect(page.get_by_test_id(f"number-{DID}")).to_contain_text("free")
            page.get_by_label(f"Select number {DID}").check()
            page.select_option("#bulk-action", "assign")
            page.select_option("#bulk-tenant", label=TENANT)
            page.get_by_test_id("bulk-apply").click()
            expect(page.locator(".msg--success")).to_contain_text(f"assigned to {TENANT}")
            expect(page.get_by_test_id(f"number-{DID}")).to_contain_text(TENANT)
            page.select_option("select[name=status]", "assigned")
            page.get_by_role("button", name="Filter").click()
            # Assigned ones only: ours (and the demo's own number), none of the free nine.
            expect(page.get_by_test_id(f"number-{DID}")).to_be_visible()
            expect(page.locator('tr[data-testid^="number-+121255501"]')).to_have_count(1)
            assert_accessible(page)

        with chromium_page(timeout=15_000) as page:
            # --- the company's admin: an inbound rule for its number --------------------------
            sign_in(page, base, ADMIN_EMAIL, ADMIN_PASSWORD)
            page.goto(f"{base}/portal/routing/inbound/")
            # The demo company's own number comes with a rule (seed_demo).
            expect(page.get_by_test_id("inbound-rules")).to_contain_text("Main line")
            page.get_by_role("navigation", name="Main").get_by_role(
                "link", name="Numbers", exact=True
            ).click()
            expect(page.get_by_test_id(f"number-{DID}")).to_be_visible()
            assert_accessible(page)
            page.get_by_test_id(f"number-{DID}").get_by_role("link", name="Make a rule").click()
            expect(page.locator("#id_number")).to_have_value(DID)
            assert_accessible(page)
            page.select_option("#id_in_hours_kind", "extension")
            page.fill("#id_in_hours_target", "1001")
            page.select_option("#id_out_of_hours_kind", "extension")
            page.fill("#id_out_of_hours_target", "1002")
            page.get_by_role("button", name="Create rule").click()
            expect(page.locator(".msg--success")).to_contain_text("saved")
            rules = page.get_by_test_id("inbound-rules")
            expect(rules).to_contain_text(DID)
            expect(rules).to_contain_text("Extension 1001")
            expect(rules).to_contain_text("Extension 1002")
            assert_accessible(page)
            page.goto(f"{base}/portal/routing/numbers/")
            expect(page.get_by_test_id(f"number-{DID}")).to_contain_text(f"Calls to {DID}")

            # --- an outbound rule over the shared trunk ---------------------------------------
            page.goto(f"{base}/portal/routing/trunks/")
            expect(page.get_by_test_id("trunk-e2e-carrier")).to_contain_text("shared")
            expect(page.locator("main")).not_to_contain_text("sip.carrier.example")
            assert_accessible(page)
            page.goto(f"{base}/portal/routing/outbound/add/")
            assert_accessible(page)
            page.fill("#id_name", "National")
            page.fill("#id_pattern", "NXXNXXXXXX")
            page.fill("#id_prepend", "+1")
            page.select_option("#id_trunk_1", label=TRUNK)
            page.get_by_role("button", name="Create rule").click()
            expect(page.locator(".msg--success")).to_contain_text("Outbound rule National saved")
            expect(page.get_by_test_id("outbound-rules")).to_contain_text(TRUNK)
            assert_accessible(page)

            # --- office hours: Mondays 09:00 to 17:00 -----------------------------------------
            page.goto(f"{base}/portal/routing/hours/")
            page.get_by_label("Use office hours").check()
            page.get_by_label("Monday, period 1, opens").fill("09:00")
            page.get_by_label("Monday, period 1, closes").fill("17:00")
            page.get_by_role("button", name="Save office hours").click()
            expect(page.locator(".msg--success")).to_contain_text("Office hours saved")
            expect(page.get_by_label("Monday, period 1, opens")).to_have_value("09:00")
            expect(page.get_by_label("Monday, period 1, closes")).to_have_value("17:00")
            expect(page.get_by_label("Use office hours")).to_be_checked()
            assert_accessible(page)

            # The other routing pages, empty, pass axe-core too.
            for path in ("blacklist", "emergency", "settings"):
                page.goto(f"{base}/portal/routing/{path}/")
                assert_accessible(page)

    finally:
        _forget_carriers()
