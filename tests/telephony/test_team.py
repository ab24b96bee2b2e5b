"""The team features written through ``telephony.team`` reach the engine: the snapshot
published on commit, read back by the contract's own reader (``TenantSnapshot.from_json``,
the engine's), has the ring groups, paging groups and park settings exactly as configured,
and each extension's pickup groups; tenant B's snapshot has none of tenant A's."""

import pytest
import redis
from django.conf import settings

from pbx.audit import SYSTEM
from pbx.errors import ValidationFailed
from pbx.models import AuditEntry
from telephony.engine.snapshots import published_snapshot, snapshot_key
from telephony.models import RingGroupMember
from telephony.sip.contract import (
    PagingGroup,
    ParkSettings,
    RingGroup,
    RingMember,
    RouteTarget,
    TeamSnapshot,
    TenantSnapshot,
)
from telephony.team import (
    do_create_paging_group,
    do_create_pickup_group,
    do_create_ring_group,
    do_update_park_settings,
    do_update_pickup_group,
    do_update_ring_group,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def _published(tenant) -> TenantSnapshot:
    client = redis.Redis.from_url(settings.REDIS_URL)
    raw = client.get(snapshot_key(tenant.sip_domain))
    assert raw is not None
    snap = TenantSnapshot.from_json(raw)
    assert snap == published_snapshot(client, tenant.sip_domain)
    return snap


def test_the_published_snapshot_has_the_team_as_configured(
    acme, world, in_tenant, django_capture_on_commit_callbacks
):
    from tenants.models import Tenant

    Tenant.objects.filter(pk=acme.pk).update(country="US")
    acme.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        support = do_create_ring_group(
            actor=SYSTEM,
            fields={"number": "601", "name": "Support", "members": [{"number": "101"}]},
        )
        do_create_ring_group(
            actor=SYSTEM,
            fields={
                "number": "600",
                "name": "Sales",
                "strategy": "round_robin",
                "member_seconds": 12,
                "total_seconds": 45,
                "skip_busy": False,
                "caller_id_prefix": "Sales:",
                "members": [
                    {"number": "102"},
                    {"number": "+1 202 555 0188", "external": True},
                    {"number": "101"},
                ],
                "overflow": {"kind": "ring_group", "target": "601"},
            },
        )
        do_update_ring_group(support, actor=SYSTEM, fields={"enabled": False})
        do_create_paging_group(
            actor=SYSTEM,
            fields={
                "number": "650",
                "name": "Warehouse",
                "duplex": True,
                "members": ["102", "101"],
            },
        )
        desk = do_create_pickup_group(actor=SYSTEM, fields={"name": "Desk", "members": ["101"]})
        back = do_create_pickup_group(
            actor=SYSTEM, fields={"name": "Back", "members": ["101", "102"]}
        )
        do_update_park_settings(actor=SYSTEM, fields={"first": 900, "count": 4, "timeout": 90})
    Tenant.objects.filter(pk=acme.pk).update(country="")

    snap = _published(acme)
    assert snap.team == TeamSnapshot(
        ring_groups={
            "600": RingGroup(
                number="600",
                name="Sales",
                strategy="round_robin",
                members=(
                    RingMember("102"),
                    RingMember("+12025550188", external=True),
                    RingMember("101"),
                ),
                member_seconds=12.0,
                total_seconds=45.0,
                skip_busy=False,
                caller_id_prefix="Sales:",
                overflow=RouteTarget("ring_group", "601"),
                enabled=True,
            ),
            "601": RingGroup(
                number="601", name="Support", members=(RingMember("101"),), enabled=False
            ),
        },
        paging={
            "650": PagingGroup(number="650", name="Warehouse", members=("101", "102"), duplex=True)
        },
        park=ParkSettings(first=900, count=4, timeout=90.0),
    )
    assert snap.extensions["101"].pickup_groups == (str(desk.pk), str(back.pk))
    assert snap.extensions["102"].pickup_groups == (str(back.pk),)
    # A change of the members reaches the engine too. (The test's one transaction still
    # holds the publication queued above, so this one is made by hand, as the commit would.)
    from telephony.engine.snapshots import publish_tenant

    do_update_pickup_group(desk, actor=SYSTEM, fields={"members": ["102"]})
    publish_tenant(acme.pk)
    snap = _published(acme)
    assert snap.extensions["101"].pickup_groups == (str(back.pk),)
    assert snap.extensions["102"].pickup_groups == (str(desk.pk), str(back.pk))  # id order
    # Tenant B's snapshot has nothing of A's team, and the default park.
    publish_tenant(world.tenant_b.pk)
    beta = _published(world.tenant_b)
    assert beta.team == TeamSnapshot()
    assert all(e.pickup_groups == () for e in beta.extensions.values())


def test_a_tenant_without_groups_has_the_default_team(acme, world):
    from telephony.engine.snapshots import build_snapshot

    snap = build_snapshot(acme)
    assert snap.team == TeamSnapshot(park=ParkSettings())
    assert TenantSnapshot.from_json(snap.to_json()).team == snap.team


def test_members_are_stored_in_order_and_audited(acme, world):
    group = do_create_ring_group(
        actor=SYSTEM,
        fields={
            "number": "600",
            "name": "Sales",
            "members": [{"number": "102"}, {"number": "101"}],
        },
    )
    rows = RingGroupMember.objects.filter(group=group).order_by("position")
    assert [(m.position, m.extension.number) for m in rows] == [(0, "102"), (1, "101")]
    do_update_ring_group(
        group, actor=SYSTEM, fields={"members": [{"number": "101"}, {"number": "102"}]}
    )
    rows = RingGroupMember.objects.filter(group=group).order_by("position")
    assert [m.extension.number for m in rows] == ["101", "102"]
    entry = AuditEntry.objects.get(action="ring_group.update", object_id=str(group.pk))
    assert entry.tenant == acme
    assert entry.changes["members"][1] == [
        {"number": "101", "external": False},
        {"number": "102", "external": False},
    ]
    # A refused change leaves the group as it was.
    with pytest.raises(ValidationFailed) as exc:
        do_update_ring_group(
            group,
            actor=SYSTEM,
            fields={"caller_id_prefix": "X\r\nAlert-Info: auto", "members": [{"number": "999"}]},
        )
    assert set(exc.value.fields) == {"caller_id_prefix", "members"}
    group.refresh_from_db()
    assert group.caller_id_prefix == ""
    assert RingGroupMember.objects.filter(group=group).count() == 2


def test_a_change_is_published_once_per_transaction(
    acme, world, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        do_create_ring_group(actor=SYSTEM, fields={"number": "600", "name": "Sales"})
    assert [getattr(c, "publishes_tenant", None) for c in callbacks] == [acme.pk]
