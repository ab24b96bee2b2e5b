"""Business writes for a tenant's prompts, music on hold, mailboxes and voicemail messages
(run inside the tenant's schema). Every write is audited; a change of what the engine plays
republishes the tenant's routing snapshot on commit, a change of a box's messages its
mailbox index (``audio.index``). Uploads are converted once (``audio.convert``) to the
canonical WAV; a refused upload is a :class:`~pbx.errors.ValidationFailed` whose field is
the ``field`` argument (default ``"file"``). Files of deleted rows are removed on commit.

``upload`` arguments are Django ``UploadedFile`` objects (anything with ``name``, ``size``
and ``chunks()``). Every ``do_*`` takes ``actor`` (``pbx.audit.Actor``) by keyword.

Prompts
    ``do_upload_prompt(*, actor, name, upload, description="") -> Prompt``
    ``do_replace_prompt(prompt, *, actor, upload=None, name=None, description=None) -> Prompt``
    ``do_delete_prompt(prompt, *, actor) -> None``

Music on hold
    ``do_create_music_class(*, actor, name, is_default=False) -> MusicClass``
    ``do_rename_music_class(music_class, *, actor, name) -> MusicClass``
    ``do_set_default_music_class(music_class_or_None, *, actor) -> None`` (None: the shipped music)
    ``do_delete_music_class(music_class, *, actor) -> None`` (its tracks and files too)
    ``do_add_track(music_class, *, actor, upload) -> MusicTrack`` (added last)
    ``do_reorder_tracks(music_class, *, actor, track_ids) -> None`` (every track id, in order)
    ``do_delete_track(track, *, actor) -> None``

Mailboxes (one per extension: ``extension.mailbox``)
    ``do_update_mailbox(mailbox, *, actor, fields, pin=None) -> Mailbox``: ``fields`` among
    :data:`MAILBOX_FIELDS`; ``pin`` None = unchanged, "" = cleared, else the new PIN
    (4-10 digits, not all one digit, not the extension's number; stored hashed)
    ``do_set_greeting(mailbox, kind, *, actor, upload) -> Mailbox`` (kind: "unavailable"|"busy")
    ``do_clear_greeting(mailbox, kind, *, actor) -> Mailbox``

Messages (who may touch which is the caller's check: ``audio.access``)
    ``do_save_message(message, *, actor) -> VoicemailMessage`` (heard: moved to saved)
    ``do_delete_message(message, *, actor) -> None``

For ``telephony.actions`` (not audited on their own: part of the extension's create/delete):
``create_mailbox(extension)`` and ``remove_mailbox_files(extension)``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors, single_line_problem
from telephony.engine.snapshots import publish_on_commit
from telephony.sip.contract import pin_hash

from .convert import MUSIC_SECONDS, PROMPT_SECONDS, AudioRejected, convert_upload
from .index import publish_box_on_commit
from .models import (
    Attach,
    Folder,
    Mailbox,
    MusicClass,
    MusicTrack,
    Prompt,
    VoicemailMessage,
    media_path,
)

log = logging.getLogger(__name__)

__all__ = [
    "GREETING_KINDS",
    "MAILBOX_FIELDS",
    "PhoneActor",
    "create_mailbox",
    "do_add_track",
    "do_clear_greeting",
    "do_create_music_class",
    "do_delete_message",
    "do_delete_music_class",
    "do_delete_prompt",
    "do_delete_track",
    "do_rename_music_class",
    "do_reorder_tracks",
    "do_replace_prompt",
    "do_save_message",
    "do_set_default_music_class",
    "do_set_greeting",
    "do_update_mailbox",
    "do_upload_prompt",
    "pin_problem",
    "remove_files_on_commit",
    "remove_mailbox_files",
]

MAILBOX_FIELDS = (
    "enabled", "max_seconds", "always", "busy", "no_answer", "email_enabled", "email", "attach",
    "delete_after_email",
)  # fmt: skip
MAX_SECONDS = (10, 600)
GREETING_KINDS = ("unavailable", "busy")
PROMPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
PROMPT_NAME_HELP = "1 to 64 lower-case letters, digits, - and _ (like main-greeting)"
_SAFE_NAME = re.compile(r"^[0-9A-Za-z_+][0-9A-Za-z_.+-]{0,63}$")


@dataclass(frozen=True)
class PhoneActor(Actor):
    """A change made on an extension's phone (a feature code, the mailbox menu): audited as
    that extension's doing."""

    extension: str = ""

    @property
    def label(self) -> str:
        return f"phone {self.extension}"


