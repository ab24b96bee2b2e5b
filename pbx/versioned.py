"""Per-process caches that stay correct across web workers: a value is reused only while its
version token in Redis has not moved.

A writer replaces the token (``bump``) at once, so its own next read — even inside its open
transaction — reloads, and again when the transaction commits, so a read that reloaded in
between (before the commit) cannot keep the old rows. Tokens are random, never counters: a
flushed or restarted Redis cannot bring an old version back; a missing token is created anew,
which also invalidates. The host table (``tenants.hosts``), the token user
(``tenants.user_cache``) and the provisioning layers (``provisioning.layers``) use it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from typing import Any

from django.db import transaction


def redis():
    """The raw client: these keys are global, Django's cache keys carry the current schema."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def tokens(*keys: str) -> tuple:
    """The current version tokens of ``keys`` (one ``MGET``; missing ones are created)."""
    client = redis()
    values = client.mget(keys)
    if None in values:
        for key, value in zip(keys, values, strict=True):
            if value is None:
                client.set(key, uuid.uuid4().hex, nx=True)
        values = client.mget(keys)
    return tuple(values)


def bump(key: str) -> None:
    """Every process reloads what ``key`` versions: now, and again after the commit."""
    client = redis()
    client.set(key, uuid.uuid4().hex)
    transaction.on_commit(lambda: client.set(key, uuid.uuid4().hex))


class ProcessCache:
    """A bounded, thread-safe map of key -> (token, value, deadline); the least recently used
    entry goes first. ``ttl`` (seconds, None: no limit) bounds how long a change made behind
    the models' back (raw SQL, bulk updates) goes unseen."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, tuple[tuple, Any, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, token: tuple, default: Any = None) -> Any:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[0] != token or hit[2] < time.monotonic():
                return default
            self._entries.move_to_end(key)
            return hit[1]

    def put(self, key: Any, token: tuple, value: Any, ttl: float | None = None) -> None:
        deadline = float("inf") if ttl is None else time.monotonic() + ttl
        with self._lock:
            self._entries[key] = (token, value, deadline)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
