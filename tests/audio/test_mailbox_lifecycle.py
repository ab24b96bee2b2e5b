"""Every extension has a mailbox: made with it (and by the migration for those made before),
gone with it — its messages, their files and its greetings too, once the delete commits."""

import importlib
import shutil

import pytest
from django.apps import apps

from audio.index import box_key
from audio.models import Mailbox, VoicemailMessage
from pbx.audit import SYSTEM
from telephony.actions import do_create_extension, do_delete_extension
from telephony.engine.store import client
from telephony.models import Extension

from .media import tone
from .test_engine_side import engine_request

pytestmark = pytest.mark.django_db


def test_an_extension_is_created_with_its_mailbox(world, in_tenant):
    with in_tenant(world.tenant_a):
        box = Mailbox.objects.select_related("extension").get(extension__number="101")
        assert (box.enabled, box.always, box.busy, box.no_answer) == (True, False, True, True)
        assert (box.max_seconds, box.attach, box.pin, box.email_enabled) == (120, "wav", "", False)


def test_the_migration_gives_older_extensions_a_mailbox(world, in_tenant):
    migration = importlib.import_module("audio.migrations.0002_mailbox_for_every_extension")
    with in_tenant(world.tenant_a):
        Mailbox.objects.filter(extension__number="102").delete()
        migration.create_mailboxes(apps, None)
        migration.create_mailboxes(apps, None)  # again: nothing more
        assert Mailbox.objects.filter(extension__number="102").count() == 1
        assert Mailbox.objects.count() == Extension.objects.count()


def test_deleting_an_extension_removes_its_mailbox_messages_and_files(
    world, in_tenant, media, tmp_path, django_capture_on_commit_callbacks
):
    a = world.tenant_a
    with in_tenant(a):
        ext, _ = do_create_extension(number="150", display_name="Temp", actor=SYSTEM)
    folder = media / "tenants" / a.schema_name / "voicemail" / "150"
    folder.mkdir(parents=True)
    message = folder / "m.wav"
    shutil.copy(tone(tmp_path / "m.wav", rate=8000, channels=1), message)
    greeting = media / "tenants" / a.schema_name / "greetings" / "150-unavailable.wav"
    greeting.parent.mkdir(parents=True)
    shutil.copy(message, greeting)
    with django_capture_on_commit_callbacks(execute=True):
        engine_request(a, type="voicemail.left", box="150", message="gone-1", path=message)
        engine_request(a, type="voicemail.greeting", box="150", greeting="unavailable",
                       path=greeting)  # fmt: skip
    assert client().get(box_key(a.schema_name, "150")) is not None
    with in_tenant(a), django_capture_on_commit_callbacks(execute=True):
        do_delete_extension(Extension.objects.get(number="150"), actor=SYSTEM)
        assert not Mailbox.objects.filter(extension__number="150").exists()
        assert not VoicemailMessage.objects.filter(message_id="gone-1").exists()
    assert not message.exists()
    assert not greeting.exists()
    assert client().get(box_key(a.schema_name, "150")) is None
