"""Background jobs of the audio app: a new voicemail message by e-mail; call recordings
converted and uploaded (``audio.pipeline``), their retries swept, expired ones deleted.

The message goes from the tenant's white-label sender (``branding.mail.sender_for``) to the
box's address (its own, else its extension's user's), with the audio attached as WAV or MP3
as the box says. Idempotent (``emailed_at``, under a row lock); an SMTP failure is retried
with a growing delay; ``delete_after_email`` deletes the message once it was sent.
"""

from __future__ import annotations

import logging
import os
import smtplib
import tempfile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery import shared_task

from pbx.celery import every

log = logging.getLogger(__name__)

MAX_RETRIES = 8


def _header_text(value: str, limit: int = 80) -> str:
    """Text fit for a mail header: no CR/LF or other control characters."""
    return " ".join("".join(c if c.isprintable() else " " for c in value).split())[:limit]


def caller_label(caller: str, caller_name: str) -> str:
    name, number = _header_text(caller_name), _header_text(caller, 40)
    if name and number and name != number:
        return f"{name} ({number})"
    return name or number or "an unknown caller"


def compose(message, tenant, address: str):
    """The e-mail of ``message`` (a ``VoicemailMessage`` with its mailbox and extension)."""
    from django.core.mail import EmailMessage

    from branding.mail import sender_for
    from telephony.media.audio import read_wav

    from .models import Attach
    from .recordings import pcm_to_mp3

    mailbox = message.mailbox
    who = caller_label(message.caller, message.caller_name)
    seconds = round(message.seconds)
    try:
        zone = ZoneInfo(tenant.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    at = message.created_at.astimezone(zone)
    body = (
        f"You have a new voicemail message in mailbox {mailbox.extension.number}.\n\n"
        f"From:     {who}\n"
        f"Received: {at:%Y-%m-%d %H:%M} ({zone.key})\n"
        f"Length:   {seconds} s\n"
    )
    mail = EmailMessage(
        subject=f"New voicemail from {who} ({seconds} s)",
        body=body,
        from_email=sender_for(tenant=tenant),
        to=[address],
    )
    stamp = f"{at:%Y%m%d-%H%M%S}"
    if mailbox.attach == Attach.WAV:
        with open(message.path, "rb") as f:
            mail.attach(f"voicemail-{stamp}.wav", f.read(), "audio/wav")
    elif mailbox.attach == Attach.MP3:
        with tempfile.TemporaryDirectory(prefix="pbx-mail-") as tmp:
            mp3 = os.path.join(tmp, "message.mp3")
            pcm_to_mp3(read_wav(message.path), mp3)
            with open(mp3, "rb") as f:
                mail.attach(f"voicemail-{stamp}.mp3", f.read(), "audio/mpeg")
    return mail


@shared_task(
    name="audio.send_voicemail_email",
    bind=True,
    max_retries=MAX_RETRIES,
    acks_late=True,
    ignore_result=True,
)
def send_voicemail_email(self, schema: str, message_pk: int) -> bool:
    """Mail one message of tenant ``schema``; True when it was sent by this run."""
    from django.db import transaction
    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from pbx.audit import SYSTEM
    from tenants.models import Tenant

    from . import actions
    from .models import VoicemailMessage

    tenant = Tenant.objects.filter(schema_name=schema).first()
    if tenant is None:
        return False
    with tenant_context(tenant):
        with transaction.atomic():
            message = (
                VoicemailMessage.objects.select_for_update(of=("self",))
                .select_related("mailbox__extension")
                .filter(pk=message_pk)
                .first()
            )
            if message is None or message.emailed_at is not None:
                return False
            mailbox = message.mailbox
            address = actions.mail_address(mailbox)
            if not mailbox.email_enabled or not address:
                return False
            if not os.path.isfile(message.path):
                log.warning("voicemail %s of %s not mailed: its file is gone", message_pk, schema)
                return False
            try:
                compose(message, tenant, address).send()
            except (smtplib.SMTPException, OSError) as exc:
                attempt = self.request.retries
                log.warning(
                    "voicemail mail %s of %s to %s failed (try %d): %s",
                    message.message_id,
                    schema,
                    address,
                    attempt + 1,
                    exc,
                )
                raise self.retry(exc=exc, countdown=min(30 * 2**attempt, 3600)) from None
            message.emailed_at = timezone.now()
            message.save(update_fields=["emailed_at"])
            log.info("voicemail %s of %s mailed to %s", message.message_id, schema, address)
        if mailbox.delete_after_email:
            actions.do_delete_message(message, actor=SYSTEM)
    return True


# ------------------------------------------------------------------------- call recordings

RECORDING_SWEEP_SECONDS = 60.0


@shared_task(name="audio.process_recording", acks_late=True, ignore_result=True)
def process_recording(schema: str, pk: int) -> str | None:
    """Convert and upload one recording of tenant ``schema`` (``audio.pipeline.process``). A
    failed upload is retried by the sweeper once its back-off is over: one queue of retries,
    never a task per failure."""
    from django_tenants.utils import schema_context

    from .pipeline import process

    if _live_tenant(schema) is None:
        return None
    with schema_context(schema):
        return process(pk)


@shared_task(name="audio.sweep_recordings", ignore_result=True)
def sweep_recordings() -> int:
    """Beat: queue every recording whose retry is due or whose task was lost, and attach the
    CDRs that were written after their recording was stored."""
    from .pipeline import sweep

    due = sweep().due
    for schema, pk in due:
        process_recording.delay(schema, pk)
    return len(due)


@shared_task(name="audio.purge_recordings", ignore_result=True)
def purge_recordings() -> int:
    """Beat, daily: delete recordings past each tenant's retention."""
    from .pipeline import purge_expired

    return sum(purge_expired().values())


def _live_tenant(schema: str):
    from tenants.access import live_tenants

    return live_tenants().filter(schema_name=schema).first()


every(RECORDING_SWEEP_SECONDS, "audio.sweep_recordings")
every(86400.0, "audio.purge_recordings", expires=3600.0)