def _tenant():
    return require_tenant("audio actions")


# ----------------------------------------------------------------------------- files


def tenant_file(schema: str, *parts: str) -> str:
    """A path relative to ``MEDIA_ROOT`` inside the tenant's own directory."""
    return os.path.join("tenants", schema, *parts)


def _new_file(schema: str, folder: str) -> str:
    return tenant_file(schema, folder, f"{uuid.uuid4().hex}.wav")


def _box_name(number: str) -> str:
    """The extension's number as a file name part (its id when it is not a safe one)."""
    return number if _SAFE_NAME.match(number) else "x" + number.encode().hex()[:60]


def _is_tenant_file(relative: str) -> bool:
    root = os.path.realpath(os.path.join(str(settings.MEDIA_ROOT), "tenants"))
    path = os.path.realpath(media_path(relative))
    return bool(relative) and path.startswith(root + os.sep)


def remove_files_on_commit(relatives) -> None:
    """Remove these files (relative to ``MEDIA_ROOT``, only ever under ``tenants/``) once
    the transaction commits; a rollback keeps them."""
    paths = [media_path(r) for r in relatives if r and _is_tenant_file(r)]
    if not paths:
        return

    def remove() -> None:
        for path in paths:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            except OSError:
                log.exception("could not remove %s", path)

    transaction.on_commit(remove)


def _convert(upload, relative: str, *, max_seconds: float, field: str) -> float:
    try:
        return convert_upload(upload, media_path(relative), max_seconds=max_seconds)
    except AudioRejected as exc:
        raise ValidationFailed("The audio file was refused.", fields={field: [str(exc)]}) from None


class _Uploaded:
    """A converted file that is removed again if the write that needs it fails."""

    def __init__(self, relative: str):
        self.relative = relative

    def __enter__(self) -> _Uploaded:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            with contextlib.suppress(OSError):
                os.remove(media_path(self.relative))


def _original_name(upload) -> str:
    name = os.path.basename(getattr(upload, "name", "") or "")
    return "".join(c for c in name if c.isprintable())[:255]


# ---------------------------------------------------------------------------- prompts


def _check_prompt(name: str | None, description: str | None, obj: Prompt | None) -> None:
    errors: dict[str, list[str]] = {}
    if name is not None and not (isinstance(name, str) and PROMPT_NAME.match(name)):
        errors["name"] = [PROMPT_NAME_HELP]
    if description is not None:
        problem = single_line_problem(description, max_length=200)
        if problem:
            errors["description"] = [problem]
    if errors:
        raise ValidationFailed("The prompt has invalid fields.", fields=errors)
    clash = Prompt.objects.filter(name=name).exclude(pk=obj.pk if obj else 0)
    if name is not None and clash.exists():
        raise Conflict(f"There is a prompt named {name}.", fields={"name": ["exists"]})


