"""A tenant's audio in the portal: prompts and music on hold (upload, play, order, delete), an
extension's mailbox settings and greetings, and the end user's own voicemail. Files are real
(sox tones, and a text file posing as a WAV); messages are left as the engine leaves them (a
``voicemail.left`` request applied as the CDR drain applies it); results are read back from the
tenant's schema. Another tenant's objects are 404, and so are a colleague's messages."""

from __future__ import annotations

import re
import shutil
from html import unescape

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django_tenants.utils import schema_context

from audio import actions
from audio.models import Mailbox, MusicClass, MusicTrack, Prompt, VoicemailMessage
from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.engine import requests
from telephony.models import Extension
from tests.audio.media import info, tone, upload

pytestmark = pytest.mark.django_db

A = "/portal/audio"


@pytest.fixture(autouse=True)
def _no_mailbox_indexes(rds):
    """Leaving and saving messages writes their boxes' indexes in Redis, which the rollback
    of the test's rows does not undo: remove them, so later engine tests start empty."""
    yield
    for key in rds.scan_iter(match="sip:vm:*"):
        rds.delete(key)


@pytest.fixture
def media(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def wav(tmp_path):
    """A real 44.1 kHz stereo WAV upload (converted by the action to 8 kHz mono)."""

    def make(name: str = "tone.wav", seconds: float = 1.0):
        return upload(tone(tmp_path / name, seconds=seconds))

    return make


def not_audio(name: str = "notes.wav") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"this is text, not audio\n" * 40, content_type="audio/wav")


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


def foreign_pk(make, own_pks) -> int:
    """The pk of an object made in another tenant that no object of this one has (pks are
    counted per schema, so the first ones collide)."""
    while True:
        pk = make().pk
        if pk not in set(own_pks):
            return pk


def leave_message(media, tenant, box: str, name: str, tmp_path, caller: str = "+12125550100"):
    """A message left in ``box`` as the media server and the engine leave it."""
    folder = media / "tenants" / tenant.schema_name / "voicemail" / box
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.wav"
    shutil.copy(tone(tmp_path / f"{name}.wav", seconds=2, rate=8000, channels=1), target)
    event = {"schema": tenant.schema_name, "type": "voicemail.left", "box": box,
             "message": name, "path": str(target), "seconds": "2.0", "caller": caller,
             "caller_name": f"Caller {name}", "call_id": f"c-{name}"}  # fmt: skip
    with schema_context(tenant.schema_name), transaction.atomic():
        requests.handle(event)
    with schema_context(tenant.schema_name):
        return VoicemailMessage.objects.get(message_id=name)


def is_wav(response) -> bool:
    body = b"".join(response.streaming_content)
    return response["Content-Type"] == "audio/wav" and body[:4] == b"RIFF" and len(body) > 1000


# --- prompts ---------------------------------------------------------------------------------


