"""A tenant's call recording settings (``audio.RecordingSettings``): the rules for each value,
the one action that changes them, and the storage connection test. The portal page and the
REST API (``/api/v1/recording-settings/``) both go through here, so a bad value gets the same
field error whichever way it came in.

The storage secret (an S3 secret key, an Azure account key or connection string) is
write-only: it is stored encrypted (``pbx.crypto``), never shown back, and an empty value on
a change keeps the stored one."""

from __future__ import annotations

import ipaddress
import logging
import re
import uuid
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.crypto import decrypt, encrypt
from pbx.errors import ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors
from telephony.engine.snapshots import publish_on_commit
from tenants.choices import RecordingPolicy

from .models import Prompt, RecordingSettings, StorageKind
from .storage import platform_config, storage_for

log = logging.getLogger(__name__)

__all__ = [
    "FIELDS",
    "POLICIES",
    "RETENTION_MAX_DAYS",
    "do_update_recording_settings",
    "platform_default",
    "settings_values",
    "check_connection",
    "validate_recording_settings",
]

#: The fields the action takes (the model's, the secret in clear as ``secret``).
FIELDS = (
    "policy",
    "announce",
    "announcement",
    "retention_days",
    "storage",
    "bucket",
    "region",
    "endpoint_url",
    "access_key",
    "account_name",
    "secret",
    "prefix",
)
#: A tenant's own policy: never "" (that is an extension's or a trunk's "as the tenant").
POLICIES = tuple(p for p in RecordingPolicy.values if p)
#: Ten years: longer is a typing mistake; 0 keeps recordings for ever.
RETENTION_MAX_DAYS = 3650
TEXT_FIELDS = {
    "bucket": 63,
    "region": 64,
    "endpoint_url": 255,
    "access_key": 255,
    "account_name": 24,
    "secret": 2000,
    "prefix": 200,
}
# S3 bucket names: 3-63 lower-case letters, digits, dots and hyphens, a letter or digit at
# each end (AWS's rules for new buckets).
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Azure container names: 3-63 lower-case letters, digits and single hyphens, starting and
# ending with a letter or digit.
_AZURE_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")


def _tenant():
    return require_tenant("recording settings")


def _s3_bucket_problem(name: str) -> str | None:
    if not _S3_BUCKET.match(name) or ".." in name or ".-" in name or "-." in name:
        return (
            "3 to 63 lower-case letters, digits, dots and hyphens, starting and ending "
            "with a letter or digit"
        )
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return "must not look like an IP address"
    if name.startswith(("xn--", "sthree-")) or name.endswith(("-s3alias", "--ol-s3")):
        return "a prefix or suffix S3 reserves"
    return None


def _azure_container_problem(name: str) -> str | None:
    if not _AZURE_CONTAINER.match(name):
        return (
            "3 to 63 lower-case letters, digits and single hyphens, starting and ending "
            "with a letter or digit"
        )
    return None


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # a bad port raises here
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "an http:// or https:// URL with a host name"
    if parts.username or parts.password:
        return "no user name or password in the URL: use the key fields"
    if parts.query or parts.fragment:
        return "no query or fragment"
    return None


def _connection_string(secret: str) -> bool:
    return "AccountName=" in secret or "BlobEndpoint=" in secret


def validate_recording_settings(fields: dict, current: RecordingSettings) -> None:
    """Raise :class:`ValidationFailed` with a field error for every bad value of ``fields``
    (the new state is ``current`` overlaid with them; ``secret`` None or "" keeps the stored
    secret)."""
    errors: dict[str, list[str]] = single_line_errors(fields, TEXT_FIELDS)

    def now(name):
        return fields[name] if name in fields else getattr(current, name)

    policy = fields.get("policy")
    if "policy" in fields and policy not in POLICIES:
        errors["policy"] = [f"one of {', '.join(POLICIES)}"]
    storage = now("storage")
    if "storage" in fields and storage not in StorageKind.values:
        errors["storage"] = [f"one of {', '.join(StorageKind.values)}"]
    days = fields.get("retention_days")
    if "retention_days" in fields and (
        not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= RETENTION_MAX_DAYS
    ):
        errors["retention_days"] = [f"0 (keep for ever) to {RETENTION_MAX_DAYS} days"]
    announcement = now("announcement")
    if announcement is not None and not isinstance(announcement, Prompt):
        errors["announcement"] = ["one of the tenant's prompts"]
    if now("announce") and now("announcement") is None:
        errors.setdefault("announcement", ["choose the prompt to play before recording"])
    url = now("endpoint_url")
    if url and "endpoint_url" not in errors and (problem := _url_problem(url)):
        errors["endpoint_url"] = [problem]
    prefix = fields.get("prefix")
    if prefix and "prefix" not in errors and (not _PREFIX.match(prefix) or ".." in prefix):
        errors["prefix"] = ["letters, digits and - _ . ! * ' ( ) / only, no '..'"]
    has_secret = bool(fields.get("secret")) or bool(current.secret_encrypted)
    bucket = now("bucket") or ""
    if storage == StorageKind.S3 and "storage" not in errors:
        if not bucket:
            errors.setdefault("bucket", ["an S3 bucket is needed"])
        elif "bucket" not in errors and (problem := _s3_bucket_problem(bucket)):
            errors["bucket"] = [problem]
        region = now("region")
        if region and "region" not in errors and not _REGION.match(region):
            errors["region"] = ["lower-case letters, digits and hyphens (us-east-1)"]
        if not now("access_key"):
            errors.setdefault("access_key", ["the access key ID is needed"])
        if not has_secret:
            errors.setdefault("secret", ["the secret access key is needed"])
    if storage == StorageKind.AZURE and "storage" not in errors:
        if not bucket:
            errors.setdefault("bucket", ["a container is needed"])
        elif "bucket" not in errors and (problem := _azure_container_problem(bucket)):
            errors["bucket"] = [problem]
        secret = fields.get("secret") or ""
        account = now("account_name")
        if account and "account_name" not in errors and not _AZURE_ACCOUNT.match(account):
            errors["account_name"] = ["3 to 24 lower-case letters and digits"]
        if not has_secret:
            errors.setdefault("secret", ["the account key or a connection string is needed"])
        elif not account:
            is_string = _connection_string(secret) if secret else _stored_connection_string(current)
            if not is_string:
                errors.setdefault(
                    "account_name", ["the storage account name (or a connection string)"]
                )
    if errors:
        raise ValidationFailed("The recording settings are invalid.", fields=errors)


