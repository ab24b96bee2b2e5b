"""The credit stop (``telephony.sip.credit``): a billed tenant's outside calls hold money from
its balance in Redis, are refused when there is none and cut when their hold is used up.

First the holds themselves (the Lua scripts against this worker's real Redis: reservation,
extension, expiry, the last word of a call, many calls at once), then whole calls: pjsua2
phones, the engine and a SIPp carrier (``carrier.py``), with the tenant's rates in its published
snapshot and its balance written in Redis as the Django side writes it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from telephony.sip import contract
from telephony.sip.contract import BillingSnapshot, Rate, TenantSnapshot
from telephony.sip.credit import HOLD_GRACE, SETTLED_TTL, Credit
from tests.sip.callkit import add_extension, dial, ended, events, register, set_snapshot
from tests.sip.carrier import (
    E164,
    NATIONAL,
    carriers,
    engine,
    publish_trunks,
    request_line,
    routing,
    schema,
    trunk,
)
from tests.sip.engine_fixtures import wait_until, worker_redis_url

__all__ = ["carriers", "engine"]  # fixtures, used by name

# 1/1 billing at 600 units a minute: 10 units a second, so units / 10 = seconds.
PER_SECOND = Rate(prefix="49", per_minute=600, first_interval=1, next_interval=1)
# 60/60 with a connection fee: 100 to connect, 1200 a minute started.
PER_MINUTE = Rate(prefix="44", per_minute=1200, connection_fee=100)
SCHEMA = "t_acme"


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(r: redis.Redis) -> Iterator[str]:
    """A prefix of this test's own: no other test's holds meet these."""
    p = f"credit-{secrets.token_hex(4)}:"
    yield p
    keys = list(r.scan_iter(match=p + "*"))
    if keys:
        r.delete(*keys)


def fund(r: redis.Redis, prefix: str, balance: int, limit: int = 0) -> None:
    """The tenant's balance as the Django side publishes it."""
    key = contract.key(prefix, contract.CREDIT, schema=SCHEMA)
    r.hset(key, mapping={"balance": balance, "limit": limit})


def holds(r: redis.Redis, prefix: str) -> dict[str, int]:
    key = contract.key(prefix, contract.CREDIT_HELD, schema=SCHEMA)
    return {k: int(v) for k, v in r.hgetall(key).items()}


def run(prefix: str, scenario: Callable[[Credit], Awaitable[Any]], **kw: Any) -> Any:
    """Run ``scenario(credit)`` on a fresh loop with a Credit on this worker's Redis; the
    writes it spawned are awaited before the result is returned."""

    async def main() -> Any:
        client = aioredis.Redis.from_url(worker_redis_url())
        tasks: list[asyncio.Future[Any]] = []
        credit = Credit(client, prefix, lambda aw: tasks.append(asyncio.ensure_future(aw)), **kw)
        try:
            result = await scenario(credit)
            while tasks:
                await tasks.pop()
            return result
        finally:
            await client.aclose()

    return asyncio.run(main())


# ----------------------------------------------------------------------------- the holds


def test_a_tenant_whose_credit_is_not_published_is_refused_503(r, prefix):
    """Story: acme is billed but its CREDIT hash was never written: the call is refused 503
    (the platform's fault, not an empty account) and nothing is held."""
    grant = run(prefix, lambda c: c.reserve("c1", SCHEMA, PER_SECOND))
    assert grant.code == 503
    assert "not published" in grant.why
    assert holds(r, prefix) == {}


def test_without_redis_no_call_goes_out_unchecked():
    """Story: Redis cannot be reached at set-up: the call is refused 503, it is not let
    through unchecked."""

    async def main() -> Any:
        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        try:
            return await Credit(client, "", lambda aw: None).reserve("c1", SCHEMA, PER_SECOND)
        finally:
            await client.aclose()

    grant = asyncio.run(main())
    assert grant.code == 503
    assert "Redis unreachable" in grant.why


