"""Bulk imports from CSV files: a dry run that checks every row, then an all-or-nothing run.

An importer is a small class registered by ``kind`` (``telephony.imports`` registers
``extensions``, ``provisioning.imports`` registers ``phones``): it declares its columns, checks
rows through its app's rules and writes each row through its app's actions. The rest is the same
for every kind and lives here:

1. :func:`do_dry_run_import` decodes the file, checks the header, validates every row against
   the tenant's rules and the database, and stores an :class:`~telephony.models.ImportJob` with a
   per-row report (``invalid``) or the file kept for the run (``validated``). Nothing else is
   written.
2. :func:`do_start_import` queues the run (the :func:`run_import_job` task, on commit).
3. :func:`run_import` (the task's body) validates again (the database may have moved on), then
   writes every row through the importer in ONE transaction: any failure rolls the whole file
   back. Progress goes to the cache, because rows written inside the open transaction are
   invisible to the portal until it commits.

The jobs' table is ``telephony.ImportJob`` because it must live in every tenant's schema, which
this shared package's own models do not.

Row numbers in reports are spreadsheet line numbers: the header is row 1, the first data row 2.
Row 0 means the file as a whole (for example the quota for the batch).
"""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from pbx import audit
from pbx.audit import Actor
from pbx.celery import every
from pbx.errors import Conflict, PbxError, ValidationFailed
from pbx.tenancy import current_schema, current_tenant
from telephony.models import ImportJob
from tenants.access import live_tenants
from tenants.choices import TenantStatus
from tenants.models import Tenant, User

log = logging.getLogger(__name__)

MAX_BYTES = 1024 * 1024
MAX_ROWS = 1000
PROGRESS_KEY = "import:progress:{job_id}"
PROGRESS_TTL = 6 * 3600


class ImportFileError(ValidationFailed):
    """The file as a whole cannot be read (size, encoding, not a CSV, header)."""

    def __init__(self, message: str):
        super().__init__(message, fields={"file": [message]})


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}


@dataclass
class ParsedFile:
    rows: list[tuple[int, dict[str, str]]]  # (row number, values by column)
    errors: list[RowError] = field(default_factory=list)


# --- registry -------------------------------------------------------------------------------

REGISTRY: dict[str, type[Importer]] = {}


def register(cls: type[Importer]) -> type[Importer]:
    """Class decorator: make an importer available under its ``kind``."""
    REGISTRY[cls.kind] = cls
    return cls


def get_importer(kind: str) -> Importer:
    try:
        return REGISTRY[kind]()
    except KeyError:
        raise ValidationFailed(
            f"Unknown import kind '{kind}'.", fields={"kind": ["unknown"]}
        ) from None


class Importer:
    """Base class. Subclasses declare columns and implement ``validate`` and ``apply_row``."""

    kind: str = ""
    label: str = ""
    columns: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    permission: str = ""
    # Limits of one file; an importer of longer files (a rate table) sets its own.
    max_bytes: int = MAX_BYTES
    max_rows: int = MAX_ROWS

    def parse(self, data: bytes) -> ParsedFile:
        """Decode and split ``data``; whole-file problems raise :class:`ImportFileError`."""
        if len(data) > self.max_bytes:
            raise ImportFileError(f"The file is larger than {self.max_bytes // 1024} KiB.")
        if not data.strip():
            raise ImportFileError("The file is empty.")
        if b"\x00" in data:
            raise ImportFileError("This is not a CSV text file (it contains binary data).")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ImportFileError(
                f"The file is not UTF-8 text (bad byte at position {exc.start}). "
                "Save it as 'CSV UTF-8' and upload it again."
            ) from None
        try:
            reader = csv.reader(io.StringIO(text, newline=""), strict=True)
            header = next(reader, None)
            records = list(reader)
        except csv.Error as exc:
            raise ImportFileError(f"The file is not a valid CSV file: {exc}.") from None
        header = [h.strip().lower() for h in header or []]
        self._check_header(header)
        parsed = ParsedFile(rows=[])
        for index, values in enumerate(records, start=2):
            if not any(v.strip() for v in values):
                continue  # blank lines (often a trailing one) are not rows
            if len(parsed.rows) >= self.max_rows:
                raise ImportFileError(f"The file has more than {self.max_rows} rows; split it.")
            if len(values) != len(header):
                parsed.errors.append(
                    RowError(index, "", f"expected {len(header)} fields, found {len(values)}")
                )
                continue
            row = {name: "" for name in self.columns}
            row.update({name: value.strip() for name, value in zip(header, values, strict=True)})
            parsed.rows.append((index, row))
        if not parsed.rows and not parsed.errors:
            raise ImportFileError("The file has a header but no rows.")
        return parsed

    def _check_header(self, header: list[str]) -> None:
        if not header or not any(header):
            raise ImportFileError("The first line must be the header: " + ",".join(self.columns))
        unknown = [h for h in header if h not in self.columns]
        if unknown:
            raise ImportFileError(
                f"Unknown column(s): {', '.join(unknown)}. Allowed: {', '.join(self.columns)}."
            )
        duplicated = sorted({h for h in header if header.count(h) > 1})
        if duplicated:
            raise ImportFileError(f"Column(s) given twice: {', '.join(duplicated)}.")
        missing = [c for c in self.required if c not in header]
        if missing:
            raise ImportFileError(f"Missing required column(s): {', '.join(missing)}.")

    def validate(self, tenant, rows: list[tuple[int, dict]]) -> list[RowError]:
        raise NotImplementedError

    def apply_row(self, tenant, row: dict, actor: Actor) -> dict:
        """Write one row through the actions; return what the report should show for it."""
        raise NotImplementedError


