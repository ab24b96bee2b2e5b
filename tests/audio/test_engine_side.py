"""What the engine is given (media fields, mailbox settings, mailbox indexes in Redis) and
what it asks for (voicemail left, saved, deleted, greetings, voicemail feature codes), applied
as the CDR drain applies them: in the tenant's schema, in a transaction, idempotently."""

import os
import shutil

import pytest
from django.db import transaction
from django_tenants.utils import schema_context

from audio import actions
from audio.index import box_key, publish_all_boxes, publish_box
from audio.models import Mailbox, VoicemailMessage
from audio.snapshot import mailboxes, media_fields
from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.engine import requests
from telephony.engine.store import client, redis_key
from telephony.sip.contract import VOICEMAIL_CHANGED, MailboxIndex, VoicemailSettings

from .media import tone, upload

pytestmark = pytest.mark.django_db


def engine_request(tenant, **fields):
    """Apply one request as ``telephony.engine.cdr`` does."""
    event = {"schema": tenant.schema_name, **{k: str(v) for k, v in fields.items()}}
    with schema_context(tenant.schema_name), transaction.atomic():
        requests.handle(event)


def recorded(media, tenant, box: str, name: str, tmp_path) -> str:
    """A message file as the media server leaves it (absolute path)."""
    folder = media / "tenants" / tenant.schema_name / "voicemail" / box
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{name}.wav"
    shutil.copy(tone(tmp_path / f"{name}.wav", seconds=2, rate=8000, channels=1), target)
    return str(target)


def index_of(tenant, box: str) -> MailboxIndex:
    return MailboxIndex.from_json(client().get(box_key(tenant.schema_name, box)))


def test_media_fields_and_mailboxes(world, in_tenant, media, tmp_path):
    a = world.tenant_a
    (media / "prompts" / "de").mkdir(parents=True)
    with in_tenant(a):
        fields = media_fields(a)
        assert fields == {"language": "en", "prompts": {}, "moh": [], "moh_classes": {}}
        a.language = "de-AT"
        assert media_fields(a)["language"] == "de"
        a.language = "fr"  # no French set here: English
        assert media_fields(a)["language"] == "en"
        prompt = actions.do_upload_prompt(actor=SYSTEM, name="ivr-main",
                                          upload=upload(tone(tmp_path / "p.wav")))  # fmt: skip
        quiet = actions.do_create_music_class(actor=SYSTEM, name="Quiet")
        main = actions.do_create_music_class(actor=SYSTEM, name="Main", is_default=True)
        t1 = actions.do_add_track(main, actor=SYSTEM, upload=upload(tone(tmp_path / "1.wav")))
        t2 = actions.do_add_track(main, actor=SYSTEM, upload=upload(tone(tmp_path / "2.wav")))
        actions.do_reorder_tracks(main, actor=SYSTEM, track_ids=[t2.pk, t1.pk])
        fields = media_fields(a)
        assert fields["prompts"] == {"ivr-main": str(media / prompt.file)}
        assert fields["moh"] == [str(media / t2.file), str(media / t1.file)]
        assert fields["moh_classes"] == {str(quiet.pk): [], str(main.pk): fields["moh"]}
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in fields["moh"])

        box = Mailbox.objects.select_related("extension").get(extension__number="102")
        actions.do_update_mailbox(box, actor=SYSTEM, fields={"busy": False, "max_seconds": 60},
                                  pin="4711")  # fmt: skip
        actions.do_set_greeting(box, "unavailable", actor=SYSTEM, upload=upload(tmp_path / "p.wav"))
        boxes = mailboxes()
    assert set(boxes) == {"101", "102"}
    settings = VoicemailSettings.read(boxes["102"])
    assert (settings.busy, settings.no_answer, settings.max_seconds) == (False, True, 60)
    assert settings.greeting_unavailable == str(
        media / f"tenants/{a.schema_name}/greetings/102-unavailable.wav"
    )
    assert settings.greeting_busy == ""
    assert settings.pin.startswith("pbkdf2$")
    assert VoicemailSettings.read(boxes["101"]) == VoicemailSettings()


