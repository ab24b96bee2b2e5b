"""The mailbox index: each mailbox's messages as the engine's mailbox menu and MWI read them.

``contract.MailboxIndex`` JSON at ``VOICEMAIL_BOX`` (``sip:vm:<schema>:<box>``, the box being
the extension's number), and "<schema> <box>" on ``VOICEMAIL_CHANGED`` so every engine sends
the box's MWI again. Written after every change of a box's messages, once its transaction
has committed (:func:`publish_box_on_commit`), and for every box at engine start-up
(:func:`publish_all_boxes`).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django_tenants.utils import schema_context

from telephony.engine.store import client, redis_key
from telephony.sip.contract import (
    VOICEMAIL_BOX,
    VOICEMAIL_CHANGED,
    MailboxIndex,
    VoicemailMessage,
)

from .models import Folder, Mailbox, media_path
from .models import VoicemailMessage as MessageRow

log = logging.getLogger(__name__)

__all__ = ["box_key", "build_index", "publish_all_boxes", "publish_box", "publish_box_on_commit"]


def box_key(schema: str, box: str) -> str:
    return redis_key(VOICEMAIL_BOX, schema=schema, box=box)


def _entry(row: MessageRow) -> VoicemailMessage:
    return VoicemailMessage(
        id=row.message_id,
        path=media_path(row.file),
        caller=row.caller,
        caller_name=row.caller_name,
        at=row.created_at.timestamp(),
        seconds=row.seconds,
    )


def build_index(mailbox: Mailbox) -> MailboxIndex:
    """The box's new and saved messages, oldest first (run inside the tenant's schema)."""
    rows = list(MessageRow.objects.filter(mailbox=mailbox).order_by("created_at", "id"))
    return MailboxIndex(
        new=tuple(_entry(r) for r in rows if r.folder == Folder.NEW),
        saved=tuple(_entry(r) for r in rows if r.folder == Folder.SAVED),
    )


def publish_box(schema: str, box: str) -> None:
    """Write the index of mailbox ``box`` of the tenant ``schema`` and announce it; a box
    that no longer exists loses its key (and is announced: its lamp goes off). Failures are
    logged: the engine start-up republishes every box."""
    try:
        with schema_context(schema):
            mailbox = Mailbox.objects.filter(extension__number=box).first()
            index = build_index(mailbox) if mailbox is not None else None
        pipe = client().pipeline()
        if index is None:
            pipe.delete(box_key(schema, box))
        else:
            pipe.set(box_key(schema, box), index.to_json())
        pipe.publish(redis_key(VOICEMAIL_CHANGED), f"{schema} {box}")
        pipe.execute()
    except Exception:
        log.exception("could not publish mailbox %s of %s", box, schema)


def publish_box_on_commit(schema: str, box: str) -> None:
    """:func:`publish_box` once the transaction commits (once per box and transaction)."""
    tag = (schema, box)
    queued = transaction.get_connection().run_on_commit
    if any(
        getattr(entry[1], "publishes_box", None) == tag and not entry[1].ran for entry in queued
    ):
        return

    def publish() -> None:
        publish.ran = True  # type: ignore[attr-defined]
        publish_box(schema, box)

    publish.publishes_box = tag  # type: ignore[attr-defined]
    publish.ran = False  # type: ignore[attr-defined]
    transaction.on_commit(publish)


def publish_all_boxes() -> int:
    """Every live tenant's mailboxes (the engine start-up: a missed announcement is
    repaired), two queries and one Redis round trip per tenant; returns how many."""
    from tenants.access import live_tenants

    count = 0
    for schema in live_tenants().values_list("schema_name", flat=True):
        try:
            with schema_context(schema):
                boxes = dict(Mailbox.objects.values_list("pk", "extension__number"))
                rows: dict[int, list[MessageRow]] = {pk: [] for pk in boxes}
                for row in MessageRow.objects.order_by("created_at", "id"):
                    rows.setdefault(row.mailbox_id, []).append(row)
            pipe = client().pipeline()
            for pk, box in boxes.items():
                index = MailboxIndex(
                    new=tuple(_entry(r) for r in rows[pk] if r.folder == Folder.NEW),
                    saved=tuple(_entry(r) for r in rows[pk] if r.folder == Folder.SAVED),
                )
                pipe.set(box_key(schema, box), index.to_json())
                pipe.publish(redis_key(VOICEMAIL_CHANGED), f"{schema} {box}")
            pipe.execute()
            count += len(boxes)
        except Exception:
            log.exception("could not publish the mailboxes of %s", schema)
    return count
