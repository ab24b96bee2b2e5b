"""Phones (devices), their lines, per-model settings and custom templates (tenant schema).

The shipped phone models and templates live in :mod:`provisioning.vendors` (code, not rows);
these tables hold what a tenant configures. The public-schema ``tenants.DeviceIndex`` mirrors
each device's MAC so that TFTP and PnP (no host name) can find the tenant.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.utils import timezone

from pbx.crypto import decrypt, encrypt

#: ``Device.model_id`` value meaning "recognise the model from the phone's User-Agent".
AUTO_MODEL = "auto"


def new_token() -> str:
    """The random folder name in a device's provisioning URL (192 bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def new_http_username() -> str:
    """A per-device HTTP user name; random so it says nothing about the MAC or the tenant."""
    return "p" + secrets.token_hex(6)


def new_http_password() -> str:
    """A per-device HTTP password (phones store it in their provisioning URL)."""
    return secrets.token_urlsafe(18)


class DeviceStatus(models.TextChoices):
    NEW = "new", "Never fetched"
    PROVISIONED = "provisioned", "Provisioned"
    REPROVISION = "reprovision", "Re-provision requested"
    REBOOT = "reboot", "Reboot requested"
    ERROR = "error", "Last fetch failed"


class Device(models.Model):
    """One IP phone (or DECT base) of the tenant, known by its MAC address.

    Access to its files (see ``provisioning.delivery``): the ``token`` in the URL during the
    provisioning window, or the per-device HTTP credentials at any time, or a source address
    in ``allowed_networks``; when ``allowed_networks`` is set, every fetch must come from it.
    """

    mac = models.CharField(max_length=12, unique=True)
    model_id = models.CharField(max_length=64, help_text="A shipped model id, or 'auto'.")
    detected_model_id = models.CharField(max_length=64, blank=True, editable=False)
    label = models.CharField(max_length=120, blank=True)
    blf_keys = models.JSONField(default=list, blank=True)
    handsets = models.JSONField(default=dict, blank=True)
    settings = models.JSONField(default=dict, blank=True)
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    http_username = models.CharField(max_length=32, unique=True, default=new_http_username)
    http_password_encrypted = models.TextField(editable=False)
    allowed_networks = models.JSONField(default=list, blank=True)
    provisioning_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=DeviceStatus.choices, default=DeviceStatus.NEW, db_index=True
    )
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_fetch_address = models.GenericIPAddressField(null=True, blank=True)
    last_fetch_user_agent = models.CharField(max_length=255, blank=True)
    last_fetch_file = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["mac"]

    def __str__(self) -> str:
        return f"{self.mac} {self.label}".strip()

    @property
    def http_password(self) -> str:
        return decrypt(self.http_password_encrypted)

    def set_http_password(self, password: str) -> None:
        # Encrypted, not hashed: it is compared on every fetch (a slow hash would make each
        # fetch cost tens of milliseconds) and the portal shows it to configure a phone by hand.
        self.http_password_encrypted = encrypt(password)

    @property
    def effective_model_id(self) -> str:
        """The model files are rendered for: the stored one, or the one recognised."""
        if self.model_id == AUTO_MODEL:
            return self.detected_model_id
        return self.model_id

    def window_open(self, now=None) -> bool:
        """Whether the provisioning window (token alone suffices) is still open."""
        return (
            self.provisioning_until is not None
            and (now or timezone.now()) < self.provisioning_until
        )


class DeviceLine(models.Model):
    """A SIP account of a device: account ``index`` (1-based) registers as ``extension``."""

    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="lines")
    index = models.PositiveSmallIntegerField()
    # Deleting the extension removes the line (the phone loses that account on its next fetch).
    extension = models.ForeignKey(
        "telephony.Extension", on_delete=models.CASCADE, related_name="device_lines"
    )
    label = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["device", "index"]
        constraints = [
            models.UniqueConstraint(fields=["device", "index"], name="device_line_index_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id}#{self.index}"


class ModelSettings(models.Model):
    """The tenant's settings for every device of one model (layer "model")."""

    model_id = models.CharField(max_length=64, unique=True)
    settings = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_id"]
        verbose_name_plural = "model settings"

    def __str__(self) -> str:
        return self.model_id


class CustomTemplate(models.Model):
    """A tenant's edited copy of a shipped template for one model's file.

    ``file_pattern`` is the shipped file's pattern (``{mac}.cfg``, ``y000000000000.cfg``).
    The source is validated (sandboxed render + vendor format check) before it is saved.
    """

    model_id = models.CharField(max_length=64)
    file_pattern = models.CharField(max_length=64)
    source = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["model_id", "file_pattern"]
        constraints = [
            models.UniqueConstraint(
                fields=["model_id", "file_pattern"], name="custom_template_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model_id} {self.file_pattern}"
