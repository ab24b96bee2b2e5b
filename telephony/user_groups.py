"""User groups of a tenant (PortSIP's user groups): a name, a description and member
extensions. The one validator and the audited actions (run inside the tenant's schema); the
API, the portal and any import only shape input and call them.

A group is a list of the tenant's extensions: a department that a phone's BLF keys, the
directory or a rule can name as one. It reaches no SIP header itself (the engine's snapshot does
not carry it), but its name is shown in pages and may be written into phones' files, so names
and descriptions are single-line texts.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors

from .models import Extension, UserGroup

__all__ = [
    "GROUP_FIELDS",
    "MAX_MEMBERS",
    "do_create_user_group",
    "do_delete_user_group",
    "do_update_user_group",
    "groups_of",
    "validate_user_group",
]

#: What the actions take: ``members`` as a list of extension numbers.
GROUP_FIELDS = ("name", "description", "members")
TEXT_LIMITS = {"name": 64, "description": 255}
#: A group is a team, not the company: beyond this a list of keys or names is no use.
MAX_MEMBERS = 500


def _tenant():
    return require_tenant("user group actions")


def validate_user_group(fields: dict[str, Any], group: UserGroup | None = None) -> dict[str, Any]:
    """``fields`` as the actions store them (``members``: the extensions, ordered by number),
    or :class:`ValidationFailed` with a field error for each bad value. A new group needs a
    name; a name another group has is a :class:`Conflict`."""
    unknown = sorted(set(fields) - set(GROUP_FIELDS))
    if unknown:
        raise ValidationFailed(
            "Unknown fields.", fields={name: ["not a field of a user group"] for name in unknown}
        )
    texts = {k: v for k, v in fields.items() if k in TEXT_LIMITS}
    errors: dict[str, list[str]] = single_line_errors(texts, TEXT_LIMITS)
    values: dict[str, Any] = {}
    for name in TEXT_LIMITS:
        if name not in fields or name in errors:
            continue
        value = fields[name]
        if value is not None and not isinstance(value, str):
            errors[name] = ["a text"]
            continue
        values[name] = (value or "").strip()
    if "name" in values and not values["name"] or group is None and "name" not in fields:
        errors["name"] = ["required"]
    if "members" in fields:
        members = fields["members"]
        if members is None:
            members = []
        if not isinstance(members, list) or any(not isinstance(m, str) for m in members):
            errors["members"] = ["a list of extension numbers"]
        else:
            numbers = list(dict.fromkeys(m.strip() for m in members if m.strip()))
            if len(numbers) > MAX_MEMBERS:
                errors["members"] = [f"at most {MAX_MEMBERS} members"]
            else:
                found = {e.number: e for e in Extension.objects.filter(number__in=numbers)}
                missing = [n for n in numbers if n not in found]
                if missing:
                    shown = ", ".join(missing[:10])
                    errors["members"] = [f"no extension {shown}"]
                else:
                    values["members"] = [found[n] for n in sorted(numbers)]
    if errors:
        raise ValidationFailed("Invalid user group.", fields=errors)
    new_name = values.get("name")
    if new_name is not None:
        taken = UserGroup.objects.filter(name__iexact=new_name)
        if group is not None:
            taken = taken.exclude(pk=group.pk)
        if taken.exists():
            raise Conflict("The name is taken.", fields={"name": ["another group has this name"]})
    return values


def _numbers(members: list[Extension]) -> list[str]:
    return [e.number for e in members]


def do_create_user_group(*, actor: Actor, fields: dict[str, Any]) -> UserGroup:
    """Create a group with its members."""
    tenant = _tenant()
    with transaction.atomic():
        values = validate_user_group(fields)
        members = values.pop("members", [])
        try:
            with transaction.atomic():
                group = UserGroup.objects.create(**values)
        except IntegrityError as exc:  # a concurrent create took the name
            raise Conflict("The name is taken.", fields={"name": ["already in use"]}) from exc
        group.members.set(members)
        audit.record(
            actor,
            "user_group.create",
            group,
            tenant=tenant,
            changes={**values, "members": _numbers(members)},
        )
    return group


def do_update_user_group(group: UserGroup, *, actor: Actor, fields: dict[str, Any]) -> UserGroup:
    """Change a group's name, description or members (``members`` replaces the list)."""
    tenant = _tenant()
    with transaction.atomic():
        group = UserGroup.objects.select_for_update().get(pk=group.pk)
        values = validate_user_group(fields, group)
        members = values.pop("members", None)
        changes = audit.diff(group, values)
        if members is not None:
            before = sorted(group.members.values_list("number", flat=True))
            after = _numbers(members)
            if before != after:
                changes["members"] = [before, after]
                group.members.set(members)
        if changes:
            for name, value in values.items():
                setattr(group, name, value)
            group.updated_at = timezone.now()
            try:
                with transaction.atomic():
                    group.save(update_fields=[*values, "updated_at"])
            except IntegrityError as exc:
                raise Conflict("The name is taken.", fields={"name": ["already in use"]}) from exc
            audit.record(actor, "user_group.update", group, tenant=tenant, changes=changes)
    return group


def do_delete_user_group(group: UserGroup, *, actor: Actor) -> None:
    """Delete a group; its extensions stay as they are."""
    tenant = _tenant()
    with transaction.atomic():
        audit.record(
            actor,
            "user_group.delete",
            group,
            tenant=tenant,
            changes={"members": sorted(group.members.values_list("number", flat=True))},
        )
        group.delete()


def groups_of(number: str) -> list[str]:
    """The names of the groups extension ``number`` is in."""
    return list(
        UserGroup.objects.filter(members__number=number)
        .order_by("name")
        .values_list("name", flat=True)
    )
