"""Who may see which mailboxes and messages (run inside the tenant's schema): a tenant admin
(``audio.view`` / ``audio.manage``) every one; an end user only its own extension's."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Mailbox, VoicemailMessage

__all__ = ["mailboxes_for", "messages_for", "own_extension_number"]


def own_extension_number(user, tenant) -> str | None:
    """The number of the extension ``user`` signs in as in ``tenant`` (None: it has none)."""
    from telephony.models import own_extension

    ext = own_extension(user, tenant)
    return ext.number if ext is not None else None


def mailboxes_for(user, tenant, *, every: bool) -> QuerySet[Mailbox]:
    """``every``: the caller holds the audio permission; else only its own box."""
    boxes = Mailbox.objects.select_related("extension").order_by("extension__number")
    if every:
        return boxes
    number = own_extension_number(user, tenant)
    return boxes.filter(extension__number=number) if number else boxes.none()


def messages_for(user, tenant, *, every: bool) -> QuerySet[VoicemailMessage]:
    messages = VoicemailMessage.objects.select_related("mailbox__extension").order_by(
        "-created_at", "-id"
    )
    if every:
        return messages
    number = own_extension_number(user, tenant)
    return messages.filter(mailbox__extension__number=number) if number else messages.none()
