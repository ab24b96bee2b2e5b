"""A tenant's audio in the portal: its prompts and music on hold (``audio.view`` to see and
play, ``audio.manage`` to change), an extension's mailbox settings and greetings, and the end
user's own voicemail (their messages and their mailbox's PIN and e-mail).

The pages run in the tenant's schema (the host's), so another tenant's rows are never found
(404). Every write goes through ``audio.actions``, whose field errors (a file that is not
audio, a bad PIN) are shown on the fields. Recordings are streamed by the views here, after
the same checks as the page that lists them; the end user's views take a message id but look
it up among their own extension's messages only.
"""

from __future__ import annotations

import os

from django.contrib import messages
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from audio import actions
from audio.access import messages_for, own_extension_number
from audio.models import Folder, Mailbox, MusicClass, MusicTrack, Prompt, VoicemailMessage
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import (
    held_permissions,
    host_tenant,
    tenant_member_required,
    tenant_permission_required,
)
from pbx.portal.audio_forms import (
    GreetingForm,
    MailboxForm,
    MusicClassForm,
    MyMailboxForm,
    PromptForm,
    TrackForm,
)
from pbx.portal.lists import list_page
from telephony.models import Extension
from tenants.choices import Permission

from .common import actor, button_action, form_action, page

audio_viewer = tenant_permission_required(Permission.AUDIO_VIEW)
audio_admin = tenant_permission_required(Permission.AUDIO_MANAGE)


def _can_manage(request) -> bool:
    return Permission.AUDIO_MANAGE in held_permissions(request)


def _require_manage(request) -> None:
    """A write on a page that viewers may open: without ``audio.manage`` it does not exist."""
    if not _can_manage(request):
        raise Http404


def wav(path: str, name: str) -> FileResponse:
    """A stored recording (8 kHz mono WAV) for an ``<audio>`` player; 404 when it is gone."""
    if not path or not os.path.isfile(path):
        raise Http404
    return FileResponse(open(path, "rb"), content_type="audio/wav", filename=name)  # noqa: SIM115


# ------------------------------------------------------------------------------ prompts


@audio_viewer
def prompt_list(request):
    """The tenant's prompts with a player each, the upload form and delete buttons."""
    form = PromptForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        _require_manage(request)
        if form.is_valid():
            data = form.cleaned_data
            try:
                prompt = actions.do_upload_prompt(
                    actor=actor(request),
                    name=data["name"],
                    upload=data["file"],
                    description=data["description"],
                )
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, f"Prompt {prompt.name} uploaded.")
                return redirect("portal:prompt_list")
    ctx = list_page(
        request,
        Prompt.objects.all(),
        search=("name", "description"),
        sorts={"name": "name", "seconds": "seconds", "updated": "updated_at"},
        default="name",
    )
    ctx.update(form=form, can_manage=_can_manage(request))
    status = 400 if form.is_bound and form.errors else 200
    return page(request, "portal/audio/prompts.html", ctx, section="prompts", status=status)


@audio_viewer
def prompt_audio(request, pk):
    prompt = get_object_or_404(Prompt, pk=pk)
    return wav(prompt.path, f"{prompt.name}.wav")


@require_POST
@audio_admin
def prompt_delete(request, pk):
    prompt = get_object_or_404(Prompt, pk=pk)
    done = f"Prompt {prompt.name} deleted."
    button_action(request, lambda who: actions.do_delete_prompt(prompt, actor=who), done)
    return redirect("portal:prompt_list")


# ------------------------------------------------------------------------ music on hold


@audio_viewer
def music_list(request):
    """The music classes, which one held callers hear, and the form for a new class."""
    form = MusicClassForm(request.POST or None)
    if request.method == "POST":
        _require_manage(request)
        if form.is_valid():
            try:
                music = actions.do_create_music_class(
                    actor=actor(request),
                    name=form.cleaned_data["name"],
                    is_default=form.cleaned_data["is_default"],
                )
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, f"Music class {music.name} added: upload its tracks.")
                return redirect("portal:music_class", music.pk)
    classes = list(MusicClass.objects.prefetch_related("tracks").order_by("name", "id"))
    ctx = {
        "classes": classes,
        "default": next((c for c in classes if c.is_default), None),
        "form": form,
        "can_manage": _can_manage(request),
    }
    status = 400 if form.is_bound and form.errors else 200
    return page(request, "portal/audio/music_list.html", ctx, section="music", status=status)


