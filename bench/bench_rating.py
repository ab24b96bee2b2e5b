"""Rating and charging calls through the real CDR consumer, and exact balances under
concurrent charges of one tenant.

One tenant with a prepaid account on a sell table of ``--prefixes`` rates (a realistic
country/operator price list), a trunk with a buy table of the same size. Then:

1. Throughput: ``--calls`` outbound calls (started, answered, ended: 3 events each) written to
   a Redis stream as the engine writes them and drained by ``CdrConsumer`` (the real consumer
   group path: one transaction per tenant per batch, the charge in it); calls/s with billing,
   and for comparison the same calls of a tenant without an account (CDRs only), and the SQL
   queries per charged call.
2. Concurrency: ``--workers`` processes each apply ``--per-worker`` calls of the same tenant
   at once (``apply_events``, one transaction per call, all contending for the account's row
   lock); the final balance must equal the initial one minus the sum of the CDRs' costs.

    python bench/bench_rating.py [--calls 5000] [--prefixes 20000] [--workers 4]
                                 [--per-worker 500]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import scratch, table, timed  # noqa: E402

T0 = 1_800_000_000.0


def call_events(schema: str, call_id: str, number: str, billsec: int, trunk: int) -> list[dict]:
    common = {"schema": schema, "call_id": call_id}
    return [
        {"type": "call.started", "ts": f"{T0:.3f}", "direction": "outbound", "caller": "101",
         "callee": number, "trunk": str(trunk), "number": number, **common},
        {"type": "call.answered", "ts": f"{T0 + 2:.3f}", **common},
        {"type": "call.ended", "ts": f"{T0 + 2 + billsec:.3f}", "status": "answered",
         "reason": "bye caller", **common},
    ]  # fmt: skip


def setup(prefixes: int):
    from billing.models import BillingAccount, Rate, RateKind, RateTable
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_tenant
    from trunks.models import Trunk

    rng = random.Random(14)
    billed = do_create_tenant(name="Billed", slug="billed", sip_domain="billed.test", actor=SYSTEM)
    plain = do_create_tenant(name="Plain", slug="plain", sip_domain="plain.test", actor=SYSTEM)
    trunk = Trunk.objects.create(name="Carrier", host="carrier.test")
    sell = RateTable.objects.create(name="Retail", kind=RateKind.SELL)
    buy = RateTable.objects.create(name="Carrier", kind=RateKind.BUY)
    buy.trunks.add(trunk)
    countries = [str(c) for c in (1, 7, 20, 27, 30, 31, 32, 33, 34, 39, 44, 49, 52, 55, 61, 81)]
    codes = set(countries)
    while len(codes) < prefixes:
        codes.add(f"{rng.choice(countries)}{rng.randrange(10, 100_000)}")
    rows = []
    for code in sorted(codes):
        per_minute = Decimal(rng.randrange(50, 5000)) / 10_000
        first, nxt = rng.choice(((60, 60), (1, 1), (30, 6)))
        rows.append(Rate(table=sell, prefix=code, per_minute=per_minute,
                         first_interval=first, next_interval=nxt))  # fmt: skip
        rows.append(Rate(table=buy, prefix=code, per_minute=per_minute / 2))
    Rate.objects.bulk_create(rows, batch_size=5000)
    BillingAccount.objects.create(
        tenant=billed, mode="prepaid", rate_table=sell, balance=Decimal("1000000")
    )
    return billed, plain, trunk, sorted(codes)


def numbers(codes: list[str], count: int, seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    return [
        (rng.choice(codes) + "".join(rng.choice("0123456789") for _ in range(7)),
         rng.randrange(0, 900))
        for _ in range(count)
    ]  # fmt: skip


def through_consumer(schema: str, trunk: int, calls: list[tuple[str, int]], tag: str) -> float:
    import redis
    from django.conf import settings

    from telephony.engine.cdr import CdrConsumer

    r = redis.Redis.from_url(settings.REDIS_URL)
    stream = f"bench:events:{tag}"
    pipe = r.pipeline()
    for i, (number, billsec) in enumerate(calls):
        for event in call_events(schema, f"{tag}-{i}", number, billsec, trunk):
            pipe.xadd(stream, event)
    pipe.execute()
    consumer = CdrConsumer(r, stream=stream, consumer="bench")
    with timed() as t:
        done = consumer.drain()
    r.delete(stream)
    assert done == 3 * len(calls), (done, len(calls))
    return t.s


def queries_per_call(schema: str, trunk: int, codes: list[str]) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django_tenants.utils import schema_context

    from telephony.engine.cdr import apply_events

    number, billsec = numbers(codes, 1, 99)[0]
    with schema_context(schema), CaptureQueriesContext(connection) as ctx:
        apply_events("q-1", call_events(schema, "q-1", number, billsec, trunk))
    return len(ctx.captured_queries)


def worker(schema: str, trunk: int, calls: list[tuple[str, int]], tag: str) -> None:
    """A process of its own (spawned: the environment says which scratch database)."""
    import django

    django.setup()
    from django.db import connection
    from django_tenants.utils import schema_context

    from telephony.engine.cdr import apply_events

    with schema_context(schema):
        for i, (number, billsec) in enumerate(calls):
            call_id = f"{tag}-{i}"
            apply_events(call_id, call_events(schema, call_id, number, billsec, trunk))
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--prefixes", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--per-worker", type=int, default=500)
    args = parser.parse_args()

    with scratch("rating"):
        from django.db import connections
        from django_tenants.utils import schema_context

        from billing.models import BillingAccount, LedgerEntry
        from telephony.models import Cdr

        with timed() as t:
            billed, plain, trunk, codes = setup(args.prefixes)
        print(f"[rating] {len(codes):,} prefixes per table, set up in {t.s:.1f} s", flush=True)
        calls = numbers(codes, args.calls, 1)

        rows = []
        for tenant, label in ((plain, "no account (CDR only)"), (billed, "prepaid, rated+charged")):
            seconds = through_consumer(tenant.schema_name, trunk.pk, calls, tenant.slug)
            rows.append([label, len(calls), seconds, len(calls) / seconds])
        with schema_context(billed.schema_name):
            rated = Cdr.objects.filter(cost__isnull=False).count()
        table(
            "CDR consumer throughput (3 events per call, batches of 500)",
            ["tenant", "calls", "seconds", "calls/s"],
            rows,
        )
        queries = queries_per_call(billed.schema_name, trunk.pk, codes)
        print(f"rated CDRs: {rated:,} of {len(calls):,}; SQL queries for one charged call "
              f"(3 events, own transaction): {queries}")  # fmt: skip

        account = BillingAccount.objects.get(tenant=billed)
        start = account.balance
        with schema_context(billed.schema_name):
            before = sum(Cdr.objects.exclude(cost=None).values_list("cost", flat=True))
        connections.close_all()
        procs = [
            multiprocessing.get_context("spawn").Process(
                target=worker,
                args=(
                    billed.schema_name,
                    trunk.pk,
                    numbers(codes, args.per_worker, 100 + n),
                    f"w{n}",
                ),
            )  # fmt: skip
            for n in range(args.workers)
        ]
        began = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - began
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        account.refresh_from_db()
        with schema_context(billed.schema_name):
            after = sum(Cdr.objects.exclude(cost=None).values_list("cost", flat=True))
        charged = after - before
        charges = LedgerEntry.objects.filter(account=account, kind="charge").count()
        exact = account.balance == start - charged
        total = args.workers * args.per_worker
        table(
            "Concurrent charges of one account (one transaction per call)",
            ["workers", "calls", "seconds", "calls/s", "charged", "balance exact"],
            [[args.workers, total, elapsed, total / elapsed, f"{charged}", str(exact)]],
        )
        print(f"ledger charges: {charges:,}; balance {start} -> {account.balance}")
        if not exact:
            raise SystemExit("the balance does not match the sum of the costs")


if __name__ == "__main__":
    main()
