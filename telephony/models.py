"""Tenant-schema telephony configuration."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from pbx.crypto import decrypt, encrypt


class Transport(models.TextChoices):
    UDP = "udp", "UDP"
    TCP = "tcp", "TCP"
    TLS = "tls", "TLS"
    WS = "ws", "WebSocket"
    WSS = "wss", "Secure WebSocket"


def all_transports() -> list[str]:
    return list(Transport.values)


class Extension(models.Model):
    """A numbered endpoint of the tenant: phones register to it and calls ring it.

    The SIP password is stored encrypted (phones are provisioned with it) and its digest HA1s
    (MD5 and SHA-256, RFC 8760) are kept in step so the SIP engine never needs the clear text.
    """

    number = models.CharField(max_length=16, unique=True)
    display_name = models.CharField(max_length=120)
    sip_password_encrypted = models.TextField(editable=False)
    ha1_md5 = models.CharField(max_length=32, editable=False)
    ha1_sha256 = models.CharField(max_length=64, editable=False)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="extension",
        db_constraint=False,
    )
    email = models.EmailField(blank=True)
    mobile = models.CharField(max_length=32, blank=True)
    enabled = models.BooleanField(default=True)
    voicemail_pin = models.CharField(max_length=12, blank=True)
    dnd = models.BooleanField(default=False)
    caller_id_name = models.CharField(max_length=120, blank=True)
    caller_id_number = models.CharField(max_length=32, blank=True)
    outbound_caller_ids = models.JSONField(default=list, blank=True)
    max_registrations = models.PositiveSmallIntegerField(default=3)
    allowed_transports = models.JSONField(default=all_transports)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"

    @property
    def sip_password(self) -> str:
        return decrypt(self.sip_password_encrypted)

    def set_sip_password(self, password: str, realm: str) -> None:
        from telephony.digest import ha1

        self.sip_password_encrypted = encrypt(password)
        self.ha1_md5 = ha1("MD5", self.number, realm, password)
        self.ha1_sha256 = ha1("SHA-256", self.number, realm, password)


class ImportJob(models.Model):
    """One bulk import (a CSV file of one ``kind``): its dry-run report, then its run's progress.

    The uploaded text is kept in ``payload`` only between the dry run and the end of the real
    run (it may hold passwords); the per-row report stays for the admin to read.
    """

    class Status(models.TextChoices):
        INVALID = "invalid", "Has errors"
        VALIDATED = "validated", "Ready to import"
        PENDING = "pending", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"

    # A UUID, not a counter: job URLs are not guessable and cache keys for progress stay unique
    # across databases that share one Redis (test workers, staging).
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=32)
    filename = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.INVALID)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    payload = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} import {self.filename or self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def errors(self) -> list[dict]:
        return self.report.get("errors", [])
