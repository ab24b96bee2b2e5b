"""The user behind a bearer token, cached briefly in each web process.

Every API request authenticates: loading the ``User`` row was one SQL round trip and a model
instantiation per request. Each process keeps the row's values for ``PBX_USER_CACHE_SECONDS``
as long as the user's version token in Redis has not moved; saving or deleting the user (a
deactivation, a role or password change, a move to another tenant or dealer) sets a new token
at once and again when the transaction commits, so every worker reloads on its next request.
Signing out does not depend on this cache: the revoked sign-in session is checked in Redis on
every request (``pbx.api.tokens``). Each request gets a fresh instance (no related object —
tenant, dealer — is carried over from an earlier request).
"""

from __future__ import annotations

import threading
import time
import uuid

from django.conf import settings
from django.db import transaction

VERSION_KEY = "auth:user-version:{pk}"
MAX_ENTRIES = 10_000

_cache: dict[str, tuple[float, bytes, tuple]] = {}
_lock = threading.Lock()


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _version(client, key: str) -> bytes:
    version = client.get(key)
    if version is None:
        # Random, never a counter: a flushed Redis cannot bring an old version back.
        client.set(key, uuid.uuid4().hex, nx=True)
        version = client.get(key)
    return version


def get_user(pk):
    """The ``User`` with primary key ``pk`` (a fresh instance), or None."""
    from .models import User

    ttl = settings.PBX_USER_CACHE_SECONDS
    if ttl <= 0:
        return User.objects.filter(pk=pk).first()
    key = VERSION_KEY.format(pk=pk)
    version = _version(_redis(), key)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now and hit[1] == version:
        values = hit[2]
    else:
        user = User.objects.filter(pk=pk).first()
        if user is None:
            return None
        values = tuple(getattr(user, f.attname) for f in User._meta.concrete_fields)
        with _lock:
            if len(_cache) >= MAX_ENTRIES:
                _cache.clear()
            _cache[key] = (now + ttl, version, values)
        return user
    return User.from_db("default", [f.attname for f in User._meta.concrete_fields], values)


def forget_user(pk) -> None:
    """Every process reloads user ``pk`` on its next request (now, and after the commit)."""
    if pk is None:
        return
    client = _redis()
    key = VERSION_KEY.format(pk=pk)
    client.set(key, uuid.uuid4().hex)
    transaction.on_commit(lambda: client.set(key, uuid.uuid4().hex))


def _user_changed(instance, **_kwargs) -> None:
    forget_user(instance.pk)


def connect_signals() -> None:
    """Called from ``TenantsConfig.ready``: any save or delete of a user invalidates it."""
    from django.db.models.signals import post_delete, post_save

    from .models import User

    post_save.connect(_user_changed, sender=User, dispatch_uid="user-cache-save")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="user-cache-delete")