def test_no_credit_for_the_first_interval_is_402(r, prefix):
    """Story: the first minute and the fee cost 1300; acme has 1299: 402, nothing held."""
    fund(r, prefix, 1299)
    grant = run(prefix, lambda c: c.reserve("c1", SCHEMA, PER_MINUTE))
    assert (grant.code, grant.held) == (402, 0)
    assert holds(r, prefix) == {}
    fund(r, prefix, 1300)
    grant = run(prefix, lambda c: c.reserve("c1", SCHEMA, PER_MINUTE))
    assert (grant.code, grant.held, grant.seconds) == (0, 1300, 60)
    assert holds(r, prefix) == {"c1": 1300}


def test_a_call_holds_one_chunk_or_all_that_is_free(r, prefix):
    """Story: 1/1 at 10 a second, chunks of 300 s. With 100000 the call holds 3000 (300 s);
    with 200 free it holds those (20 s). A postpaid limit counts as money."""
    fund(r, prefix, 100_000)
    grant = run(prefix, lambda c: c.reserve("c1", SCHEMA, PER_SECOND))
    assert (grant.held, grant.seconds) == (3000, 300)
    fund(r, prefix, 3200)
    grant = run(prefix, lambda c: c.reserve("c2", SCHEMA, PER_SECOND))
    assert (grant.held, grant.seconds) == (200, 20)
    fund(r, prefix, -500, limit=1000)  # postpaid, 500 below zero of 1000 allowed
    grant = run(prefix, lambda c: c.reserve("c3", SCHEMA, PER_SECOND))
    assert grant.code == 402  # the two holds took more than the 500 left
    r.delete(contract.key(prefix, contract.CREDIT_HELD, schema=SCHEMA))
    grant = run(prefix, lambda c: c.reserve("c3", SCHEMA, PER_SECOND))
    assert (grant.held, grant.seconds) == (500, 50)


def test_a_call_routed_out_again_keeps_one_hold(r, prefix):
    """Story: a call holds 3000 (300 s at 10 a second), then is routed out a second time at
    60/60: its one hold becomes the new one (6100 for 5 started minutes and the fee). Routed
    out once more with too little for a minute: 402, and no hold is left behind."""
    fund(r, prefix, 100_000)

    async def scenario(c: Credit) -> list[tuple[int, dict[str, int]]]:
        seen = []
        await c.reserve("c1", SCHEMA, PER_SECOND)
        grant = await c.reserve("c1", SCHEMA, PER_MINUTE)
        seen.append((grant.held, holds(r, prefix)))
        fund(r, prefix, 1000)
        grant = await c.reserve("c1", SCHEMA, PER_MINUTE)
        seen.append((grant.code, dict(c.holds)))
        return seen

    assert run(prefix, scenario) == [(6100, {"c1": 6100}), (402, {})]
    assert holds(r, prefix) == {}


def test_many_calls_at_once_never_hold_more_than_the_balance(r, prefix):
    """Story: 60 calls of one tenant start at the same moment on a balance of 2345 (1/1, 10
    a second; chunks of 30 s, 300 each): 7 get 300, the eighth the 245 left, the rest 402.
    The holds add up to the balance, never more."""
    fund(r, prefix, 2345)

    async def scenario(c: Credit) -> list[Any]:
        return await asyncio.gather(*(c.reserve(f"c{i}", SCHEMA, PER_SECOND) for i in range(60)))

    grants = run(prefix, scenario, chunk=30)
    held = sorted((g.held for g in grants if g.code == 0), reverse=True)
    assert held == [300] * 7 + [245]
    assert sum(g.code == 402 for g in grants) == 52
    assert sum(holds(r, prefix).values()) == 2345


