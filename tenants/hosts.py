"""Which tenant a web host name belongs to: the ``Domain`` table, cached in each process.

Every HTTP request starts with this lookup (tenants.middleware.TenantMiddleware), so it is kept
in process memory: an answer (a tenant, or "no such host") is reused for
``PBX_HOST_CACHE_SECONDS`` as long as the host generation in Redis has not moved. Saving or
deleting a ``Tenant`` or a ``Domain`` bumps the generation when the transaction commits
(``forget_hosts``), so a suspension, a deletion or a new domain is seen by every web worker on
its next request; the TTL only bounds how long a change made behind the models' back (raw SQL)
goes unseen. One Redis ``GET`` per request replaces a database join and a ``SET search_path``.
"""

from __future__ import annotations

import copy
import logging
import time

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

GENERATION_KEY = "tenants:hosts:gen"
MAX_ENTRIES = 10_000  # unknown host names are cached too; a flood of them cannot grow memory

_MISSING = object()
_cache: dict[str, tuple[float, bytes | None, object]] = {}


def _redis():
    # The raw client: the host table is global, Django's cache keys carry the current schema.
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def _load(hostname: str):
    from .models import Domain

    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain is not None else None


def tenant_for_host(hostname: str):
    """The tenant served on ``hostname`` (a fresh copy: callers may set attributes), or None."""
    ttl = settings.PBX_HOST_CACHE_SECONDS
    if ttl <= 0:
        return _load(hostname)
    generation = _redis().get(GENERATION_KEY)
    now = time.monotonic()
    hit = _cache.get(hostname)
    if hit is not None and hit[0] > now and hit[1] == generation:
        tenant = hit[2]
    else:
        tenant = _load(hostname)
        if len(_cache) >= MAX_ENTRIES:
            _cache.clear()
        _cache[hostname] = (now + ttl, generation, tenant)
    return copy.copy(tenant) if tenant is not None else None


def forget_hosts() -> None:
    """Invalidate every process's host cache once the current transaction commits."""

    def bump() -> None:
        _cache.clear()
        try:
            _redis().incr(GENERATION_KEY)
        except Exception:  # noqa: BLE001 - Redis down: the TTL still bounds staleness
            log.exception("could not bump the host cache generation")

    transaction.on_commit(bump)