def test_a_left_message_is_stored_once_indexed_and_announced(
    world,
    in_tenant,
    media,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    a = world.tenant_a
    path = recorded(media, a, "101", "m1", tmp_path)
    listener = client().pubsub()
    listener.subscribe(redis_key(VOICEMAIL_CHANGED))
    listener.get_message(timeout=1)  # the subscription's confirmation
    left = {"type": "voicemail.left", "box": "101", "message": "m1", "path": path,
            "seconds": "2.0", "caller": "+12125550100", "caller_name": "Ann\r\nBcc: x",
            "call_id": "c-1"}  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        engine_request(a, **left)
        engine_request(a, **left)  # delivered twice: one message
    with in_tenant(a):
        message = VoicemailMessage.objects.get()
        assert (message.folder, message.caller, message.seconds) == ("new", "+12125550100", 2.0)
        assert message.caller_name == "Ann Bcc: x"  # no line breaks from SIP reach a header
        assert message.file == f"tenants/{a.schema_name}/voicemail/101/m1.wav"
    index = index_of(a, "101")
    assert [m.id for m in index.new] == ["m1"]
    assert index.saved == ()
    assert index.new[0].path == path
    assert index.new[0].at == pytest.approx(message.created_at.timestamp())
    announced = listener.get_message(timeout=2)
    assert announced["data"] == f"{a.schema_name} 101".encode()
    listener.close()

    with django_capture_on_commit_callbacks(execute=True):
        engine_request(a, type="voicemail.updated", box="101", message="m1", action="save")
    index = index_of(a, "101")
    assert (index.new, [m.id for m in index.saved]) == ((), ["m1"])
    assert AuditEntry.objects.filter(action="voicemail.save", actor_label="phone 101").exists()
    with django_capture_on_commit_callbacks(execute=True):
        engine_request(a, type="voicemail.updated", box="101", message="m1", action="delete")
        engine_request(a, type="voicemail.updated", box="101", message="m1", action="delete")
    assert index_of(a, "101") == MailboxIndex()
    assert not os.path.exists(path)


def test_bad_requests_are_dropped(world, in_tenant, media, tmp_path, caplog):
    a, b = world.tenant_a, world.tenant_b
    theirs = recorded(media, b, "201", "b1", tmp_path)
    outside = str(tone(tmp_path / "outside.wav"))
    ours = recorded(media, a, "101", "a1", tmp_path)
    for path in (
        theirs,
        outside,
        "/etc/passwd",
        f"{media}/tenants/{a.schema_name}/../{b.schema_name}/voicemail/201/b1.wav",
        "relative.wav",
    ):
        engine_request(a, type="voicemail.left", box="101", message=f"x{len(path)}", path=path)
    engine_request(a, type="voicemail.left", box="999", message="nobox", path=ours)
    engine_request(a, type="voicemail.greeting", box="101", greeting="holiday", path=ours)
    engine_request(a, type="feature.set", feature="voicemail_sometimes", extension="101")
    engine_request(a, type="feature.set", feature="dnd_on", extension="101")  # not ours: ignored
    with in_tenant(a):
        assert not VoicemailMessage.objects.exists()
        assert Mailbox.objects.get(extension__number="101").greeting_unavailable == ""
    assert "refused: bad path" in caplog.text
    assert "unknown mailbox" in caplog.text


def test_greetings_and_feature_codes_from_the_phone(
    world,
    in_tenant,
    media,
    tmp_path,
    django_capture_on_commit_callbacks,
):
    a = world.tenant_a
    folder = media / "tenants" / a.schema_name / "greetings"
    folder.mkdir(parents=True)
    greeting = folder / "101-busy.wav"
    shutil.copy(tone(tmp_path / "g.wav", rate=8000, channels=1), greeting)
    engine_request(a, type="voicemail.greeting", box="101", greeting="busy", path=greeting)
    engine_request(a, type="feature.set", feature="voicemail_always_on", extension="101")
    engine_request(a, type="feature.set", feature="voicemail_busy_off", extension="101")
    with in_tenant(a):
        box = Mailbox.objects.get(extension__number="101")
        assert box.greeting_busy == f"tenants/{a.schema_name}/greetings/101-busy.wav"
        assert (box.always, box.busy, box.no_answer) == (True, False, True)
        assert VoicemailSettings.read(mailboxes()["101"]).always is True
    entries = AuditEntry.objects.filter(actor_label="phone 101", action="mailbox.update")
    assert entries.count() == 2


def test_publish_all_boxes_writes_every_index(world, in_tenant, media, tmp_path):
    a, b = world.tenant_a, world.tenant_b
    engine_request(a, type="voicemail.left", box="102", message="p1",
                   path=recorded(media, a, "102", "p1", tmp_path))  # fmt: skip
    for tenant, box in ((a, "101"), (a, "102"), (b, "201")):
        client().delete(box_key(tenant.schema_name, box))
    assert publish_all_boxes() >= 4
    assert [m.id for m in index_of(a, "102").new] == ["p1"]
    assert client().get(box_key(b.schema_name, "201")) is not None
    # A box that is gone loses its key.
    publish_box(a.schema_name, "999")
    assert client().get(box_key(a.schema_name, "999")) is None
