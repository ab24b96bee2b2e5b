"""What a tenant's calls play and record (tenant schema): its own prompts, its music on hold,
a mailbox per extension and the voicemail messages left in it.

Audio files live under ``MEDIA_ROOT`` in one canonical format (WAV, 8000 Hz, mono, 16-bit);
the rows keep their paths *relative* to it (``tenants/<schema>/...``), and the engine is given
absolute ones (``audio.snapshot``, ``audio.index``). Writes go through ``audio.actions``.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.db import models
from django.utils import timezone


def media_path(relative: str) -> str:
    """The absolute path of a file stored as ``relative`` ("" stays "")."""
    return os.path.join(str(settings.MEDIA_ROOT), relative) if relative else ""


class Prompt(models.Model):
    """A recording of the tenant's. Named as one of the default prompts
    (``telephony.media.prompts.PROMPTS``) it replaces that prompt for the tenant's calls;
    any other name is a custom prompt (an IVR greeting, an announcement)."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    file = models.CharField(max_length=255)
    seconds = models.FloatField(default=0)
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def path(self) -> str:
        return media_path(self.file)


class MusicClass(models.Model):
    """A playlist of music on hold. The default class is what a held caller hears; with no
    default class the shipped ``moh/default.wav`` plays. Queues pick a class by id."""

    name = models.CharField(max_length=120, unique=True)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "music classes"
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_music_class",
            )
        ]

    def __str__(self) -> str:
        return self.name


class MusicTrack(models.Model):
    """One file of a music class, played in ``position`` order."""

    music_class = models.ForeignKey(MusicClass, on_delete=models.CASCADE, related_name="tracks")
    position = models.PositiveIntegerField(default=0)
    file = models.CharField(max_length=255)
    seconds = models.FloatField(default=0)
    original_name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["music_class", "position", "id"]

    def __str__(self) -> str:
        return self.original_name or os.path.basename(self.file)

    @property
    def path(self) -> str:
        return media_path(self.file)


class Attach(models.TextChoices):
    WAV = "wav", "WAV"
    MP3 = "mp3", "MP3"
    NONE = "none", "No attachment"


class Mailbox(models.Model):
    """An extension's voicemail box (every extension has one, made with it). The field names
    are those of ``contract.VoicemailSettings`` where the engine reads them; ``pin`` holds
    ``contract.pin_hash`` ("" = none); greetings are relative paths ("" = the default
    prompt). ``email`` "" means the extension's user's address."""

    extension = models.OneToOneField(
        "telephony.Extension", on_delete=models.CASCADE, related_name="mailbox"
    )
    enabled = models.BooleanField(default=True)
    pin = models.CharField(max_length=128, blank=True)
    greeting_unavailable = models.CharField(max_length=255, blank=True)
    greeting_busy = models.CharField(max_length=255, blank=True)
    max_seconds = models.PositiveSmallIntegerField(default=120)
    always = models.BooleanField(default=False)
    busy = models.BooleanField(default=True)
    no_answer = models.BooleanField(default=True)
    email_enabled = models.BooleanField(default=False)
    email = models.EmailField(blank=True)
    attach = models.CharField(max_length=4, choices=Attach.choices, default=Attach.WAV)
    delete_after_email = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["extension__number"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return f"Mailbox {self.extension.number}"


class Folder(models.TextChoices):
    NEW = "new", "New"
    SAVED = "saved", "Saved"


class VoicemailMessage(models.Model):
    """A message left in a mailbox. ``message_id`` is the engine's id for it (a request that
    comes twice makes one row); ``file`` is relative to ``MEDIA_ROOT``."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    message_id = models.CharField(max_length=64, unique=True)
    folder = models.CharField(max_length=8, choices=Folder.choices, default=Folder.NEW)
    caller = models.CharField(max_length=64, blank=True)
    caller_name = models.CharField(max_length=120, blank=True)
    seconds = models.FloatField(default=0)
    file = models.CharField(max_length=255)
    call_id = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    heard_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["mailbox", "folder", "created_at"], name="vm_box_idx")]

    def __str__(self) -> str:
        return f"Message {self.message_id}"

    @property
    def path(self) -> str:
        return media_path(self.file)
