"""A new voicemail reaches the box's owner by e-mail through a real SMTP server (aiosmtpd,
started here) with the audio attached as WAV or MP3, from the tenant's brand's sender;
sent once; deleted after the mail when the box says so; retried when SMTP fails."""

import email
import email.policy
import os
import shutil
import socket
import subprocess

import pytest
from aiosmtpd.controller import Controller

from audio import actions
from audio.models import Mailbox, VoicemailMessage
from audio.tasks import caller_label, send_voicemail_email
from branding.mail import sender_for
from pbx.audit import SYSTEM
from pbx.celery import app

from .media import dominant_hz, tone
from .test_engine_side import engine_request

pytestmark = pytest.mark.django_db


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append((envelope.rcpt_tos, envelope.content))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(settings):
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    yield inbox
    controller.stop()


@pytest.fixture
def eager(monkeypatch):
    """Celery runs tasks in-process (the worker's code, without a worker)."""
    monkeypatch.setattr(app.conf, "task_always_eager", True)


def leave(world, media, tmp_path, name: str, freq: int) -> str:
    a = world.tenant_a
    folder = media / "tenants" / a.schema_name / "voicemail" / "101"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    shutil.copy(tone(tmp_path / f"{name}.wav", seconds=1.5, rate=8000, channels=1, freq=freq), path)
    left = {"box": "101", "message": name, "path": path, "seconds": "1.5", "caller": "+12125550100",
            "caller_name": "Ann \u0007Smith\r\nBcc: evil@x.test"}  # fmt: skip
    engine_request(a, type="voicemail.left", **left)
    return str(path)


def test_the_message_is_mailed_with_the_wav_attached(
    world, in_tenant, media, tmp_path, smtp, eager, django_capture_on_commit_callbacks
):
    a = world.tenant_a
    with in_tenant(a):
        box = Mailbox.objects.get(extension__number="101")
        fields = {"email_enabled": True, "email": "ann@acme.test"}
        actions.do_update_mailbox(box, actor=SYSTEM, fields=fields)
    with django_capture_on_commit_callbacks(execute=True):
        path = leave(world, media, tmp_path, "mail-1", 700)
    assert len(smtp.messages) == 1
    rcpt, raw = smtp.messages[0]
    assert rcpt == ["ann@acme.test"]
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert mail["Subject"] == "New voicemail from Ann Smith Bcc: evil@x.test (+12125550100) (2 s)"
    assert "Bcc" not in mail
    assert mail["From"] == sender_for(tenant=a)
    assert "+12125550100" in mail.get_body(("plain",)).get_content()
    (part,) = list(mail.iter_attachments())
    assert part.get_content_type() == "audio/wav"
    with open(path, "rb") as f:
        assert part.get_content() == f.read()  # the very recording
    with in_tenant(a):
        message = VoicemailMessage.objects.get(message_id="mail-1")
        assert message.emailed_at is not None
        # Idempotent: a second run (a redelivered task) sends nothing.
        assert send_voicemail_email.apply(args=(a.schema_name, message.pk)).get() is False
    assert len(smtp.messages) == 1


def test_mp3_and_delete_after_mail(
    world, in_tenant, media, tmp_path, smtp, eager, django_capture_on_commit_callbacks
):
    a = world.tenant_a
    with in_tenant(a):
        box = Mailbox.objects.get(extension__number="101")
        fields = {"email_enabled": True, "email": "ann@acme.test", "attach": "mp3",
                  "delete_after_email": True}  # fmt: skip
        actions.do_update_mailbox(box, actor=SYSTEM, fields=fields)
    with django_capture_on_commit_callbacks(execute=True):
        path = leave(world, media, tmp_path, "mail-2", 500)
    mail = email.message_from_bytes(smtp.messages[0][1], policy=email.policy.default)
    (part,) = list(mail.iter_attachments())
    assert part.get_content_type() == "audio/mpeg"
    assert part.get_filename().endswith(".mp3")
    mp3 = tmp_path / "got.mp3"
    mp3.write_bytes(part.get_content())
    subprocess.run(["sox", str(mp3), "-r", "8000", str(tmp_path / "got.wav")], check=True)  # noqa: S603, S607
    assert dominant_hz(tmp_path / "got.wav") == pytest.approx(500, abs=10)
    with in_tenant(a):
        assert not VoicemailMessage.objects.filter(message_id="mail-2").exists()
    assert not os.path.exists(path)


def test_an_smtp_failure_is_retried_and_nothing_is_marked_sent(
    world, in_tenant, media, tmp_path, settings, eager, caplog
):
    a = world.tenant_a
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    with in_tenant(a):
        box = Mailbox.objects.get(extension__number="101")
        fields = {"email_enabled": True, "email": "ann@acme.test"}
        actions.do_update_mailbox(box, actor=SYSTEM, fields=fields)
    leave(world, media, tmp_path, "mail-3", 300)
    with in_tenant(a):
        message = VoicemailMessage.objects.get(message_id="mail-3")
        result = send_voicemail_email.apply(args=(a.schema_name, message.pk))
        assert result.failed()
        message.refresh_from_db()
        assert message.emailed_at is None
    assert "failed (try 1)" in caplog.text
    assert "failed (try 9)" in caplog.text  # every retry tried, then given up


def test_caller_labels_are_single_lines():
    assert caller_label("", "") == "an unknown caller"
    assert caller_label("+1212", "") == "+1212"
    assert caller_label("100", "Front\r\ndesk") == "Front desk (100)"
