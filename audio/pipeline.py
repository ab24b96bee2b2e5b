"""A call recording's way from the engine's raw file to the tenant's storage (callable without
Celery; ``audio.tasks`` runs it):

1. ``pending``: convert the raw recording (rtpengine's pcap, the media server's WAV) to a
   stereo WAV and an MP3 in the work directory (``converted``); a file that cannot be read
   is ``failed`` with the reason, never retried.
2. ``converted``: upload both, confirm each is there with its size, then (and only then)
   delete the local files (``stored``). A storage that cannot be reached leaves the row
   ``converted`` with ``attempts``, ``error`` and ``next_attempt_at`` (exponential back-off):
   the sweeper (:func:`sweep`) queues it again when due. Nothing is lost.

Every run takes the row's lock (``skip_locked``: a second worker on the same recording
leaves it), links the call's CDR when it exists, and is idempotent.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import transaction
from django.db.models import BooleanField, ExpressionWrapper, Q
from django.utils import timezone
from django_tenants.utils import schema_context

from pbx.tenancy import current_schema
from telephony.models import Cdr
from tenants.access import live_tenants

from . import storage
from .models import Recording, RecordingSettings, RecordingStatus
from .recordings import ConversionError, pcap_to_wav, wav_source_to_wav, wav_to_mp3

log = logging.getLogger(__name__)

__all__ = [
    "Sweep",
    "backoff",
    "link_cdr",
    "process",
    "purge_expired",
    "sweep",
]

FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
# A pending or converted recording with no retry scheduled whose task has not run for this
# long was lost (a broker restart): the sweeper queues it again.
LOST_AFTER = timedelta(minutes=10)


def backoff(attempts: int) -> int:
    """Seconds before retry number ``attempts`` (1, 2, ...): 30 s doubling, at most an hour."""
    return min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)


def work_dir() -> str:
    path = os.path.join(str(settings.PBX_RECORDING_WORK_DIR), current_schema())
    os.makedirs(path, exist_ok=True)
    return path


def link_cdr(rec: Recording) -> None:
    """Attach the call's CDR and take its parties (not saved)."""
    if rec.cdr_id is not None:
        return
    cdr = Cdr.objects.filter(call_id=rec.call_id).first()
    if cdr is not None:
        rec.cdr = cdr
        rec.caller = rec.caller or cdr.caller_number
        rec.callee = rec.callee or cdr.callee_number


def _convert(rec: Recording) -> None:
    base = os.path.join(work_dir(), rec.recording_id)
    wav, mp3 = f"{base}.wav", f"{base}.mp3"
    if rec.source_format == "wav":
        seconds = wav_source_to_wav(rec.source_path, wav)
    else:
        seconds = pcap_to_wav(rec.source_path, wav, caller=rec.caller_address)
    wav_to_mp3(wav, mp3)
    rec.local_wav, rec.local_mp3, rec.seconds = wav, mp3, round(seconds, 2)
    rec.status = RecordingStatus.CONVERTED


def _remove(*paths: str) -> None:
    for path in paths:
        try:
            if path and os.path.isfile(path):
                os.remove(path)
        except OSError as exc:
            log.warning("recording file %s not removed: %s", path, exc)


