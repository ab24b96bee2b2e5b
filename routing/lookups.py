"""Read-only lookups of IVR menus, DISA entries and the numbers of the team features for other
apps' checks (an extension may not take a menu's, a ring or paging group's or a queue's
number or a park slot, nor be deleted while a menu or a DISA entry names it; what sends calls
to a group): models only, so ``telephony.actions`` can ask without importing the actions that
import it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q

from .models import Disa, IvrMenu, IvrOption
from .snapshot import DIGITS

__all__ = [
    "entries_of",
    "extension_references",
    "menu_numbered",
    "number_user",
    "emergency_or_code",
    "overflow_references",
    "target_references",
    "team_number_user",
]


def menu_numbered(number: str) -> IvrMenu | None:
    """The menu dialled at ``number``, if any (for checks of other numbers: extensions...)."""
    return IvrMenu.objects.filter(number=number).first()


def extension_references(number: str) -> list[str]:
    """The menus whose keys or exits, and the ring groups whose overflow, send calls to
    extension ``number`` or its mailbox, in words (for refusing to delete the extension)."""

    def at(field: str) -> Q:
        return Q(**{f"{field}__kind__in": ["extension", "voicemail"], f"{field}__target": number})

    def names(value: Any) -> bool:
        return (
            isinstance(value, dict)
            and value.get("kind") in ("extension", "voicemail")
            and value.get("target") == number
        )

    return (
        _menu_references(at, names)
        + overflow_references("extension", number)
        + overflow_references("voicemail", number)
    )


def _menu_references(
    at: Callable[[str], Q], names: Callable[[Any], bool], exclude_menu: int | None = None
) -> list[str]:
    """The menus (but ``exclude_menu``) whose keys or exits send calls where ``at(field)`` (a
    query on a destination field) and ``names(value)`` (a test of a destination) say, in
    words."""
    keys = IvrOption.objects.filter(at("target")).exclude(menu_id=exclude_menu or 0)
    by_menu: dict[int, list[str]] = {}
    for menu_id, digit in keys.values_list("menu_id", "digit"):
        by_menu.setdefault(menu_id, []).append(f"key {digit}")
    menus = IvrMenu.objects.filter(
        Q(pk__in=by_menu) | at("timeout_target") | at("closed_target")
    ).exclude(pk=exclude_menu or 0)
    found = []
    for menu in menus.order_by("number"):
        where = sorted(by_menu.get(menu.pk, []), key=lambda k: DIGITS.index(k[-1]))
        if names(menu.timeout_target):
            where.append("after the last try")
        if names(menu.closed_target):
            where.append("when closed")
        found.append(f"IVR menu {menu.number} '{menu.name}' ({', '.join(where)})")
    return found


def entries_of(number: str) -> list[str]:
    """The DISA entries whose calls are extension ``number``'s, in words."""
    names = Disa.objects.filter(extension__number=number).values_list("name", flat=True)
    return [f"DISA entry '{name}'" for name in names.order_by("name")]


# --------------------------------------------------------------- numbers of the team features


def team_number_user(number: str, *, exclude: tuple[str, int] | None = None) -> str | None:
    """What of the team features has ``number`` (a ring group, a paging group, a call queue or
    a call park slot), in words; None when none. ``exclude``: ``("ring_group" | "paging" |
    "queue", pk)``, the group or queue being changed."""
    from callcenter.models import Queue
    from telephony.models import PagingGroup, ParkSettings, RingGroup

    kind, pk = exclude or ("", 0)
    queues = Queue.objects.filter(number=number).exclude(pk=pk if kind == "queue" else 0)
    if (queue := queues.first()) is not None:
        return f"queue {queue.number} '{queue.name}'"
    ring = RingGroup.objects.filter(number=number).exclude(pk=pk if kind == "ring_group" else 0)
    if (found := ring.first()) is not None:
        return f"ring group {found.number} '{found.name}'"
    paging = PagingGroup.objects.filter(number=number).exclude(pk=pk if kind == "paging" else 0)
    if (page := paging.first()) is not None:
        return f"paging group {page.number} '{page.name}'"
    park = ParkSettings.load()
    if number.isdigit() and int(number) in park.slots():
        return f"call park slot {number}"
    return None


def emergency_or_code(number: str) -> str | None:
    """Why ``number`` cannot be dialled to reach a menu or a group: an emergency number or a
    feature code of the tenant, in words; None when it is neither."""
    from telephony.feature_codes import codes

    from .models import EmergencyNumber

    if EmergencyNumber.objects.filter(number=number).exists():
        return f"{number} is an emergency number"
    if number in codes().values():
        return f"{number} is a feature code"
    return None


def number_user(number: str, *, exclude: tuple[str, int] | None = None) -> str | None:
    """What a phone dialling ``number`` reaches: an extension, an IVR menu, a ring or paging
    group, a queue, a park slot, in words; None when nothing. ``exclude`` as
    :func:`team_number_user`."""
    from telephony.models import Extension

    if Extension.objects.filter(number=number).exists():
        return f"extension {number}"
    if (menu := menu_numbered(number)) is not None:
        return f"IVR menu {menu.number} '{menu.name}'"
    return team_number_user(number, exclude=exclude)


_PLACES = (("in_hours", "when open"), ("out_of_hours", "out of hours"), ("holiday", "on holidays"))


def target_references(
    kind: str,
    number: str,
    *,
    exclude_group: int | None = None,
    exclude_menu: int | None = None,
    exclude_queue: int | None = None,
) -> list[str]:
    """What sends calls to destination ``kind`` ``number`` (a ring group's, a paging group's,
    a queue's, a menu's, a DISA entry's id), in words: inbound rules, IVR menus (keys and
    exits; but ``exclude_menu``, a menu's own) and ring groups' and queues' overflow (but
    ``exclude_group``'s or ``exclude_queue``'s, their own)."""
    from .models import InboundRule

    def at(field: str) -> Q:
        return Q(**{f"{field}__kind": kind, f"{field}__target": number})

    def names(value: Any) -> bool:
        return (
            isinstance(value, dict) and value.get("kind") == kind and value.get("target") == number
        )

    found = []
    rules = InboundRule.objects.filter(at("in_hours") | at("out_of_hours") | at("holiday"))
    for rule in rules.order_by("priority", "id"):
        where = [label for name, label in _PLACES if names(getattr(rule, name))]
        found.append(f"inbound rule '{rule.name}' ({', '.join(where)})")
    return (
        found
        + _menu_references(at, names, exclude_menu)
        + overflow_references(
            kind, number, exclude_group=exclude_group, exclude_queue=exclude_queue
        )
    )


def overflow_references(
    kind: str,
    number: str,
    *,
    exclude_group: int | None = None,
    exclude_queue: int | None = None,
) -> list[str]:
    """The ring groups whose calls go to destination ``kind`` ``number`` when nobody answers
    (but ``exclude_group``) and the queues whose callers overflow there (but
    ``exclude_queue``), in words: an IVR menu, a DISA entry, a group or a queue they name is
    not deleted from under them."""
    from callcenter.models import Queue
    from telephony.models import RingGroup

    groups = RingGroup.objects.filter(overflow__kind=kind, overflow__target=number)
    queues = Queue.objects.filter(overflow__kind=kind, overflow__target=number)
    return [
        f"ring group {group.number} '{group.name}' (when nobody answers)"
        for group in groups.exclude(pk=exclude_group or 0).order_by("number")
    ] + [
        f"queue {queue.number} '{queue.name}' (overflow)"
        for queue in queues.exclude(pk=exclude_queue or 0).order_by("number")
    ]
