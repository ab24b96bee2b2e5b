"""Where call recordings are kept, through django-storages: this server's disk, S3 or any
S3-compatible service, Azure Blob Storage.

A tenant either brings its own bucket or container (``RecordingSettings.storage`` s3 / azure,
with its credentials, the secret encrypted with ``pbx.crypto``; or local) or uses the
provider's default (``platform``: ``settings.PBX_RECORDING_STORAGE``, from the environment
``PBX_RECORDING_STORAGE=local|s3|azure`` and ``PBX_RECORDING_S3_*`` / ``PBX_RECORDING_AZURE_*``).

A stored recording remembers where it went (``Recording.storage``: ``"<owner>:<kind>:<bucket>"``,
owner ``platform`` or ``tenant``), so it is still found after the tenant changes its settings
to another bucket of the same kind. Keys are ``<prefix>/<schema>/<yyyy>/<mm>/<dd>/<id>.<fmt>``:
the schema keeps tenants apart in the provider's shared bucket.

Call inside the tenant's schema (the tenant's settings are read there).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings as django_settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage

from pbx import crypto
from pbx.tenancy import current_schema

from .models import Recording, RecordingSettings, StorageKind

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "StorageConfig",
    "StorageError",
    "delete_recording",
    "open_recording",
    "save_recording",
    "signed_url",
    "storage_for",
]

#: The formats a recording is stored and offered in: name -> content type.
CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
FORMATS = tuple(CONTENT_TYPES)

# How long one storage request may take before it counts as an outage (seconds), and how
# often the client itself retries: the task's back-off does the patient retrying.
CONNECT_TIMEOUT = 5
READ_TIMEOUT = 60


# The Azure SDK logs every request and response at INFO: a line per upload is plenty.
logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)


class StorageError(Exception):
    """The recording's storage cannot be used (misconfigured, unreachable, refused)."""


@dataclass(frozen=True)
class StorageConfig:
    """One storage location: its kind (local, s3, azure) and how to reach it."""

    owner: str  # "platform" or "tenant"
    kind: str
    bucket: str = ""  # S3 bucket, Azure container, local directory
    region: str = ""
    endpoint_url: str = ""
    access_key: str = ""
    account_name: str = ""
    secret: str = ""  # S3 secret key, Azure account key or connection string
    prefix: str = ""

    @property
    def label(self) -> str:
        """What ``Recording.storage`` keeps: where the files went."""
        return f"{self.owner}:{self.kind}:{self.bucket}"[:300]


def platform_config() -> StorageConfig:
    """The provider's default storage, from ``settings.PBX_RECORDING_STORAGE``."""
    conf = dict(getattr(django_settings, "PBX_RECORDING_STORAGE", None) or {})
    kind = conf.get("kind") or StorageKind.LOCAL
    if kind == StorageKind.LOCAL:
        bucket = conf.get("location") or os.path.join(str(django_settings.MEDIA_ROOT), "recordings")
        return StorageConfig(owner="platform", kind=kind, bucket=str(bucket))
    return StorageConfig(
        owner="platform",
        kind=kind,
        bucket=conf.get("bucket", ""),
        region=conf.get("region", ""),
        endpoint_url=conf.get("endpoint_url", ""),
        access_key=conf.get("access_key", ""),
        account_name=conf.get("account_name", ""),
        secret=conf.get("secret", ""),
        prefix=conf.get("prefix", ""),
    )


def tenant_config(rs: RecordingSettings) -> StorageConfig:
    """The tenant's own storage (its ``storage`` is not ``platform``)."""
    if rs.storage == StorageKind.LOCAL:
        # The tenant's choice of "this server's disk": the provider's local directory.
        base = platform_config()
        location = (
            base.bucket
            if base.kind == StorageKind.LOCAL
            else os.path.join(str(django_settings.MEDIA_ROOT), "recordings")
        )
        return StorageConfig(owner="tenant", kind=StorageKind.LOCAL, bucket=location)
    return StorageConfig(
        owner="tenant",
        kind=rs.storage,
        bucket=rs.bucket,
        region=rs.region,
        endpoint_url=rs.endpoint_url,
        access_key=rs.access_key,
        account_name=rs.account_name,
        secret=crypto.decrypt(rs.secret_encrypted) if rs.secret_encrypted else "",
        prefix=rs.prefix,
    )


