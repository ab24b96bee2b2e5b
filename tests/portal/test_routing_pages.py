"""A tenant administrator's routing pages on the tenant's host: numbers, trunks, inbound and
outbound rules, office hours and holidays, blacklist, emergency numbers, routing settings, and
the extension's call barring. Set-up through the real actions; results read from the tenant's
schema; every other tenant's rows stay out of reach (404)."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pbx.audit import SYSTEM
from routing import actions as routing_actions
from routing.models import (
    BlacklistEntry,
    EmergencyNumber,
    Holiday,
    InboundRule,
    OutboundRule,
    RoutingSettings,
)
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

R = "/portal/routing"


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


@pytest.fixture
def carrier(world):
    """A provider trunk shared with Acme, a second one, Beta's own trunk, and three numbers of
    Acme's and one of Beta's."""
    ip = {"kind": "ip", "host": "sip.carrier.test", "addresses": ["192.0.2.0/24"]}
    shared = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields={"name": "Main carrier", **ip}, shared_with=[world.tenant_a]
    )
    backup = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields={"name": "Backup carrier", **ip}, shared_with=[world.tenant_a]
    )
    beta_own = trunk_actions.do_create_trunk(
        actor=SYSTEM,
        fields={"name": "Beta private", "username": "beta-acct", **ip},
        tenant=world.tenant_b,
    )
    trunk_actions.do_add_numbers(
        actor=SYSTEM, number="+12125550100", last="+12125550102", tenant=world.tenant_a
    )
    trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550199", tenant=world.tenant_b)
    return {"shared": shared, "backup": backup, "beta": beta_own}


def in_hours_post(**kw) -> dict:
    return {
        "name": "Main line",
        "priority": "100",
        "enabled": "on",
        "match": "exact",
        "number": "+12125550100",
        "number_end": "",
        "caller": "",
        "use_hours": "on",
        "in_hours_kind": "extension",
        "in_hours_target": "101",
        "out_of_hours_kind": "extension",
        "out_of_hours_target": "102",
        "holiday_kind": "",
        "holiday_target": "",
        **kw,
    }


# --- numbers and trunks (read-only) ---------------------------------------------------------


def test_numbers_page_empty_then_listed_with_a_make_a_rule_link(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/numbers/").content.decode()
    assert "No numbers yet: your provider assigns DID numbers" in html
    trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550100", tenant=world.tenant_a)
    trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550199", tenant=world.tenant_b)
    html = p.get(f"{R}/numbers/").content.decode()
    assert "+12125550199" not in html
    assert f'href="{R}/inbound/add/?number=%2B12125550100"' in html
    form = p.get(f"{R}/inbound/add/", {"number": "+12125550100"}).content.decode()
    assert 'value="+12125550100"' in form
    with in_tenant(world.tenant_a):
        routing_actions.do_create(
            "inbound",
            actor=SYSTEM,
            fields={
                "name": "Sales",
                "number": "+12125550100",
                "in_hours": {"kind": "extension", "target": "101"},
            },
        )
        rule = InboundRule.objects.get()
    html = p.get(f"{R}/numbers/").content.decode()
    assert f'href="{R}/inbound/{rule.pk}/">Sales</a>' in html


def test_trunks_page_shows_usable_trunks_without_credentials(portal, world, carrier):
    html = portal(world.a_admin, world.tenant_a).get(f"{R}/trunks/").content.decode()
    assert "Main carrier" in html
    assert "shared by your provider" in html
    assert "Beta private" not in html
    assert "sip.carrier.test" not in html
    beta = portal(world.b_admin, world.tenant_b).get(f"{R}/trunks/").content.decode()
    assert "Beta private" in beta
    assert "your own" in beta
    assert "Main carrier" not in beta
    assert "beta-acct" not in beta
    empty = portal(world.a_admin, world.tenant_a)
    trunk_actions.do_delete_trunk(carrier["shared"], actor=SYSTEM)
    trunk_actions.do_delete_trunk(carrier["backup"], actor=SYSTEM)
    assert (
        "No trunks yet: your provider connects a carrier"
        in empty.get(f"{R}/trunks/").content.decode()
    )


# --- inbound rules ---------------------------------------------------------------------------


def test_inbound_rules_create_edit_invalid_and_delete(portal, world, carrier, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/inbound/").content.decode()
    assert "No inbound rules yet: calls to your numbers are refused until you add one" in html
    form = p.get(f"{R}/inbound/add/").content.decode()
    # The destination pickers: every registered kind, and the targets suggested.
    assert '<option value="extension"' in form
    assert '<option value="external"' in form
    assert '<option value="101">' in form
    assert p.post(f"{R}/inbound/add/", in_hours_post()).status_code == 302
    with in_tenant(world.tenant_a):
        rule = InboundRule.objects.get()
        assert rule.in_hours == {"kind": "extension", "target": "101"}
        assert rule.out_of_hours == {"kind": "extension", "target": "102"}
        assert rule.holiday is None
    html = p.get(f"{R}/inbound/").content.decode()
    assert "Extension 101" in html
    # Invalid: a number that is Beta's, an extension that does not exist.
    bad = in_hours_post(number="+12125550199", name="Other")
    html = p.post(f"{R}/inbound/add/", bad).content.decode()
    assert field_errors(html, "number") == ["+12125550199 is not one of this tenant's numbers"]
    html = p.post(f"{R}/inbound/add/", in_hours_post(in_hours_target="999")).content.decode()
    assert field_errors(html, "in_hours_target") == ["no extension 999"]
    # An overlapping range is refused on the number field.
    rng = in_hours_post(
        name="Range", match="range", number="+12125550100", number_end="+12125550102"
    )
    html = p.post(f"{R}/inbound/add/", rng).content.decode()
    assert field_errors(html, "number") == ["overlaps rule 'Main line' (+12125550100)"]
    # Edit: to an outside number out of hours.
    changed = in_hours_post(out_of_hours_kind="external", out_of_hours_target="+1 212 555 0177")
    assert p.post(f"{R}/inbound/{rule.pk}/", changed).status_code == 302
    with in_tenant(world.tenant_a):
        rule.refresh_from_db()
        assert rule.out_of_hours == {"kind": "external", "target": "+12125550177"}
        assert InboundRule.objects.count() == 1
    csv_text = b"".join(p.get(f"{R}/inbound/", {"export": "csv"}).streaming_content).decode()
    assert "Main line" in csv_text
    assert "Outside number +12125550177" in csv_text
    assert p.post(f"{R}/inbound/{rule.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not InboundRule.objects.exists()


def test_another_tenants_rules_are_404(portal, world, carrier, in_tenant):
    with in_tenant(world.tenant_a):
        inbound = routing_actions.do_create(
            "inbound",
            actor=SYSTEM,
            fields={
                "name": "A",
                "number": "+12125550101",
                "in_hours": {"kind": "extension", "target": "101"},
            },
        )
        outbound = routing_actions.do_create(
            "outbound", actor=SYSTEM, fields={"name": "A out", "trunks": [carrier["shared"].pk]}
        )
        holiday = routing_actions.do_create(
            "holiday", actor=SYSTEM, fields={"name": "X", "start": "2030-01-01"}
        )
    b = portal(world.b_admin, world.tenant_b)
    for path in (f"{R}/inbound/{inbound.pk}/", f"{R}/outbound/{outbound.pk}/"):
        assert b.get(path).status_code == 404
    assert b.post(f"{R}/inbound/{inbound.pk}/delete/").status_code == 404
    assert b.post(f"{R}/outbound/{outbound.pk}/delete/").status_code == 404
    assert b.post(f"{R}/holidays/{holiday.pk}/delete/").status_code == 404
    with in_tenant(world.tenant_a):
        assert InboundRule.objects.count() == 1
        assert OutboundRule.objects.count() == 1
        assert Holiday.objects.count() == 1
    # A tenant user (no settings permission) and the provider's host: no routing pages.
    user = portal(world.a_user, world.tenant_a)
    for page in (
        "numbers",
        "trunks",
        "inbound",
        "outbound",
        "hours",
        "blacklist",
        "emergency",
        "settings",
    ):
        assert user.get(f"{R}/{page}/").status_code == 404
        assert portal(world.sysadmin).get(f"{R}/{page}/").status_code == 404
    # Beta's outbound form offers only its own trunk; a forged id of Acme's is refused.
    form = b.get(f"{R}/outbound/add/").content.decode()
    assert "Beta private" in form
    assert "Main carrier" not in form
    html = b.post(
        f"{R}/outbound/add/",
        {
            "name": "steal",
            "priority": "1",
            "min_length": "0",
            "max_length": "0",
            "strip": "0",
            "trunk_1": carrier["shared"].pk,
        },
    ).content.decode()
    assert field_errors(html, "trunk_1")
    with in_tenant(world.tenant_b):
        assert not OutboundRule.objects.exists()


# --- outbound rules --------------------------------------------------------------------------


def test_outbound_rules_with_trunks_in_failover_order(portal, world, carrier, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    assert (
        "No outbound rules yet: outside numbers cannot be called"
        in p.get(f"{R}/outbound/").content.decode()
    )
    post = {
        "name": "National",
        "priority": "10",
        "enabled": "on",
        "prefix": "",
        "pattern": "NXXNXXXXXX",
        "min_length": "10",
        "max_length": "10",
        "extensions": "101, 102",
        "strip": "0",
        "prepend": "+1",
        "caller_id": "+1 212 555 0100",
        "trunk_1": carrier["backup"].pk,
        "trunk_2": carrier["shared"].pk,
    }
    assert p.post(f"{R}/outbound/add/", post).status_code == 302
    with in_tenant(world.tenant_a):
        rule = OutboundRule.objects.get()
        assert rule.trunks == [carrier["backup"].pk, carrier["shared"].pk]
        assert rule.extensions == ["101", "102"]
        assert rule.caller_id == "+12125550100"
    html = p.get(f"{R}/outbound/").content.decode()
    assert re.search(r"<li>Backup carrier</li><li>Main carrier</li>", html)
    # Invalid: no trunk, a bad pattern, an unknown extension, the same trunk twice.
    bad = {**post, "trunk_1": "", "trunk_2": "", "pattern": "1[", "extensions": "777"}
    html = p.post(f"{R}/outbound/add/", bad).content.decode()
    assert field_errors(html, "trunk_1") == ["This field is required."]
    twice = {**post, "trunk_2": carrier["backup"].pk, "pattern": "1[", "extensions": "777"}
    html = p.post(f"{R}/outbound/add/", twice).content.decode()
    assert field_errors(html, "trunk_2") == ["Each trunk once."]
    html = p.post(
        f"{R}/outbound/add/", {**post, "pattern": "1[", "extensions": "777"}
    ).content.decode()
    assert field_errors(html, "pattern")
    assert field_errors(html, "extensions") == ["no extension 777"]
    # Edit: one trunk only; then delete.
    edit = {**post, "trunk_1": carrier["shared"].pk, "trunk_2": ""}
    assert p.post(f"{R}/outbound/{rule.pk}/", edit).status_code == 302
    with in_tenant(world.tenant_a):
        rule.refresh_from_db()
        assert rule.trunks == [carrier["shared"].pk]
    assert p.post(f"{R}/outbound/{rule.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not OutboundRule.objects.exists()


# --- office hours and holidays ---------------------------------------------------------------


def test_office_hours_grid_in_minutes_and_holidays(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/hours/").content.decode()
    assert f'data-testid="time-zone">{world.tenant_a.time_zone}<' in html
    assert "No holidays yet" in html
    post = {
        "form": "hours",
        "hours_enabled": "on",
        "d0p0_start": "09:00",
        "d0p0_end": "17:30",
        "d1p0_start": "13:00",
        "d1p0_end": "17:00",
        "d1p1_start": "08:00",
        "d1p1_end": "12:00",
        "d5p0_start": "22:00",
        "d5p0_end": "00:00",
    }
    assert p.post(f"{R}/hours/", post).status_code == 302
    with in_tenant(world.tenant_a):
        settings = RoutingSettings.load()
        assert settings.hours_enabled is True
        assert settings.weekly == [
            [[540, 1050]],
            [[480, 720], [780, 1020]],
            [],
            [],
            [],
            [[1320, 1440]],
            [],
        ]
    html = p.get(f"{R}/hours/").content.decode()
    assert 'name="d1p0_start" value="08:00"' in html
    # Invalid: closing before opening, a half-filled period, overlapping periods.
    html = p.post(
        f"{R}/hours/", {**post, "d2p0_start": "18:00", "d2p0_end": "09:00", "d3p0_start": "09:00"}
    ).content.decode()
    assert field_errors(html, "d2p0_end") == ["After the opening time."]
    assert field_errors(html, "d3p0_end") == ["A time, HH:MM."]
    html = p.post(
        f"{R}/hours/", {**post, "d0p1_start": "17:00", "d0p1_end": "18:00"}
    ).content.decode()
    assert "periods of one day must not overlap" in html
    with in_tenant(world.tenant_a):
        assert RoutingSettings.load().weekly[0] == [[540, 1050]]
    # Holidays: add, invalid, delete.
    holiday = {
        "form": "holiday",
        "name": "New Year",
        "start": "2031-01-01",
        "end": "",
        "yearly": "on",
    }
    assert p.post(f"{R}/hours/", holiday).status_code == 302
    html = p.post(
        f"{R}/hours/", {**holiday, "name": "Bad", "start": "2031-02-10", "end": "2031-02-01"}
    ).content.decode()
    assert field_errors(html, "end") == ["not before the first day"]
    with in_tenant(world.tenant_a):
        day = Holiday.objects.get()
        assert (str(day.start), str(day.end), day.yearly) == ("2031-01-01", "2031-01-01", True)
    assert "New Year" in p.get(f"{R}/hours/").content.decode()
    assert p.post(f"{R}/holidays/{day.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not Holiday.objects.exists()


# --- blacklist, emergency numbers, settings --------------------------------------------------


def test_blacklist_add_duplicate_invalid_and_delete(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    assert "No blocked callers" in p.get(f"{R}/blacklist/").content.decode()
    post = {"number": "+1 900 555 0100", "action": "reject", "note": "spam"}
    assert p.post(f"{R}/blacklist/", post).status_code == 302
    html = p.post(f"{R}/blacklist/", post).content.decode()
    assert field_errors(html, "number") == ["exists"]
    html = p.post(f"{R}/blacklist/", {"number": "12x", "action": "busy"}).content.decode()
    assert field_errors(html, "number")
    assert (
        p.post(f"{R}/blacklist/", {"number": "+1900", "prefix": "on", "action": "busy"}).status_code
        == 302
    )
    with in_tenant(world.tenant_a):
        entries = {(e.number, e.prefix, e.action) for e in BlacklistEntry.objects.all()}
        assert entries == {("+19005550100", False, "reject"), ("+1900", True, "busy")}
        pk = BlacklistEntry.objects.get(prefix=True).pk
    assert "+19005550100" in p.get(f"{R}/blacklist/").content.decode()
    assert p.post(f"{R}/blacklist/{pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert BlacklistEntry.objects.count() == 1


def test_emergency_numbers_add_invalid_and_delete(portal, world, carrier, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    assert "No emergency numbers yet" in p.get(f"{R}/emergency/").content.decode()
    post = {"number": "911", "caller_id": "+1 212 555 0100", "trunks": [carrier["shared"].pk]}
    assert p.post(f"{R}/emergency/", post).status_code == 302
    html = p.post(f"{R}/emergency/", {"number": "9"}).content.decode()
    assert field_errors(html, "number") == ["2 to 6 digits, like 911, 112 or 999"]
    html = p.post(f"{R}/emergency/", {"number": "101"}).content.decode()
    assert field_errors(html, "number") == ["extension 101 has this number"]
    with in_tenant(world.tenant_a):
        entry = EmergencyNumber.objects.get()
        assert (entry.number, entry.caller_id, entry.trunks) == (
            "911",
            "+12125550100",
            [carrier["shared"].pk],
        )
    assert "Main carrier" in p.get(f"{R}/emergency/").content.decode()
    assert p.post(f"{R}/emergency/{entry.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not EmergencyNumber.objects.exists()


def test_routing_settings_save_and_field_errors(portal, world, in_tenant):
    from tenants.models import Tenant

    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/settings/").content.decode()
    assert 'value="*67"' in html
    post = {
        "country": "us",
        "privacy_code": "*82",
        "caller_id": "212 555 0100",
        "emergency_caller_id": "",
        "allowed_countries": "us, ca",
        "blocked_prefixes": "+1900\n+1976",
    }
    assert p.post(f"{R}/settings/", post).status_code == 302
    assert Tenant.objects.get(pk=world.tenant_a.pk).country == "US"
    with in_tenant(world.tenant_a):
        s = RoutingSettings.load()
        assert (s.privacy_code, s.caller_id) == ("*82", "+12125550100")
        assert s.allowed_countries == ["CA", "US"]
        assert s.blocked_prefixes == ["+1900", "+1976"]
    bad = {**post, "privacy_code": "67", "country": "XX", "blocked_prefixes": "1900"}
    html = p.post(f"{R}/settings/", bad).content.decode()
    assert field_errors(html, "privacy_code") == ["* or # and 1 to 4 digits, like *67"]
    assert field_errors(html, "country")
    assert field_errors(html, "blocked_prefixes")
    with in_tenant(world.tenant_a):
        assert RoutingSettings.load().privacy_code == "*82"


def test_menu_and_extension_call_barring(portal, world, in_tenant):
    from telephony.models import Extension

    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/inbound/").content.decode()
    nav = re.findall(r'<nav class="sidenav".*?</nav>', html, re.S)[0]
    labels = re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)
    for label in (
        "Numbers",
        "Inbound rules",
        "Outbound rules",
        "Office hours",
        "Blacklist",
        "Emergency numbers",
        "Trunks",
        "Call routing",
    ):
        assert label in labels
    assert f'href="{R}/inbound/" aria-current="page"' in nav
    user_nav = portal(world.a_user, world.tenant_a).get("/portal/me/").content.decode()
    assert "Inbound rules" not in user_nav
    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    form = p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    assert "<legend>Outside calls</legend>" in form
    post = {
        "display_name": ext.display_name,
        "enabled": "on",
        "no_answer_timeout": "20",
        "call_scope": "national",
        "caller_id_number": "+1 212 555 0101",
    }
    assert p.post(f"/portal/extensions/{ext.pk}/", post).status_code == 302
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
        assert (ext.call_scope, ext.caller_id_number) == ("national", "+12125550101")
    html = p.post(
        f"/portal/extensions/{ext.pk}/", {**post, "caller_id_number": "abc"}
    ).content.decode()
    assert field_errors(html, "caller_id_number")