@audio_viewer
def music_class(request, pk):
    """One class: its tracks in playing order (player, move, delete), a track upload and
    the class's name."""
    music = get_object_or_404(MusicClass, pk=pk)
    kind = request.POST.get("form") if request.method == "POST" else None
    track_form = TrackForm(request.POST if kind == "track" else None, request.FILES or None)
    name_form = MusicClassForm(
        request.POST if kind == "name" else None,
        initial={"name": music.name, "is_default": music.is_default},
    )
    name_form.fields.pop("is_default")
    if kind is not None:
        _require_manage(request)
        # The form posted: (its form, its action given the valid data, the message on success).
        posted = {
            "track": (
                track_form,
                lambda who, data: actions.do_add_track(music, actor=who, upload=data["file"]),
                "Track added at the end of the playlist.",
            ),
            "name": (
                name_form,
                lambda who, data: actions.do_rename_music_class(
                    music, actor=who, name=data["name"]
                ),
                "Music class renamed.",
            ),
        }
        if kind not in posted:
            raise Http404
        form, act, done = posted[kind]
        if form.is_valid() and form_action(
            request, form, lambda who: act(who, form.cleaned_data), done
        ):
            return redirect("portal:music_class", music.pk)
    ctx = {
        "object": music,
        "tracks": list(music.tracks.order_by("position", "id")),
        "track_form": track_form,
        "name_form": name_form,
        "can_manage": _can_manage(request),
    }
    failed = (track_form.is_bound and track_form.errors) or (
        name_form.is_bound and name_form.errors
    )
    return page(
        request,
        "portal/audio/music_class.html",
        ctx,
        section="music",
        status=400 if failed else 200,
    )


@require_POST
@audio_admin
def music_default(request, pk=None):
    """Make a class what held callers hear; without one, the shipped music."""
    music = get_object_or_404(MusicClass, pk=pk) if pk is not None else None
    done = (
        f"Held callers now hear {music.name}." if music else "Held callers hear the shipped music."
    )
    button_action(request, lambda who: actions.do_set_default_music_class(music, actor=who), done)
    return redirect("portal:music_list")


@require_POST
@audio_admin
def music_delete(request, pk):
    music = get_object_or_404(MusicClass, pk=pk)
    done = f"Music class {music.name} deleted."
    button_action(request, lambda who: actions.do_delete_music_class(music, actor=who), done)
    return redirect("portal:music_list")


def _track(class_pk, pk) -> MusicTrack:
    return get_object_or_404(MusicTrack.objects.select_related("music_class"), pk=pk,
                             music_class_id=class_pk)  # fmt: skip


@audio_viewer
def track_audio(request, pk, track):
    t = _track(pk, track)
    return wav(t.path, f"{t}.wav" if not str(t).endswith(".wav") else str(t))


@require_POST
@audio_admin
def track_delete(request, pk, track):
    t = _track(pk, track)
    button_action(request, lambda who: actions.do_delete_track(t, actor=who), "Track deleted.")
    return redirect("portal:music_class", pk)


@require_POST
@audio_admin
def track_move(request, pk, track, direction):
    """Move a track one place up or down the playlist."""
    if direction not in ("up", "down"):
        raise Http404
    t = _track(pk, track)
    ids = list(
        MusicTrack.objects.filter(music_class_id=pk)
        .order_by("position", "id")
        .values_list("pk", flat=True)
    )
    i = ids.index(t.pk)
    j = i - 1 if direction == "up" else i + 1
    if 0 <= j < len(ids):
        ids[i], ids[j] = ids[j], ids[i]
        music = t.music_class
        button_action(
            request,
            lambda who: actions.do_reorder_tracks(music, actor=who, track_ids=ids),
            "Playlist order saved.",
        )
    return redirect("portal:music_class", pk)


# ------------------------------------------------------------------ an extension's mailbox


def _mailbox_initial(box: Mailbox) -> dict:
    return {name: getattr(box, name) for name in MailboxForm.field_names}


def _greeting_rows(box: Mailbox, url_name: str, *args) -> list[dict]:
    from django.urls import reverse

    rows = []
    for kind, label in (("unavailable", "Unavailable"), ("busy", "Busy")):
        stored = getattr(box, f"greeting_{kind}")
        rows.append(
            {
                "kind": kind,
                "label": label,
                "own": bool(stored),
                "url": reverse(url_name, args=[*args, kind]) if stored else "",
            }
        )
    return rows


@audio_viewer
def extension_voicemail(request, pk):
    """An extension's mailbox: settings, PIN, e-mail and its greetings."""
    ext = get_object_or_404(Extension, pk=pk)
    # Every extension has its mailbox (made with it; older ones by audio's migration).
    box = get_object_or_404(Mailbox.objects.select_related("extension"), extension=ext)
    kind = request.POST.get("form") if request.method == "POST" else None
    form = MailboxForm(request.POST if kind == "settings" else None, initial=_mailbox_initial(box))
    greeting = GreetingForm(request.POST if kind == "greeting" else None, request.FILES or None)
    if kind is not None:
        _require_manage(request)
        saved = f"Voicemail of extension {ext.number} saved."
        if _mailbox_post(request, box, kind, form, greeting, saved=saved, whose="The"):
            return redirect("portal:extension_voicemail", ext.pk)
    counts = box.messages.aggregate(
        **{folder: Count("id", filter=Q(folder=folder)) for folder in (Folder.NEW, Folder.SAVED)}
    )
    ctx = {
        "object": ext,
        "box": box,
        "form": form,
        "greeting_form": greeting,
        "greetings": _greeting_rows(box, "portal:extension_greeting", ext.pk),
        "counts": counts,
        "has_pin": bool(box.pin),
        "can_manage": _can_manage(request),
    }
    failed = (form.is_bound and form.errors) or (greeting.is_bound and greeting.errors)
    return page(
        request,
        "portal/audio/extension_voicemail.html",
        ctx,
        section="extensions",
        status=400 if failed else 200,
    )