def _stored_connection_string(current: RecordingSettings) -> bool:
    try:
        return _connection_string(decrypt(current.secret_encrypted))
    except Exception:
        return False


def settings_values(fields: dict, current: RecordingSettings) -> dict:
    """The model's values for ``fields`` (the secret as ``secret_encrypted``, kept when
    empty); names not in ``FIELDS`` are left out."""
    values = {name: fields[name] for name in FIELDS if name in fields and name != "secret"}
    for name in TEXT_FIELDS:
        if name in values and isinstance(values[name], str):
            values[name] = values[name].strip()
    secret = fields.get("secret")
    if secret:
        values["secret_encrypted"] = encrypt(secret)
    return values


def do_update_recording_settings(*, actor: Actor, fields: dict) -> RecordingSettings:
    """Change the tenant's recording settings (the first change stores the row); audited, the
    secret only as "changed", and the tenant's snapshot republished (the policy and the
    announcement are the engine's)."""
    tenant = _tenant()
    with transaction.atomic():
        RecordingSettings.load()
        current = RecordingSettings.objects.select_for_update().get(pk=1)
        fields = {
            k: (v.strip() if isinstance(v, str) and k != "secret" else v) for k, v in fields.items()
        }
        validate_recording_settings(fields, current)
        values = settings_values(fields, current)
        secret_changed = "secret_encrypted" in values
        changes = audit.diff(current, {k: v for k, v in values.items() if k != "secret_encrypted"})
        for name, value in values.items():
            setattr(current, name, value)
        if secret_changed:
            changes["secret"] = "changed"  # noqa: S105 - audit marker
        current.updated_at = timezone.now()
        current.save()
        audit.record(actor, "recording_settings.update", current, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return current


def unsaved_settings(fields: dict, current: RecordingSettings) -> RecordingSettings:
    """``current`` with ``fields`` applied, not saved (what the connection test tries)."""
    trial = RecordingSettings.objects.get(pk=current.pk) if current.pk else RecordingSettings()
    for name, value in settings_values(fields, current).items():
        setattr(trial, name, value)
    return trial


def check_connection(settings: RecordingSettings) -> tuple[bool, str]:
    """Write a small object to ``settings``' storage, read it back and delete it (through
    ``audio.storage``, as the uploads do). Returns whether it worked and what to tell the
    admin (the storage's own error when it did not, without the secret)."""
    from django.core.files.base import ContentFile

    if settings.storage == StorageKind.PLATFORM:
        return False, "The provider's storage is run and checked by the provider."
    name = f"pbx-connection-test-{uuid.uuid4().hex}.txt"
    body = b"PBX recording storage test\n"
    try:
        store = storage_for(settings)
        saved = store.save(name, ContentFile(body))
        try:
            with store.open(saved, "rb") as handle:
                back = handle.read()
        finally:
            store.delete(saved)
    except Exception as exc:
        log.info("recording storage test failed: %s", type(exc).__name__)
        return False, _safe_error(exc, settings)
    if back != body:
        return False, "The object read back differs from what was written."
    return True, "Wrote, read back and deleted a test object."


def _safe_error(exc: Exception, settings: RecordingSettings) -> str:
    text = f"{type(exc).__name__}: {exc}"[:300]
    if settings.secret_encrypted:
        try:
            secret = decrypt(settings.secret_encrypted)
        except Exception:
            secret = ""
        if secret:
            text = text.replace(secret, "***")
    return "".join(ch if ch.isprintable() else " " for ch in text)


def platform_default() -> str:
    """The provider's default storage (``settings.PBX_RECORDING_STORAGE``), as a sentence for
    the settings page: its kind and bucket or container, never its credentials."""
    config = platform_config()
    label = dict(StorageKind.choices).get(config.kind, config.kind)
    where = f", {config.bucket}" if config.kind != StorageKind.LOCAL and config.bucket else ""
    return f"{label}{where}. The provider chooses it and keeps its credentials."