def do_upload_prompt(*, actor: Actor, name: str, upload, description: str = "") -> Prompt:
    """A new prompt of the tenant's: a default prompt's name replaces that prompt for its
    calls; any other name is a custom prompt (IVR greetings)."""
    tenant = _tenant()
    _check_prompt(name, description, None)
    relative = _new_file(tenant.schema_name, "prompts")
    seconds = _convert(upload, relative, max_seconds=PROMPT_SECONDS, field="file")
    with _Uploaded(relative), transaction.atomic():
        try:
            with transaction.atomic():
                prompt = Prompt.objects.create(
                    name=name,
                    description=description,
                    file=relative,
                    seconds=seconds,
                    original_name=_original_name(upload),
                )
        except IntegrityError:
            raise Conflict(
                f"There is a prompt named {name}.", fields={"name": ["exists"]}
            ) from None
        audit.record(
            actor,
            "prompt.create",
            prompt,
            tenant=tenant,
            changes={"name": name, "seconds": seconds, "file": prompt.original_name},
        )
        publish_on_commit(tenant)
    return prompt


def do_replace_prompt(
    prompt: Prompt,
    *,
    actor: Actor,
    upload=None,
    name: str | None = None,
    description: str | None = None,
) -> Prompt:
    """A new recording (``upload``), name or description for a prompt; the old file goes on
    commit."""
    tenant = _tenant()
    _check_prompt(name, description, prompt)
    relative = ""
    seconds = 0.0
    if upload is not None:
        relative = _new_file(tenant.schema_name, "prompts")
        seconds = _convert(upload, relative, max_seconds=PROMPT_SECONDS, field="file")
    with _Uploaded(relative) if relative else _Nothing(), transaction.atomic():
        prompt = Prompt.objects.select_for_update().get(pk=prompt.pk)
        fields: dict = {}
        if name is not None:
            fields["name"] = name
        if description is not None:
            fields["description"] = description
        changes = audit.diff(prompt, fields)
        if relative:
            remove_files_on_commit([prompt.file])
            fields.update(file=relative, seconds=seconds, original_name=_original_name(upload))
            changes["file"] = fields["original_name"]
        for key, value in fields.items():
            setattr(prompt, key, value)
        prompt.updated_at = timezone.now()
        prompt.save()
        audit.record(actor, "prompt.update", prompt, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return prompt


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc) -> None:
        return None


def do_delete_prompt(prompt: Prompt, *, actor: Actor) -> None:
    tenant = _tenant()
    with transaction.atomic():
        audit.record(actor, "prompt.delete", prompt, tenant=tenant)
        remove_files_on_commit([prompt.file])
        prompt.delete()
        publish_on_commit(tenant)


# ----------------------------------------------------------------------- music on hold


def _class_name(name, obj: MusicClass | None) -> str:
    problem = single_line_problem(name, max_length=120)
    if problem is None and not str(name).strip():
        problem = "required"
    if problem:
        raise ValidationFailed("The music class has invalid fields.", fields={"name": [problem]})
    name = str(name).strip()
    if MusicClass.objects.filter(name=name).exclude(pk=obj.pk if obj else 0).exists():
        raise Conflict(f"There is a music class named {name}.", fields={"name": ["exists"]})
    return name


def do_create_music_class(*, actor: Actor, name: str, is_default: bool = False) -> MusicClass:
    tenant = _tenant()
    name = _class_name(name, None)
    with transaction.atomic():
        if is_default:
            MusicClass.objects.select_for_update().filter(is_default=True).update(is_default=False)
        try:
            with transaction.atomic():
                music = MusicClass.objects.create(name=name, is_default=bool(is_default))
        except IntegrityError:
            raise Conflict(
                f"There is a music class named {name}.", fields={"name": ["exists"]}
            ) from None
        audit.record(
            actor,
            "music_class.create",
            music,
            tenant=tenant,
            changes={"name": name, "is_default": bool(is_default)},
        )
        publish_on_commit(tenant)
    return music


def do_rename_music_class(music_class: MusicClass, *, actor: Actor, name: str) -> MusicClass:
    tenant = _tenant()
    name = _class_name(name, music_class)
    with transaction.atomic():
        music = MusicClass.objects.select_for_update().get(pk=music_class.pk)
        changes = audit.diff(music, {"name": name})
        music.name = name
        music.save(update_fields=["name"])
        audit.record(actor, "music_class.update", music, tenant=tenant, changes=changes)
    return music