# --- the actions around a job ---------------------------------------------------------------


def _current_tenant():
    tenant = current_tenant()
    if tenant is None or tenant.schema_name == "public":
        raise RuntimeError("imports run inside a tenant's schema")
    return tenant


def _sorted(errors: list[RowError]) -> list[dict]:
    return [e.as_dict() for e in sorted(errors, key=lambda e: (e.row, e.column))]


def do_dry_run_import(*, kind: str, data: bytes, filename: str, actor: Actor):
    """Check a file and record the outcome as an ImportJob; writes nothing else.

    Raises :class:`ImportFileError` when the file cannot be read at all (no job is stored then).
    """
    tenant = _current_tenant()
    importer = get_importer(kind)
    parsed = importer.parse(data)
    errors = parsed.errors + importer.validate(tenant, parsed.rows)
    total = len(parsed.rows) + len({e.row for e in parsed.errors})
    job = ImportJob.objects.create(
        kind=kind,
        filename=filename[:255],
        status=ImportJob.Status.INVALID if errors else ImportJob.Status.VALIDATED,
        total=total,
        report={"errors": _sorted(errors), "rows": len(parsed.rows)},
        # A failed dry run keeps no copy of the file: it holds passwords and cannot be run.
        payload="" if errors else data.decode("utf-8-sig"),
        created_by=actor.user,
    )
    return job


def do_start_import(job, *, actor: Actor):
    """Queue a validated job; the worker runs it (see :func:`run_import_job`)."""

    tenant = _current_tenant()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().get(pk=job.pk)
        if job.status != ImportJob.Status.VALIDATED:
            raise Conflict(
                f"This import is {job.get_status_display().lower()}; it cannot be started.",
                fields={"status": [job.status]},
            )
        job.status = ImportJob.Status.PENDING
        job.save(update_fields=["status"])
        audit.record(
            actor, "import.start", job, tenant=tenant, changes={"kind": job.kind, "rows": job.total}
        )
        schema, job_id = current_schema(), str(job.pk)
        transaction.on_commit(lambda: run_import_job.delay(schema, job_id))
    return job


def progress(job) -> int:
    """Rows written so far: the cache while the run's transaction is open, else the row."""
    if job.status == job.Status.RUNNING:
        return int(cache.get(PROGRESS_KEY.format(job_id=job.pk)) or 0)
    return job.done


