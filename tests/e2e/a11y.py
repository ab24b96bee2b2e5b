"""Checks every browser test can run on a page: axe-core's accessibility rules and the phone-width
layout (no horizontal scroll at 390 px)."""

from axe_playwright_python.sync_playwright import Axe

#: axe-core impacts that fail a test; "moderate" and "minor" findings are reported, not fatal.
FAILING_IMPACTS = frozenset({"serious", "critical"})
PHONE_WIDTH = 390

_axe = Axe()


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page as shown, one line each."""
    response = _axe.run(page).response
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes'][:5]]}"
        for v in response["violations"]
        if v["impact"] in FAILING_IMPACTS
    ]


def assert_accessible(page) -> None:
    found = serious_violations(page)
    assert not found, f"{page.url}:\n" + "\n".join(found)


def horizontal_overflow(page) -> int:
    """How many pixels the document is wider than the viewport (0: no horizontal scroll)."""
    return page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
