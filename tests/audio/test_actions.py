"""The audio app's writes through its actions: converted uploads, audit rows, the engine's
snapshot republished, old files removed once the change commits; refusals as field errors
with nothing changed."""

import json
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audio import actions
from audio.models import Mailbox, MusicClass, MusicTrack, Prompt
from pbx.audit import SYSTEM
from pbx.errors import Conflict, ValidationFailed
from pbx.models import AuditEntry
from telephony.engine.snapshots import published_snapshot
from telephony.engine.store import client
from telephony.sip.contract import pin_matches

from .media import info, tone, upload

pytestmark = pytest.mark.django_db

BAD = SimpleUploadedFile("notes.wav", b"hello, this is text\n" * 50)


def audit_actions(tenant) -> list[str]:
    return list(
        AuditEntry.objects.filter(tenant=tenant).order_by("id").values_list("action", flat=True)
    )


def test_prompts_upload_replace_delete(
    world,
    in_tenant,
    media,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    a = world.tenant_a
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        prompt = actions.do_upload_prompt(
            actor=SYSTEM,
            name="welcome",
            description="Our own",
            upload=upload(tone(tmp_path / "w.wav")),
        )
    assert prompt.file.startswith(f"tenants/{a.schema_name}/prompts/")
    assert info(prompt.path)[:3] == (8000, 1, 2)
    assert prompt.seconds == pytest.approx(1, abs=0.01)
    assert prompt.original_name == "w.wav"
    # Published: the engine gets the snapshot again (its media fields are the lead's wiring).
    assert published_snapshot(client(), a.sip_domain) is not None

    with in_tenant(a), pytest.raises(Conflict):
        actions.do_upload_prompt(actor=SYSTEM, name="welcome", upload=upload(tmp_path / "w.wav"))
    with in_tenant(a), pytest.raises(ValidationFailed) as exc:
        actions.do_upload_prompt(actor=SYSTEM, name="Bad Name!", upload=upload(tmp_path / "w.wav"))
    assert "name" in exc.value.fields
    with in_tenant(a), pytest.raises(ValidationFailed) as exc:
        actions.do_upload_prompt(actor=SYSTEM, name="menu-greeting", upload=BAD)
    assert exc.value.fields == {"file": ["not a WAV or MP3 file we can read"]}
    with in_tenant(a):
        assert list(Prompt.objects.values_list("name", flat=True)) == ["welcome"]
    assert len(list((media / "tenants" / a.schema_name / "prompts").iterdir())) == 1

    old = prompt.path
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        prompt = actions.do_replace_prompt(
            prompt, actor=SYSTEM, upload=upload(tone(tmp_path / "x.mp3", seconds=2, kind="mp3"))
        )
    assert prompt.path != old
    assert not os.path.exists(old)
    assert prompt.seconds == pytest.approx(2, abs=0.1)
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        actions.do_delete_prompt(prompt, actor=SYSTEM)
    assert not list((media / "tenants" / a.schema_name / "prompts").iterdir())
    assert audit_actions(a)[-3:] == ["prompt.create", "prompt.update", "prompt.delete"]


def test_music_classes_and_tracks(
    world,
    in_tenant,
    media,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    a = world.tenant_a
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        jazz = actions.do_create_music_class(actor=SYSTEM, name="Jazz", is_default=True)
        calm = actions.do_create_music_class(actor=SYSTEM, name="Calm")
        t1 = actions.do_add_track(jazz, actor=SYSTEM, upload=upload(tone(tmp_path / "1.wav")))
        t2 = actions.do_add_track(jazz, actor=SYSTEM, upload=upload(tone(tmp_path / "2.wav")))
        actions.do_reorder_tracks(jazz, actor=SYSTEM, track_ids=[t2.pk, t1.pk])
        actions.do_set_default_music_class(calm, actor=SYSTEM)
    with in_tenant(a):
        assert [t.pk for t in jazz.tracks.all()] == [t2.pk, t1.pk]
        assert list(MusicClass.objects.filter(is_default=True)) == [calm]
        with pytest.raises(ValidationFailed):
            actions.do_reorder_tracks(jazz, actor=SYSTEM, track_ids=[t1.pk])
        with pytest.raises(Conflict):
            actions.do_create_music_class(actor=SYSTEM, name="Calm")
        with pytest.raises(ValidationFailed) as exc:
            actions.do_add_track(calm, actor=SYSTEM, upload=BAD)
        assert "file" in exc.value.fields
    files = [t1.path, t2.path]
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        actions.do_delete_music_class(jazz, actor=SYSTEM)
        assert not MusicTrack.objects.exists()
    assert not any(os.path.exists(f) for f in files)
    assert "music_class.reorder" in audit_actions(a)


def test_mailbox_settings_and_pin(
    world,
    in_tenant,
    media,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    a = world.tenant_a
    with in_tenant(a):
        box = Mailbox.objects.select_related("extension").get(extension__number="101")
        refused = {"12": "4 to 10 digits", "1111": "not the same digit repeated",
                   "12a4": "4 to 10 digits", "12345678901": "4 to 10 digits"}  # fmt: skip
        for pin, problem in refused.items():
            with pytest.raises(ValidationFailed) as exc:
                actions.do_update_mailbox(box, actor=SYSTEM, fields={}, pin=pin)
            assert exc.value.fields == {"pin": [problem]}
        bad = {"max_seconds": 5, "attach": "ogg", "email": "x\r\nBcc: a@b.c", "busy": "yes"}
        with pytest.raises(ValidationFailed) as exc:
            actions.do_update_mailbox(box, actor=SYSTEM, fields=bad)
        assert set(exc.value.fields) == {"max_seconds", "attach", "email", "busy"}
        # Mail needs an address: extension 101 has no user and no e-mail.
        with pytest.raises(ValidationFailed) as exc:
            actions.do_update_mailbox(box, actor=SYSTEM, fields={"email_enabled": True})
        assert "email" in exc.value.fields
        box.refresh_from_db()
        assert (box.max_seconds, box.pin, box.email_enabled) == (120, "", False)

        with django_capture_on_commit_callbacks(execute=True):
            box = actions.do_update_mailbox(
                box, actor=SYSTEM, pin="2580",
                fields={"max_seconds": 300, "always": True, "email_enabled": True,
                        "email": "ann@acme.test", "attach": "mp3"},
            )  # fmt: skip
        assert pin_matches(box.pin, "2580")
        assert "2580" not in box.pin
        entry = AuditEntry.objects.filter(action="mailbox.update").latest("id")
        assert entry.changes["pin"] == "set"
        assert "2580" not in json.dumps(entry.changes)
        box.extension.number = "101"
        with pytest.raises(ValidationFailed):
            actions.do_update_mailbox(box, actor=SYSTEM, fields={}, pin="101")  # too short anyway
        actions.do_update_mailbox(box, actor=SYSTEM, fields={}, pin="")
        box.refresh_from_db()
        assert box.pin == ""

        with django_capture_on_commit_callbacks(execute=True):
            box = actions.do_set_greeting(box, "busy", actor=SYSTEM,
                                          upload=upload(tone(tmp_path / "g.wav")))  # fmt: skip
        assert box.greeting_busy == f"tenants/{a.schema_name}/greetings/101-busy.wav"
        assert info(media / box.greeting_busy)[:3] == (8000, 1, 2)
        with pytest.raises(ValidationFailed):
            actions.do_set_greeting(box, "holiday", actor=SYSTEM, upload=upload(tmp_path / "g.wav"))
        with django_capture_on_commit_callbacks(execute=True):
            box = actions.do_clear_greeting(box, "busy", actor=SYSTEM)
        assert box.greeting_busy == ""
        assert not (media / "tenants" / a.schema_name / "greetings" / "101-busy.wav").exists()


def test_a_pin_may_not_be_the_extension_number(world, in_tenant):
    assert actions.pin_problem("1001", "1001") == "not the extension's number"
    assert actions.pin_problem("100100", "1001") is None
