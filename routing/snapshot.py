"""What the engine is given of a tenant's IVR menus and DISA entries (``MediaSnapshot.ivrs``
and ``.disa``), read from the models only: ``telephony.engine.snapshots`` builds the snapshot
with these, and the actions (``ivr.py``, ``disa.py``) publish it, so this module imports no
action and no publisher. Prompts are absolute files: the tenant's own recording of a name
(the audio app's ``Prompt``), else the default set's file in the tenant's language."""

from __future__ import annotations

import os
from typing import Any

from django.apps import apps
from django.conf import settings

from telephony.media.prompts import PROMPTS, default_path
from telephony.sip import contract

from .models import Disa, IvrMenu

__all__ = [
    "DIGITS",
    "LANGUAGE",
    "PROMPT_FIELDS",
    "disa_rows",
    "ivr_rows",
    "prompt_files",
    "prompt_names",
]

DIGITS = "0123456789*#"
# The menu's prompt fields and the default prompt each plays when it names none.
PROMPT_FIELDS = {"greeting": "welcome", "invalid": "invalid", "closed_greeting": "closed"}
LANGUAGE = "en"


#: The audio app's prompt model (app label, name); looked up only once the app is installed.
PROMPT_MODEL = ("audio", "Prompt")


def _tenant_prompt_rows() -> list[Any]:
    """The tenant's own prompts (the audio app's ``Prompt``; none until it is installed)."""
    if not apps.is_installed("audio"):
        return []
    try:
        model = apps.get_model(*PROMPT_MODEL)
    except LookupError:
        return []
    return list(model.objects.all())


def _prompt_file(prompt: Any) -> str:
    """A tenant prompt's absolute file: its ``path`` (a field or property), else its file
    field's; "" when it has none."""
    path = getattr(prompt, "path", "")
    if not isinstance(path, str) or not path:
        stored = getattr(prompt, "file", None)
        path = getattr(stored, "path", "") if stored else ""
    if not path:
        return ""
    return path if os.path.isabs(path) else os.path.join(str(settings.MEDIA_ROOT), path)


def prompt_files() -> dict[str, str]:
    """The tenant's own prompts by name: absolute files."""
    out: dict[str, str] = {}
    for prompt in _tenant_prompt_rows():
        path = _prompt_file(prompt)
        if path and getattr(prompt, "name", ""):
            out[str(prompt.name)] = path
    return out


def prompt_names() -> list[str]:
    """Every name a menu may play: the default set's and the tenant's own, sorted."""
    names = set(PROMPTS)
    names.update(str(p.name) for p in _tenant_prompt_rows() if getattr(p, "name", ""))
    return sorted(names)


def _prompt_path(own: dict[str, str], name: str, default: str, language: str) -> str:
    name = name or default
    return own.get(name) or default_path(os.path.abspath(settings.MEDIA_ROOT), language, name)


def _route(value: Any) -> contract.RouteTarget | None:
    return contract.RouteTarget.read(value)


def ivr_rows(language: str = LANGUAGE) -> list[dict]:
    """The tenant's menus as the engine reads them (``contract.IvrMenu.to_dict()`` each,
    ordered by number), prompts as absolute files: the tenant's own recording of that name,
    else the default set's file in ``language``. Run inside the tenant's schema."""
    own = prompt_files()
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
