"""Every portal page, as the provider's system admin, a dealer admin and a tenant admin see it,
in Chromium: axe-core finds no serious or critical accessibility violation, and at a phone's
width (390 px) the page does not scroll sideways (tables scroll inside their own container).

The pages are found by following the portal's own links from its first page (the menu, the
lists, the rows, the detail pages), so a page added later is checked without being listed here.
One page per URL shape is visited (``/portal/extensions/7/`` stands for every extension).
"""

import re
from urllib.parse import urljoin, urlsplit

import pytest

from tests.e2e.a11y import PHONE_WIDTH, horizontal_overflow, serious_violations
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DEALER_EMAIL,
    DEALER_PASSWORD,
    SYSTEM_ADMIN_EMAIL,
    SYSTEM_ADMIN_PASSWORD,
    chromium_page,
    sign_in,
)

#: Links that are not pages to look at: files, the switch into a tenant (one-time tokens),
#: signing out.
NOT_PAGES = re.compile(r"(/export/|\.csv$|/switch|/accounts/logout)")
MAX_PAGES = 90  # the pages reachable from the menus, with room for a few more


def _shape(path: str) -> str:
    """The URL's shape: a path segment holding a digit is an object's id (or a phone model)."""
    return "/".join("N" if re.search(r"\d", part) else part for part in path.split("/"))


def _links(page, origin: str) -> list[str]:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    found = []
    for href in hrefs:
        url = urljoin(page.url, href)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != origin or not parts.path.startswith("/portal/"):
            continue
        if NOT_PAGES.search(parts.path):
            continue
        found.append(parts.path)
    return found


def _walk(page, base: str, screenshots) -> dict[str, list[str]]:
    """Visit every page shape reachable from /portal/; return the problems found per URL."""
    problems: dict[str, list[str]] = {}
    queue, seen = ["/portal/"], set()
    visited = 0
    while queue and visited < MAX_PAGES:
        path = queue.pop(0)
        if _shape(path) in seen:
            continue
        seen.add(_shape(path))
        response = page.goto(f"{base}{path}")
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        visited += 1
        found = serious_violations(page)
        page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
        overflow = horizontal_overflow(page)
        if overflow > 0:
            found.append(f"scrolls sideways by {overflow}px at {PHONE_WIDTH}px wide")
        name = _shape(urlsplit(page.url).path).strip("/").replace("/", "_") or "index"
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        page.set_viewport_size({"width": 1280, "height": 900})
        if found:
            problems[page.url] = found
        queue.extend(_links(page, base))
    assert visited >= 5, f"only {visited} pages were reachable from {base}/portal/"
    left = {_shape(p) for p in queue} - seen
    assert not left, f"more than {MAX_PAGES} page shapes; not checked: {sorted(left)}"
    return problems


def _add_a_phone(page, base: str) -> None:
    page.goto(f"{base}/portal/phones/add/")
    page.fill("#id_mac", "00:15:65:a1:1e:01")
    page.select_option("#id_model_id", "yealink-t54w")
    page.fill("#id_extension", "1001")
    page.get_by_role("button", name="Add phone").click()
    page.wait_for_load_state()
    assert re.search(r"/portal/phones/\d+/$", page.url), f"the phone was not added: {page.url}"


@pytest.mark.e2e
@pytest.mark.parametrize("who", ["system admin", "dealer admin", "tenant admin"])
def test_every_portal_page_is_accessible_and_fits_a_phone(live_pbx, who, tmp_path, request):
    if who == "system admin":
        base, email, password = live_pbx["provider"], SYSTEM_ADMIN_EMAIL, SYSTEM_ADMIN_PASSWORD
    elif who == "dealer admin":
        request.getfixturevalue("live_dealer")
        base, email, password = live_pbx["provider"], DEALER_EMAIL, DEALER_PASSWORD
    else:
        base, email, password = live_pbx["base"], ADMIN_EMAIL, ADMIN_PASSWORD
    with chromium_page(timeout=15_000) as page:
        sign_in(page, base, email, password)
        assert "/accounts/login/" not in page.url, "sign-in failed"
        if who == "tenant admin":
            _add_a_phone(page, base)  # so that a phone's own pages are walked too
        problems = _walk(page, base, tmp_path)
    report = "\n".join(f"{url}\n  " + "\n  ".join(found) for url, found in problems.items())
    assert not problems, f"{len(problems)} pages with problems:\n{report}"
