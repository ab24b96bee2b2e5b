"""Deleting a call recording (the portal and the API): its files in the storage it went to
(``audio.storage.delete_recording``), then its row, audited."""

from __future__ import annotations

import logging

from django.db import transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict
from pbx.tenancy import require_tenant

from .models import Recording
from .storage import delete_recording

log = logging.getLogger(__name__)

__all__ = ["do_delete_recording"]


def do_delete_recording(recording: Recording, *, actor: Actor) -> None:
    """Delete ``recording``'s stored files and then its row. A storage that refuses or is
    down leaves both in place (Conflict), so no row ever points at nothing it once held."""
    tenant = require_tenant("recording actions")
    try:
        delete_recording(recording)
    except Exception as exc:
        log.warning("recording %s: delete failed: %s", recording.recording_id, type(exc).__name__)
        raise Conflict(
            "The recording's storage did not answer; nothing was deleted. Try again later."
        ) from exc
    with transaction.atomic():
        audit.record(
            actor,
            "recording.delete",
            recording,
            tenant=tenant,
            changes={
                "call_id": recording.call_id,
                "caller": recording.caller,
                "callee": recording.callee,
            },
        )
        recording.delete()
