"""Routing snapshots: what the SIP engine needs of a tenant, published to Redis on commit.

The format is the contract's :class:`~telephony.sip.contract.TenantSnapshot`, which the engine
(``telephony.sip.directory``) parses with the same class; the names, with this PBX's prefix:

- ``SNAPSHOT`` (``sip:snapshot:<sip domain>``): the tenant's snapshot as JSON;
- ``DOMAINS`` (``sip:domains``): the set of every published SIP domain (loaded at engine start);
- ``SNAPSHOT_CHANGED`` (channel ``sip:snapshot:changed``): a domain whose snapshot changed (the
  engine reloads it).
"""

import logging

from django_tenants.utils import schema_context

from telephony.sip.contract import (
    DOMAINS,
    EXTENSION_FIELDS,
    SNAPSHOT,
    SNAPSHOT_CHANGED,
    ExtensionSnapshot,
    TenantSnapshot,
    read_snapshot,
)

from .store import client, redis_key

log = logging.getLogger(__name__)


def snapshot_key(domain: str) -> str:
    return redis_key(SNAPSHOT, domain=domain)


def build_snapshot(tenant) -> TenantSnapshot:
    from branding.effective import brand_for_tenant
    from telephony.models import Extension

    with schema_context(tenant.schema_name):
        rows = Extension.objects.values(*EXTENSION_FIELDS)
        extensions = {r["number"]: ExtensionSnapshot.from_dict(r["number"], r) for r in rows}
    return TenantSnapshot(
        tenant_id=tenant.pk,
        schema=tenant.schema_name,
        domain=tenant.sip_domain,
        status=tenant.status,
        anchor_media=False,
        max_concurrent_calls=tenant.max_concurrent_calls,
        sip_digest_sha256=tenant.sip_digest_sha256,
        # The tenant's white-label product name: the engine's Server / User-Agent for it.
        product=brand_for_tenant(tenant).product_name,
        extensions=extensions,
    )


def publish_tenant(tenant_id: int) -> None:
    """Rebuild and publish one tenant's snapshot. Failures are logged: the engine re-reads all
    snapshots at start and ``publish_all`` (run by ``make run``) repairs a missed one."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or not tenant.sip_domain or tenant.is_public:
        return
    try:
        snapshot = build_snapshot(tenant)
        pipe = client().pipeline()
        pipe.set(snapshot_key(tenant.sip_domain), snapshot.to_json())
        pipe.sadd(redis_key(DOMAINS), tenant.sip_domain)
        pipe.publish(redis_key(SNAPSHOT_CHANGED), tenant.sip_domain)
        pipe.execute()
    except Exception:
        log.exception("could not publish the routing snapshot of tenant %s", tenant_id)


def unpublish_domain(domain: str | None) -> None:
    if not domain:
        return
    try:
        pipe = client().pipeline()
        pipe.delete(snapshot_key(domain))
        pipe.srem(redis_key(DOMAINS), domain)
        pipe.publish(redis_key(SNAPSHOT_CHANGED), domain)
        pipe.execute()
    except Exception:
        log.exception("could not remove the routing snapshot of %s", domain)


def published_snapshot(redis, domain: str) -> TenantSnapshot | None:
    """The snapshot published for ``domain`` (``redis``: a synchronous client), as the engine
    reads it; None when there is none or it cannot be read."""
    return read_snapshot(domain, redis.get(snapshot_key(domain)) if domain else None)


def publish_all() -> int:
    from tenants.access import live_tenants

    count = 0
    for tenant_id in live_tenants().values_list("pk", flat=True):
        publish_tenant(tenant_id)
        count += 1
    return count
