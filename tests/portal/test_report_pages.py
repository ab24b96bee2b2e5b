"""A tenant administrator's Reports: the page over a crafted week (table, totals, the SVG
charts with their titles, the CSV downloads), an empty period, bad dates shown on the form;
scheduled reports added, changed (bad recipients refused on their box), deleted; an end user
and another tenant get nothing."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest

from billing.models import ReportSchedule
from billing.report_schedules import do_create_report_schedule
from pbx.audit import SYSTEM
from tests.billing.report_data import crafted_week, make_trunk, ny_tenant

pytestmark = pytest.mark.django_db

R = "/portal/reports/"
S = "/portal/reports/schedules/"
WEEK = {"start": "2026-01-05", "end": "2026-01-11"}


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


@pytest.fixture
def week(world):
    tenant = ny_tenant(world.tenant_a)
    trunk = make_trunk(world.tenant_a)
    crafted_week(tenant, trunk.pk)
    return trunk


def test_the_report_page_with_calls(portal, world, week):
    p = portal(world.a_admin, world.tenant_a)
    r = p.get(R, {**WEEK, "group_by": "extension"})
    assert r.status_code == 200
    html = r.content.decode()
    assert f'href="{R}"' in html  # in the menu
    assert 'data-testid="total-calls">6<' in html
    assert 'data-testid="total-cost">0.2550<' in html
    assert "America/New_York" in html
    row = re.search(r'data-testid="report-row-101">(.*?)</tr>', html, re.S).group(1)
    assert re.findall(r"<td>([^<]*)</td>", row)[:3] == ["4", "3", "1"]
    # The charts: inline SVG with a title and a description, nothing fetched from elsewhere.
    for chart in ("chart-days", "chart-calls", "chart-cost"):
        svg = re.search(rf'<svg[^>]*data-testid="{chart}".*?</svg>', html, re.S).group(0)
        assert "<title" in svg
        assert "<desc" in svg
    assert "101 Acme 101: 4 calls" in html
    assert "101 Acme 101: 0.2550 USD" in html
    assert '<script src="http' not in html
    assert "cdn" not in html.lower()
    # Seven days, seven bars.
    days = re.search(r'data-testid="chart-days".*?</svg>', html, re.S).group(0)
    assert days.count('<g class="bar">') == 7


def test_by_trunk_and_the_downloads(portal, world, week):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(R, {**WEEK, "group_by": "trunk"}).content.decode()
    assert "Carrier One" in html
    assert "(deleted)" in html
    r = p.get(R, {**WEEK, "group_by": "trunk", "export": "csv"})
    assert r["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert table[0][0] == "Trunk"
    assert table[-1][:2] == ["Total", "6"]
    r = p.get(R, {**WEEK, "group_by": "trunk", "export": "cdrs"})
    table = list(csv.reader(io.StringIO(b"".join(r.streaming_content).decode())))
    assert len(table) == 7


def test_an_empty_period_and_the_default_one(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(R, {"start": "2020-01-01", "end": "2020-01-31", "group_by": "day"}).content
    html = html.decode()
    assert 'data-testid="no-calls"' in html
    assert 'data-testid="total-calls">0<' in html
    assert "Nothing to chart in this period." in html
    r = p.get(R)
    assert r.status_code == 200
    assert 'data-testid="report-table"' in r.content.decode()


def test_bad_input_is_shown_on_the_form(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(R, {"start": "2024-01-01", "end": "2026-01-01", "group_by": "day"}).content
    assert "at most 366 days" in html.decode()
    html = p.get(R, {"start": "someday", "end": "2026-01-01", "group_by": "nothing"}).content
    html = html.decode()
    assert 'data-testid="report-errors"' in html
    assert 'data-testid="report-table"' not in html


def test_who_may_open_the_pages(portal, world):
    for path in (R, S, f"{S}add/"):
        assert portal(world.a_admin, world.tenant_a).get(path).status_code == 200
        assert portal(world.a_user, world.tenant_a).get(path).status_code == 404
        assert portal(world.b_admin, world.tenant_a).get(path).status_code == 302
        assert portal(world.sysadmin).get(path).status_code == 404


def test_schedules_added_changed_and_deleted(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    assert "No scheduled reports yet" in p.get(S).content.decode()
    body = {"name": "Month", "frequency": "monthly", "group_by": "trunk", "enabled": "on"}
    r = p.post(f"{S}add/", {**body, "recipients": "boss@acme.test\nnot-an-address"})
    assert r.status_code == 200
    assert "not-an-address" in field_errors(r.content.decode(), "recipients")[0]
    assert not ReportSchedule.objects.exists()
    r = p.post(f"{S}add/", {**body, "recipients": "boss@acme.test\nops@acme.test"})
    assert r.status_code == 302
    mine = ReportSchedule.objects.get()
    assert (mine.tenant_id, mine.recipients) == (world.tenant_a.pk, "boss@acme.test, ops@acme.test")
    assert "boss@acme.test, ops@acme.test" in p.get(S).content.decode()
    r = p.post(f"{S}{mine.pk}/", {**body, "recipients": "boss@acme.test", "enabled": ""})
    assert r.status_code == 302
    mine.refresh_from_db()
    assert (mine.recipients, mine.enabled) == ("boss@acme.test", False)
    assert p.get(f"{S}{mine.pk}/delete/").status_code == 200
    assert p.post(f"{S}{mine.pk}/delete/").status_code == 302
    assert not ReportSchedule.objects.exists()


def test_another_tenants_schedule_is_404(portal, world):
    theirs = do_create_report_schedule(
        world.tenant_b, actor=SYSTEM, fields={"name": "Beta's", "recipients": "b@beta.test"}
    )
    p = portal(world.a_admin, world.tenant_a)
    assert "Beta's" not in p.get(S).content.decode()
    assert p.get(f"{S}{theirs.pk}/").status_code == 404
    change = {"name": "Mine", "recipients": "a@acme.test"}
    assert p.post(f"{S}{theirs.pk}/", change).status_code == 404
    assert p.post(f"{S}{theirs.pk}/delete/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "Beta's"
