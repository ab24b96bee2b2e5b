"""IVR menus (virtual receptionists) of a tenant: the one validator, the audited actions and
the engine's view of them (run inside the tenant's schema).

A menu is written with its keys in one action (the keys are replaced as a set), so a menu is
never seen half-changed. Prompts are stored by name and turned into absolute files only for
the snapshot (``snapshot.ivr_rows``), so a tenant's recording that replaces a default prompt
takes effect without touching the menus.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors
from telephony.engine.snapshots import publish_on_commit

from .destinations import KINDS
from .lookups import (
    emergency_or_code,
    extension_references,
    menu_numbered,
    target_references,
    team_number_user,
)
from .models import IvrMenu, IvrOption
from .snapshot import DIGITS, PROMPT_FIELDS, prompt_names

__all__ = [
    "MENU_FIELDS",
    "OPTION_KINDS",
    "do_create_ivr",
    "do_delete_ivr",
    "do_update_ivr",
    "extension_references",
    "menu_numbered",
    "prompt_names",
    "references",
]

log = logging.getLogger(__name__)

#: Where a key leads (``contract.IvrOption``): the registered kinds a menu may name, and two
#: of its own: ``repeat`` (the greeting again) and ``hangup``.
OPTION_KINDS = (
    "extension", "voicemail", "ivr", "disa", "ring_group", "paging", "queue", "external",
    "repeat", "hangup",
)  # fmt: skip
#: After the last try, or out of office hours: the same, except going round again.
EXIT_KINDS = tuple(k for k in OPTION_KINDS if k != "repeat")
OWN_KINDS = {"repeat": "Repeat the menu", "hangup": "Hang up"}
MENU_FIELDS = (
    "number", "name", "greeting", "invalid", "dial_extension", "timeout", "tries",
    "timeout_target", "use_hours", "closed_greeting", "closed_target",
)  # fmt: skip
TIMEOUT = (1, 60)
TRIES = (1, 10)
#: The snapshot's language until tenants choose one.


def _tenant():
    return require_tenant("IVR actions")


def kind_label(kind: str) -> str:
    found = KINDS.get(kind)
    return found.label if found is not None else OWN_KINDS.get(kind, kind)


# --------------------------------------------------------------------------------- prompts


# --------------------------------------------------------------------------------- lookups


def references(number: str, *, exclude_menu: int | None = None) -> list[str]:
    """What sends calls to menu ``number``: inbound rules, other menus and ring groups'
    overflow, in words."""
    return target_references("ivr", number, exclude_menu=exclude_menu)


# ------------------------------------------------------------------------------ validation


class _Errors(dict):
    def add(self, name: str, text: str) -> None:
        self.setdefault(name, []).append(text)


def _target(tenant, value: Any, *, kinds: Iterable[str], own_number: str) -> dict[str, str]:
    """A key's (or exit's) destination checked and normalised; ValueError saying why not."""
    kinds = tuple(kinds)
    if not isinstance(value, dict):
        raise ValueError('an object {"kind": ..., "target": ...}')
    kind = str(value.get("kind") or "")
    if kind not in kinds:
        raise ValueError(f"kind is one of {', '.join(kinds)}")
    target = str(value.get("target") or "").strip()
    if kind in OWN_KINDS:
        return {"kind": kind, "target": ""}
    if kind == "ivr" and own_number and target == own_number:
        raise ValueError("a menu cannot lead to itself (use 'repeat')")
    return {"kind": kind, "target": KINDS[kind].check(tenant, target)}


def _int(errors: _Errors, fields: dict, name: str, bounds: tuple[int, int]) -> None:
    value = fields.get(name)
    if value is None:
        return
    lo, hi = bounds
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        errors.add(name, f"{lo} to {hi}")


def _number(errors: _Errors, tenant, number: str, menu: IvrMenu | None) -> None:
    from telephony.actions import number_problem
    from telephony.models import Extension

    problem = number_problem(tenant, number)
    if problem is not None:
        errors.add("number", problem[0])
        return
    if Extension.objects.filter(number=number).exists():
        errors.add("number", f"extension {number} has this number")
    elif (reserved := emergency_or_code(number)) is not None:
        errors.add("number", reserved)
    elif (team := team_number_user(number)) is not None:
        errors.add("number", f"{team} has this number")
    else:
        other = IvrMenu.objects.filter(number=number).exclude(pk=menu.pk if menu else 0).first()
        if other is not None:
            raise Conflict(
                f"IVR menu '{other.name}' has the number {number}.",
                fields={"number": [f"IVR menu '{other.name}' has this number"]},
            )


def _options(tenant, errors: _Errors, value: Any, own_number: str) -> list[dict]:
    if not isinstance(value, list):
        errors.add("options", 'a list of {"digit": ..., "target": {"kind": ..., "target": ...}}')
        return []
    if len(value) > len(DIGITS):
        errors.add("options", f"at most {len(DIGITS)} keys")
        return []
    out: list[dict] = []
    seen: set[str] = set()
    for item in value:
        if not isinstance(item, dict):
            errors.add("options", 'each key is {"digit": ..., "target": {...}}')
            continue
        digit = str(item.get("digit") or "")
        if len(digit) != 1 or digit not in DIGITS:
            errors.add("options", f"key {digit or '(empty)'}: one of 0-9, * or #")
            continue
        if digit in seen:
            errors.add("options", f"key {digit}: given twice")
            continue
        seen.add(digit)
        try:
            target = _target(tenant, item.get("target"), kinds=OPTION_KINDS, own_number=own_number)
        except ValueError as exc:
            errors.add("options", f"key {digit}: {exc}")
            continue
        out.append({"digit": digit, "target": target})
    return sorted(out, key=lambda o: DIGITS.index(o["digit"]))


def _validated(tenant, fields: dict, menu: IvrMenu | None) -> tuple[dict, list[dict] | None]:
    """(the menu's fields, its keys or None when they are not being changed), or
    ValidationFailed / Conflict with a field error for each bad value."""
    options = fields.get("options")
    fields = {k: v for k, v in fields.items() if k in MENU_FIELDS}
    errors = _Errors(
        single_line_errors(
            fields,
            {"number": 64, "name": 120, "greeting": 120, "invalid": 120, "closed_greeting": 120},
        )
    )
    for name in ("number", "name"):
        current = fields[name] if name in fields else getattr(menu, name, "")
        if not str(current or "").strip() and name not in errors:
            errors.add(name, "required")
    if "name" in fields and "name" not in errors:
        fields["name"] = fields["name"].strip()
    number = fields.get("number")
    if number is not None and "number" not in errors:
        number = fields["number"] = str(number).strip()
        _number(errors, tenant, number, menu)
    own_number = str(number if number is not None else getattr(menu, "number", ""))
    names = None
    for name in PROMPT_FIELDS:
        value = fields.get(name)
        if value and name not in errors:
            names = names if names is not None else set(prompt_names())
            if value not in names:
                errors.add(name, f"no prompt named '{value}'")
    _int(errors, fields, "timeout", TIMEOUT)
    _int(errors, fields, "tries", TRIES)
    for name in ("dial_extension", "use_hours"):
        if name in fields and not isinstance(fields[name], bool):
            errors.add(name, "true or false")
    for name in ("timeout_target", "closed_target"):
        value = fields.get(name)
        if value in (None, {}) or name in errors:
            if name in fields:
                fields[name] = None
            continue
        try:
            fields[name] = _target(tenant, value, kinds=EXIT_KINDS, own_number=own_number)
        except ValueError as exc:
            errors.add(name, str(exc))
    cleaned = None if options is None else _options(tenant, errors, options, own_number)
    if menu is not None and number is not None and number != menu.number and not errors:
        used = references(menu.number, exclude_menu=menu.pk)
        if used:
            raise Conflict(
                f"IVR menu {menu.number} is in use by {'; '.join(used)}: change them first.",
                fields={"number": [f"in use by {'; '.join(used)}"]},
            )
    if errors:
        raise ValidationFailed("The IVR menu has invalid fields.", fields=dict(errors))
    return fields, cleaned


# --------------------------------------------------------------------------------- actions


def _options_of(menu: IvrMenu) -> list[dict]:
    return [{"digit": o.digit, "target": o.target} for o in menu.options.all()]


def _replace_options(menu: IvrMenu, options: list[dict]) -> None:
    IvrOption.objects.filter(menu=menu).delete()
    IvrOption.objects.bulk_create(
        IvrOption(menu=menu, digit=o["digit"], target=o["target"]) for o in options
    )


def do_create_ivr(*, actor: Actor, fields: dict) -> IvrMenu:
    """A new menu with its keys (``fields["options"]``: ``[{"digit", "target"}]``)."""
    tenant = _tenant()
    data = dict(fields)
    data.setdefault("options", [])
    values, options = _validated(tenant, data, None)
    with transaction.atomic():
        try:
            with transaction.atomic():
                menu = IvrMenu.objects.create(**values)
        except IntegrityError as exc:  # a menu of the same number made meanwhile
            raise Conflict(
                f"An IVR menu has the number {values['number']}.",
                fields={"number": ["another IVR menu has this number"]},
            ) from exc
        _replace_options(menu, options or [])
        audit.record(
            actor, "ivr_menu.create", menu, tenant=tenant, changes={**values, "options": options}
        )
        publish_on_commit(tenant)
    return menu


def do_update_ivr(menu: IvrMenu, *, actor: Actor, fields: dict) -> IvrMenu:
    """Change a menu; ``fields["options"]``, when given, replaces its keys as a set."""
    tenant = _tenant()
    values, options = _validated(tenant, dict(fields), menu)
    with transaction.atomic():
        menu = IvrMenu.objects.select_for_update().get(pk=menu.pk)
        changes = audit.diff(menu, values)
        for name, value in values.items():
            setattr(menu, name, value)
        try:
            with transaction.atomic():
                menu.save()
        except IntegrityError as exc:
            raise Conflict(
                f"An IVR menu has the number {menu.number}.",
                fields={"number": ["another IVR menu has this number"]},
            ) from exc
        if options is not None:
            before = _options_of(menu)
            if before != options:
                changes["options"] = [before, options]
                _replace_options(menu, options)
        audit.record(actor, "ivr_menu.update", menu, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return menu


def do_delete_ivr(menu: IvrMenu, *, actor: Actor) -> None:
    """Delete a menu nothing sends calls to; else Conflict (409) naming what does."""
    tenant = _tenant()
    with transaction.atomic():
        menu = IvrMenu.objects.select_for_update().get(pk=menu.pk)
        used = references(menu.number, exclude_menu=menu.pk)
        if used:
            raise Conflict(
                f"IVR menu {menu.number} is in use by {'; '.join(used)}: change them first.",
                fields={"number": [f"in use by {'; '.join(used)}"]},
            )
        audit.record(actor, "ivr_menu.delete", menu, tenant=tenant)
        menu.delete()
        publish_on_commit(tenant)
