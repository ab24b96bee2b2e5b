"""Destination types a rule may send a call to, on the Django side: each kind says how its
target is checked and which targets a tenant can pick. The engine has the same kinds
(``telephony/sip/calls/destinations/``); a feature that adds one there (voicemail, IVR, ring
group, queue) registers it here too with :func:`register`, and every rule, the API and the
portal's pickers offer it from then on.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps

from trunks.numbers import to_e164

__all__ = ["KINDS", "DestinationKind", "register", "target_problem"]


@dataclass(frozen=True)
class DestinationKind:
    kind: str
    label: str
    # check(tenant, target) -> the target as stored (normalised); raises ValueError with why.
    check: Callable[[object, str], str]
    # choices(tenant) -> [(target, label)] for pickers; None: typed freely.
    choices: Callable[[object], list[tuple[str, str]]] | None = None


KINDS: dict[str, DestinationKind] = {}


def register(kind: DestinationKind) -> DestinationKind:
    KINDS[kind.kind] = kind
    return kind


def clean_target(tenant, value) -> dict[str, str]:
    """``{"kind", "target"}`` checked and normalised; ValueError saying why not."""
    if not isinstance(value, dict):
        raise ValueError('an object {"kind": ..., "target": ...}')
    kind = KINDS.get(str(value.get("kind") or ""))
    if kind is None:
        raise ValueError(f"kind is one of {', '.join(sorted(KINDS))}")
    target = str(value.get("target") or "").strip()
    return {"kind": kind.kind, "target": kind.check(tenant, target)}


def target_problem(tenant, value) -> str | None:
    try:
        clean_target(tenant, value)
    except ValueError as exc:
        return str(exc)
    return None


def _extension(tenant, target: str) -> str:
    from telephony.models import Extension

    if not Extension.objects.filter(number=target).exists():
        raise ValueError(f"no extension {target or '(empty)'}")
    return target


def _extension_choices(tenant) -> list[tuple[str, str]]:
    from telephony.models import Extension

    return [
        (n, f"{n} {name}".strip())
        for n, name in Extension.objects.values_list("number", "display_name")
    ]


def _external(tenant, target: str) -> str:
    return to_e164(target, getattr(tenant, "country", "") or "")


REJECT_CODES = {"486": "Busy", "603": "Declined", "480": "Unavailable", "404": "Not in service"}


def _reject(tenant, target: str) -> str:
    target = target or "486"
    if target not in REJECT_CODES:
        raise ValueError(f"a SIP code: {', '.join(REJECT_CODES)}")
    return target


register(DestinationKind("extension", "Extension", _extension, _extension_choices))
register(DestinationKind("external", "Outside number", _external))
register(
    DestinationKind(
        "reject",
        "Reject the call",
        _reject,
        lambda _t: [(c, f"{c} {t}") for c, t in REJECT_CODES.items()],
    )
)


def _voicemail(tenant, target: str) -> str:
    """A mailbox is an extension's: its number, while its mailbox takes messages."""
    from telephony.models import Extension

    if not Extension.objects.filter(number=target).exists():
        raise ValueError(f"no mailbox {target or '(empty)'}: no extension has this number")
    if mailbox_off(target):
        raise ValueError(f"the mailbox of extension {target} is switched off")
    return target


#: The audio app's mailbox model (app label, name); looked up only once the app is installed.
MAILBOX_MODEL = ("audio", "Mailbox")


def mailbox_off(number: str) -> bool:
    """Whether extension ``number``'s mailbox is switched off (the audio app's ``Mailbox``;
    until that app is installed, or while the extension has no row, a mailbox takes
    messages: the contract's default)."""
    if not apps.is_installed("audio"):
        return False
    try:
        model = apps.get_model(*MAILBOX_MODEL)
    except LookupError:
        return False
    names = {f.name for f in model._meta.get_fields()}
    if "enabled" not in names:
        return False
    if "extension" in names:
        rows = model.objects.filter(extension__number=number)
    elif "number" in names:
        rows = model.objects.filter(number=number)
    else:
        return False
    return rows.filter(enabled=False).exists()


def _ivr(tenant, target: str) -> str:
    from routing.models import IvrMenu

    if not IvrMenu.objects.filter(number=target).exists():
        raise ValueError(f"no IVR menu {target or '(empty)'}")
    return target


def _ivr_choices(tenant) -> list[tuple[str, str]]:
    from routing.models import IvrMenu

    return [(n, f"{n} {name}".strip()) for n, name in IvrMenu.objects.values_list("number", "name")]


register(DestinationKind("voicemail", "Voicemail", _voicemail, _extension_choices))
register(DestinationKind("ivr", "IVR menu", _ivr, _ivr_choices))


def _disa(tenant, target: str) -> str:
    from routing.disa import check_target

    return check_target(tenant, target)


def _disa_choices(tenant) -> list[tuple[str, str]]:
    from routing.disa import choices

    return choices(tenant)


register(DestinationKind("disa", "DISA (dial out with a PIN)", _disa, _disa_choices))


def _group(
    model: str, noun: str
) -> tuple[Callable[[object, str], str], Callable[[object], list[tuple[str, str]]]]:
    """The check and the choices of a team group kind: ``model`` (``telephony.models``'s
    RingGroup or PagingGroup) by its number; ``noun`` names it in errors."""

    def rows():
        return apps.get_model("telephony", model).objects

    def check(tenant, target: str) -> str:
        if not rows().filter(number=target).exists():
            raise ValueError(f"no {noun} {target or '(empty)'}")
        return target

    def choices(tenant) -> list[tuple[str, str]]:
        pairs = rows().order_by("number").values_list("number", "name")
        return [(n, f"{n} {name}".strip()) for n, name in pairs]

    return check, choices


register(DestinationKind("ring_group", "Ring group", *_group("RingGroup", "ring group")))
register(DestinationKind("paging", "Paging group", *_group("PagingGroup", "paging group")))