def do_set_default_music_class(music_class: MusicClass | None, *, actor: Actor) -> None:
    """Make ``music_class`` what held callers hear (None: the shipped music)."""
    tenant = _tenant()
    with transaction.atomic():
        rows = list(MusicClass.objects.select_for_update().order_by("pk"))
        before = next((m for m in rows if m.is_default), None)
        MusicClass.objects.filter(is_default=True).update(is_default=False)
        if music_class is not None:
            MusicClass.objects.filter(pk=music_class.pk).update(is_default=True)
            music_class.is_default = True
        target = music_class if music_class is not None else before
        if target is not None:
            audit.record(
                actor,
                "music_class.default",
                target,
                tenant=tenant,
                changes={
                    "default": [
                        before.name if before else None,
                        music_class.name if music_class else None,
                    ]
                },
            )
        publish_on_commit(tenant)


def do_delete_music_class(music_class: MusicClass, *, actor: Actor) -> None:
    tenant = _tenant()
    with transaction.atomic():
        files = list(music_class.tracks.values_list("file", flat=True))
        audit.record(
            actor, "music_class.delete", music_class, tenant=tenant, changes={"tracks": len(files)}
        )
        remove_files_on_commit(files)
        music_class.delete()
        publish_on_commit(tenant)


def do_add_track(music_class: MusicClass, *, actor: Actor, upload) -> MusicTrack:
    """A converted file added at the end of the class's playlist."""
    tenant = _tenant()
    relative = _new_file(tenant.schema_name, "moh")
    seconds = _convert(upload, relative, max_seconds=MUSIC_SECONDS, field="file")
    with _Uploaded(relative), transaction.atomic():
        music = MusicClass.objects.select_for_update().get(pk=music_class.pk)
        last = music.tracks.order_by("-position").values_list("position", flat=True).first()
        track = MusicTrack.objects.create(
            music_class=music,
            position=(last + 1) if last is not None else 0,
            file=relative,
            seconds=seconds,
            original_name=_original_name(upload),
        )
        audit.record(
            actor,
            "music_track.create",
            track,
            tenant=tenant,
            changes={"music_class": music.name, "seconds": seconds},
        )
        publish_on_commit(tenant)
    return track


def do_reorder_tracks(music_class: MusicClass, *, actor: Actor, track_ids: list[int]) -> None:
    """Play the class's tracks in the order of ``track_ids`` (each of its tracks once)."""
    tenant = _tenant()
    with transaction.atomic():
        music = MusicClass.objects.select_for_update().get(pk=music_class.pk)
        tracks = {t.pk: t for t in music.tracks.all()}
        if (
            not isinstance(track_ids, list)
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in track_ids)
            or sorted(track_ids) != sorted(tracks)
        ):
            raise ValidationFailed(
                "The order must name every track of the class once.",
                fields={"tracks": ["every track id of this class, once each, in order"]},
            )
        for position, pk in enumerate(track_ids):
            if tracks[pk].position != position:
                tracks[pk].position = position
                tracks[pk].save(update_fields=["position"])
        audit.record(
            actor, "music_class.reorder", music, tenant=tenant, changes={"tracks": track_ids}
        )
        publish_on_commit(tenant)


def do_delete_track(track: MusicTrack, *, actor: Actor) -> None:
    tenant = _tenant()
    with transaction.atomic():
        audit.record(
            actor,
            "music_track.delete",
            track,
            tenant=tenant,
            changes={"music_class": track.music_class_id},
        )
        remove_files_on_commit([track.file])
        track.delete()
        publish_on_commit(tenant)


# --------------------------------------------------------------------------- mailboxes


def create_mailbox(extension) -> Mailbox:
    """The extension's mailbox with the defaults (inside the extension's create)."""
    mailbox, _ = Mailbox.objects.get_or_create(extension=extension)
    return mailbox


