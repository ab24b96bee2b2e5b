"""DISA entries (direct inward system access) of a tenant: the one validator, the audited
actions and the engine's view of them (run inside the tenant's schema).

A caller sent to an entry (``{"kind": "disa", "target": "<id>"}`` from an inbound rule or an
IVR key) is asked for its PIN, then dials a number as the entry's extension would. The PIN is
write-only: it is stored as ``contract.pin_hash`` and never shown or audited again (the audit
says "set"); an update without one leaves it unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors
from telephony.engine.snapshots import publish_on_commit
from telephony.sip import contract

from .lookups import entries_of, target_references
from .models import Disa

__all__ = [
    "DISA_FIELDS",
    "do_create_disa",
    "do_delete_disa",
    "do_update_disa",
    "entries_of",
    "pin_problem",
    "references",
]

log = logging.getLogger(__name__)

#: What the actions take: ``pin`` in clear (write-only), ``extension`` as its number.
DISA_FIELDS = ("name", "pin", "extension", "enabled")
PIN_LENGTH = (4, 12)
PIN_HELP = "4 to 12 digits, not all the same"


def pin_problem(pin: Any) -> str | None:
    """Why ``pin`` cannot be a DISA PIN, or None."""
    lo, hi = PIN_LENGTH
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        return PIN_HELP
    if not lo <= len(pin) <= hi or len(set(pin)) == 1:
        return PIN_HELP
    return None


# --------------------------------------------------------------------------------- lookups


def references(entry_id: int) -> list[str]:
    """What sends calls to entry ``entry_id``: inbound rules, IVR menus and ring groups'
    overflow, in words."""
    return target_references("disa", str(entry_id))


def choices(tenant) -> list[tuple[str, str]]:
    """The tenant's entries for pickers: (id, name)."""
    return [(str(pk), name) for pk, name in Disa.objects.values_list("pk", "name")]


def check_target(tenant, target: str) -> str:
    """A route target of kind ``disa``: an entry's id; ValueError saying why not."""
    if (
        not target.isascii()
        or not target.isdigit()
        or not Disa.objects.filter(pk=int(target)).exists()
    ):
        raise ValueError(f"no DISA entry {target or '(empty)'}")
    return str(int(target))


# ------------------------------------------------------------------------------ validation


def _validated(fields: dict, entry: Disa | None) -> tuple[dict, str | None]:
    """(the model's fields, the new PIN or None when unchanged), or ValidationFailed."""
    from telephony.models import Extension

    fields = {k: v for k, v in fields.items() if k in DISA_FIELDS}
    pin = fields.pop("pin", None)
    errors: dict[str, list[str]] = single_line_errors(fields, {"name": 120, "extension": 64})
    values: dict[str, Any] = {}
    if "name" in fields and "name" not in errors:
        name = str(fields["name"] or "").strip()
        if name:
            values["name"] = name
        else:
            errors["name"] = ["required"]
    elif entry is None and "name" not in errors:
        errors["name"] = ["required"]
    if pin in (None, ""):
        pin = None
        if entry is None or not entry.pin_hash:
            errors["pin"] = ["required"]
    elif problem := pin_problem(pin):
        errors["pin"] = [problem]
    if "extension" in fields and "extension" not in errors:
        number = str(fields["extension"] or "").strip()
        ext = Extension.objects.filter(number=number).first() if number else None
        if ext is None:
            errors["extension"] = [f"no extension {number or '(empty)'}"]
        elif not ext.enabled:
            errors["extension"] = [f"extension {number} is disabled"]
        else:
            values["extension"] = ext
    elif entry is None and "extension" not in errors:
        errors["extension"] = ["required"]
    if "enabled" in fields:
        if isinstance(fields["enabled"], bool):
            values["enabled"] = fields["enabled"]
        else:
            errors["enabled"] = ["true or false"]
    if errors:
        raise ValidationFailed("The DISA entry has invalid fields.", fields=errors)
    return values, pin


def _audited(values: dict, pin: str | None) -> dict:
    out = {k: (v.number if k == "extension" else v) for k, v in values.items()}
    if pin is not None:
        out["pin"] = "set"
    return out


# --------------------------------------------------------------------------------- actions


def do_create_disa(*, actor: Actor, fields: dict) -> Disa:
    """A new entry: ``name``, ``pin`` (clear, hashed here), ``extension`` (a number),
    ``enabled``."""
    tenant = require_tenant("DISA actions")
    values, pin = _validated(dict(fields), None)
    assert pin is not None  # required on create
    with transaction.atomic():
        entry = Disa.objects.create(**values, pin_hash=contract.pin_hash(pin))
        audit.record(actor, "disa.create", entry, tenant=tenant, changes=_audited(values, pin))
        publish_on_commit(tenant)
    return entry


def do_update_disa(entry: Disa, *, actor: Actor, fields: dict) -> Disa:
    """Change an entry; without ``pin`` (or with an empty one) its PIN is unchanged."""
    tenant = require_tenant("DISA actions")
    values, pin = _validated(dict(fields), entry)
    with transaction.atomic():
        entry = Disa.objects.select_for_update().select_related("extension").get(pk=entry.pk)
        changes = {
            k: ([v[0].number, v[1].number] if k == "extension" else v)
            for k, v in audit.diff(entry, values).items()
        }
        for name, value in values.items():
            setattr(entry, name, value)
        if pin is not None:
            entry.pin_hash = contract.pin_hash(pin)
            changes["pin"] = "set"
        entry.save()
        audit.record(actor, "disa.update", entry, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return entry


def do_delete_disa(entry: Disa, *, actor: Actor) -> None:
    """Delete an entry nothing sends calls to; else Conflict (409) naming what does."""
    tenant = require_tenant("DISA actions")
    with transaction.atomic():
        entry = Disa.objects.select_for_update().get(pk=entry.pk)
        used = references(entry.pk)
        if used:
            raise Conflict(
                f"DISA entry '{entry.name}' is in use by {'; '.join(used)}: change them first.",
                fields={"name": [f"in use by {'; '.join(used)}"]},
            )
        audit.record(actor, "disa.delete", entry, tenant=tenant)
        entry.delete()
        publish_on_commit(tenant)
