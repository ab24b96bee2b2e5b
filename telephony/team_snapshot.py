"""A tenant's team features as the engine reads them: ring groups, paging groups and call
park (``TenantSnapshot.team``) and each extension's pickup groups. Read from the models only
(``telephony.engine.snapshots`` builds the snapshot with it; the actions that change them, in
``team.py``, publish it), so this module imports no publisher."""

from __future__ import annotations

from typing import Any

from .models import PagingGroup, ParkSettings, PickupGroup, RingGroup
from .sip import contract

__all__ = ["pickup_groups_by_extension", "team_snapshot"]


def _route(value: Any) -> contract.RouteTarget | None:
    return contract.RouteTarget.read(value)


def team_snapshot() -> contract.TeamSnapshot:
    """The tenant's ring groups, paging groups and park settings as the engine reads them
    (``TenantSnapshot.team``). Run inside the tenant's schema."""
    rings: dict[str, contract.RingGroup] = {}
    groups = RingGroup.objects.order_by("number").prefetch_related("members__extension")
    for g in groups:
        members = tuple(
            contract.RingMember(number=m.extension.number)
            if m.extension is not None
            else contract.RingMember(number=m.number, external=True)
            for m in g.members.all()
        )
        rings[g.number] = contract.RingGroup(
            number=g.number,
            name=g.name,
            strategy=g.strategy,
            members=members,
            member_seconds=float(g.member_seconds),
            total_seconds=float(g.total_seconds),
            skip_busy=g.skip_busy,
            caller_id_prefix=g.caller_id_prefix,
            overflow=_route(g.overflow),
            enabled=g.enabled,
        )
    paging = {
        p.number: contract.PagingGroup(
            number=p.number,
            name=p.name,
            members=tuple(sorted(e.number for e in p.members.all())),
            duplex=p.duplex,
        )
        for p in PagingGroup.objects.order_by("number").prefetch_related("members")
    }
    return contract.TeamSnapshot(
        ring_groups=rings, paging=paging, park=ParkSettings.load().snapshot()
    )


def pickup_groups_by_extension() -> dict[str, tuple[str, ...]]:
    """Extension number -> the ids of the pickup groups it is in (as text, in id order). Run
    inside the tenant's schema."""
    out: dict[str, list[str]] = {}
    rows = PickupGroup.members.through.objects.order_by("pickupgroup_id").values_list(
        "extension__number", "pickupgroup_id"
    )
    for number, group_id in rows:
        out.setdefault(number, []).append(str(group_id))
    return {number: tuple(ids) for number, ids in out.items()}
