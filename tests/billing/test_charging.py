"""Charging outside calls when their CDR ends: exact costs, once per call, exact balances
under concurrent charges, and the engine's credit in Redis following every movement."""

import threading
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from billing.accounts import adjust, top_up
from billing.credit import credit_key, held_key
from billing.models import BillingAccount, LedgerEntry, RateKind
from telephony.engine.cdr import apply_events
from tests.billing.conftest import in_thread, make_table

pytestmark = pytest.mark.django_db

T0 = 1_700_000_000.0


def call(schema, call_id, number, billsec, trunk, direction="outbound", t0=T0):
    common = {"schema": schema, "call_id": call_id}
    return [
        {"type": "call.started", "ts": f"{t0}", "direction": direction, "caller": "101",
         "callee": number, "trunk": str(trunk), "number": number, **common},
        {"type": "call.answered", "ts": f"{t0 + 2}", **common},
        {"type": "call.ended", "ts": f"{t0 + 2 + billsec}", "status": "answered",
         "reason": "bye caller", **common},
    ]  # fmt: skip


def cdr_of(in_tenant, tenant, call_id):
    from telephony.models import Cdr

    with in_tenant(tenant):
        return Cdr.objects.get(call_id=call_id)


@pytest.mark.parametrize(
    ("number", "billsec", "cost", "prefix"),
    [
        ("15551234567", 61, "0.0200", "1"),  # by the minute: 61 s pay 120 s
        ("15551234567", 60, "0.0100", "1"),
        ("447700900123", 7, "0.0059", "44"),  # by the second, rounded up to a unit
        ("442071234567", 31, "0.0280", "4420"),  # 30/6 and a connection fee: 36 s + fee
        ("442071234567", 10, "0.0250", "4420"),  # the first 30 s at least
        ("15551234567", 0, "0.0000", "1"),  # answered and hung up at once: nothing
    ],
)
def test_exact_cost_and_charge(
    world, account, trunk, in_tenant, r, django_capture_on_commit_callbacks,
    number, billsec, cost, prefix,
):  # fmt: skip
    schema = world.tenant_a.schema_name
    r.hset(held_key(schema), "c-1", "5000")
    with django_capture_on_commit_callbacks(execute=True), in_tenant(world.tenant_a):
        apply_events("c-1", call(schema, "c-1", number, billsec, trunk.pk))
    cdr = cdr_of(in_tenant, world.tenant_a, "c-1")
    assert (cdr.cost, cdr.currency, cdr.rate_prefix) == (Decimal(cost), "USD", prefix)
    account.refresh_from_db()
    assert account.balance == Decimal("10") - Decimal(cost)
    charges = list(LedgerEntry.objects.filter(account=account, kind="charge"))
    assert [(c.amount, c.call_id, c.cdr_id) for c in charges] == (
        [(-Decimal(cost), "c-1", cdr.pk)] if Decimal(cost) else []
    )
    credit = r.hgetall(credit_key(schema))
    assert int(credit["balance"]) == int(account.balance * 10_000)
    assert credit["limit"] == "0"
    assert not r.hexists(held_key(schema), "c-1")  # the hold went with the charge


def test_buy_cost_from_the_trunks_table(world, account, trunk, in_tenant):
    buy = make_table("Carrier A", [("1", "0.0040", 6, 6)], kind=RateKind.BUY)
    buy.trunks.add(trunk)
    schema = world.tenant_a.schema_name
    with in_tenant(world.tenant_a):
        apply_events("c-2", call(schema, "c-2", "15551234567", 61, trunk.pk))
    cdr = cdr_of(in_tenant, world.tenant_a, "c-2")
    assert (cdr.cost, cdr.buy_cost) == (Decimal("0.0200"), Decimal("0.0044"))  # 66 s at 0.004


def test_markup_chain_prices_as_the_snapshot(world, trunk, in_tenant, sell):
    """A dealer's table over the provider's: the charge is what the engine's snapshot says."""
    from billing.charging import rate_for
    from billing.rates import effective_rates
    from telephony.sip.contract import BillingSnapshot

    dealer = make_table("North retail", [("4420", "0.0400", 60, 60)], base=sell,
                        markup_percent=Decimal("12.5"), dealer=world.north)  # fmt: skip
    snap = BillingSnapshot(mode="prepaid", rates=effective_rates(dealer))
    for number in ("15551234567", "447700900123", "442071234567", "4420", "999"):
        assert rate_for(dealer, number) == snap.rate_for(number)


def test_not_charged(world, account, trunk, in_tenant):
    """Internal and inbound calls, numbers no rate covers, calls still running: no cost."""
    schema = world.tenant_a.schema_name
    with in_tenant(world.tenant_a):
        apply_events("c-in", call(schema, "c-in", "15551234567", 60, trunk.pk, "inbound"))
        apply_events("c-x", call(schema, "c-x", "999123", 60, trunk.pk))
        apply_events("c-run", call(schema, "c-run", "15551234567", 60, trunk.pk)[:2])
    for call_id in ("c-in", "c-x", "c-run"):
        assert cdr_of(in_tenant, world.tenant_a, call_id).cost is None
    account.refresh_from_db()
    assert account.balance == Decimal("10")


