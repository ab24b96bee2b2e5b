import threading
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.db import connection

from billing.models import BillingAccount, Rate, RateKind, RateTable


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def trunk(world):
    from trunks.models import Trunk

    return Trunk.objects.create(name="Carrier", host="carrier.test")


def make_table(name, rows, kind=RateKind.SELL, **kw):
    table = RateTable.objects.create(name=name, kind=kind, **kw)
    for prefix, per_minute, first, nxt, *rest in rows:
        Rate.objects.create(
            table=table,
            prefix=prefix,
            per_minute=Decimal(per_minute),
            first_interval=first,
            next_interval=nxt,
            connection_fee=Decimal(rest[0]) if rest else Decimal(0),
        )
    return table


@pytest.fixture
def sell(world):
    return make_table(
        "Retail",
        [("1", "0.0100", 60, 60), ("44", "0.0500", 1, 1), ("4420", "0.0300", 30, 6, "0.0100")],
    )


@pytest.fixture
def account(world, sell):
    return BillingAccount.objects.create(
        tenant=world.tenant_a, mode="prepaid", rate_table=sell, balance=Decimal("10.0000")
    )


def in_thread(fn, *args):
    """``fn(*args)`` on a connection of its own (its commits are real), its result."""
    out = {}

    def run():
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # handed back to the test
            out["error"] = exc
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")
