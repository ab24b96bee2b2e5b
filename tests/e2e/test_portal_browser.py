"""End to end, in a real browser against a real server.

User story: a tenant administrator signs in on their company's own host name, adds an extension
in the portal, finds it in the extension list, and an API client signed in on the same host
finds the same extension over the REST API.

The server is the web server ``make run`` starts (uvicorn) in a subprocess on a database of its
own (not pytest-django's test database, whose open transactions a separate process could not
see), prepared by the same management commands as ``make run``.
"""

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    FETCH_JSON,
    api_sign_in,
    chromium_page,
    fill_sign_in,
)


@pytest.mark.e2e
def test_tenant_admin_adds_an_extension_and_finds_it_in_portal_and_api(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    number = "2468"
    with chromium_page(timeout=15_000) as page:
        # Sign in on the tenant's own host.
        page.goto(f"{base}/portal/")
        expect(page).to_have_url(f"{base}/accounts/login/?next=/portal/")
        fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page).to_have_url(f"{base}/portal/dashboard/")  # where an admin lands
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Extensions").click()
        expect(page).to_have_url(f"{base}/portal/extensions/")
        expect(page.get_by_test_id("current-user")).to_contain_text(ADMIN_EMAIL)
        # Our stylesheet and htmx are served by the same server (no CDN).
        assert page.evaluate("typeof window.htmx") == "object"
        topbar = page.evaluate("getComputedStyle(document.querySelector('.topbar')).display")
        assert topbar == "flex"

        # Add an extension; its generated SIP password is shown once.
        page.click("text=Add extension")
        page.fill("#id_number", number)
        page.fill("#id_display_name", "Front Desk")
        page.click("button:has-text('Create extension')")
        expect(page.get_by_role("heading", name=f"Extension {number} created")).to_be_visible()
        sip_password = page.get_by_test_id("sip-password").inner_text()
        assert len(sip_password) >= 16

        # Find it in the list.
        page.click("text=Back to extensions")
        page.fill("input[name=q]", number)
        page.click("form.search button")
        row = page.get_by_test_id(f"extension-{number}")
        expect(row).to_contain_text("Front Desk")
        expect(page.locator("tbody tr")).to_have_count(1)

        # And over the REST API, on the same host, with a bearer token.
        token = api_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        listing = page.evaluate(
            FETCH_JSON,
            [
                f"/api/v1/extensions/?q={number}",
                {"headers": {"Authorization": f"Bearer {token}"}},
            ],
        )
        assert listing["status"] == 200, listing
        found = [e for e in listing["body"]["items"] if e["number"] == number]
        assert len(found) == 1
        assert found[0]["display_name"] == "Front Desk"


@pytest.mark.e2e
def test_api_docs_render_with_no_network_but_the_pbx(live_pbx):
    """User story: an integrator on a network without Internet access (or a privacy-minded one)
    opens the API docs: Swagger UI renders, every file coming from the PBX itself."""
    from urllib.parse import urlsplit

    from playwright.sync_api import expect

    base = live_pbx["base"]
    ours = urlsplit(base).hostname
    elsewhere: list[str] = []

    def only_ours(route):
        host = urlsplit(route.request.url).hostname
        if host == ours:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with chromium_page(timeout=15_000) as page:
        page.route("**/*", only_ours)
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        page.goto(f"{base}/api/v1/docs/")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("PBX REST API")
        expect(page.locator(".opblock-tag").first).to_be_visible()
        assert elsewhere == []
        assert failed == []
