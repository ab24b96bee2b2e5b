"""Call records and live state for the portal tests, written by the real writers: CDRs by the
CDR consumer's ``apply_event``, live state by the fan-out (:class:`events.fanout.Fanout`) from
engine-format stream entries."""

from __future__ import annotations

import time
import uuid

from django.db import connection

from tests.events.helpers import call, registration

__all__ = ["add_cdr", "call", "registration", "stream_writer"]


def add_cdr(tenant, call_id, caller, callee, *, status="answered", ago=600, talk=30):
    """A finished call of ``tenant``: started ``ago`` seconds ago, ended ``talk`` seconds later
    (answered or not, as ``status`` says)."""
    from telephony.engine.cdr import apply_event
    from telephony.models import Cdr

    start = time.time() - ago
    base = {"schema": tenant.schema_name, "call_id": call_id}
    connection.set_tenant(tenant)
    try:
        apply_event(
            {
                **base,
                "type": "call.started",
                "ts": f"{start:.3f}",
                "caller": caller,
                "callee": callee,
                "direction": "internal",
            }
        )
        if status == "answered":
            apply_event({**base, "type": "call.answered", "ts": f"{start + 2:.3f}"})
        apply_event(
            {**base, "type": "call.ended", "ts": f"{start + 2 + talk:.3f}", "status": status}
        )
        return Cdr.objects.get(call_id=call_id).pk
    finally:
        connection.set_schema_to_public()


def stream_writer(rds):
    """A private stream and a function writing entries the way the engine's EventSink does."""
    name = f"test:sip:events:{uuid.uuid4().hex}"

    def add(type: str, **fields) -> str:  # noqa: A002 - the stream's field name
        entry = {"type": type, "ts": f"{time.time():.3f}"}
        entry.update({k: "" if v is None else str(v) for k, v in fields.items()})
        return rds.xadd(name, entry).decode()

    return name, add