def test_extensions_take_what_is_free_then_the_call_is_cut_when_its_hold_is_used(r, prefix):
    """Story: chunks of 2 s, 1/1 at 10 a second, 50 free. The call holds 20 (2 s), is
    answered, extends by 2 s, then by the last 1 s, finds nothing more and is cut
    exactly 5 s after its answer. Its hold then becomes the cost of its 5 s: 50."""
    fund(r, prefix, 50)

    async def scenario(c: Credit) -> tuple[float, list[int], int]:
        grant = await c.reserve("c1", SCHEMA, PER_SECOND)
        assert (grant.held, grant.seconds) == (20, 2)
        cut = asyncio.get_running_loop().create_future()
        answered = time.time()
        c.answered("c1", answered, lambda: cut.set_result(time.time()))
        seen = []
        while not cut.done():
            seen.append(c.holds["c1"].held)
            await asyncio.sleep(0.05)
        hold = c.holds["c1"]
        assert (hold.extensions, hold.done) == (2, True)
        c.ended("c1", cut.result())
        return cut.result() - answered, sorted(set(seen)), hold.final

    after, seen, final = run(prefix, scenario, chunk=2, lead=0.5)
    assert 5.0 <= after < 5.2
    assert seen == [20, 40, 50]
    assert final == 50
    assert holds(r, prefix) == {"c1": 50}


def test_a_top_up_during_the_call_lets_it_go_on(r, prefix):
    """Story: the call holds all 30 (3 s); before its extension the tenant tops up: the
    extension holds the next chunk and the cut moves on."""
    fund(r, prefix, 30)

    async def scenario(c: Credit) -> tuple[int, int | None]:
        await c.reserve("c1", SCHEMA, PER_SECOND)
        c.answered("c1", time.time(), lambda: None)
        fund(r, prefix, 10_000)
        await asyncio.sleep(2.2)  # the extension is due 1 s before the 3 s are up
        hold = c.holds["c1"]
        c.ended("c1")
        return hold.held, hold.seconds

    assert run(prefix, scenario, chunk=10, lead=1.0) == (130, 13)


def test_the_end_of_a_call_sets_its_hold_to_the_cost_of_its_billsec(r, prefix):
    """Story: an answered call of 61.4 s at 60/60 holds 2500 (two minutes and the fee) until
    the Django side charges it; an unanswered call gives its hold back; a hold the Django side
    has charged (and deleted) already is not made again by a late last word."""
    fund(r, prefix, 100_000)
    now = time.time()

    async def scenario(c: Credit) -> None:
        for call in ("answered", "unanswered", "charged"):
            await c.reserve(call, SCHEMA, PER_MINUTE)
        c.answered("answered", now - 61.4, lambda: None)
        c.answered("charged", now - 10, lambda: None)
        r.hdel(contract.key(prefix, contract.CREDIT_HELD, schema=SCHEMA), "charged")
        c.ended("answered", now)
        c.ended("unanswered", now)
        c.ended("charged", now)

    run(prefix, scenario)
    assert holds(r, prefix) == {"answered": 2500}
    expiry = contract.key(prefix, contract.CREDIT_HELD_EXPIRY, schema=SCHEMA)
    [(member, when)] = r.zrange(expiry, 0, -1, withscores=True)
    assert member == "answered"
    assert SETTLED_TTL - 60 < when - now <= SETTLED_TTL + 60


def test_holds_left_by_a_dead_engine_expire(r, prefix):
    """Story: an engine died holding 900 of acme's 1000 (its expiry passed) and 100 for a
    call whose time has not: the next reservation deletes the dead hold and uses its money;
    the live one stands. A running call's hold expires a chunk plus HOLD_GRACE later."""
    fund(r, prefix, 1000)
    held = contract.key(prefix, contract.CREDIT_HELD, schema=SCHEMA)
    now = time.time()
    r.hset(held, mapping={"dead": 900, "alive": 100})
    expiry = contract.key(prefix, contract.CREDIT_HELD_EXPIRY, schema=SCHEMA)
    r.zadd(expiry, {"dead": now - 1, "alive": now + 600})
    grant = run(prefix, lambda c: c.reserve("new", SCHEMA, PER_SECOND), chunk=60)
    assert grant.held == 600
    assert holds(r, prefix) == {"alive": 100, "new": 600}
    when = r.zscore(expiry, "new")
    assert 60 + HOLD_GRACE - 5 < when - now <= 60 + HOLD_GRACE + 5


