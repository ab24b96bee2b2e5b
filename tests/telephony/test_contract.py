"""The Redis names the Django side writes are the ones the engine reads, prefix included.

Story: an operator runs two PBXs on one Redis and gives one of them ``PBX_SIP_REDIS_PREFIX``;
its routing snapshots, call events and engine state must all live under that prefix, where
its own engine (started with the same prefix) finds them and the other PBX does not.
"""

import asyncio
import secrets

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from telephony import engine_state
from telephony.cdr import CdrConsumer
from telephony.sip import contract
from telephony.sip.directory import Directory
from telephony.snapshots import publish_tenant, unpublish_domain


@pytest.fixture
def prefix(settings):
    settings.SIP_REDIS_PREFIX = f"pbx{secrets.token_hex(3)}:"
    yield settings.SIP_REDIS_PREFIX
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=settings.SIP_REDIS_PREFIX + "*"):
        client.delete(key)
    client.close()


def _load(prefix: str, domain: str):
    async def load():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            directory = Directory(client, prefix=prefix)
            await directory.load_all()
            return directory.tenant(domain)
        finally:
            await client.aclose()

    return asyncio.run(load())


def test_a_prefixed_pbx_publishes_where_its_engine_reads(world, prefix):
    domain = world.tenant_a.sip_domain
    publish_tenant(world.tenant_a.pk)
    try:
        client = redis.Redis.from_url(settings.REDIS_URL)
        assert client.exists(prefix + contract.SNAPSHOT.format(domain=domain))
        assert client.sismember(prefix + contract.DOMAINS, domain)
        client.close()
        mine = _load(prefix, domain)
        assert mine is not None
        assert mine.schema == world.tenant_a.schema_name
        assert _load("other:", domain) is None  # another PBX on this Redis sees nothing
    finally:
        unpublish_domain(domain)


def test_django_side_names_carry_the_prefix(prefix):
    assert CdrConsumer(redis=None).stream == prefix + contract.EVENTS
    assert engine_state.redis_key(contract.CALLS, schema="t_x") == prefix + "sip:calls:t_x"
    assert engine_state.redis_key(contract.BAN, ip="192.0.2.1") == prefix + "sip:ban:192.0.2.1"
