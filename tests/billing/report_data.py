"""A crafted week of calls for the report tests: tenant A's extensions 101 and 102, one trunk
that exists and one deleted, one DID, calls with and without a cost, and calls just outside the
week in the tenant's time zone (New York) that UTC days would wrongly take in.

The week is Monday 2026-01-05 to Sunday 2026-01-11 in America/New_York (UTC-5).
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django_tenants.utils import tenant_context

NY = ZoneInfo("America/New_York")
START, END = date(2026, 1, 5), date(2026, 1, 11)
DID = "+13125550000"
GONE_TRUNK = 987654  # a trunk id no row has any more
_ids = itertools.count(1)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=NY)


def cdr(direction, caller, callee, started, *, status="answered", billsec=0, cost=None, **kw):
    from telephony.models import Cdr

    return Cdr.objects.create(
        call_id=f"rep-{next(_ids)}-{started.timestamp()}",
        direction=direction,
        caller_number=caller,
        callee_number=callee,
        status=status,
        started_at=started,
        duration=billsec + 5,
        billsec=billsec,
        cost=None if cost is None else Decimal(cost),
        currency="" if cost is None else "USD",
        **kw,
    )


def ny_tenant(tenant):
    """``tenant`` read again, in New York's time zone (the database change rolls back)."""
    from tenants.models import Tenant

    fresh = Tenant.objects.get(pk=tenant.pk)
    fresh.time_zone = "America/New_York"
    fresh.save(update_fields=["time_zone"])
    return fresh


def make_trunk(tenant, name="Carrier One"):
    from trunks.models import Trunk

    return Trunk.objects.create(name=name, host="sip.one.test", tenant=tenant)


def crafted_week(tenant, trunk_id: int) -> None:
    """The calls (see the module's docstring); the expected figures are in the tests."""
    with tenant_context(tenant):
        cdr("internal", "101", "102", at(5, 10), billsec=60)
        # 23:30 in New York is already the 7th in UTC: it belongs to the 6th.
        cdr(
            "outbound",
            "101",
            "+12125550100",
            at(6, 23, 30),
            billsec=120,
            cost="0.2400",
            trunk=trunk_id,
            number="+12125550100",
        )
        cdr("outbound", "102", "+442071234567", at(7, 9), status="no_answer", trunk=trunk_id)
        cdr("inbound", "+13125550111", "102", at(7, 12), billsec=30, trunk=trunk_id, did=DID)
        cdr(
            "inbound", "+13125550112", "101", at(11, 23, 59), status="busy", trunk=trunk_id, did=DID
        )
        cdr(
            "outbound",
            "101",
            "+33140000000",
            at(10, 8),
            billsec=10,
            cost="0.0150",
            trunk=GONE_TRUNK,
        )
        # Outside the week in New York (inside it in UTC: the 12th 05:30Z is not, the 5th
        # 04:00Z is).
        cdr(
            "outbound",
            "101",
            "+12125550100",
            at(12, 0, 30),
            billsec=300,
            cost="5.0000",
            trunk=trunk_id,
        )
        cdr(
            "outbound", "101", "+12125550100", at(4, 23), billsec=300, cost="7.0000", trunk=trunk_id
        )
    connection.set_schema_to_public()
