"""End to end, in a real browser: the extension list shows a "DND" badge only on extensions
whose do-not-disturb is on.

User story: a tenant administrator opens the extension list; no extension has DND on, so no
badge is visible (the bug: every row showed one, because the badge's CSS ``display`` beat the
``hidden`` attribute). The user of 1001 turns DND on (here over the REST API); the list then
shows the badge on 1001 only, and hides it again when DND is turned off.
"""

import json

import pytest

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    FETCH_JSON,
    api_sign_in,
    chromium_page,
    fill_sign_in,
)


def _api(page, method: str, path: str, token: str, body: dict | None = None) -> dict:
    options: dict = {"method": method, "headers": {"Authorization": f"Bearer {token}"}}
    if body is not None:
        options["headers"]["Content-Type"] = "application/json"
        options["body"] = json.dumps(body)
    answer = page.evaluate(FETCH_JSON, [path, options])
    assert answer["status"] < 300, answer
    return answer["body"]


@pytest.mark.e2e
def test_dnd_badge_follows_the_real_state(live_pbx):
    from playwright.sync_api import expect

    base = live_pbx["base"]
    with chromium_page(timeout=15_000) as page:
        page.goto(f"{base}/portal/")
        fill_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        expect(page).to_have_url(f"{base}/portal/dashboard/")  # where an admin lands
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Extensions").click()
        expect(page).to_have_url(f"{base}/portal/extensions/")

        def badge(number: str):
            return page.get_by_test_id(f"extension-{number}").locator('[data-live="dnd"]')

        for number in ("1001", "1002", "1003"):
            expect(badge(number)).to_have_count(1)
            expect(badge(number)).to_be_hidden()

        token = api_sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
        items = _api(page, "GET", "/api/v1/extensions/?q=1001", token)["items"]
        ext_id = next(e["id"] for e in items if e["number"] == "1001")
        try:
            _api(page, "PATCH", f"/api/v1/extensions/{ext_id}/", token, {"dnd": True})
            page.reload()
            expect(badge("1001")).to_be_visible()
            expect(badge("1002")).to_be_hidden()
        finally:
            # The server is shared by the session's browser tests: leave 1001 as found.
            _api(page, "PATCH", f"/api/v1/extensions/{ext_id}/", token, {"dnd": False})
        page.reload()
        expect(badge("1001")).to_be_hidden()