@audio_viewer
def extension_greeting(request, pk, kind):
    box = get_object_or_404(Mailbox.objects.select_related("extension"), extension_id=pk)
    if kind not in actions.GREETING_KINDS:
        raise Http404
    return wav(box_path(box, kind), f"{box.extension.number}-{kind}.wav")


def box_path(box: Mailbox, kind: str) -> str:
    from audio.models import media_path

    return media_path(getattr(box, f"greeting_{kind}"))


# ------------------------------------------------------------------- the user's voicemail


def _own_box(request) -> Mailbox | None:
    number = own_extension_number(request.user, host_tenant(request))
    if number is None:
        return None
    return Mailbox.objects.select_related("extension").filter(extension__number=number).first()


def _own_messages(request):
    return messages_for(request.user, host_tenant(request), every=False)


@tenant_member_required
def my_voicemail(request):
    """The user's messages (new, then saved, newest first) with a player, save and delete;
    their greetings; their mailbox's PIN and e-mail delivery."""
    box = _own_box(request)
    kind = request.POST.get("form") if request.method == "POST" else None
    initial = {n: getattr(box, n) for n in MyMailboxForm.field_names} if box else None
    form = MyMailboxForm(request.POST if kind == "settings" else None, initial=initial)
    greeting = GreetingForm(request.POST if kind == "greeting" else None, request.FILES or None)
    if kind is not None:
        if box is None:
            raise Http404
        saved = "Your voicemail settings are saved."
        if _mailbox_post(request, box, kind, form, greeting, saved=saved, whose="Your"):
            return redirect("portal:my_voicemail")
    mine = list(_own_messages(request)) if box is not None else []
    ctx = {
        "box": box,
        "form": form,
        "greeting_form": greeting,
        "new": [m for m in mine if m.folder == Folder.NEW],
        "saved": [m for m in mine if m.folder == Folder.SAVED],
        "has_pin": bool(box and box.pin),
        "greetings": _greeting_rows(box, "portal:my_greeting") if box else [],
    }
    failed = (form.is_bound and form.errors) or (greeting.is_bound and greeting.errors)
    return page(request, "portal/audio/my_voicemail.html", ctx, section="my_voicemail",
                status=400 if failed else 200)  # fmt: skip


def _own_message(request, pk) -> VoicemailMessage:
    return get_object_or_404(_own_messages(request), pk=pk)


@tenant_member_required
def my_message_audio(request, pk):
    msg = _own_message(request, pk)
    return wav(msg.path, f"voicemail-{msg.created_at:%Y%m%d-%H%M%S}.wav")


@tenant_member_required
def my_greeting(request, kind):
    box = _own_box(request)
    if box is None or kind not in actions.GREETING_KINDS:
        raise Http404
    return wav(box_path(box, kind), f"{box.extension.number}-{kind}.wav")


@require_POST
@tenant_member_required
def my_message_save(request, pk):
    msg = _own_message(request, pk)
    button_action(request, lambda who: actions.do_save_message(msg, actor=who), "Message saved.")
    return redirect("portal:my_voicemail")


@require_POST
@tenant_member_required
def my_message_delete(request, pk):
    msg = _own_message(request, pk)
    button_action(
        request, lambda who: actions.do_delete_message(msg, actor=who), "Message deleted."
    )
    return redirect("portal:my_voicemail")


def _mailbox_post(request, box: Mailbox, kind: str, form, greeting, *, saved, whose) -> bool:
    """A mailbox page's POST (an admin's or the owner's): ``kind`` names the form posted
    (``settings``: ``form``, message ``saved``; ``greeting``: ``greeting``, an upload;
    ``clear_greeting``; any other is 404). ``whose`` starts the greetings' messages ("The",
    "Your"). Returns whether it went through."""
    if kind == "settings":
        if not form.is_valid():
            return False
        fields, pin = form.fields_for_action(), form.pin_for_action()
        return form_action(
            request,
            form,
            lambda who: actions.do_update_mailbox(box, actor=who, fields=fields, pin=pin),
            saved,
        )
    if kind == "greeting":
        if not greeting.is_valid():
            return False
        which, upload = greeting.cleaned_data["kind"], greeting.cleaned_data["file"]
        return form_action(
            request,
            greeting,
            lambda who: actions.do_set_greeting(box, which, actor=who, upload=upload),
            f"{whose} {which} greeting is uploaded.",
        )
    if kind == "clear_greeting":
        which = request.POST.get("kind", "")
        if which not in actions.GREETING_KINDS:
            raise Http404
        return button_action(
            request,
            lambda who: actions.do_clear_greeting(box, which, actor=who),
            f"{whose} {which} greeting is the default one again.",
        )
    raise Http404
