"""The per-tenant concurrent call limit, shared by every engine through Redis
(``telephony.sip.calls.limits``): real engines, real phones, real Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from telephony.sip.calls.limits import CallLimits
from telephony.sip.config import CallConfig, PbxConfig
from telephony.sip.contract import TenantSnapshot
from tests.sip.callkit import add_extension, connect, dial, ended, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

COUNT_KEY = "sip:callcount:t_acme"
add_103 = add_extension("103")


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    yield client
    client.close()


def limit_calls(engines: list[EngineHandle], n: int) -> None:
    """Give acme a limit of ``n`` concurrent calls and an extension 103, as every engine
    sees it."""

    def change(snap: dict) -> None:
        snap.update(max_concurrent_calls=n)
        add_103(snap)

    set_snapshot(engines[0], "acme.test", change)
    want = engines[0].call(lambda: engines[0].pbx.directory.tenant("acme.test"))
    for e in engines[1:]:
        wait_until(lambda e=e: e.call(lambda: e.pbx.directory.tenant("acme.test") == want))


def counted(r: redis.Redis, engine: EngineHandle) -> str | None:
    """This engine's count of acme's calls in Redis (None: no field)."""
    return r.hget(COUNT_KEY, engine.pbx.engine_id)


def settled(r: redis.Redis, engine: EngineHandle) -> bool:
    """Nothing counted for acme on this engine, in memory and in Redis."""
    return engine.call(lambda: engine.pbx.calls.limits.counts) == {} and not counted(r, engine)


def test_two_engines_share_the_limit(
    sip_engine_factory: Callable[..., EngineHandle], phones: Any, r: redis.Redis
) -> None:
    """Story: acme may have one call at a time, and the PBX runs two engines. While 101's
    call through the first engine rings, 103's call through the second is refused 503 before
    anything rings; once 101 gives up (CANCEL), 103's call goes through the second engine."""
    e1, e2 = sip_engine_factory(), sip_engine_factory()
    assert e1.pbx.engine_id != e2.pbx.engine_id
    limit_calls([e1, e2], 1)
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, e1, "101")
    register(b, e1, "102")
    acc_c = register(c, e2, "103")
    first = dial(a, acc_a, "102")
    b.incoming()
    wait_until(lambda: counted(r, e1) == "1")
    refused = dial(c, acc_c, "102")
    assert ended(c, refused) == 503
    assert not [e for e, _ in b.events if e == "incoming"]  # the refused call never rang
    a.hangup(first)
    assert ended(a, first) == 487
    wait_until(lambda: settled(r, e1))
    again = dial(c, acc_c, "102")
    b.incoming()
    wait_until(lambda: counted(r, e2) == "1")
    c.hangup(again)
    ended(c, again)
    wait_until(lambda: settled(r, e2))
    assert r.hvals(COUNT_KEY) == []


def test_a_dead_engines_calls_stop_counting(pbx: Any, phones: Any, r: redis.Redis) -> None:
    """Story: an engine crashed with one of acme's calls counted (its heartbeat still fresh):
    acme, allowed one call, is refused until that heartbeat expires; then calls go through
    and the dead engine's count is gone."""
    engine = pbx()
    limit_calls([engine], 1)
    r.hset(COUNT_KEY, "10.0.0.9:5060", 1)
    r.set("sip:engine:10.0.0.9:5060", "1", px=1500)
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    assert ended(a, dial(a, acc_a, "102")) == 503
    wait_until(lambda: not r.exists("sip:engine:10.0.0.9:5060"), timeout=5)
    ca, cb = connect(a, acc_a, b)
    assert r.hgetall(COUNT_KEY) == {engine.pbx.engine_id: "1"}
    b.hangup(cb)
    ended(a, ca)
    wait_until(lambda: settled(r, engine))


def test_the_count_returns_to_zero_however_calls_end(pbx: Any, phones: Any, r: redis.Redis) -> None:
    """Story: with a limit, acme's calls are counted in Redis while they last and not after:
    hung up by the callee, by the caller, refused by the phone (a failed fork)."""
    engine = pbx()
    limit_calls([engine], 5)
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")

    ca, cb = connect(a, acc_a, b)
    wait_until(lambda: counted(r, engine) == "1")
    b.hangup(cb)  # BYE from the callee
    assert ended(a, ca) == 200
    wait_until(lambda: settled(r, engine))

    ca, cb = connect(a, acc_a, b)
    wait_until(lambda: counted(r, engine) == "1")
    a.hangup(ca)  # BYE from the caller
    assert ended(b, cb) == 200
    wait_until(lambda: settled(r, engine))

    ca = dial(a, acc_a, "102")
    b.answer(b.incoming()["call"], 486)  # the only fork fails
    assert ended(a, ca) == 486
    wait_until(lambda: settled(r, engine))


def test_without_redis_each_engine_counts_its_own_calls(caplog: Any) -> None:
    """Story: Redis is unreachable: the limit still holds for this engine's own calls (as
    before the count was shared), and the log says why."""
    acme = TenantSnapshot(
        tenant_id=1, schema="t_acme", domain="acme.test", status="active", anchor_media=False,
        max_concurrent_calls=1,
    )  # fmt: skip

    async def scenario() -> list[bool]:
        client = aioredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        ctx = SimpleNamespace(config=PbxConfig(), redis=client, engine_id="127.0.0.1:5999")
        limits = CallLimits(ctx, CallConfig())  # type: ignore[arg-type]
        await limits.start()
        try:
            first = await limits.admit(acme)
            second = await limits.admit(acme)
            limits.release("t_acme")
            third = await limits.admit(acme)
            return [first, second, third, limits.counts == {"t_acme": 1}]
        finally:
            await limits.stop()
            await client.aclose()

    with caplog.at_level(logging.WARNING, logger="telephony.sip.calls.limits"):
        assert asyncio.run(scenario()) == [True, False, True, True]
    assert "Redis unreachable" in caplog.text