def test_redelivered_end_charges_once(world, account, trunk, in_tenant):
    schema = world.tenant_a.schema_name
    events = call(schema, "c-3", "15551234567", 61, trunk.pk)
    with in_tenant(world.tenant_a):
        apply_events("c-3", events)
        apply_events("c-3", events[-1:])  # the end again
        apply_events("c-3", events)  # the whole call again
    account.refresh_from_db()
    assert account.balance == Decimal("9.9800")
    assert LedgerEntry.objects.filter(account=account, kind="charge").count() == 1


def test_redelivered_through_the_consumer_charges_once(world, account, trunk, in_tenant):
    """The real consumer: the same entries read twice (a worker died before its XACK)."""
    import secrets

    import redis as redis_lib
    from django.conf import settings

    from telephony.engine.cdr import CdrConsumer

    raw = redis_lib.Redis.from_url(settings.REDIS_URL)
    stream = f"test:events:{secrets.token_hex(4)}"
    try:
        for event in call(world.tenant_a.schema_name, "c-4", "447700900123", 120, trunk.pk):
            raw.xadd(stream, event)
        assert CdrConsumer(raw, stream=stream, consumer="w1").drain() == 3
        for event in call(world.tenant_a.schema_name, "c-4", "447700900123", 120, trunk.pk):
            raw.xadd(stream, event)
        assert CdrConsumer(raw, stream=stream, consumer="w2").drain() == 3
    finally:
        raw.delete(stream)
        raw.close()
    account.refresh_from_db()
    assert account.balance == Decimal("9.9000")


def test_postpaid_goes_negative(world, account, trunk, in_tenant, r,
                                django_capture_on_commit_callbacks):  # fmt: skip
    account.mode, account.balance, account.credit_limit = "postpaid", Decimal(0), Decimal("50")
    account.save()
    schema = world.tenant_a.schema_name
    with django_capture_on_commit_callbacks(execute=True), in_tenant(world.tenant_a):
        apply_events("c-5", call(schema, "c-5", "15551234567", 600, trunk.pk))
    account.refresh_from_db()
    assert account.balance == Decimal("-0.1000")  # 600 s: 10 minutes
    assert r.hgetall(credit_key(schema)) | {"version": ""} == {
        "balance": "-1000",
        "limit": "500000",
        "version": "",
    }


def test_credit_follows_top_ups(world, account, r, django_capture_on_commit_callbacks):
    schema = world.tenant_a.schema_name
    for move, amount in ((top_up, "5"), (top_up, "0.0001"), (adjust, "-2.5"), (top_up, "12.5")):
        with django_capture_on_commit_callbacks(execute=True):
            move(account, amount, None, "a correction")
        account.refresh_from_db()
        assert int(r.hget(credit_key(schema), "balance")) == int(account.balance * 10_000)
    assert account.balance == Decimal("25.0001")


def test_older_write_never_overwrites_a_newer(world, r):
    from billing.credit import write

    schema = world.tenant_a.schema_name
    r.delete(credit_key(schema))
    r.hset(held_key(schema), mapping={"a": "1", "b": "2"})
    write(schema, balance=80, limit=0, version=20, charged=["b"])
    write(schema, balance=90, limit=0, version=10, charged=["a"])  # late, older
    assert r.hget(credit_key(schema), "balance") == "80"
    assert r.hgetall(held_key(schema)) == {}


def _setup_shared(tenant_id, trunk_name):
    from trunks.models import Trunk

    table = make_table("Shared", [("1", "0.0700", 1, 1)])
    trunk = Trunk.objects.create(name=trunk_name, host="c.test")
    BillingAccount.objects.create(
        tenant_id=tenant_id, mode="prepaid", rate_table=table, balance=Decimal("100")
    )
    return table.pk, trunk.pk


def _cleanup_shared(tenant_id, table_id, trunk_id, schema):
    from billing.models import RateTable
    from telephony.models import Cdr
    from trunks.models import Trunk

    BillingAccount.objects.filter(tenant_id=tenant_id).delete()
    RateTable.objects.filter(pk=table_id).delete()
    Trunk.objects.filter(pk=trunk_id).delete()
    with schema_context(schema):
        Cdr.objects.all().delete()


def _read_shared(tenant_id, schema):
    from telephony.models import Cdr

    account = BillingAccount.objects.get(tenant_id=tenant_id)
    with schema_context(schema):
        costs = list(Cdr.objects.values_list("cost", flat=True))
    charges = LedgerEntry.objects.filter(account=account, kind="charge").count()
    return account.balance, costs, charges


def test_concurrent_charges_keep_the_balance_exact(world):
    """Eight workers charge 80 calls of one tenant at once (committed for real): the balance
    is the start minus the sum of the costs, to the unit."""
    tenant, schema = world.tenant_a, world.tenant_a.schema_name
    table_id, trunk_id = in_thread(_setup_shared, tenant.pk, "Concurrent")
    try:
        errors = []

        def worker(n):
            try:
                with schema_context(schema):
                    for i in range(10):
                        call_id = f"k-{n}-{i}"
                        apply_events(call_id, call(schema, call_id, "15551234567",
                                                   7 + n + i, trunk_id))  # fmt: skip
            except Exception as exc:
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        balance, costs, charges = in_thread(_read_shared, tenant.pk, schema)
        assert len(costs) == 80
        assert charges == 80
        assert balance == Decimal("100") - sum(costs)
    finally:
        in_thread(_cleanup_shared, tenant.pk, table_id, trunk_id, schema)