def process(pk: int) -> str | None:
    """Move recording ``pk`` (of the current schema) on as far as it goes now; returns its
    status, None when it is gone or another worker holds it."""
    schema = current_schema()
    with transaction.atomic():
        rec = Recording.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
        if rec is None:
            return None
        link_cdr(rec)
        if rec.status == RecordingStatus.PENDING:
            if not rec.source_path or not os.path.isfile(rec.source_path):
                rec.status, rec.error = RecordingStatus.FAILED, "the raw recording is missing"
                log.warning("recording %s of %s: %s", rec.recording_id, schema, rec.error)
            else:
                try:
                    _convert(rec)
                    rec.error = ""
                except (ConversionError, OSError, EOFError, ValueError) as exc:
                    rec.status, rec.error = RecordingStatus.FAILED, f"conversion: {exc}"[:255]
                    log.warning(
                        "recording %s of %s not converted: %s", rec.recording_id, schema, exc
                    )
            rec.save()
        if rec.status != RecordingStatus.CONVERTED:
            return rec.status
        try:
            storage.save_recording(rec)
        except Exception as exc:  # noqa: BLE001  # any client's error: the storage is down
            rec.attempts += 1
            delay = backoff(rec.attempts)
            rec.next_attempt_at = timezone.now() + timedelta(seconds=delay)
            rec.error = f"upload: {type(exc).__name__}: {exc}"[:255]
            rec.save()
            log.warning(
                "recording %s of %s not uploaded (try %d, again in %d s): %s",
                rec.recording_id, schema, rec.attempts, delay, exc,
            )  # fmt: skip
            return rec.status
        rec.status, rec.stored_at = RecordingStatus.STORED, timezone.now()
        rec.next_attempt_at, rec.error = None, ""
        local = (rec.local_wav, rec.local_mp3, rec.source_path)
        rec.local_wav = rec.local_mp3 = ""
        rec.save()
        # Confirmed and committed: the local copies go.
        transaction.on_commit(lambda: _remove(*local))
        log.info("recording %s of %s stored in %s", rec.recording_id, schema, rec.storage)
        return rec.status


class Sweep(NamedTuple):
    due: list[tuple[str, int]]  # (schema, pk) of each recording to work now
    linked: int  # CDRs attached


def sweep(now=None, *, within: timedelta = timedelta(days=1)) -> Sweep:
    """The sweeper's pass over every tenant, one query each (the same rows answer both):
    the recordings that should be worked now (a retry that is due, or one whose task was
    lost), and the recent ones worked before their call's CDR was written whose CDR has come
    now, which are linked here."""
    now = now or timezone.now()
    waiting = Q(status__in=(RecordingStatus.PENDING, RecordingStatus.CONVERTED)) & (
        Q(next_attempt_at__lte=now)
        | Q(next_attempt_at__isnull=True, created_at__lte=now - LOST_AFTER)
    )
    orphan = Q(
        cdr__isnull=True,
        created_at__gte=now - within,
        call_id__in=Cdr.objects.values("call_id"),
    )
    due: list[tuple[str, int]] = []
    linked = 0
    for schema in live_tenants().values_list("schema_name", flat=True):
        with schema_context(schema):
            rows = Recording.objects.filter(waiting | orphan).annotate(
                is_due=ExpressionWrapper(waiting, output_field=BooleanField())
            )
            for rec in rows.iterator():
                if rec.is_due:
                    due.append((schema, rec.pk))
                if rec.cdr_id is None and rec.created_at >= now - within:
                    link_cdr(rec)
                    if rec.cdr_id is not None:
                        rec.save(update_fields=["cdr", "caller", "callee"])
                        linked += 1
    return Sweep(due, linked)


def purge_expired(now=None) -> dict[str, int]:
    """Delete every tenant's recordings older than its ``retention_days`` (0: kept for ever):
    the stored objects first, then the row. A storage that cannot be reached keeps the row
    for the next run. Returns the number deleted per schema."""
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for schema in live_tenants().values_list("schema_name", flat=True):
        with schema_context(schema):
            days = RecordingSettings.load().retention_days
            if not days:
                continue
            old = Recording.objects.filter(started_at__lt=now - timedelta(days=days))
            count = 0
            for rec in old.iterator():
                try:
                    storage.delete_recording(rec)
                except Exception as exc:  # noqa: BLE001  # tried again tomorrow
                    log.warning(
                        "expired recording %s of %s kept: %s", rec.recording_id, schema, exc
                    )
                    continue
                rec.delete()
                count += 1
            if count:
                log.info("%d recordings of %s past %d days deleted", count, schema, days)
            deleted[schema] = count
    return deleted