def test_prompts_empty_upload_play_refuse_and_delete(portal, world, in_tenant, media, wav):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{A}/prompts/").content.decode()
    assert "No prompts of your own yet: your calls play the default prompts." in html
    assert '<option value="welcome">' in html  # the default names are suggested
    r = p.post(f"{A}/prompts/", {"name": "welcome", "description": "Spring", "file": wav()})
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        prompt = Prompt.objects.get()
        assert info(prompt.path)[:3] == (8000, 1, 2)
    html = p.get(f"{A}/prompts/").content.decode()
    assert 'data-testid="prompt-welcome"' in html
    assert f'src="{A}/prompts/{prompt.pk}/audio/"' in html
    assert is_wav(p.get(f"{A}/prompts/{prompt.pk}/audio/"))

    # A text file called .wav: a field error, nothing stored.
    r = p.post(f"{A}/prompts/", {"name": "closed", "file": not_audio()})
    assert r.status_code == 400
    assert field_errors(r.content.decode(), "file")
    # A bad name and a taken name: on the name field.
    r = p.post(f"{A}/prompts/", {"name": "Bad Name!", "file": wav("b.wav")})
    assert field_errors(r.content.decode(), "name")
    r = p.post(f"{A}/prompts/", {"name": "welcome", "file": wav("c.wav")})
    assert field_errors(r.content.decode(), "name") == ["exists"]
    with in_tenant(world.tenant_a):
        assert list(Prompt.objects.values_list("name", flat=True)) == ["welcome"]

    assert p.post(f"{A}/prompts/{prompt.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not Prompt.objects.exists()
    assert AuditEntry.objects.filter(tenant=world.tenant_a, action="prompt.delete").exists()
    assert p.get(f"{A}/prompts/{prompt.pk}/audio/").status_code == 404


def test_another_tenants_prompts_and_music_are_404(portal, world, in_tenant, media, wav):
    with in_tenant(world.tenant_b):
        theirs = actions.do_upload_prompt(actor=SYSTEM, name="beta-only", upload=wav())
        music = actions.do_create_music_class(actor=SYSTEM, name="Beta jazz")
        track = actions.do_add_track(music, actor=SYSTEM, upload=wav("t.wav"))
    p = portal(world.a_admin, world.tenant_a)
    assert "beta-only" not in p.get(f"{A}/prompts/").content.decode()
    assert p.get(f"{A}/prompts/{theirs.pk}/audio/").status_code == 404
    assert p.post(f"{A}/prompts/{theirs.pk}/delete/").status_code == 404
    assert "Beta jazz" not in p.get(f"{A}/music/").content.decode()
    assert p.get(f"{A}/music/{music.pk}/").status_code == 404
    assert p.get(f"{A}/music/{music.pk}/tracks/{track.pk}/audio/").status_code == 404
    assert p.post(f"{A}/music/{music.pk}/delete/").status_code == 404
    with in_tenant(world.tenant_b):
        assert Prompt.objects.filter(pk=theirs.pk).exists()
        assert MusicTrack.objects.filter(pk=track.pk).exists()


def test_viewers_and_end_users_cannot_change_audio(portal, world, in_tenant, media, wav, me):
    """A plain user has no audio pages at all; the menu shows only what may be opened."""
    user = portal(me.user, world.tenant_a)
    assert user.get(f"{A}/prompts/").status_code == 404
    assert user.get(f"{A}/music/").status_code == 404
    assert user.post(f"{A}/prompts/", {"name": "x", "file": wav()}).status_code == 404
    html = user.get("/portal/me/voicemail/").content.decode()
    assert 'href="/portal/me/voicemail/"' in html
    assert f'href="{A}/prompts/"' not in html
    admin = portal(world.a_admin, world.tenant_a).get(f"{A}/prompts/").content.decode()
    assert f'href="{A}/prompts/"' in admin
    assert f'href="{A}/music/"' in admin
    with in_tenant(world.tenant_a):
        assert not Prompt.objects.exists()


# --- music on hold ---------------------------------------------------------------------------


def test_music_classes_tracks_order_default_and_delete(portal, world, in_tenant, media, wav):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{A}/music/").content.decode()
    assert "No music classes yet: held callers hear the shipped music." in html
    r = p.post(f"{A}/music/", {"name": "Jazz", "is_default": "on"})
    with in_tenant(world.tenant_a):
        jazz = MusicClass.objects.get()
    assert r["Location"] == f"{A}/music/{jazz.pk}/"
    assert jazz.is_default
    page = p.get(f"{A}/music/{jazz.pk}/").content.decode()
    assert "No tracks yet: held callers hear the shipped music until you upload one." in page
    for name in ("one.wav", "two.wav"):
        r = p.post(f"{A}/music/{jazz.pk}/", {"form": "track", "file": wav(name)})
        assert r.status_code == 302
    r = p.post(f"{A}/music/{jazz.pk}/", {"form": "track", "file": not_audio()})
    assert r.status_code == 400
    assert field_errors(r.content.decode(), "file")
    with in_tenant(world.tenant_a):
        one, two = MusicTrack.objects.order_by("position")
    assert [one.original_name, two.original_name] == ["one.wav", "two.wav"]
    assert is_wav(p.get(f"{A}/music/{jazz.pk}/tracks/{two.pk}/audio/"))
    assert p.post(f"{A}/music/{jazz.pk}/tracks/{two.pk}/up/").status_code == 302
    with in_tenant(world.tenant_a):
        order = list(MusicTrack.objects.order_by("position").values_list("pk", flat=True))
    assert order == [two.pk, one.pk]
    assert p.post(f"{A}/music/{jazz.pk}/tracks/{two.pk}/sideways/").status_code == 404

    # The shipped music again, then this class again, then a rename.
    p.post(f"{A}/music/shipped/")
    assert "the shipped music" in p.get(f"{A}/music/").content.decode()
    p.post(f"{A}/music/{jazz.pk}/default/")
    with in_tenant(world.tenant_a):
        assert MusicClass.objects.get().is_default
    assert p.post(f"{A}/music/{jazz.pk}/", {"form": "name", "name": "Cool jazz"}).status_code == 302

    assert p.post(f"{A}/music/{jazz.pk}/tracks/{one.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert list(MusicTrack.objects.values_list("pk", flat=True)) == [two.pk]
    assert p.post(f"{A}/music/{jazz.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not MusicClass.objects.exists()
        assert not MusicTrack.objects.exists()


# --- an extension's mailbox ------------------------------------------------------------------


def test_extension_voicemail_settings_pin_and_greetings(portal, world, in_tenant, media, wav):
    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    p = portal(world.a_admin, world.tenant_a)
    assert 'data-testid="voicemail-link"' in p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    url = f"/portal/extensions/{ext.pk}/voicemail/"
    html = p.get(url).content.decode()
    assert 'data-testid="mailbox-counts">0 new, 0 saved<' in html
    assert 'data-testid="mailbox-pin">none<' in html
    settings = {
        "form": "settings", "enabled": "on", "max_seconds": "90", "busy": "on",
        "no_answer": "on", "attach": "mp3", "email": "", "pin": "",
    }  # fmt: skip
    bad = p.post(url, {**settings, "pin": "1111"})
    assert bad.status_code == 400
    assert field_errors(bad.content.decode(), "pin") == ["not the same digit repeated"]
    bad = p.post(url, {**settings, "max_seconds": "5"})
    assert field_errors(bad.content.decode(), "max_seconds")
    assert p.post(url, {**settings, "pin": "2468"}).status_code == 302
    with in_tenant(world.tenant_a):
        box = Mailbox.objects.get(extension=ext)
        assert (box.max_seconds, box.attach, box.always) == (90, "mp3", False)
        assert box.pin
    assert 'data-testid="mailbox-pin">set<' in p.get(url).content.decode()
    assert p.post(url, {**settings, "clear_pin": "on"}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Mailbox.objects.get(extension=ext).pin == ""

    r = p.post(url, {"form": "greeting", "kind": "busy", "file": not_audio()})
    assert r.status_code == 400
    assert field_errors(r.content.decode(), "file")
    assert p.post(url, {"form": "greeting", "kind": "busy", "file": wav()}).status_code == 302
    html = p.get(url).content.decode()
    assert f'src="{url}greeting/busy/"' in html
    assert is_wav(p.get(f"{url}greeting/busy/"))
    assert p.get(f"{url}greeting/unavailable/").status_code == 404  # none of its own
    assert p.post(url, {"form": "clear_greeting", "kind": "busy"}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Mailbox.objects.get(extension=ext).greeting_busy == ""


def test_another_tenants_extension_mailbox_is_404(portal, world, in_tenant, media):
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        own = list(Extension.objects.values_list("pk", flat=True))
    counter = iter(range(260, 300))

    def make():
        with in_tenant(world.tenant_b):
            ext, _ = do_create_extension(
                number=str(next(counter)), display_name="Beta", actor=SYSTEM
            )
            return ext

    pk = foreign_pk(make, own)
    p = portal(world.a_admin, world.tenant_a)
    assert p.get(f"/portal/extensions/{pk}/voicemail/").status_code == 404
    settings = {"form": "settings", "enabled": "on", "max_seconds": "60", "attach": "wav",
                "pin": "2468"}  # fmt: skip
    assert p.post(f"/portal/extensions/{pk}/voicemail/", settings).status_code == 404
    with in_tenant(world.tenant_b):
        assert Mailbox.objects.get(extension_id=pk).pin == ""


# --- the end user's voicemail ----------------------------------------------------------------


def test_my_voicemail_lists_plays_saves_and_deletes_only_my_messages(
    portal, world, in_tenant, media, tmp_path, me, django_capture_on_commit_callbacks
):
    """Story: Dana (extension 103) opens her voicemail: empty; two callers leave messages
    for her and one for 101; she sees her two only, plays one, saves it, deletes the other;
    101's message stays out of her reach."""
    p = portal(me.user, world.tenant_a)
    html = p.get("/portal/me/voicemail/").content.decode()
    assert "No new messages." in html
    assert "No saved messages." in html
    with django_capture_on_commit_callbacks(execute=True):
        first = leave_message(media, world.tenant_a, "103", "m1", tmp_path, "+12125550111")
        second = leave_message(media, world.tenant_a, "103", "m2", tmp_path, "+12125550122")
        colleague = leave_message(media, world.tenant_a, "101", "m3", tmp_path, "+12125550133")
    html = p.get("/portal/me/voicemail/").content.decode()
    assert 'data-testid="my-counts">2 new, 0 saved<' in html
    assert "+12125550111" in html
    assert "Caller m2" in html
    assert "+12125550133" not in html
    assert f'src="/portal/me/voicemail/{first.pk}/audio/"' in html
    assert is_wav(p.get(f"/portal/me/voicemail/{first.pk}/audio/"))

    assert p.post(f"/portal/me/voicemail/{first.pk}/save/").status_code == 302
    assert p.post(f"/portal/me/voicemail/{second.pk}/delete/").status_code == 302
    html = p.get("/portal/me/voicemail/").content.decode()
    assert 'data-testid="my-counts">0 new, 1 saved<' in html
    with in_tenant(world.tenant_a):
        assert VoicemailMessage.objects.get(pk=first.pk).folder == "saved"
        assert not VoicemailMessage.objects.filter(pk=second.pk).exists()

    # 101's message: not hers to hear, save or delete.
    assert p.get(f"/portal/me/voicemail/{colleague.pk}/audio/").status_code == 404
    assert p.post(f"/portal/me/voicemail/{colleague.pk}/save/").status_code == 404
    assert p.post(f"/portal/me/voicemail/{colleague.pk}/delete/").status_code == 404
    with in_tenant(world.tenant_a):
        assert VoicemailMessage.objects.get(pk=colleague.pk).folder == "new"


def test_another_tenants_message_is_404(portal, world, in_tenant, media, tmp_path, me):
    with in_tenant(world.tenant_a):
        own = list(VoicemailMessage.objects.values_list("pk", flat=True))
    names = iter(f"b{i}" for i in range(20))
    pk = foreign_pk(lambda: leave_message(media, world.tenant_b, "201", next(names), tmp_path), own)
    p = portal(me.user, world.tenant_a)
    assert p.get(f"/portal/me/voicemail/{pk}/audio/").status_code == 404
    assert p.post(f"/portal/me/voicemail/{pk}/delete/").status_code == 404
    with in_tenant(world.tenant_b):
        assert VoicemailMessage.objects.filter(pk=pk).exists()


def test_my_mailbox_pin_and_email(portal, world, in_tenant, media, me):
    p = portal(me.user, world.tenant_a)
    base = {"form": "settings", "attach": "wav", "email": ""}
    r = p.post("/portal/me/voicemail/", {**base, "pin": "103"})
    assert r.status_code == 400
    assert field_errors(r.content.decode(), "pin") == ["4 to 10 digits"]
    r = p.post("/portal/me/voicemail/", {**base, "pin": "7531", "email_enabled": "on",
                                         "email": "dana.vm@acme.test"})  # fmt: skip
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        box = Mailbox.objects.get(extension__number="103")
        assert box.pin
        assert (box.email_enabled, box.email) == (True, "dana.vm@acme.test")
    assert "PIN: set." in p.get("/portal/me/voicemail/").content.decode()
    entry = AuditEntry.objects.filter(tenant=world.tenant_a, action="mailbox.update").last()
    assert entry is not None
    assert "7531" not in str(entry.changes)


def test_a_user_without_an_extension_has_no_mailbox(portal, world):
    html = portal(world.a_user, world.tenant_a).get("/portal/me/voicemail/").content.decode()
    assert 'data-testid="no-mailbox"' in html
    r = portal(world.a_user, world.tenant_a).post(
        "/portal/me/voicemail/", {"form": "settings", "pin": "2468", "attach": "wav"}
    )
    assert r.status_code == 404


def test_my_greetings_upload_play_and_clear(portal, world, in_tenant, media, wav, me):
    p = portal(me.user, world.tenant_a)
    url = "/portal/me/voicemail/"
    r = p.post(url, {"form": "greeting", "kind": "unavailable", "file": not_audio()})
    assert r.status_code == 400
    assert field_errors(r.content.decode(), "file")
    assert (
        p.post(url, {"form": "greeting", "kind": "unavailable", "file": wav()}).status_code == 302
    )
    assert f'src="{url}greeting/unavailable/"' in p.get(url).content.decode()
    assert is_wav(p.get(f"{url}greeting/unavailable/"))
    assert p.get(f"{url}greeting/busy/").status_code == 404
    assert p.post(url, {"form": "clear_greeting", "kind": "unavailable"}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Mailbox.objects.get(extension__number="103").greeting_unavailable == ""
