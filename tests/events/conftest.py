"""Fixtures for the fan-out, pub/sub and webhook tests: a private stream, a clean live state,
a stream writer speaking the engine's format, and a local HTTP receiver for webhooks."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
import redis as redis_lib
from django.conf import settings

from events.fanout import Fanout
from tests.events.helpers import Receiver


@pytest.fixture
def rds():
    client = redis_lib.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def clean_live(rds, world):
    """Forget the live state and webhook bookkeeping of both tenants (Redis outlives the
    per-test database rollback)."""

    def wipe():
        for pattern in ("live:*", "webhooks:*"):
            for key in rds.scan_iter(pattern):
                rds.delete(key)

    wipe()
    yield
    wipe()


@pytest.fixture
def snapshots(world):
    """The tenants' routing snapshots in Redis (the fan-out reads extension numbers there)."""
    from telephony.engine.snapshots import publish_tenant

    publish_tenant(world.tenant_a.pk)
    publish_tenant(world.tenant_b.pk)


@pytest.fixture
def stream(rds):
    """A stream of this test's own, removed afterwards."""
    name = f"test:sip:events:{uuid.uuid4().hex}"
    yield name
    rds.delete(name)


@pytest.fixture
def fanout(rds, stream, clean_live, snapshots) -> Fanout:
    f = Fanout(rds, stream=stream, consumer="test-fanout")
    f.ensure_group()
    return f


@pytest.fixture
def xadd(rds, stream) -> Callable[..., str]:
    """Write one entry as the engine's EventSink does: string fields, ``type`` and ``ts``."""

    def add(type: str, **fields) -> str:  # noqa: A002 - the stream's field name
        entry = {"type": type, "ts": f"{time.time():.3f}"}
        entry.update({k: "" if v is None else str(v) for k, v in fields.items()})
        return rds.xadd(stream, entry).decode()

    return add


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture
def fast_webhooks(settings):
    """Loopback receivers allowed and retries in tens of milliseconds (production: seconds)."""
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    settings.PBX_WEBHOOK_RETRY_BASE = 0.05
    settings.PBX_WEBHOOK_RETRY_CAP = 2.0
    settings.PBX_WEBHOOK_TIMEOUT = 5.0
    return settings