def run_import(job_id, *, actor: Actor) -> None:
    """The real run. Idempotent: a job that is not queued (already run, or running) is left."""
    tenant = _current_tenant()
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status != ImportJob.Status.PENDING:
            return
        # The file (with its clear-text passwords) lives on only in this worker's memory: a run
        # that dies half-way leaves a job marked running, never a stored copy.
        payload = job.payload
        job.status = ImportJob.Status.RUNNING
        job.payload = ""
        job.save(update_fields=["status", "payload"])
    importer = get_importer(job.kind)
    key = PROGRESS_KEY.format(job_id=job.pk)
    cache.set(key, 0, PROGRESS_TTL)
    created: list[dict] = []
    errors: list[RowError] = []
    try:
        parsed = importer.parse(payload.encode())
        errors = parsed.errors + importer.validate(tenant, parsed.rows)
        if not errors:
            with transaction.atomic():
                for n, (index, row) in enumerate(parsed.rows, start=1):
                    try:
                        created.append(importer.apply_row(tenant, row, actor))
                    except PbxError as exc:
                        errors.extend(_row_errors(index, exc))
                        raise
                    cache.set(key, n, PROGRESS_TTL)
    except PbxError as exc:
        if not errors:
            errors = [RowError(0, "", exc.message)]
        created = []
    except Exception:
        # Whatever broke, the transaction rolled back: say so rather than leave a job "running".
        log.exception("import %s failed", job.pk)
        errors = [RowError(0, "", "The import failed unexpectedly; nothing was imported.")]
        created = []
    status = ImportJob.Status.FAILED if errors else ImportJob.Status.DONE
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(
            status=status,
            done=len(created),
            report={
                **job.report,
                "errors": _sorted(errors),
                "created": created,
                "rolled_back": bool(errors),
            },
            payload="",
            finished_at=timezone.now(),
        )
        audit.record(
            actor,
            "import.finish",
            job,
            tenant=tenant,
            changes={"status": status, "created": len(created), "errors": len(errors)},
        )
    cache.delete(key)


def purge_stale_payloads(*, now=None) -> int:
    """In the current schema: empty the payload of every job checked but not started within
    ``PBX_IMPORT_PAYLOAD_TTL_MINUTES`` (marked ``expired``), and of jobs queued or running for
    longer than ``PBX_IMPORT_STALE_HOURS`` (a lost run: marked ``failed``). Returns the jobs
    changed. Idempotent; Celery beat calls it for every tenant (:func:`purge_import_payloads`)."""
    now = now or timezone.now()
    ttl = timedelta(minutes=settings.PBX_IMPORT_PAYLOAD_TTL_MINUTES)
    stale = timedelta(hours=settings.PBX_IMPORT_STALE_HOURS)
    expired = (
        ImportJob.objects.filter(status=ImportJob.Status.VALIDATED, created_at__lt=now - ttl)
        .exclude(payload="")
        .update(payload="", status=ImportJob.Status.EXPIRED, finished_at=now)
    )
    lost = ImportJob.objects.filter(
        status__in=(ImportJob.Status.PENDING, ImportJob.Status.RUNNING),
        created_at__lt=now - stale,
    ).update(payload="", status=ImportJob.Status.FAILED, finished_at=now)
    return expired + lost


def _row_errors(index: int, exc: PbxError) -> list[RowError]:
    if not exc.fields:
        return [RowError(index, "", exc.message)]
    return [
        RowError(index, column, str(message))
        for column, messages in exc.fields.items()
        for message in (messages if isinstance(messages, list) else [messages])
    ]


# --- the tasks ------------------------------------------------------------------------------
# Their names are the ones they were first published under: queued runs and beat entries
# outlive a deployment.


@shared_task(name="telephony.run_import_job", acks_late=True)
def run_import_job(schema_name: str, job_id: str) -> None:
    """Run a queued bulk import. Safe to deliver twice.

    It runs in the tenant's schema with the real Tenant row as ``connection.tenant``
    (``tenant_context`` rather than a bare ``schema_context``): the importers read the tenant's
    rules (number lengths, quotas, password policy, SIP domain) from it.
    """
    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None or tenant.status == TenantStatus.DELETED:
        return
    with tenant_context(tenant):
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None:
            return
        user = User.objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
        run_import(job.pk, actor=Actor(user=user))


PURGE_EVERY_SECONDS = 300.0


@shared_task(name="telephony.purge_import_payloads", acks_late=True, ignore_result=True)
def purge_import_payloads() -> int:
    """Drop the stored files of imports never started (or lost) in every tenant's schema.

    A checked file may hold clear-text SIP and web passwords; it is kept only until the admin
    starts the run, at most ``PBX_IMPORT_PAYLOAD_TTL_MINUTES``. Returns the jobs changed.
    """
    changed = 0
    for schema in live_tenants().order_by("id").values_list("schema_name", flat=True):
        with schema_context(schema):
            changed += purge_stale_payloads()
    return changed


# Registered on import, like the CDR drain (``CELERY_IMPORTS`` names this module).
every(PURGE_EVERY_SECONDS, "telephony.purge_import_payloads")
