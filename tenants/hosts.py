"""Which tenant a web host name belongs to: the ``Domain`` table, cached in each process.

Every HTTP request starts with this lookup (tenants.middleware.TenantMiddleware), so it is kept
in process memory: an answer (a tenant, or "no such host") is reused for
``PBX_HOST_CACHE_SECONDS`` as long as the hosts' version token in Redis has not moved
(``pbx.versioned``). Saving or deleting a ``Tenant`` or a ``Domain`` replaces the token
(``tenants.models.forget_hosts``), so a suspension, a deletion or a new domain is seen by every
web worker on its next request; the TTL only bounds how long a change made behind the models'
back (raw SQL) goes unseen. One Redis ``GET`` per request replaces a database join and a
``SET search_path``.
"""

from __future__ import annotations

import copy

from django.conf import settings

from pbx import versioned

from .models import HOSTS_VERSION_KEY, Domain

# Unknown host names are cached too; a flood of them cannot grow memory past this.
_cache = versioned.ProcessCache(max_entries=10_000)
_MISSING = object()


def _load(hostname: str):
    domain = Domain.objects.select_related("tenant").filter(domain=hostname).first()
    return domain.tenant if domain is not None else None


def tenant_for_host(hostname: str):
    """The tenant served on ``hostname`` (a fresh copy: callers may set attributes), or None."""
    ttl = settings.PBX_HOST_CACHE_SECONDS
    if ttl <= 0:
        return _load(hostname)
    token = versioned.tokens(HOSTS_VERSION_KEY)
    tenant = _cache.get(hostname, token, _MISSING)
    if tenant is _MISSING:
        tenant = _load(hostname)
        _cache.put(hostname, token, tenant, ttl=ttl)
    return copy.copy(tenant) if tenant is not None else None
