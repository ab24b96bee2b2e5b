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


# --------------------------------------------------------------------------- call recording


class StorageKind(models.TextChoices):
    """Where a tenant's recordings are kept (``audio.storage`` opens each)."""

    PLATFORM = "platform", "The provider's default storage"
    LOCAL = "local", "This server's disk"
    S3 = "s3", "Amazon S3 or an S3-compatible service"
    AZURE = "azure", "Azure Blob Storage"


class RecordingSettings(models.Model):
    """The tenant's call recording (one row, pk 1; ``RecordingSettings.load()``): the default
    policy (``tenants.choices.RecordingPolicy``, never "" here), the prompt both parties hear
    before a recording starts, how many days recordings are kept (0: for ever), and where
    they are stored: ``storage`` and, for S3 / Azure, the tenant's own bucket or container and
    credentials (the secret encrypted with ``pbx.crypto``; it never leaves through the API)."""

    policy = models.CharField(max_length=16, default="never")
    announce = models.BooleanField(default=False)
    announcement = models.ForeignKey(
        Prompt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    retention_days = models.PositiveIntegerField(default=0)
    storage = models.CharField(
        max_length=16, choices=StorageKind.choices, default=StorageKind.PLATFORM
    )
    # S3: bucket, region, endpoint_url (any S3-compatible service; "" = AWS), access_key and
    # the secret key. Azure: container, account_name and the account key (or a connection
    # string in the secret), endpoint_url for a non-public cloud or an emulator.
    bucket = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=64, blank=True)
    endpoint_url = models.CharField(max_length=255, blank=True)
    access_key = models.CharField(max_length=255, blank=True)
    account_name = models.CharField(max_length=255, blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    prefix = models.CharField(max_length=255, blank=True)  # key prefix inside the bucket
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "recording settings"

    def __str__(self) -> str:
        return f"Recording settings ({self.policy}, {self.storage})"

    @classmethod
    def load(cls) -> RecordingSettings:
        found, _ = cls.objects.get_or_create(pk=1)
        return found


class RecordingStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be converted"
    CONVERTED = "converted", "Converted, waiting to be uploaded"
    STORED = "stored", "Stored"
    FAILED = "failed", "Could not be converted"


class Recording(models.Model):
    """One call's recording. Made (``pending``) when the engine reports the raw file
    (``source_path``, ``source_format``); the conversion writes the stereo WAV and the MP3
    (``converted``, still local), the upload stores both as ``wav_key``/``mp3_key`` in
    ``storage`` (the kind and location it went to, kept so a later settings change does not
    lose it) and only then deletes the local files (``stored``). ``attempts`` and
    ``next_attempt_at`` drive the retries while the storage is down; ``error`` says why the
    last one failed."""

    recording_id = models.CharField(max_length=64, unique=True)
    call_id = models.CharField(max_length=128, db_index=True)
    cdr = models.ForeignKey(
        "telephony.Cdr", null=True, blank=True, on_delete=models.SET_NULL, related_name="recordings"
    )
    status = models.CharField(
        max_length=16, choices=RecordingStatus.choices, default=RecordingStatus.PENDING
    )
    caller = models.CharField(max_length=64, blank=True)
    callee = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    seconds = models.FloatField(default=0)
    source_path = models.CharField(max_length=512, blank=True)
    source_format = models.CharField(max_length=8, default="pcap")
    caller_address = models.CharField(max_length=64, blank=True)
    local_wav = models.CharField(max_length=512, blank=True)
    local_mp3 = models.CharField(max_length=512, blank=True)
    storage = models.CharField(max_length=300, blank=True)  # "<kind>:<bucket/container>"
    wav_key = models.CharField(max_length=512, blank=True)
    mp3_key = models.CharField(max_length=512, blank=True)
    size = models.PositiveBigIntegerField(default=0)  # bytes stored (WAV + MP3)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="rec_status_idx"),
            models.Index(fields=["-started_at", "-id"], name="rec_started_idx"),
        ]

    def __str__(self) -> str:
        return f"Recording {self.recording_id} ({self.status})"
