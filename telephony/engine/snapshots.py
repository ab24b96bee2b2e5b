"""Routing snapshots: what the SIP engine needs of a tenant, published to Redis on commit.

The format is the contract's :class:`~telephony.sip.contract.TenantSnapshot`, which the engine
(``telephony.sip.directory``) parses with the same class; the names, with this PBX's prefix:

- ``SNAPSHOT`` (``sip:snapshot:<sip domain>``): the tenant's snapshot as JSON;
- ``DOMAINS`` (``sip:domains``): the set of every published SIP domain (loaded at engine start);
- ``SNAPSHOT_CHANGED`` (channel ``sip:snapshot:changed``): a domain whose snapshot changed (the
  engine reloads it).
"""

import logging

from django.db import transaction
from django_tenants.utils import schema_context

from telephony.sip.contract import (
    DOMAINS,
    EXTENSION_FIELDS,
    SNAPSHOT,
    SNAPSHOT_CHANGED,
    CallCenterSnapshot,
    ExtensionSnapshot,
    MediaSnapshot,
    RoutingSnapshot,
    TeamSnapshot,
    TenantSnapshot,
    read_snapshot,
)

from .store import client, redis_key

log = logging.getLogger(__name__)


def snapshot_key(domain: str) -> str:
    return redis_key(SNAPSHOT, domain=domain)


def build_routing(tenant) -> RoutingSnapshot:
    """The tenant's outside-call routing (run inside its schema): the rows as they are stored,
    read once by the contract's own reader (the engine's)."""
    from routing.models import (
        BlacklistEntry,
        EmergencyNumber,
        Holiday,
        InboundRule,
        OutboundRule,
        RoutingSettings,
    )

    settings = RoutingSettings.load()
    return RoutingSnapshot.read(
        {
            "country": tenant.country,
            "time_zone": tenant.time_zone,
            "hours": settings.hours_enabled,
            "weekly": settings.weekly,
            "holidays": list(Holiday.objects.values()),
            "inbound": list(InboundRule.objects.filter(enabled=True).values()),
            "blacklist": list(BlacklistEntry.objects.values()),
            "outbound": list(OutboundRule.objects.filter(enabled=True).values()),
            "emergency": list(EmergencyNumber.objects.values()),
            "privacy_code": settings.privacy_code,
            "blocked_prefixes": settings.blocked_prefixes,
            "allowed_countries": settings.allowed_countries,
            "caller_id": settings.caller_id,
            "emergency_caller_id": settings.emergency_caller_id,
        }
    )


def build_media(tenant) -> MediaSnapshot:
    """What the tenant's calls play and the numbers of its media features (run inside its
    schema): its language, prompts and music (``audio``), IVR menus (their prompts in that
    language) and feature codes."""
    from audio.snapshot import media_fields
    from routing.snapshot import disa_rows, ivr_rows
    from telephony.feature_codes import codes

    fields = media_fields(tenant)
    language = str(fields.get("language") or "en")
    return MediaSnapshot.read(
        {
            **fields,
            "ivrs": ivr_rows(language, own=fields["prompts"]),
            "codes": codes(),
            "disa": disa_rows(),
        }
    )


def build_team(tenant) -> TeamSnapshot:
    """The tenant's ring groups, paging groups and call park (run inside its schema)."""
    from telephony.team_snapshot import team_snapshot

    return team_snapshot()


def build_callcenter(tenant) -> CallCenterSnapshot:
    """The tenant's call queues (run inside its schema); none while its ``feature_queues``
    capability is off."""
    from callcenter.snapshot import callcenter_snapshot

    if not getattr(tenant, "feature_queues", True):
        return CallCenterSnapshot()
    return callcenter_snapshot()


def build_snapshot(tenant) -> TenantSnapshot:
    from audio.recording_snapshot import recording_snapshot
    from audio.snapshot import mailboxes
    from billing.snapshot import billing_snapshot
    from branding.effective import brand_for_tenant
    from telephony.models import Extension, SpeedDial
    from telephony.team_snapshot import pickup_groups_by_extension

    with schema_context(tenant.schema_name):
        rows = Extension.objects.values(*EXTENSION_FIELDS)
        boxes = mailboxes()
        dials: dict[str, dict[str, str]] = {}
        for owner, code, number in SpeedDial.objects.values_list(
            "extension__number", "code", "number"
        ):
            dials.setdefault(owner, {})[code] = number
        pickup = pickup_groups_by_extension()
        extensions = {
            r["number"]: ExtensionSnapshot.from_dict(
                r["number"],
                {
                    **r,
                    "voicemail": boxes.get(r["number"]),
                    "speed_dials": dials.get(r["number"]),
                    "pickup_groups": pickup.get(r["number"], ()),
                },
            )
            for r in rows
        }
        routing = build_routing(tenant)
        media = build_media(tenant)
        team = build_team(tenant)
        recording = recording_snapshot(tenant)
        callcenter = build_callcenter(tenant)
    return TenantSnapshot(
        tenant_id=tenant.pk,
        schema=tenant.schema_name,
        domain=tenant.sip_domain,
        status=tenant.status,
        anchor_media=False,
        max_concurrent_calls=tenant.max_concurrent_calls,
        sip_digest_sha256=tenant.sip_digest_sha256,
        srtp=tenant.srtp,
        # The tenant's white-label product name: the engine's Server / User-Agent for it.
        product=brand_for_tenant(tenant).product_name,
        extensions=extensions,
        routing=routing,
        media=media,
        team=team,
        recording=recording,
        callcenter=callcenter,
        billing=billing_snapshot(tenant),  # public tables: outside the tenant's schema
    )


def publish_on_commit(tenant) -> None:
    """Publish the tenant's routing snapshot once the transaction commits — once per
    transaction, however many rows it changed (a CSV import of 1,000 rows rebuilds the
    snapshot once, not 1,000 times)."""
    tenant_id = tenant.pk
    queued = transaction.get_connection().run_on_commit  # (savepoints, callback, robust)
    if any(getattr(entry[1], "publishes_tenant", None) == tenant_id for entry in queued):
        return

    def publish() -> None:
        publish_tenant(tenant_id)

    publish.publishes_tenant = tenant_id  # type: ignore[attr-defined]
    transaction.on_commit(publish)


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
        return
    from billing.credit import sync_tenant

    sync_tenant(tenant)  # the credit its calls are checked against, as the snapshot's mode


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
    """Every live tenant's snapshot and the carrier snapshot."""
    from tenants.access import live_tenants

    from .carriers import publish_carriers

    publish_carriers()
    count = 0
    for tenant_id in live_tenants().values_list("pk", flat=True):
        publish_tenant(tenant_id)
        count += 1
    from audio.index import publish_all_boxes  # every mailbox's index too (the MWI)

    publish_all_boxes()
    from .tls import publish_all as publish_certificates  # the tenants' TLS certificates

    publish_certificates()
    return count
