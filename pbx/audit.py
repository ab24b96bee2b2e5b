"""Writing audit entries. Actions call :func:`record` inside their transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pbx.models import AuditEntry

if TYPE_CHECKING:
    from tenants.models import User


@dataclass(frozen=True)
class Actor:
    """Who is acting and from which address; passed to every action."""

    user: User | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        return getattr(self.user, "email", "") or "system"

    @classmethod
    def from_request(cls, request) -> Actor:
        from pbx.net import client_address

        user = request.user if getattr(request.user, "is_authenticated", False) else None
        return cls(user=user, address=client_address(request))


SYSTEM = Actor()


def record(actor: Actor, action: str, obj, *, tenant=None, dealer=None, changes=None) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor.user,
        actor_label=actor.label,
        address=actor.address,
        tenant=tenant,
        dealer=dealer,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(getattr(obj, "pk", "") or ""),
        object_repr=str(obj)[:255],
        changes=_jsonable(changes or {}),
    )


_SECRET_FIELDS = {"voicemail_pin", "sip_password_encrypted", "ha1_md5", "ha1_sha256"}


def _value(value):
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _value(v) for k, v in value.items()}
    if hasattr(value, "_meta") and hasattr(value, "pk"):  # a model instance: its id
        return value.pk
    return str(value)


def _jsonable(changes: dict) -> dict:
    """Changes as JSON, with secrets masked (an audit log must not leak passwords)."""
    return {
        key: "***" if "password" in key or key in _SECRET_FIELDS else _value(value)
        for key, value in changes.items()
    }


def diff(instance, fields: dict) -> dict:
    """The subset of ``fields`` that differs from ``instance``, as ``{name: [old, new]}``."""
    changed = {}
    for name, new in fields.items():
        old = getattr(instance, name)
        if old != new:
            changed[name] = [old, new]
    return changed


def set_many(instance, name: str, objects, changes: dict) -> None:
    """Set ``instance``'s many-to-many field ``name`` to ``objects``; a change (by ids) is
    added to ``changes`` as ``{name: [old ids, new ids]}``, sorted (no change: no write)."""
    manager = getattr(instance, name)
    before = set(manager.values_list("pk", flat=True))
    after = {o.pk for o in objects}
    if before != after:
        manager.set(objects)
        changes[name] = [sorted(before), sorted(after)]
