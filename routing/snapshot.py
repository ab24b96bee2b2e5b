"""What the engine is given of a tenant's IVR menus and DISA entries (``MediaSnapshot.ivrs``
and ``.disa``), read from the models only: ``telephony.engine.snapshots`` builds the snapshot
with these, and the actions (``ivr.py``, ``disa.py``) publish it, so this module imports no
action and no publisher. Prompts are absolute files: the tenant's own recording of a name
(``audio.snapshot.prompt_files``), else the default set's file in the tenant's language."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

from audio.snapshot import prompt_files
from telephony.media.prompts import PROMPTS, default_path
from telephony.sip import contract

from .models import Disa, IvrMenu

__all__ = [
    "DIGITS",
    "LANGUAGE",
    "PROMPT_FIELDS",
    "disa_rows",
    "ivr_rows",
    "prompt_names",
]

DIGITS = "0123456789*#"
# The menu's prompt fields and the default prompt each plays when it names none.
PROMPT_FIELDS = {"greeting": "welcome", "invalid": "invalid", "closed_greeting": "closed"}
LANGUAGE = "en"


def prompt_names() -> list[str]:
    """Every name a menu may play: the default set's and the tenant's own, sorted."""
    return sorted(set(PROMPTS) | set(prompt_files()))


def _prompt_path(own: dict[str, str], name: str, default: str, language: str) -> str:
    name = name or default
    return own.get(name) or default_path(os.path.abspath(settings.MEDIA_ROOT), language, name)


def _route(value: Any) -> contract.RouteTarget | None:
    return contract.RouteTarget.read(value)


def ivr_rows(language: str = LANGUAGE, own: dict[str, str] | None = None) -> list[dict]:
    """The tenant's menus as the engine reads them (``contract.IvrMenu.to_dict()`` each,
    ordered by number), prompts as absolute files: the tenant's own recording of that name
    (``own``, read when not given), else the default set's file in ``language``. Run inside
    the tenant's schema."""
    own = prompt_files() if own is None else own
    rows = []
    for menu in IvrMenu.objects.order_by("number").prefetch_related("options"):
        options = []
        for o in sorted(menu.options.all(), key=lambda o: DIGITS.index(o.digit)):
            target = _route(o.target)
            if target is not None:
                options.append(contract.IvrOption(digit=o.digit, target=target))
        prompts = {
            name: _prompt_path(own, getattr(menu, name), default, language)
            for name, default in PROMPT_FIELDS.items()
        }
        rows.append(
            contract.IvrMenu(
                number=menu.number,
                name=menu.name,
                options=tuple(options),
                dial_extension=menu.dial_extension,
                timeout=float(menu.timeout),
                tries=menu.tries,
                timeout_target=_route(menu.timeout_target),
                use_hours=menu.use_hours,
                closed_target=_route(menu.closed_target),
                **prompts,
            ).to_dict()
        )
    return rows


def disa_rows() -> list[dict]:
    """The tenant's enabled entries as the engine reads them (``contract.Disa.to_dict()``
    each, ordered by id). Run inside the tenant's schema."""
    rows = []
    entries = Disa.objects.filter(enabled=True).select_related("extension").order_by("pk")
    for entry in entries:
        rows.append(
            contract.Disa(
                id=str(entry.pk),
                name=entry.name,
                pin=entry.pin_hash,
                extension=entry.extension.number,
            ).to_dict()
        )
    return rows
