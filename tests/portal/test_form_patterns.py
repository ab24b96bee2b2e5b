"""The portal's forms as people read them: sections with titles, human labels, required marks,
searchable lists for time zones, languages and currencies, extension pickers, Cancel on every
form; and the rules behind the lists are the actions' (a value typed past the list is judged)."""

import re

import pytest
from django_tenants.utils import tenant_context

from tenants.models import Tenant
from tests.portal.test_portal_views import _tenant_form

pytestmark = pytest.mark.django_db


def _legends(html: str) -> list[str]:
    """The sections' visible titles (the untitled first group's legend is for screen readers)."""
    return re.findall(r"<legend>([^<]+)</legend>", html)


def _datalist(html: str, field: str) -> list[str]:
    match = re.search(rf'<datalist id="id_{field}-list">(.*?)</datalist>', html, re.S)
    assert match, f"no list of suggestions for {field}"
    return re.findall(r'<option value="([^"]*)"', match.group(1))


def test_tenant_form_is_in_titled_sections_with_human_labels(portal, world):
    html = portal(world.sysadmin).get("/portal/tenants/add/").content.decode()
    assert _legends(html) == [
        "Addresses",
        "First administrator",
        "Quotas",
        "Features",
        "Language and region",
        "Extension numbers",
        "Password rules",
    ]
    # Labels are words, not field names.
    for raw in ("Max ivrs", "Pw min length", "Ext min length", "Feature tenant trunks"):
        assert raw not in html
    assert ">IVR menus<" in html
    assert ">Shortest extension (digits)<" in html
    # Required fields carry the mark (and the browser's own required attribute); the form
    # explains the mark; optional ones have neither.
    assert re.search(r'for="id_name">Company name<span class="req"', html)
    assert re.search(r'<input[^>]*name="name"[^>]*required', html)
    assert not re.search(r'for="id_admin_email">[^<]*<span class="req"', html)
    assert "are required" in html
    # A way back without saving.
    assert re.search(r'<a class="button" href="/portal/tenants/">Cancel</a>', html)


def test_locale_lists_are_searchable_and_readable(portal, world):
    html = portal(world.sysadmin).get("/portal/tenants/add/").content.decode()
    zones = _datalist(html, "time_zone")
    assert "Europe/Berlin" in zones
    assert "America/New_York" in zones
    assert zones[0] == "UTC"
    assert "US/Eastern" not in zones  # legacy aliases are not offered
    assert re.search(r'<option value="Europe/Berlin">Europe/Berlin \(UTC\+0[12]:00\)', html)
    assert "de" in _datalist(html, "language")
    assert re.search(r'<option value="de">German \(Deutsch\)</option>', html)
    currencies = _datalist(html, "currency")
    assert {"EUR", "USD", "GBP", "JPY"} <= set(currencies)
    assert "DEM" not in currencies  # no longer in use
    assert '<option value="EUR">EUR · Euro</option>' in html


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "XYZ"), ("language", "klingon"), ("time_zone", "Mars/Olympus")],
)
def test_a_value_typed_past_the_list_is_judged_by_the_action(portal, world, field, value):
    response = portal(world.sysadmin).post("/portal/tenants/add/", _tenant_form(**{field: value}))
    assert response.status_code == 200
    assert f'data-field="{field}"' in response.content.decode()
    assert not Tenant.objects.filter(slug="gamma").exists()


@pytest.mark.parametrize(
    ("field", "value"), [("pw_min_length", 3), ("sip_pw_min_length", 7), ("pw_min_length", 500)]
)
def test_password_length_rules_have_a_range_in_the_api_too(api, world, field, value):
    response = api(world.sysadmin).patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {field: value})
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_company_form_offers_the_same_lists(portal, world):
    html = portal(world.a_admin, world.tenant_a).get("/portal/company/").content.decode()
    assert "Europe/Berlin" in _datalist(html, "time_zone")
    assert "fr" in _datalist(html, "language")
    assert _legends(html) == ["Language and region", "Extension numbers"]


def test_forward_targets_pick_from_the_tenants_own_extensions(portal, world):
    from telephony.models import Extension

    with tenant_context(world.tenant_a):
        own = Extension.objects.get(number="101")
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/extensions/{own.pk}/").content.decode()
    for field in ("forward_always", "forward_busy", "forward_no_answer"):
        # The other extensions of tenant A; not the extension itself; never tenant B's.
        assert _datalist(html, field) == ["102"]
    assert _legends(html) == [
        "Extension",
        "Contact",
        "Call forwarding",
        "Outside calls",
        "Call recording",
        "Phones and web softphone",
        "Passwords",
    ]
    add = p.get("/portal/extensions/add/").content.decode()
    assert _datalist(add, "forward_busy") == ["101", "102"]


def test_forward_picker_on_the_users_own_page(portal, world, me):
    """``me``: extension 103 of tenant A with its own portal user (tests/portal/conftest.py)."""
    html = portal(me.user, world.tenant_a).get("/portal/me/").content.decode()
    assert _datalist(html, "forward_no_answer") == ["101", "102"]


def test_delete_confirmations_say_what_else_goes(portal, world):
    html = portal(world.sysadmin).get("/portal/dealers/").content.decode()
    assert "cannot be deleted" in html
    assert "brand" in html
    html = portal(world.a_admin, world.tenant_a).get("/portal/users/").content.decode()
    assert "signed out everywhere" in html


def test_audit_entries_read_as_words(portal, world):
    from pbx.templatetags.portal import audit_words

    assert audit_words("tenant.create") == "created tenant"
    assert audit_words("sip_ban.clear") == "lifted SIP ban"
    assert audit_words("extension.reveal_sip_password") == "showed the SIP password of extension"
    assert audit_words("something.odd") == "something.odd"  # unknown: shown as recorded
    html = portal(world.sysadmin).get("/portal/overview/").content.decode()
    assert "created tenant" in html
    assert "<code>tenant.create</code>" not in html
