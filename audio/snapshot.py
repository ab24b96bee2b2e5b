"""What the engine's routing snapshot takes from the audio app (``telephony.engine.snapshots``
calls these inside the tenant's schema): the media fields of ``contract.MediaSnapshot`` and
each extension's ``contract.VoicemailSettings``. Paths are absolute."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings

from telephony.sip.contract import VoicemailSettings

from .models import Mailbox, MusicClass, MusicTrack, Prompt, media_path

__all__ = ["language_of", "mailboxes", "media_fields"]


def language_of(tenant) -> str:
    """The tenant's language's base code ("de" of "de-CH") when the default prompt set has
    it, else "en"."""
    code = (getattr(tenant, "language", "") or "en").replace("_", "-").split("-")[0].lower()
    if code.isalpha() and os.path.isdir(os.path.join(str(settings.MEDIA_ROOT), "prompts", code)):
        return code
    return "en"


def prompt_files() -> dict[str, str]:
    """The tenant's own prompts: name -> absolute file."""
    return {name: media_path(file) for name, file in Prompt.objects.values_list("name", "file")}


def media_fields(tenant) -> dict[str, Any]:
    """``language``, ``prompts`` (name -> file: the tenant's own, replacing default ones),
    ``moh`` (the default class's files in order; [] = the shipped music) and ``moh_classes``
    (class id -> files) of ``contract.MediaSnapshot``."""
    prompts = prompt_files()
    rows = MusicClass.objects.order_by("pk").values_list("pk", "is_default")
    classes: dict[str, list[str]] = {}
    default = None
    for pk, is_default in rows:
        classes[str(pk)] = []
        if is_default and default is None:
            default = pk
    tracks = MusicTrack.objects.order_by("music_class_id", "position", "id")
    for class_id, file in tracks.values_list("music_class_id", "file"):
        classes.setdefault(str(class_id), []).append(media_path(file))
    return {
        "language": language_of(tenant),
        "prompts": prompts,
        "moh": list(classes.get(str(default), [])) if default is not None else [],
        "moh_classes": classes,
    }


def mailboxes() -> dict[str, dict[str, Any]]:
    """Extension number -> its mailbox as ``contract.VoicemailSettings.to_dict()``."""
    found = {}
    for box in Mailbox.objects.select_related("extension").order_by("extension__number"):
        found[box.extension.number] = VoicemailSettings(
            enabled=box.enabled,
            pin=box.pin,
            greeting_unavailable=media_path(box.greeting_unavailable),
            greeting_busy=media_path(box.greeting_busy),
            max_seconds=box.max_seconds,
            always=box.always,
            busy=box.busy,
            no_answer=box.no_answer,
        ).to_dict()
    return found
