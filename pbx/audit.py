"""Writing audit entries. Actions call :func:`record` inside their transaction."""

from dataclasses import dataclass

from pbx.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting and from which address; passed to every action."""

    user: object | None = None
    address: str | None = None

    @property
    def label(self) -> str:
        return getattr(self.user, "email", "") or "system"

    @classmethod
    def from_request(cls, request) -> "Actor":
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


def _jsonable(changes: dict) -> dict:
    out = {}
    for key, value in changes.items():
        if "password" in key or key in {"voicemail_pin", "sip_password_encrypted"}:
            out[key] = "***"
        elif isinstance(value, str | int | float | bool | list | dict) or value is None:
            out[key] = value
        else:
            out[key] = str(value)
    return out


def diff(instance, fields: dict) -> dict:
    """The subset of ``fields`` that differs from ``instance``, as ``{name: [old, new]}``."""
    changed = {}
    for name, new in fields.items():
        old = getattr(instance, name)
        if old != new:
            changed[name] = [old, new]
    return changed
