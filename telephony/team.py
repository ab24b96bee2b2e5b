"""A tenant's team features on the Django side: ring groups, paging groups, pickup groups and
call park settings. The one validator of each and the audited actions (run inside the
tenant's schema; the snapshot is republished on commit); the engine's view of them is read by
``team_snapshot.py``.

A group is written with its members in one action (the members are replaced as a list), so
the engine never sees a group half-changed. Numbers share the tenant's dial plan with
extensions and IVR menus (``routing.lookups.number_user``); a group that an inbound rule, an
IVR menu or another group's overflow sends calls to is not deleted (409 naming them). A
deleted extension simply leaves the groups it was in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, QuotaExceeded, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors

from .engine.snapshots import publish_on_commit
from .models import (
    Extension,
    PagingGroup,
    ParkSettings,
    PickupGroup,
    RingGroup,
    RingGroupMember,
    RingStrategy,
)

__all__ = [
    "MEMBER_SECONDS",
    "PARK_COUNT",
    "PARK_TIMEOUT",
    "TOTAL_SECONDS",
    "do_create_paging_group",
    "do_create_pickup_group",
    "do_create_ring_group",
    "do_delete_paging_group",
    "do_delete_pickup_group",
    "do_delete_ring_group",
    "do_update_paging_group",
    "do_update_park_settings",
    "do_update_pickup_group",
    "do_update_ring_group",
    "references",
]

#: Seconds one member rings (one after the other) and the whole group rings at most: the
#: contract's bounds (``contract.RingGroup.read``).
MEMBER_SECONDS = (5, 300)
TOTAL_SECONDS = (5, 3600)
#: Shown before the caller's name on the members' phones: a short label (``contract``: 16).
PREFIX_LENGTH = 16
MAX_MEMBERS = 50
#: Park slots a tenant may have, and the seconds before a parked call rings its parker again.
PARK_COUNT = (1, 100)
PARK_TIMEOUT = (10, 3600)
RING_FIELDS = (
    "number", "name", "strategy", "member_seconds", "total_seconds", "skip_busy",
    "caller_id_prefix", "overflow", "enabled",
)  # fmt: skip
PAGING_FIELDS = ("number", "name", "duplex")
PARK_FIELDS = ("first", "count", "timeout")
LABELS = {"ring_group": "Ring group", "paging": "Paging group"}


def _tenant():
    return require_tenant("team actions")


class _Errors(dict):
    def add(self, name: str, text: str) -> None:
        self.setdefault(name, []).append(text)


def _int(errors: _Errors, fields: dict, name: str, bounds: tuple[int, int]) -> None:
    value = fields.get(name)
    if value is None and name not in fields:
        return
    lo, hi = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        errors.add(name, f"a whole number from {lo} to {hi}")


def _bool(errors: _Errors, fields: dict, *names: str) -> None:
    for name in names:
        if name in fields and not isinstance(fields[name], bool):
            errors.add(name, "true or false")


def _texts(errors: _Errors, fields: dict, obj, lengths: dict[str, int], required) -> None:
    errors.update(single_line_errors(fields, lengths))
    for name in lengths:
        if name in fields and not isinstance(fields[name], str):
            errors.setdefault(name, ["text"])
    for name in required:
        current = fields[name] if name in fields else getattr(obj, name, "")
        if name not in errors and not str(current or "").strip():
            errors.add(name, "required")
    for name in lengths:
        if name in fields and name not in errors:
            fields[name] = fields[name].strip()


def _number(errors: _Errors, tenant, number: str, exclude: tuple[str, int] | None) -> None:
    """A group's number: a valid, free number of the tenant's dial plan."""
    from routing.lookups import emergency_or_code, number_user
    from telephony.actions import number_problem

    problem = number_problem(tenant, number)
    if problem is not None:
        errors.add("number", problem[0])
    elif (reserved := emergency_or_code(number)) is not None:
        errors.add("number", reserved)
    elif (user := number_user(number, exclude=exclude)) is not None:
        errors.add("number", f"{user} has this number")


def _extensions(
    errors: _Errors, name: str, value: Any, limit: int = MAX_MEMBERS, noun: str = "members"
) -> list[Extension] | None:
    """A list of the tenant's extension numbers as their rows, in the order given: at most
    ``limit`` of them (the error counts them as ``noun``; none: only the number). Also the
    contact centre's agents and supervisors (``callcenter.actions``)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(name, "a list of extension numbers")
        return None
    numbers = [v.strip() for v in value]
    if len(numbers) > limit:
        errors.add(name, f"at most {limit} {noun}".rstrip())
        return None
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        errors.add(name, f"given twice: {', '.join(twice)}")
        return None
    found = {e.number: e for e in Extension.objects.filter(number__in=numbers)}
    missing = [n for n in numbers if n not in found]
    if missing:
        errors.add(name, f"no extension {', '.join(m or '(empty)' for m in missing)}")
        return None
    return [found[n] for n in numbers]


