"""CSV export of the portal's lists: an administrator downloads exactly what the list shows —
its search, sort and filters, every page of it — with times in the tenant's time zone, cells a
spreadsheet would run as formulas defused, and no secret in any column. The export is the list
page's own view, so it is 404 wherever the list is."""

from __future__ import annotations

import csv
import io
import json
import time
import zoneinfo
from datetime import date

import pytest
from django.utils import timezone

from pbx.audit import SYSTEM
from pbx.portal.export import cell, safe_cell
from tests.portal.calls_helpers import add_cdr

SIP_PASSWORD = "Sip-Secret-Pass-77"  # tests/conftest.py's extensions have this one

TENANT_LISTS = {
    "/portal/extensions/": "extensions",
    "/portal/phones/": "phones",
    "/portal/users/": "users",
    "/portal/roles/": "roles",
    "/portal/audit/": "audit-log",
    "/portal/webhooks/": "webhooks",
    "/portal/webhooks/deliveries/": "webhook-deliveries",
    "/portal/registrations/": "registrations",
    "/portal/calls/": "active-calls",
    "/portal/cdrs/": "call-history",
}
PROVIDER_LISTS = {
    "/portal/tenants/": "tenants",
    "/portal/dealers/": "dealers",
    "/portal/sip-bans/": "sip-bans",
}


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def export(p, path, **params):
    return p.get(path, {**params, "export": "csv"})


# --- every list has one, named after the tenant and the day -----------------------------------


@pytest.mark.parametrize(("path", "name"), TENANT_LISTS.items())
def test_every_tenant_list_exports(portal, world, live, path, name):
    p = portal(world.a_admin, world.tenant_a)
    page = p.get(path).content.decode()
    assert 'data-testid="export-csv"' in page  # the link is on the page
    response = export(p, path)
    rows = rows_of(response)
    assert rows
    assert rows[0]
    assert all(rows[0])
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="acme-{name}-{today}.csv"'
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("path", "name"), PROVIDER_LISTS.items())
def test_every_provider_list_exports(portal, world, live, path, name):
    response = export(portal(world.sysadmin), path)
    rows_of(response)
    assert f'filename="platform-{name}-' in response["Content-Disposition"]


def test_my_calls_export_has_only_my_calls(portal, world, in_tenant):
    from telephony.actions import do_update_extension
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
        ext.user = world.a_user
        ext.save(update_fields=["user"])
        do_update_extension(ext, actor=SYSTEM, display_name="Staff")
    add_cdr(world.tenant_a, "mine-1", "101", "555")
    add_cdr(world.tenant_a, "theirs-1", "102", "556")
    rows = rows_of(export(portal(world.a_user, world.tenant_a), "/portal/me/calls/"))
    call_ids = [r[-1] for r in rows[1:]]
    assert call_ids == ["mine-1"]


# --- the rows are the list's rows: filters, search, sort, every page --------------------------


def test_call_history_export_is_the_filtered_list_on_every_page(portal, world, in_tenant):
    from telephony.models import Cdr

    for i in range(32):  # more than a page (25) of calls by 101
        add_cdr(world.tenant_a, f"exp-{i:02d}", "101", f"55{i:02d}", ago=3600 + i * 60)
    for i in range(4):  # and some by 102, which the filter leaves out
        add_cdr(world.tenant_a, f"other-{i}", "102", "777", ago=600 + i)
    add_cdr(world.tenant_a, "missed-1", "101", "5599", status="missed", ago=30)
    p = portal(world.a_admin, world.tenant_a)
    params = {"extension": "101", "status": "answered", "sort": "-started"}
    listed = p.get("/portal/cdrs/", params).content.decode()
    assert "32 total" in listed  # the page shows 25 of them
    assert "export=csv" in listed
    assert "extension=101" in listed
    rows = rows_of(export(p, "/portal/cdrs/", **params))
    header, body = rows[0], rows[1:]
    assert header[:6] == ["Started", "Answered", "Ended", "From", "From name", "To"]
    assert header[-1] == "Call id"
    with in_tenant(world.tenant_a):
        expected = list(
            Cdr.objects.filter(caller_number="101", status="answered")
            .order_by("-started_at", "-pk")
            .values_list("call_id", flat=True)
        )
    assert [r[-1] for r in body] == expected
    assert len(expected) == 32
    # Sorted the other way, the export follows.
    rows = rows_of(export(p, "/portal/cdrs/", **{**params, "sort": "started"}))
    assert [r[-1] for r in rows[1:]] == expected[::-1]
    # A search narrows the export as it narrows the page.
    rows = rows_of(export(p, "/portal/cdrs/", **{**params, "q": "5507"}))
    assert [r[-1] for r in rows[1:]] == ["exp-07"]