def config_for(rs: RecordingSettings | None = None) -> StorageConfig:
    """Where the tenant's new recordings go."""
    rs = rs if rs is not None else RecordingSettings.load()
    if rs.storage == StorageKind.PLATFORM:
        return platform_config()
    return tenant_config(rs)


def config_of(rec: Recording) -> StorageConfig:
    """Where ``rec`` was stored (its ``storage`` label), with today's credentials."""
    owner, _, rest = rec.storage.partition(":")
    kind, _, bucket = rest.partition(":")
    base = platform_config() if owner == "platform" else tenant_config(RecordingSettings.load())
    if base.kind != kind:
        raise StorageError(
            f"recording {rec.recording_id} is in {kind} storage, which is no longer configured"
        )
    return StorageConfig(**{**base.__dict__, "bucket": bucket})


def _azure_storage(config: StorageConfig) -> Storage:
    from azure.storage.blob import BlobServiceClient
    from storages.backends.azure_storage import AzureStorage

    secret = config.secret
    options: dict[str, Any] = {
        "retry_total": 1,
        "connection_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
    }
    if "AccountKey=" in secret or "BlobEndpoint=" in secret or "SharedAccessSignature=" in secret:
        # A connection string: the account and its key are in it (SAS URLs need them).
        parts = dict(p.split("=", 1) for p in secret.split(";") if "=" in p)
        account, key = parts.get("AccountName", config.account_name), parts.get("AccountKey", "")

        def client() -> BlobServiceClient:
            return BlobServiceClient.from_connection_string(secret, **options)
    else:
        account, key = config.account_name, secret
        url = config.endpoint_url or f"https://{account}.blob.core.windows.net"

        def client() -> BlobServiceClient:
            return BlobServiceClient(
                url, credential={"account_name": account, "account_key": key}, **options
            )

    class _Azure(AzureStorage):
        def _get_service_client(self):
            return client()

    return _Azure(
        account_name=account,
        account_key=key,
        azure_container=config.bucket,
        overwrite_files=True,
        timeout=READ_TIMEOUT,
        location=config.prefix.strip("/"),
    )


def _s3_storage(config: StorageConfig) -> Storage:
    from botocore.config import Config
    from storages.backends.s3 import S3Storage

    return S3Storage(
        bucket_name=config.bucket,
        access_key=config.access_key or None,
        secret_key=config.secret or None,
        region_name=config.region or None,
        endpoint_url=config.endpoint_url or None,
        location=config.prefix.strip("/"),
        file_overwrite=True,
        default_acl=None,
        querystring_auth=True,
        signature_version="s3v4",
        addressing_style="path" if config.endpoint_url else None,
        client_config=Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"max_attempts": 2, "mode": "standard"},
            signature_version="s3v4",
        ),
    )


@functools.lru_cache(maxsize=32)
def storage_of(config: StorageConfig) -> Storage:
    """The django-storages backend of one location, built once per process and config: an S3
    backend loads boto3's service model and keeps a connection pool, so every upload, play
    and signed URL reuses it (the backends are thread-safe; changed credentials are another
    config, hence another backend)."""
    if config.kind == StorageKind.LOCAL:
        return FileSystemStorage(location=config.bucket)
    if not config.bucket:
        raise StorageError(f"no bucket or container configured for {config.kind} storage")
    if config.kind == StorageKind.S3:
        return _s3_storage(config)
    if config.kind == StorageKind.AZURE:
        return _azure_storage(config)
    raise StorageError(f"unknown storage kind {config.kind!r}")