def remove_mailbox_files(extension) -> None:
    """Before an extension is deleted (its mailbox and messages go with it by cascade):
    its message and greeting files are removed, and its box's index, on commit."""
    tenant = _tenant()
    mailbox = Mailbox.objects.filter(extension=extension).first()
    if mailbox is None:
        return
    files = list(mailbox.messages.values_list("file", flat=True))
    remove_files_on_commit([*files, mailbox.greeting_unavailable, mailbox.greeting_busy])
    publish_box_on_commit(tenant.schema_name, extension.number)


def pin_problem(pin, number: str) -> str | None:
    """What is wrong with ``pin`` as the PIN of mailbox ``number`` (None: fine)."""
    if not isinstance(pin, str) or not pin.isascii() or not pin.isdigit():
        return "4 to 10 digits"
    if not 4 <= len(pin) <= 10:
        return "4 to 10 digits"
    if len(set(pin)) == 1:
        return "not the same digit repeated"
    if pin == number:
        return "not the extension's number"
    return None


def _check_mailbox(fields: dict, mailbox: Mailbox) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = dict(single_line_errors(fields, {"email": 254}))
    for name in ("enabled", "always", "busy", "no_answer", "email_enabled", "delete_after_email"):
        if name in fields and not isinstance(fields[name], bool):
            errors[name] = ["true or false"]
    if "max_seconds" in fields:
        value = fields["max_seconds"]
        lo, hi = MAX_SECONDS
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            errors["max_seconds"] = [f"{lo} to {hi} seconds"]
    if "attach" in fields and fields["attach"] not in Attach.values:
        errors["attach"] = [f"one of {', '.join(Attach.values)}"]
    email = fields.get("email")
    if email and "email" not in errors:
        try:
            validate_email(email)
        except ValidationError:
            errors["email"] = ["an e-mail address"]
    if fields.get("email_enabled") and "email" not in errors and "email_enabled" not in errors:
        address = fields.get("email", mailbox.email) or _user_email(mailbox)
        if not address:
            errors["email"] = ["an address to send to (the extension has none)"]
    return errors


def _user_email(mailbox: Mailbox) -> str:
    ext = mailbox.extension
    if ext.user_id:
        from tenants.models import User

        found = User.objects.filter(pk=ext.user_id).values_list("email", flat=True).first()
        if found:
            return found
    return ext.email or ""


def mail_address(mailbox: Mailbox) -> str:
    """Where the box's messages are mailed: its own address, else its extension's user's."""
    return mailbox.email or _user_email(mailbox)