def test_billed_says_which_calls_are_checked():
    """Story: only a prepaid or postpaid tenant's calls to a number with a rate that costs
    something are checked; emergency calls never."""

    rates = {"49": PER_SECOND, "800": Rate(prefix="800")}
    billing = BillingSnapshot(mode="prepaid", rates=rates)
    tenant = TenantSnapshot(tenant_id=1, schema=SCHEMA, domain="acme.test", billing=billing)
    assert Credit.billed(tenant, "+49301234567") == PER_SECOND
    assert Credit.billed(tenant, "+49301234567", emergency=True) is None
    assert Credit.billed(tenant, "+8001234") is None  # a free rate
    assert Credit.billed(tenant, "+331234567") is None  # no rate
    unbilled = TenantSnapshot(tenant_id=1, schema=SCHEMA, domain="acme.test")
    assert Credit.billed(unbilled, "+49301234567") is None


# ---------------------------------------------------------------------------- whole calls

RATES = {"mode": "prepaid", "currency": "EUR", "rates": [PER_SECOND.to_dict()]}


@pytest.fixture
def billed(engine, r) -> Iterator[Callable[[int], str]]:
    """``fund(units) -> schema``: acme prepaid at PER_SECOND for German numbers (+49), with
    outside routing to trunk 1, and ``units`` on its balance (as the Django side writes them).
    Its credit keys are gone before and after."""
    acme = schema(engine)
    names = [
        contract.key("", name, schema=acme)
        for name in (contract.CREDIT, contract.CREDIT_HELD, contract.CREDIT_HELD_EXPIRY)
    ]
    r.delete(*names)
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", lambda s: s.update(billing=RATES))

    def fund(units: int) -> str:
        r.hset(names[0], mapping={"balance": units, "limit": 0})
        return acme

    yield fund
    r.delete(*names)


def acme_holds(r: redis.Redis, acme: str) -> dict[str, int]:
    key = contract.key("", contract.CREDIT_HELD, schema=acme)
    return {k: int(v) for k, v in r.hgetall(key).items()}


def billsec(engine, call_id: str) -> tuple[float, str]:
    """The call's talk time as the CDR counts it (from its events) and its end reason."""
    evs = {e["type"]: e for e in events(engine, call_id)}
    talk = float(evs["call.ended"]["ts"]) - float(evs["call.answered"]["ts"])
    return talk, evs["call.ended"]["reason"]


def call_ids(engine) -> list[str]:
    return [e["call_id"] for e in events(engine) if e["type"] == "call.started"]


@pytest.mark.django_db
@pytest.mark.e2e
def test_credit_for_20_seconds_cuts_the_call_then_refuses_but_emergency_connects(
    engine, phones, carriers, billed, r
):
    """Story: acme is prepaid with 200 on its balance, 10 a second to +49: 101's call to 030
    1234567 is answered by the carrier and cut 20 s later (BYE to the phone and the carrier,
    end reason "credit"); its hold is then the cost of its 20 s, all of the balance. 101 calls
    again: 402 Payment Required, nothing reaches the carrier. 101 dials 112: it connects."""
    carrier = carriers("auth", calls=2)
    publish_trunks(engine, trunk(engine, 1, carrier))
    acme = billed(200)
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    answered = time.monotonic()
    a.wait_state(ca, "DISCONNECTED", timeout=30)
    assert 19.5 < time.monotonic() - answered < 21.5
    [first] = call_ids(engine)
    talk, reason = billsec(engine, first)
    assert reason == "credit"
    assert int(talk) == 20  # the CDR's billsec: the 20 s paid, not one more nor one less
    wait_until(lambda: acme_holds(r, acme) == {first: PER_SECOND.cost(int(talk))})
    assert PER_SECOND.cost(int(talk)) == 200  # the whole balance, never more

    assert ended(a, dial(a, acc, NATIONAL)) == 402
    refused = call_ids(engine)[-1]
    assert billsec_reason(engine, refused) == "402"
    assert acme_holds(r, acme) == {first: 200}

    ce = dial(a, acc, "112")
    a.wait_state(ce, "CONFIRMED")
    a.hangup(ce)
    assert ended(a, ce) == 200
    carrier.done()  # it took the BYE of the cut call and the emergency call, nothing else
    assert [request_line(i).split()[1].split("@")[0] for i in carrier.invites()[1::2]] == [
        f"sip:{E164}",
        "sip:112",
    ]
    assert acme_holds(r, acme) == {first: 200}  # the emergency call held nothing


