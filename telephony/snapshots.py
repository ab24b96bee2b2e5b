"""Routing snapshots: what the SIP engine needs of a tenant, published to Redis on commit.

Contract with the engine (``telephony/sip``), which reads Redis only:
- ``sip:snapshot:<sip domain>``: JSON ``{"tenant_id", "schema", "domain", "status",
  "anchor_media", "product", "max_concurrent_calls", "sip_digest_sha256",
  "extensions": {number: {...}}}``
- ``sip:domains``: the set of every published SIP domain (loaded at engine start)
- channel ``sip:snapshot:changed``: a domain whose snapshot changed (engine reloads it)
"""

import json
import logging

from django.conf import settings
from django_tenants.utils import schema_context

from telephony.engine_state import redis_key
from telephony.sip.contract import DOMAINS, SNAPSHOT, SNAPSHOT_CHANGED

log = logging.getLogger(__name__)


def snapshot_key(domain: str) -> str:
    return redis_key(SNAPSHOT, domain=domain)


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def build_snapshot(tenant) -> dict:
    from branding.effective import brand_for_tenant

    from .models import Extension

    with schema_context(tenant.schema_name):
        rows = Extension.objects.values(
            "number",
            "display_name",
            "enabled",
            "dnd",
            "ha1_md5",
            "ha1_sha256",
            "max_registrations",
            "allowed_transports",
            "caller_id_name",
            "caller_id_number",
            "forward_always",
            "forward_busy",
            "forward_no_answer",
            "no_answer_timeout",
        )
        extensions = {
            row["number"]: {
                "display_name": row["display_name"],
                "enabled": row["enabled"],
                "dnd": row["dnd"],
                "ha1_md5": row["ha1_md5"],
                "ha1_sha256": row["ha1_sha256"],
                "max_contacts": row["max_registrations"],
                "transports": row["allowed_transports"],
                "caller_id_name": row["caller_id_name"] or row["display_name"],
                "caller_id_number": row["caller_id_number"] or row["number"],
                # Forwarding targets ("" = off) and the seconds of ringing before "no answer".
                "forward_always": row["forward_always"],
                "forward_busy": row["forward_busy"],
                "forward_no_answer": row["forward_no_answer"],
                "no_answer_timeout": row["no_answer_timeout"],
            }
            for row in rows
        }
    return {
        "tenant_id": tenant.pk,
        "schema": tenant.schema_name,
        "domain": tenant.sip_domain,
        "status": tenant.status,
        "anchor_media": False,
        "max_concurrent_calls": tenant.max_concurrent_calls,
        # Digest: SHA-256 offered first (then MD5) only when the tenant opts in.
        "sip_digest_sha256": tenant.sip_digest_sha256,
        # The tenant's white-label product name: the engine's Server / User-Agent for it.
        "product": brand_for_tenant(tenant).product_name,
        "extensions": extensions,
    }


def publish_tenant(tenant_id: int) -> None:
    """Rebuild and publish one tenant's snapshot. Failures are logged: the engine re-reads all
    snapshots at start and ``publish_all`` (run by ``make run``) repairs a missed one."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None or not tenant.sip_domain or tenant.is_public:
        return
    try:
        snapshot = build_snapshot(tenant)
        r = _redis()
        pipe = r.pipeline()
        pipe.set(snapshot_key(tenant.sip_domain), json.dumps(snapshot))
        pipe.sadd(redis_key(DOMAINS), tenant.sip_domain)
        pipe.publish(redis_key(SNAPSHOT_CHANGED), tenant.sip_domain)
        pipe.execute()
    except Exception:
        log.exception("could not publish the routing snapshot of tenant %s", tenant_id)


def unpublish_domain(domain: str | None) -> None:
    if not domain:
        return
    try:
        r = _redis()
        pipe = r.pipeline()
        pipe.delete(snapshot_key(domain))
        pipe.srem(redis_key(DOMAINS), domain)
        pipe.publish(redis_key(SNAPSHOT_CHANGED), domain)
        pipe.execute()
    except Exception:
        log.exception("could not remove the routing snapshot of %s", domain)


def publish_all() -> int:
    from tenants.access import live_tenants

    count = 0
    for tenant_id in live_tenants().values_list("pk", flat=True):
        publish_tenant(tenant_id)
        count += 1
    return count