def test_extension_export_follows_the_search_and_holds_no_secret(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    rows = rows_of(export(p, "/portal/extensions/", q="102"))
    assert rows[0][:3] == ["Number", "Name", "Status"]
    assert [r[0] for r in rows[1:]] == ["102"]
    everything = export(p, "/portal/extensions/")
    text = b"".join(everything.streaming_content).decode()
    assert "101" in text
    assert "102" in text
    assert SIP_PASSWORD not in text
    assert "201" not in text  # Beta's extensions are not Acme's


def test_webhook_and_phone_exports_hold_no_secret(portal, world, settings, in_tenant):
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    from events.actions import do_create_webhook
    from provisioning.actions import do_add_device

    with in_tenant(world.tenant_a):
        _endpoint, secret = do_create_webhook(
            actor=SYSTEM, url="http://127.0.0.1:9/x", event_types=["*"], enabled=False
        )
        device = do_add_device(
            mac="001565a1b2c3", model_id="yealink-t54w", label="Desk", lines=[], actor=SYSTEM
        )
        token, password = device.token, device.http_password
    p = portal(world.a_admin, world.tenant_a)
    hooks = b"".join(export(p, "/portal/webhooks/").streaming_content).decode()
    assert "http://127.0.0.1:9/x" in hooks
    assert secret not in hooks
    phones = rows_of(export(p, "/portal/phones/"))
    assert phones[1][:5] == ["001565a1b2c3", "Desk", "Yealink", "Yealink T54W", "yealink-t54w"]
    flat = json.dumps(phones)
    assert token not in flat
    assert password not in flat


def test_dealer_admin_exports_only_the_tenants_they_see(portal, world):
    rows = rows_of(export(portal(world.north_admin), "/portal/tenants/"))
    slugs = {r[1] for r in rows[1:]}
    assert "acme" in slugs
    assert "beta" not in slugs  # South's tenant


# --- times in the tenant's time zone ----------------------------------------------------------


def test_times_are_in_the_tenants_time_zone_with_the_offset(portal, world, in_tenant):
    from telephony.models import Cdr
    from tenants.models import Tenant

    Tenant.objects.filter(pk=world.tenant_a.pk).update(time_zone="Asia/Kolkata")  # +05:30
    add_cdr(world.tenant_a, "tz-1", "101", "500", ago=7200)
    with in_tenant(world.tenant_a):
        started = Cdr.objects.get(call_id="tz-1").started_at
    response = export(portal(world.a_admin, world.tenant_a), "/portal/cdrs/", q="tz-1")
    rows = rows_of(response)
    local = started.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert rows[1][0] == local.isoformat(timespec="seconds")
    assert rows[1][0].endswith("+05:30")
    today = timezone.now().astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).date()
    assert f"acme-call-history-{today.isoformat()}.csv" in response["Content-Disposition"]


# --- formula injection ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "written"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Reception", "Reception"),
        ("a=b", "a=b"),
    ],
)
def test_formula_cells_are_quoted(raw, written):
    assert safe_cell(raw) == written
    assert cell(raw, zoneinfo.ZoneInfo("UTC")) == written


def test_numbers_dates_and_flags_are_written_plainly():
    utc = zoneinfo.ZoneInfo("UTC")
    assert cell(-5, utc) == "-5"  # a number, not a formula
    assert cell(True, utc) == "yes"
    assert cell(None, utc) == ""
    assert cell(date(2024, 2, 29), utc) == "2024-02-29"
    assert cell(["a", "b"], utc) == "a, b"


def test_extension_names_that_look_like_formulas_are_defused(portal, world, in_tenant):
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        do_create_extension(number="150", display_name='=HYPERLINK("http://x","y")', actor=SYSTEM)
        do_create_extension(number="151", display_name="@cmd", actor=SYSTEM)
    rows = rows_of(export(portal(world.a_admin, world.tenant_a), "/portal/extensions/", q="15"))
    names = {r[0]: r[1] for r in rows[1:]}
    assert names == {"150": '\'=HYPERLINK("http://x","y")', "151": "'@cmd"}


def test_sip_ban_export_writes_the_ban(portal, world, rds):
    rds.set(
        "sip:ban:203.0.113.77", json.dumps({"reason": "flood", "banned_at": time.time()}), ex=60
    )
    try:
        rows = rows_of(export(portal(world.sysadmin), "/portal/sip-bans/", q="203.0.113.77"))
    finally:
        rds.delete("sip:ban:203.0.113.77")
    assert rows[0] == ["Address", "Reason", "Banned", "Seconds left"]
    assert rows[1][:2] == ["203.0.113.77", "flood"]
    assert rows[1][2].endswith("+00:00")


# --- the list's permissions are the export's --------------------------------------------------


@pytest.mark.parametrize("path", list(TENANT_LISTS))
def test_export_is_404_without_the_lists_permission(portal, world, live, path):
    # A plain user holds none of these lists' permissions.
    assert export(portal(world.a_user, world.tenant_a), path).status_code == 404
    # None of them exists on the provider's host.
    assert export(portal(world.sysadmin), path).status_code == 404
    # Another tenant's admin is nobody on this host: sent to sign in, no rows.
    response = export(portal(world.b_admin, world.tenant_a), path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("path", list(PROVIDER_LISTS))
def test_provider_exports_are_404_on_a_tenants_host(portal, world, live, path):
    assert export(portal(world.a_admin, world.tenant_a), path).status_code == 404
    assert export(portal(world.b_admin, world.tenant_b), path).status_code == 404


def test_sip_ban_export_is_the_system_admins_only(portal, world, live):
    assert export(portal(world.north_admin), "/portal/sip-bans/").status_code == 404
