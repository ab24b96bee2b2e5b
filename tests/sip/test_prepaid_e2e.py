"""Prepaid billing from the account to the cut and back, every part real: the tenant's account
and rate table in PostgreSQL, published (snapshot and credit) to Redis as the Django side does
it; a pjsua2 phone calling out through the engine to a SIPp carrier; the engine cutting the
call when the credit is used up; the CDR drain rating and charging the call, which leaves the
balance at exactly zero and releases the call's hold."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
import redis
from django_tenants.utils import schema_context

from billing.credit import credit_key, held_key
from billing.models import BillingAccount, LedgerEntry, LedgerKind, Rate, RateTable
from telephony.engine.snapshots import publish_tenant
from telephony.models import Cdr
from telephony.sip import contract
from tests.sip.callkit import dial, drain_cdr_stream, ended, events, register, set_snapshot
from tests.sip.carrier import NATIONAL, carriers, engine, publish_trunks, routing, trunk
from tests.sip.engine_fixtures import worker_redis_url

__all__ = ["carriers", "engine"]  # fixtures, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


@pytest.fixture
def r(world):
    """This worker's Redis, without acme's credit keys before and after the test."""
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    schema = world.tenant_a.schema_name
    keys = [
        credit_key(schema),
        held_key(schema),
        contract.key("", contract.CREDIT_HELD_EXPIRY, schema=schema),
    ]
    client.delete(*keys)
    yield client
    client.delete(*keys)
    client.close()


def test_prepaid_credit_for_20_seconds_is_used_to_exactly_zero(
    engine, phones, carriers, world, r, django_capture_on_commit_callbacks
):
    """Story: acme is prepaid with 0.20 EUR, calls to +49 cost 0.60 a minute billed by the
    second. 101 calls 030 1234567: the carrier answers, the call is cut 20 s later. Its CDR
    costs 0.20, the balance is 0.0000 (never below), one charge in the ledger, no hold left in
    Redis; the CDR applied again charges nothing more. The next call is refused (402)."""
    tenant = world.tenant_a
    table = RateTable.objects.create(name="Germany", currency="EUR")
    Rate.objects.create(
        table=table, prefix="49", per_minute=Decimal("0.60"), first_interval=1, next_interval=1
    )
    account = BillingAccount.objects.create(
        tenant=tenant, mode="prepaid", currency="EUR", rate_table=table, balance=Decimal("0.20")
    )
    publish_tenant(tenant.pk)  # the snapshot (its rates) and the credit, as an action does
    set_snapshot(engine, "acme.test", routing())  # outside calls go to trunk 1
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    assert r.hgetall(credit_key(tenant.schema_name))["balance"] == "2000"

    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    answered = time.monotonic()
    a.wait_state(ca, "DISCONNECTED", timeout=30)
    assert 19.5 < time.monotonic() - answered < 21.5
    [call_id] = [e["call_id"] for e in events(engine) if e["type"] == "call.started"]

    with django_capture_on_commit_callbacks(execute=True):  # the credit is written after commit
        drain_cdr_stream()
    with schema_context(tenant.schema_name):
        cdr = Cdr.objects.get(call_id=call_id)
    assert (cdr.billsec, cdr.end_reason, cdr.direction) == (20, "credit", "outbound")
    assert (cdr.cost, cdr.currency, cdr.rate_prefix) == (Decimal("0.2000"), "EUR", "49")
    account.refresh_from_db()
    assert account.balance == Decimal("0.0000")
    charges = LedgerEntry.objects.filter(account=account, kind=LedgerKind.CHARGE)
    assert [(c.call_id, c.amount) for c in charges] == [(call_id, Decimal("-0.2000"))]
    assert r.hgetall(credit_key(tenant.schema_name))["balance"] == "0"
    assert r.hgetall(held_key(tenant.schema_name)) == {}

    # The same events again (a second consumer group reads the whole stream): no second charge.
    with schema_context(tenant.schema_name):
        from telephony.engine.cdr import apply_events

        apply_events(call_id, [e for e in events(engine, call_id)])
    account.refresh_from_db()
    assert account.balance == Decimal("0.0000")
    assert charges.count() == 1

    assert ended(a, dial(a, acc, NATIONAL)) == 402
    carrier.done()
