"""Times on a tenant's pages are the tenant's local times with the zone beside them (the live
active-calls table is told the zone too); the API stays in UTC for its clients."""

import datetime
import re
import zoneinfo

import pytest

from pbx.audit import SYSTEM
from telephony.models import Cdr
from tenants.actions import do_update_tenant
from tests.portal.calls_helpers import add_cdr

pytestmark = pytest.mark.django_db


def test_call_history_in_the_tenants_time_zone(portal, world, in_tenant, api):
    do_update_tenant(world.tenant_a, time_zone="Asia/Kolkata", actor=SYSTEM)  # UTC+05:30
    pk = add_cdr(world.tenant_a, "tz-call", "101", "102", status="answered", ago=3600)
    with in_tenant(world.tenant_a):
        started = Cdr.objects.get(pk=pk).started_at
    local = started.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    p = portal(world.a_admin, world.tenant_a)
    for path in ("/portal/cdrs/", f"/portal/cdrs/{pk}/"):
        html = p.get(path).content.decode()
        assert f"{local:%Y-%m-%d %H:%M:%S} IST" in html, path
        assert f"{started.astimezone(datetime.UTC):%Y-%m-%d %H:%M:%S}" not in html
    # The audit log too (the zone change itself is its newest entry).
    assert " IST</td>" in p.get("/portal/audit/").content.decode()
    active = p.get("/portal/calls/").content.decode()
    assert re.search(r'data-time-zone="Asia/Kolkata"', active)
    # The API's clients get UTC, whatever the tenant's zone.
    body = api(world.a_admin, world.tenant_a).get(f"/api/v1/cdrs/{pk}/").json()
    assert body["started_at"].endswith("Z")