def billsec_reason(engine, call_id: str) -> str:
    [end] = [e for e in events(engine, call_id) if e["type"] == "call.ended"]
    return end["reason"]


@pytest.mark.django_db
@pytest.mark.e2e
def test_two_calls_at_once_share_the_balance_and_never_hold_more(
    engine, phones, carriers, billed, r
):
    """Story: acme has 100 (10 s at 10 a second); the engine holds 3 s at a time. 101 and 103
    call out at once: both connect, their holds grow by turns while they talk and never add
    up to more than 100; both are cut (reason "credit") when the money is gone, their talk
    adding up to the 10 s paid; each hold ends as the cost of its call's billsec."""
    carrier = carriers("auth", calls=2)
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", add_extension("103"))
    handler = engine.pbx.calls.router.handlers["trunk"]
    engine.call(lambda: (setattr(handler.credit, "chunk", 3), setattr(handler.credit, "lead", 1.5)))
    acme = billed(100)
    a, c = phones("101"), phones("103")
    acc_a = register(a, engine, "101")
    acc_c = register(c, engine, "103")
    ca = dial(a, acc_a, NATIONAL)
    cc = dial(c, acc_c, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    c.wait_state(cc, "CONFIRMED")
    most = 0
    deadline = time.monotonic() + 20
    while engine.call(lambda: bool(handler.credit.holds)) and time.monotonic() < deadline:
        most = max(most, sum(acme_holds(r, acme).values()))
        time.sleep(0.02)
    ended(a, ca)
    ended(c, cc)
    carrier.done()
    assert 0 < most <= 100
    ids = call_ids(engine)
    talks = {}
    for call_id in ids:
        talk, reason = billsec(engine, call_id)
        assert reason == "credit"
        talks[call_id] = int(talk)
    assert sum(talks.values()) == 10
    wait_until(lambda: acme_holds(r, acme) == {i: PER_SECOND.cost(t) for i, t in talks.items()})


@pytest.mark.django_db
@pytest.mark.e2e
def test_an_unanswered_call_gives_its_hold_back(engine, phones, carriers, billed, r):
    """Story: acme has 100000; 101's call rings at the carrier: 3000 are held for it (300 s
    at 10 a second). 101 gives up: the hold is gone."""
    ringing = carriers("ring")
    publish_trunks(engine, trunk(engine, 1, ringing))
    acme = billed(100_000)
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "EARLY")
    [call_id] = call_ids(engine)
    assert acme_holds(r, acme) == {call_id: 3000}
    a.hangup(ca)
    assert ended(a, ca) == 487
    ringing.done()
    wait_until(lambda: acme_holds(r, acme) == {})


@pytest.mark.django_db
@pytest.mark.e2e
def test_a_billed_tenant_without_published_credit_gets_503(
    engine, phones, carriers, billed, r, caplog
):
    """Story: acme is prepaid but its balance was never published: 101's call is refused 503
    (not 402: the account may well have money), the carrier sees nothing, and emergency calls
    still go out."""
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    a = phones("101")
    acc = register(a, engine, "101")
    assert ended(a, dial(a, acc, NATIONAL)) == 503
    assert f"its credit is not published (billing:credit:{schema(engine)})" in caplog.text
    ce = dial(a, acc, "112")
    a.wait_state(ce, "CONFIRMED")
    a.hangup(ce)
    carrier.done()
    assert [request_line(i).split()[1].split("@")[0] for i in carrier.invites()] == ["sip:112"] * 2
