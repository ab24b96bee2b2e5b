"""Read-only lookups of IVR menus and DISA entries for other apps' checks (an extension may
not take a menu's number, nor be deleted while a menu or a DISA entry names it): models only,
so ``telephony.actions`` can ask without importing the routing actions that import it."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from .models import Disa, IvrMenu, IvrOption
from .snapshot import DIGITS

__all__ = ["entries_of", "extension_references", "menu_numbered"]


def menu_numbered(number: str) -> IvrMenu | None:
    """The menu dialled at ``number``, if any (for checks of other numbers: extensions...)."""
    return IvrMenu.objects.filter(number=number).first()


def extension_references(number: str) -> list[str]:
    """The menus whose keys or exits send calls to extension ``number`` or its mailbox, in
    words (for refusing to delete the extension)."""

    def at(field: str) -> Q:
        return Q(**{f"{field}__kind__in": ["extension", "voicemail"], f"{field}__target": number})

    def names(value: Any) -> bool:
        return (
            isinstance(value, dict)
            and value.get("kind") in ("extension", "voicemail")
            and value.get("target") == number
        )

    by_menu: dict[int, list[str]] = {}
    for menu_id, digit in IvrOption.objects.filter(at("target")).values_list("menu_id", "digit"):
        by_menu.setdefault(menu_id, []).append(f"key {digit}")
    menus = IvrMenu.objects.filter(Q(pk__in=by_menu) | at("timeout_target") | at("closed_target"))
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
