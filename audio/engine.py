"""The engine's voicemail requests, applied inside the tenant's schema and a transaction by the
CDR drain (``telephony.engine.requests``). Each is idempotent (an entry may come twice) and
drops what it cannot apply with a log line (a bad request is never retried forever):

- ``voicemail.left``: a message recorded by the media server (its file must lie in the
  tenant's own directory under ``MEDIA_ROOT``); mailed on commit when the box says so;
- ``voicemail.updated``: the owner saved or deleted a message on the phone;
- ``voicemail.greeting``: the owner recorded a greeting on the phone;
- ``feature.set`` for the ``voicemail_*`` features: a feature code switched when calls go to
  the box.
"""

from __future__ import annotations

import logging
import os
from typing import Any, cast

from django.conf import settings
from django.db import connection, transaction

from telephony.engine.requests import register
from telephony.sip.contract import EventType, Feature, MailboxAction

from . import actions
from .convert import wav_seconds
from .index import publish_box_on_commit
from .models import Mailbox, VoicemailMessage

log = logging.getLogger(__name__)

#: feature -> (mailbox field, value)
FEATURE_FLAGS = {
    Feature.VOICEMAIL_ALWAYS_ON: ("always", True),
    Feature.VOICEMAIL_ALWAYS_OFF: ("always", False),
    Feature.VOICEMAIL_BUSY_ON: ("busy", True),
    Feature.VOICEMAIL_BUSY_OFF: ("busy", False),
    Feature.VOICEMAIL_NO_ANSWER_ON: ("no_answer", True),
    Feature.VOICEMAIL_NO_ANSWER_OFF: ("no_answer", False),
}


def _tenant(event: dict[str, str]):
    """The request's tenant, made the connection's (the drain opened its schema)."""
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(schema_name=event.get("schema", "")).first()
    if tenant is not None:
        cast(Any, connection).set_tenant(tenant)  # django-tenants' method on the wrapper
    return tenant


def _text(value, limit: int) -> str:
    """A single line of printable text (what SIP gave us may hold anything)."""
    spaced = "".join(c if c.isprintable() else " " for c in str(value or ""))
    return " ".join(spaced.split())[:limit]


def tenant_media(schema: str, path: str) -> str | None:
    """``path`` relative to ``MEDIA_ROOT`` when it is a file of the tenant's own directory
    (``tenants/<schema>/``), else None."""
    if not path or not os.path.isabs(path) or "\x00" in path:
        return None
    root = os.path.realpath(os.path.join(str(settings.MEDIA_ROOT), "tenants", schema))
    real = os.path.realpath(path)
    if not real.startswith(root + os.sep) or not real.endswith(".wav") or not os.path.isfile(real):
        return None
    return os.path.relpath(real, os.path.realpath(str(settings.MEDIA_ROOT)))


def _mailbox(box: str) -> Mailbox | None:
    return (
        Mailbox.objects.select_for_update(of=("self",))
        .select_related("extension")
        .filter(extension__number=box)
        .first()
    )


@register(EventType.VOICEMAIL_LEFT)
def voicemail_left(event: dict[str, str]) -> None:
    tenant = _tenant(event)
    schema, box = event.get("schema", ""), event.get("box", "")
    message_id = _text(event.get("message"), 64)
    if tenant is None or not message_id:
        log.warning("voicemail.left without a tenant or message id dropped: %r", event)
        return
    if VoicemailMessage.objects.filter(message_id=message_id).exists():
        return  # delivered twice
    relative = tenant_media(schema, event.get("path", ""))
    if relative is None:
        log.warning(
            "voicemail.left %s of %s refused: bad path %r", message_id, schema, event.get("path")
        )
        return
    mailbox = _mailbox(box)
    if mailbox is None:
        log.warning(
            "voicemail.left %s for unknown mailbox %r of %s dropped", message_id, box, schema
        )
        return
    try:
        seconds = float(event.get("seconds") or 0)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < 86400:
        seconds = wav_seconds(os.path.join(str(settings.MEDIA_ROOT), relative))
    message = VoicemailMessage.objects.create(
        mailbox=mailbox,
        message_id=message_id,
        caller=_text(event.get("caller"), 64),
        caller_name=_text(event.get("caller_name"), 120),
        seconds=round(seconds, 2),
        file=relative,
        call_id=_text(event.get("call_id"), 128),
    )
    publish_box_on_commit(schema, box)
    if mailbox.email_enabled and actions.mail_address(mailbox):
        from .tasks import send_voicemail_email

        pk = message.pk
        transaction.on_commit(lambda: send_voicemail_email.delay(schema, pk))


@register(EventType.VOICEMAIL_UPDATED)
def voicemail_updated(event: dict[str, str]) -> None:
    tenant = _tenant(event)
    box = event.get("box", "")
    message = (
        VoicemailMessage.objects.filter(
            message_id=event.get("message", ""), mailbox__extension__number=box
        ).first()
        if tenant is not None
        else None
    )
    if message is None:
        log.info("voicemail.updated for an unknown message %r of %r dropped", event, box)
        return
    actor = actions.PhoneActor(extension=box)
    action = event.get("action", "")
    if action == MailboxAction.SAVE:
        actions.do_save_message(message, actor=actor)
    elif action == MailboxAction.DELETE:
        actions.do_delete_message(message, actor=actor)
    else:
        log.warning("voicemail.updated with unknown action %r dropped", action)


@register(EventType.VOICEMAIL_GREETING)
def voicemail_greeting(event: dict[str, str]) -> None:
    tenant = _tenant(event)
    schema, box, kind = event.get("schema", ""), event.get("box", ""), event.get("greeting", "")
    if tenant is None or kind not in actions.GREETING_KINDS:
        log.warning("voicemail.greeting %r dropped: unknown tenant or greeting", event)
        return
    relative = tenant_media(schema, event.get("path", ""))
    mailbox = _mailbox(box)
    if relative is None or mailbox is None:
        log.warning("voicemail.greeting %r dropped: bad path or unknown mailbox", event)
        return
    field = f"greeting_{kind}"
    if getattr(mailbox, field) != relative:  # a repeated request changes nothing
        actions.set_greeting_file(
            mailbox,
            kind,
            relative,
            actor=actions.PhoneActor(extension=box),
            changes={field: "recorded on the phone"},
        )


@register(EventType.FEATURE_SET)
def feature_set(event: dict[str, str]) -> None:
    feature = event.get("feature", "")
    if not feature.startswith("voicemail_"):
        return  # another app's feature
    flag = FEATURE_FLAGS.get(feature)  # type: ignore[call-overload]
    tenant = _tenant(event)
    number = event.get("extension", "")
    mailbox = _mailbox(number) if tenant is not None and flag is not None else None
    if flag is None or mailbox is None:
        log.warning("feature.set %r dropped: unknown feature or extension", event)
        return
    field, value = flag
    if getattr(mailbox, field) != value:  # a repeated request changes (and audits) nothing
        actions.do_update_mailbox(
            mailbox, actor=actions.PhoneActor(extension=number), fields={field: value}
        )
