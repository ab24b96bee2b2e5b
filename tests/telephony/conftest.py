"""The engine's event stream for the tests here: a real Redis client and a fresh stream name."""

import secrets

import pytest
import redis
from django.conf import settings


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def stream(r):
    name = f"test:events:{secrets.token_hex(4)}"
    yield name
    r.delete(name)
