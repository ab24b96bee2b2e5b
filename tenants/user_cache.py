"""The user behind a bearer token, cached briefly in each web process.

Every API request authenticates: loading the ``User`` row was one SQL round trip and a model
instantiation per request. Each process keeps the row's values for ``PBX_USER_CACHE_SECONDS``
as long as the user's version token in Redis has not moved (``pbx.versioned``); saving or
deleting the user (a deactivation, a role or password change, a move to another tenant or
dealer) replaces the token, so every worker reloads on its next request.
Signing out does not depend on this cache: the revoked sign-in session is checked in Redis on
every request (``pbx.credentials``). Each request gets a fresh instance (no related object —
tenant, dealer — is carried over from an earlier request).
"""

from __future__ import annotations

from django.conf import settings

from pbx import versioned

VERSION_KEY = "auth:user-version:{pk}"
_cache = versioned.ProcessCache(max_entries=10_000)


def get_user(pk):
    """The ``User`` with primary key ``pk`` (a fresh instance), or None."""
    from .models import User

    ttl = settings.PBX_USER_CACHE_SECONDS
    if ttl <= 0:
        return User.objects.filter(pk=pk).first()
    key = VERSION_KEY.format(pk=pk)
    token = versioned.tokens(key)
    values = _cache.get(key, token)
    if values is None:
        user = User.objects.filter(pk=pk).first()
        if user is None:
            return None
        values = tuple(getattr(user, f.attname) for f in User._meta.concrete_fields)
        _cache.put(key, token, values, ttl=ttl)
        return user
    return User.from_db("default", [f.attname for f in User._meta.concrete_fields], values)


def forget_user(pk) -> None:
    """Every process reloads user ``pk`` on its next request (now, and after the commit)."""
    if pk is not None:
        versioned.bump(VERSION_KEY.format(pk=pk))


def _user_changed(instance, **_kwargs) -> None:
    forget_user(instance.pk)


def connect_signals() -> None:
    """Called from ``TenantsConfig.ready``: any save or delete of a user invalidates it."""
    from django.db.models.signals import post_delete, post_save

    from .models import User

    post_save.connect(_user_changed, sender=User, dispatch_uid="user-cache-save")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="user-cache-delete")