def storage_for(rs: RecordingSettings | None = None) -> Storage:
    """The storage the tenant's new recordings go to (its settings, or the platform's)."""
    return storage_of(config_for(rs))


def key_for(rec: Recording, fmt: str) -> str:
    schema = current_schema()
    day = rec.started_at
    return f"{schema}/{day:%Y/%m/%d}/{rec.recording_id}.{fmt}"


def _put(storage: Storage, key: str, path: str) -> str:
    """Upload one file and confirm it is there with its size; returns the stored name."""
    if isinstance(storage, FileSystemStorage) and storage.exists(key):
        storage.delete(key)  # a retry after a half-done try: replace, never "_<random>"
    with open(path, "rb") as f:
        name = storage.save(key, File(f, name=os.path.basename(key)))
    size = os.path.getsize(path)
    if not storage.exists(name) or storage.size(name) != size:
        raise StorageError(f"{name}: the storage does not hold the {size} bytes sent")
    return name


def save_recording(rec: Recording, rs: RecordingSettings | None = None) -> None:
    """Upload ``rec``'s local WAV and MP3 and confirm both (exists, size): the keys, the
    storage label and the size are set on ``rec`` (not saved). Raises ``StorageError`` (or the
    client's own error) when the storage is unreachable or refuses; nothing local is touched."""
    config = config_for(rs)
    storage = storage_of(config)
    size = 0
    keys = {}
    for fmt, path in (("wav", rec.local_wav), ("mp3", rec.local_mp3)):
        keys[fmt] = _put(storage, key_for(rec, fmt), path)
        size += os.path.getsize(path)
    rec.storage = config.label
    rec.wav_key, rec.mp3_key = keys["wav"], keys["mp3"]
    rec.size = size


def _key(rec: Recording, fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r}: one of {', '.join(FORMATS)}")
    return rec.wav_key if fmt == "wav" else rec.mp3_key


def open_recording(rec: Recording, fmt: str = "wav") -> IO[bytes]:
    """The recording as a readable binary file (stored, or still local while the upload
    waits). Raises FileNotFoundError when there is none."""
    if rec.stored_at is None or not rec.storage:
        path = rec.local_wav if fmt == "wav" else rec.local_mp3
        if fmt not in FORMATS or not path or not os.path.isfile(path):
            raise FileNotFoundError(f"recording {rec.recording_id} has no {fmt} file yet")
        return open(path, "rb")  # noqa: SIM115  # the caller streams and closes it
    key = _key(rec, fmt)
    storage = storage_of(config_of(rec))
    if not key or not storage.exists(key):
        raise FileNotFoundError(f"recording {rec.recording_id}: {fmt} not in its storage")
    return storage.open(key, "rb")


def signed_url(rec: Recording, fmt: str = "wav", seconds: int = 300) -> str | None:
    """A short-lived URL the browser fetches the file from (S3 presigned, Azure SAS); None
    for local disk or a recording not uploaded yet (stream it with ``open_recording``)."""
    if rec.stored_at is None or not rec.storage:
        return None
    config = config_of(rec)
    if config.kind == StorageKind.LOCAL:
        return None
    key = _key(rec, fmt)
    if not key:
        return None
    backend: Any = storage_of(config)  # S3Storage / AzureStorage: their url() takes expire
    return str(backend.url(key, expire=seconds))


def delete_recording(rec: Recording) -> None:
    """Remove the recording's stored objects and local files (missing ones are fine);
    raises when the storage cannot be reached (the row must then stay)."""
    if rec.storage:
        storage = storage_of(config_of(rec))
        for key in (rec.wav_key, rec.mp3_key):
            if key:
                storage.delete(key)
    for path in (rec.local_wav, rec.local_mp3):
        if path and os.path.isfile(path):
            os.remove(path)
