"""The engine's ``recording.ready`` request, applied by the CDR drain
(``telephony.engine.requests``) in the tenant's schema and a transaction of its own: the
``audio.Recording`` is made (once per recording: a request that comes twice finds it), linked
to the call's CDR when that exists already (the task links it later otherwise), and its
conversion and upload queued on commit.

The raw file must lie in one of ``settings.PBX_RECORDING_SOURCE_DIRS`` (rtpengine's
recording directory, the media server's): an engine request never makes the workers read,
convert or delete any other file.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction

from pbx.tenancy import current_schema
from telephony.engine.requests import register
from telephony.sip.contract import EventType

from .models import Recording
from .pipeline import link_cdr

log = logging.getLogger(__name__)

SOURCE_FORMATS = {"pcap": ".pcap", "wav": ".wav"}


def _text(value, limit: int) -> str:
    spaced = "".join(c if c.isprintable() else " " for c in str(value or ""))
    return " ".join(spaced.split())[:limit]


def source_path(path: str, fmt: str) -> str | None:
    """``path`` made real when it is a file of that format in a recording directory."""
    if not path or not os.path.isabs(path) or "\x00" in path or fmt not in SOURCE_FORMATS:
        return None
    real = os.path.realpath(path)
    if not real.endswith(SOURCE_FORMATS[fmt]) or not os.path.isfile(real):
        return None
    for root in settings.PBX_RECORDING_SOURCE_DIRS:
        base = os.path.realpath(str(root))
        if real.startswith(base + os.sep):
            return real
    return None


def recording_id(event: dict[str, str]) -> str:
    """The engine's id of the recording, else one made of its call and file (stable: the
    same request twice gives the same id)."""
    given = _text(event.get("recording"), 64)
    if given:
        return given
    raw = f"{event.get('schema', '')}\n{event.get('call_id', '')}\n{event.get('path', '')}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@register(EventType.RECORDING_READY)
def recording_ready(event: dict[str, str]) -> None:
    from .tasks import process_recording

    schema = event.get("schema", "")
    call_id = _text(event.get("call_id"), 128)
    # The CDR drain applies each request inside its tenant's schema (requests.handle).
    if schema != current_schema() or not call_id:
        log.warning("recording.ready without its tenant or call id dropped: %r", event)
        return
    rid = recording_id(event)
    if Recording.objects.filter(recording_id=rid).exists():
        return  # delivered twice
    fmt = str(event.get("format") or "pcap")
    path = source_path(event.get("path", ""), fmt)
    if path is None:
        log.warning(
            "recording.ready of call %s of %s refused: bad path %r or format %r",
            call_id, schema, event.get("path"), fmt,
        )  # fmt: skip
        return
    try:
        started = datetime.fromtimestamp(float(event.get("started") or 0), tz=UTC)
    except (ValueError, OverflowError, OSError):
        started = None
    rec = Recording(
        recording_id=rid,
        call_id=call_id,
        source_path=path,
        source_format=fmt,
        caller_address=_text(event.get("caller"), 64),
    )
    if started is not None and started.year > 2000:
        rec.started_at = started
    link_cdr(rec)
    rec.save()
    pk = rec.pk
    transaction.on_commit(lambda: process_recording.delay(schema, pk))