def do_update_mailbox(
    mailbox: Mailbox, *, actor: Actor, fields: dict, pin: str | None = None
) -> Mailbox:
    """The box's settings (``fields`` among :data:`MAILBOX_FIELDS`) and its PIN."""
    tenant = _tenant()
    fields = {k: v for k, v in fields.items() if k in MAILBOX_FIELDS}
    errors = _check_mailbox(fields, mailbox)
    if pin and (problem := pin_problem(pin, mailbox.extension.number)):
        errors["pin"] = [problem]
    if errors:
        raise ValidationFailed("The mailbox has invalid fields.", fields=errors)
    with transaction.atomic():
        box = Mailbox.objects.select_for_update().select_related("extension").get(pk=mailbox.pk)
        changes = audit.diff(box, fields)
        for name, value in fields.items():
            setattr(box, name, value)
        if pin is not None:
            box.pin = pin_hash(pin) if pin else ""
            changes["pin"] = "set" if pin else "cleared"
        box.updated_at = timezone.now()
        box.save()
        audit.record(actor, "mailbox.update", box, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return box


def _greeting_field(kind: str) -> str:
    if kind not in GREETING_KINDS:
        raise ValidationFailed(
            "Unknown greeting.", fields={"greeting": [f"one of {', '.join(GREETING_KINDS)}"]}
        )
    return f"greeting_{kind}"


def greeting_file(schema: str, number: str, kind: str) -> str:
    """Where a box's greeting is kept (relative to ``MEDIA_ROOT``)."""
    return tenant_file(schema, "greetings", f"{_box_name(number)}-{kind}.wav")


def do_set_greeting(mailbox: Mailbox, kind: str, *, actor: Actor, upload) -> Mailbox:
    """An uploaded greeting (converted) for "unavailable" or "busy"."""
    tenant = _tenant()
    field = _greeting_field(kind)
    relative = greeting_file(tenant.schema_name, mailbox.extension.number, kind)
    seconds = _convert(upload, relative, max_seconds=PROMPT_SECONDS, field="file")
    changes = {field: _original_name(upload), "seconds": seconds}
    return set_greeting_file(mailbox, kind, relative, actor=actor, changes=changes)


def set_greeting_file(
    mailbox: Mailbox, kind: str, relative: str, *, actor: Actor, changes: dict
) -> Mailbox:
    """``relative`` (a WAV under ``MEDIA_ROOT``, converted or recorded on the phone) becomes
    the box's ``kind`` greeting; a previous file of another name is removed on commit."""
    tenant = _tenant()
    field = _greeting_field(kind)
    with transaction.atomic():
        box = Mailbox.objects.select_for_update().select_related("extension").get(pk=mailbox.pk)
        old = getattr(box, field)
        if old and old != relative:
            remove_files_on_commit([old])
        setattr(box, field, relative)
        box.updated_at = timezone.now()
        box.save(update_fields=[field, "updated_at"])
        audit.record(actor, "mailbox.greeting", box, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return box


def do_clear_greeting(mailbox: Mailbox, kind: str, *, actor: Actor) -> Mailbox:
    """Back to the default prompt for that greeting."""
    tenant = _tenant()
    field = _greeting_field(kind)
    with transaction.atomic():
        box = Mailbox.objects.select_for_update().select_related("extension").get(pk=mailbox.pk)
        old = getattr(box, field)
        if old:
            remove_files_on_commit([old])
        setattr(box, field, "")
        box.updated_at = timezone.now()
        box.save(update_fields=[field, "updated_at"])
        audit.record(actor, "mailbox.greeting", box, tenant=tenant, changes={field: "cleared"})
        publish_on_commit(tenant)
    return box


# ---------------------------------------------------------------------------- messages


def do_save_message(message: VoicemailMessage, *, actor: Actor) -> VoicemailMessage:
    """The message was heard: it moves to the saved ones (the MWI counts it no more)."""
    tenant = _tenant()
    with transaction.atomic():
        msg = (
            VoicemailMessage.objects.select_for_update()
            .select_related("mailbox__extension")
            .get(pk=message.pk)
        )
        if msg.folder != Folder.SAVED or msg.heard_at is None:
            msg.folder = Folder.SAVED
            msg.heard_at = msg.heard_at or timezone.now()
            msg.save(update_fields=["folder", "heard_at"])
            audit.record(
                actor,
                "voicemail.save",
                msg,
                tenant=tenant,
                changes={"box": msg.mailbox.extension.number},
            )
            publish_box_on_commit(tenant.schema_name, msg.mailbox.extension.number)
    return msg


def do_delete_message(message: VoicemailMessage, *, actor: Actor) -> None:
    tenant = _tenant()
    with transaction.atomic():
        msg = (
            VoicemailMessage.objects.select_for_update()
            .select_related("mailbox__extension")
            .filter(pk=message.pk)
            .first()
        )
        if msg is None:
            return
        box = msg.mailbox.extension.number
        audit.record(
            actor,
            "voicemail.delete",
            msg,
            tenant=tenant,
            changes={"box": box, "caller": msg.caller},
        )
        remove_files_on_commit([msg.file])
        msg.delete()
        publish_box_on_commit(tenant.schema_name, box)