# ------------------------------------------------------------------------------ lookups


def references(kind: str, number: str, *, exclude_group: int | None = None) -> list[str]:
    """What sends calls to the ring group (``kind`` ``ring_group``) or paging group
    (``paging``) ``number``, in words."""
    from routing.lookups import target_references

    return target_references(kind, number, exclude_group=exclude_group)


def _in_use(kind: str, number: str, exclude_group: int | None = None) -> None:
    used = references(kind, number, exclude_group=exclude_group)
    if used:
        label = LABELS[kind]
        raise Conflict(
            f"{label} {number} is in use by {'; '.join(used)}: change them first.",
            fields={"number": [f"in use by {'; '.join(used)}"]},
        )


# ------------------------------------------------------------------ writing any group kind


def _numbers(rows) -> list[str]:
    return sorted(e.number for e in rows)


def _set_members(group, members: list[Extension]) -> None:
    group.members.set(members)


def _member_numbers(group) -> list[str]:
    return _numbers(group.members.all())


@dataclass(frozen=True)
class _Kind:
    """How a group kind's rows and members are written and audited."""

    model: type[Any]
    #: ``validate(tenant, fields, group or None)``: (the group's values, its members or None
    #: when they are not being changed), or ValidationFailed.
    validate: Callable[[Any, dict, Any], tuple[dict, list | None]]
    #: The audit's action prefix (``ring_group``: ``ring_group.create`` ...).
    action: str
    #: The Conflict when another group has the same ``key`` (a number, a name) meanwhile.
    taken: Callable[[str], Conflict]
    key: str
    #: The members given (validated) and a group's current members, as the audit records them
    #: (by default: extensions, as their sorted numbers).
    described: Callable[[list], list] = _numbers
    current: Callable[[Any], list] = _member_numbers
    #: Replace a group's members with the given ones.
    replace: Callable[[Any, list], None] = _set_members
    #: Counted in the tenant's ring-group quota.
    quota: bool = True


def _create(kind: _Kind, actor: Actor, fields: dict):
    """A new group of ``fields`` (without ``members``: none)."""
    tenant = _tenant()
    values, members = kind.validate(tenant, {"members": [], **fields}, None)
    with transaction.atomic():
        if kind.quota:
            _quota(tenant)
        try:
            with transaction.atomic():
                group = kind.model.objects.create(**values)
        except IntegrityError as exc:  # a group of the same number (name) made meanwhile
            raise kind.taken(values[kind.key]) from exc
        kind.replace(group, members or [])
        changes = {**values, "members": kind.described(members or [])}
        audit.record(actor, f"{kind.action}.create", group, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return group


def _update(kind: _Kind, actor: Actor, group, fields: dict):
    """Change ``group`` with ``fields``; ``members``, when given, replace its members."""
    tenant = _tenant()
    values, members = kind.validate(tenant, dict(fields), group)
    with transaction.atomic():
        group = kind.model.objects.select_for_update().get(pk=group.pk)
        changes = audit.diff(group, values)
        for name, value in values.items():
            setattr(group, name, value)
        try:
            with transaction.atomic():
                group.save()
        except IntegrityError as exc:
            raise kind.taken(getattr(group, kind.key)) from exc
        if members is not None:
            before, after = kind.current(group), kind.described(members)
            if before != after:
                changes["members"] = [before, after]
                kind.replace(group, members)
        audit.record(actor, f"{kind.action}.update", group, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return group


def _delete(kind: _Kind, actor: Actor, group, in_use: Callable[[Any], None] | None) -> None:
    """Delete ``group``; with ``in_use(group)``, locked and checked first (Conflict)."""
    tenant = _tenant()
    with transaction.atomic():
        if in_use is not None:
            group = kind.model.objects.select_for_update().get(pk=group.pk)
            in_use(group)
        audit.record(actor, f"{kind.action}.delete", group, tenant=tenant)
        group.delete()
        publish_on_commit(tenant)


# ---------------------------------------------------------------------------- ring groups


def _member(tenant, item: Any) -> tuple[Extension | None, str]:
    """A member (``{"number", "external"}``) as (its extension, or None and the outside
    number in E.164); ValueError saying why not."""
    from routing.destinations import KINDS

    if not isinstance(item, dict):
        raise ValueError('each member is {"number": ..., "external": true|false}')
    number = item.get("number")
    external = item.get("external", False)
    if not isinstance(number, str) or not number.strip():
        raise ValueError("a member needs its number")
    if not isinstance(external, bool):
        raise ValueError(f"{number}: external is true or false")
    number = number.strip()
    if external:
        return None, KINDS["external"].check(tenant, number)
    extension = Extension.objects.filter(number=number).first()
    if extension is None:
        raise ValueError(f"no extension {number}")
    return extension, ""


def _members(tenant, errors: _Errors, value: Any) -> list[tuple[Extension | None, str]] | None:
    if not isinstance(value, list):
        errors.add("members", 'a list of {"number": ..., "external": true|false}')
        return None
    if len(value) > MAX_MEMBERS:
        errors.add("members", f"at most {MAX_MEMBERS} members")
        return None
    out: list[tuple[Extension | None, str]] = []
    seen: set[str] = set()
    for item in value:
        try:
            extension, outside = _member(tenant, item)
        except ValueError as exc:
            errors.add("members", str(exc))
            continue
        key = extension.number if extension is not None else outside
        if key in seen:
            errors.add("members", f"{key}: given twice")
            continue
        seen.add(key)
        out.append((extension, outside))
    return out


def _overflow(
    tenant,
    errors: _Errors,
    fields: dict,
    own_number: str,
    *,
    kind: str = "ring_group",
    model: type[Any] = RingGroup,
    label: str = "group",
) -> None:
    """``fields["overflow"]``: a destination (``routing.destinations.clean_target``) or None,
    that does not lead back to its own ``kind`` of ``model`` (a ring group; also a queue,
    ``callcenter.actions``), called ``label`` in the error."""
    from routing.destinations import clean_target

    value = fields.get("overflow")
    if value in (None, {}):
        if "overflow" in fields:
            fields["overflow"] = None
        return
    try:
        target = clean_target(tenant, value)
    except ValueError as exc:
        errors.add("overflow", str(exc))
        return
    # One whose overflow leads back to it (directly or through others) would ring forever.
    seen = {own_number}
    hop: dict | None = target
    while hop is not None and hop.get("kind") == kind:
        if hop.get("target") in seen:
            errors.add("overflow", f"the overflow leads back to this {label}")
            return
        seen.add(hop["target"])
        nxt = model.objects.filter(number=hop["target"]).values_list("overflow", flat=True)
        hop = next(iter(nxt), None)
    fields["overflow"] = target


def _validated_ring(tenant, fields: dict, group: RingGroup | None) -> tuple[dict, list | None]:
    """(the group's fields, its members or None when they are not being changed), or
    ValidationFailed with a field error for each bad value."""
    members = fields.get("members")
    has_members = "members" in fields
    fields = {k: v for k, v in fields.items() if k in RING_FIELDS}
    errors = _Errors()
    _texts(
        errors,
        fields,
        group,
        {"number": 64, "name": 120, "caller_id_prefix": PREFIX_LENGTH},
        ("number", "name"),
    )
    number = fields.get("number")
    if number is not None and "number" not in errors:
        _number(errors, tenant, number, ("ring_group", group.pk) if group else None)
    own = str(number if number is not None else getattr(group, "number", ""))
    if "strategy" in fields and fields["strategy"] not in RingStrategy.values:
        errors.add("strategy", f"one of {', '.join(RingStrategy.values)}")
    _int(errors, fields, "member_seconds", MEMBER_SECONDS)
    _int(errors, fields, "total_seconds", TOTAL_SECONDS)
    _bool(errors, fields, "skip_busy", "enabled")
    _overflow(tenant, errors, fields, own)
    cleaned = _members(tenant, errors, members) if has_members else None
    if group is not None and number is not None and number != group.number and not errors:
        _in_use("ring_group", group.number, group.pk)
    if errors:
        raise ValidationFailed("The ring group has invalid fields.", fields=dict(errors))
    return fields, cleaned


def _replace_members(group: RingGroup, members: list[tuple[Extension | None, str]]) -> None:
    RingGroupMember.objects.filter(group=group).delete()
    RingGroupMember.objects.bulk_create(
        RingGroupMember(group=group, position=i, extension=ext, number=outside)
        for i, (ext, outside) in enumerate(members)
    )


def ring_members(group: RingGroup) -> list[dict]:
    """A group's members as the API shows them (and the audit records them), in order."""
    return [
        {"number": m.extension.number, "external": False}
        if m.extension is not None
        else {"number": m.number, "external": True}
        for m in group.members.all()
    ]


def _described(members: list[tuple[Extension | None, str]]) -> list[dict]:
    return [
        {"number": e.number, "external": False} if e else {"number": n, "external": True}
        for e, n in members
    ]


def _quota(tenant) -> None:
    """Ring groups and paging groups count together (PortSIP's paging is a ring group)."""
    from tenants.models import Tenant

    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    used = RingGroup.objects.count() + PagingGroup.objects.count()
    if used >= locked.max_ring_groups:
        raise QuotaExceeded(
            f"The tenant may have at most {locked.max_ring_groups} ring and paging groups.",
            fields={"number": [f"quota of {locked.max_ring_groups} groups reached"]},
        )


def _taken(kind: str, number: str) -> Conflict:
    return Conflict(
        f"A {LABELS[kind].lower()} has the number {number}.",
        fields={"number": [f"another {LABELS[kind].lower()} has this number"]},
    )


_RING = _Kind(
    model=RingGroup,
    validate=_validated_ring,
    action="ring_group",
    taken=lambda number: _taken("ring_group", number),
    key="number",
    described=_described,
    current=ring_members,
    replace=_replace_members,
)


def do_create_ring_group(*, actor: Actor, fields: dict) -> RingGroup:
    """A new ring group with its members (``fields["members"]``: ``[{"number", "external"}]``,
    in ringing order)."""
    return _create(_RING, actor, fields)


def do_update_ring_group(group: RingGroup, *, actor: Actor, fields: dict) -> RingGroup:
    """Change a ring group; ``fields["members"]``, when given, replaces its members."""
    return _update(_RING, actor, group, fields)


def do_delete_ring_group(group: RingGroup, *, actor: Actor) -> None:
    """Delete a ring group nothing sends calls to; else Conflict (409) naming what does."""
    _delete(_RING, actor, group, lambda g: _in_use("ring_group", g.number, g.pk))


# -------------------------------------------------------------------------- paging groups


def _validated_paging(
    tenant, fields: dict, group: PagingGroup | None
) -> tuple[dict, list[Extension] | None]:
    members = fields.get("members")
    has_members = "members" in fields
    fields = {k: v for k, v in fields.items() if k in PAGING_FIELDS}
    errors = _Errors()
    _texts(errors, fields, group, {"number": 64, "name": 120}, ("number", "name"))
    number = fields.get("number")
    if number is not None and "number" not in errors:
        _number(errors, tenant, number, ("paging", group.pk) if group else None)
    _bool(errors, fields, "duplex")
    cleaned = _extensions(errors, "members", members) if has_members else None
    if group is not None and number is not None and number != group.number and not errors:
        _in_use("paging", group.number)
    if errors:
        raise ValidationFailed("The paging group has invalid fields.", fields=dict(errors))
    return fields, cleaned


_PAGING = _Kind(
    model=PagingGroup,
    validate=_validated_paging,
    action="paging_group",
    taken=lambda number: _taken("paging", number),
    key="number",
)


def do_create_paging_group(*, actor: Actor, fields: dict) -> PagingGroup:
    """A new paging group with its members (``fields["members"]``: extension numbers)."""
    return _create(_PAGING, actor, fields)


def do_update_paging_group(group: PagingGroup, *, actor: Actor, fields: dict) -> PagingGroup:
    """Change a paging group; ``fields["members"]``, when given, replaces its members."""
    return _update(_PAGING, actor, group, fields)


def do_delete_paging_group(group: PagingGroup, *, actor: Actor) -> None:
    """Delete a paging group nothing sends calls to; else Conflict (409) naming what does."""
    _delete(_PAGING, actor, group, lambda g: _in_use("paging", g.number))


# -------------------------------------------------------------------------- pickup groups


def _validated_pickup(
    fields: dict, group: PickupGroup | None
) -> tuple[dict, list[Extension] | None]:
    members = fields.get("members")
    has_members = "members" in fields
    fields = {k: v for k, v in fields.items() if k == "name"}
    errors = _Errors()
    _texts(errors, fields, group, {"name": 120}, ("name",))
    name = fields.get("name")
    if name and "name" not in errors:
        other = PickupGroup.objects.filter(name__iexact=name).exclude(pk=group.pk if group else 0)
        if other.exists():
            errors.add("name", "another pickup group has this name")
    cleaned = _extensions(errors, "members", members) if has_members else None
    if errors:
        raise ValidationFailed("The pickup group has invalid fields.", fields=dict(errors))
    return fields, cleaned


def _name_taken(name: str) -> Conflict:
    return Conflict(
        "A pickup group has this name.",
        fields={"name": ["another pickup group has this name"]},
    )


_PICKUP = _Kind(
    model=PickupGroup,
    validate=lambda tenant, fields, group: _validated_pickup(fields, group),
    action="pickup_group",
    taken=_name_taken,
    key="name",
    quota=False,
)


def do_create_pickup_group(*, actor: Actor, fields: dict) -> PickupGroup:
    """A new pickup group: its members may answer each other's ringing calls (``*98``)."""
    return _create(_PICKUP, actor, fields)


def do_update_pickup_group(group: PickupGroup, *, actor: Actor, fields: dict) -> PickupGroup:
    return _update(_PICKUP, actor, group, fields)


def do_delete_pickup_group(group: PickupGroup, *, actor: Actor) -> None:
    """Nothing sends calls to a pickup group: it is simply gone from its members."""
    _delete(_PICKUP, actor, group, None)


# ------------------------------------------------------------------------------ call park


def _validated_park(tenant, fields: dict, current: ParkSettings) -> dict:
    from telephony.actions import number_problem

    fields = {k: v for k, v in fields.items() if k in PARK_FIELDS}
    errors = _Errors()
    _int(errors, fields, "first", (1, 10**9))
    _int(errors, fields, "count", PARK_COUNT)
    _int(errors, fields, "timeout", PARK_TIMEOUT)
    if errors:
        raise ValidationFailed("The park settings are invalid.", fields=dict(errors))
    if not {"first", "count"} & set(fields):
        return fields
    first = fields.get("first", current.first)
    count = fields.get("count", current.count)
    for slot in range(first, first + count):
        number = str(slot)
        problem = number_problem(tenant, number)
        if problem is not None:
            errors.add("first", f"slot {number}: {problem[0]}")
            break
        user = _not_park(number)
        if user is not None:
            errors.add("first", f"slot {number}: {user} has this number")
            break
    if errors:
        raise ValidationFailed("The park settings are invalid.", fields=dict(errors))
    return fields


def _not_park(number: str) -> str | None:
    """What other than a park slot has ``number`` (extensions, menus, groups)."""
    from routing.lookups import menu_numbered

    if Extension.objects.filter(number=number).exists():
        return f"extension {number}"
    if (menu := menu_numbered(number)) is not None:
        return f"IVR menu {menu.number} '{menu.name}'"
    if (ring := RingGroup.objects.filter(number=number).first()) is not None:
        return f"ring group {ring.number} '{ring.name}'"
    if (page := PagingGroup.objects.filter(number=number).first()) is not None:
        return f"paging group {page.number} '{page.name}'"
    return None


def do_update_park_settings(*, actor: Actor, fields: dict) -> ParkSettings:
    """Change the tenant's park slots (``first``, ``count``) or timeout; the first change
    stores its row."""
    tenant = _tenant()
    with transaction.atomic():
        settings = ParkSettings.objects.select_for_update().order_by("pk").first()
        settings = settings if settings is not None else ParkSettings()
        values = _validated_park(tenant, dict(fields), settings)
        changes = audit.diff(settings, values)
        for name, value in values.items():
            setattr(settings, name, value)
        settings.updated_at = timezone.now()
        settings.save()
        audit.record(actor, "park_settings.update", settings, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return settings
