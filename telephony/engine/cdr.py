"""CDRs from the engine's call events (Redis stream ``sip:events``).

The engine emits the call events of ``telephony.sip.contract.EventType`` (``call.started``,
``call.ringing``, ``call.answered``, ``call.transferred``, ``call.forwarded``, ``call.routed``,
``call.ended``; team features add ``call.picked_up``, whose picker becomes the segment's
callee, and ``call.parked``/``call.unparked``, which only the live portal needs), each with
``call_id`` and the tenant's ``schema``; any of them may carry an
outside call's facts (``contract.CDR_FIELDS``: direction, trunk, DID, dialled, number,
presented caller ID), of which the record keeps the last non-empty value.
:class:`CdrConsumer` reads them through a consumer group, applies each one inside the tenant's
schema in its own transaction, and XACKs only after the commit. So:

- a worker that dies mid-batch leaves its entries pending; the next run reads its own pending
  entries first and claims entries other consumers left idle, so nothing is lost;
- every event is applied idempotently (keyed by ``call_id`` and segment ``seq``, timestamps only
  filled or moved outwards), so a re-delivered event changes nothing;
- events may be applied in any order by parallel consumers: the Cdr row is locked
  (``select_for_update``) while an event is applied, and each rule is order-independent;
- the stream is trimmed after each drain of what *every* group (``cdr``, ``fanout``) has
  acknowledged, never more (``telephony.sip.events.trim_acknowledged``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django_tenants.utils import schema_context

from billing.charging import charge_call, rate_call
from telephony.sip.contract import CALL_EVENTS, CDR_FIELDS, EventType

from . import requests
from .stream import EventsReader

log = logging.getLogger(__name__)

GROUP = "cdr"


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), tz=UTC)
    except ValueError:
        return None


def _legs(value: str | None) -> list[Any]:
    if not value:
        return []
    try:
        legs = json.loads(value)
    except ValueError:
        return []
    return legs if isinstance(legs, list) else []


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# ------------------------------------------------------------------------------- applying


def apply_event(event: dict[str, str]) -> None:
    """Apply one call event in the current schema (the caller opened the tenant's schema)."""
    apply_events(event.get("call_id", ""), [event])


def apply_events(call_id: str, events: list[dict[str, str]]) -> None:
    """Apply a call's events (any order, any repetition) in one transaction: the record and
    its segments are loaded once under a row lock, changed in memory, written once."""
    from telephony.models import Cdr, CdrSegment

    events = [e for e in events if e.get("type") in CALL_EVENTS]
    if not call_id or not events:
        return
    with transaction.atomic():
        cdr = Cdr.objects.select_for_update().filter(call_id=call_id).first()
        segs: dict[int, CdrSegment] = {}
        if cdr is None:
            first = min(_ts(e.get("ts")) or datetime.now(tz=UTC) for e in events)
            cdr = Cdr(call_id=call_id, started_at=first)
        else:
            segs = {s.seq: s for s in CdrSegment.objects.filter(cdr=cdr)}
        touched: set[int] = set()
        for event in sorted(events, key=lambda e: float(e.get("ts") or 0)):
            _fold(cdr, segs, touched, event)
        if cdr.ended_at is not None:
            cdr.duration = max(0, int((cdr.ended_at - cdr.started_at).total_seconds()))
            if cdr.answered_at is not None:
                cdr.billsec = max(0, int((cdr.ended_at - cdr.answered_at).total_seconds()))
        billed = rate_call(cdr)  # an ended outside call: its costs are written with it
        cdr.save()
        new = [s for s in segs.values() if s.pk is None]
        for seg in new:
            seg.cdr = cdr
        CdrSegment.objects.bulk_create(new)
        for seq in touched:
            if segs[seq] not in new:
                segs[seq].save()
        if billed is not None:
            charge_call(cdr, billed)  # its tenant's account, in this transaction
        for observe in requests.CALL_OBSERVERS:
            observe(call_id, events)


def _fold(cdr: Any, segs: dict[int, Any], touched: set[int], event: dict[str, str]) -> None:
    """One event into the in-memory record; every rule gives the same result when an event
    comes twice or out of order (timestamps only filled or moved outwards)."""
    from telephony.models import CallStatus, CdrSegment

    kind = event.get("type", "")
    ts = _ts(event.get("ts")) or datetime.now(tz=UTC)
    seq = int(event.get("segment") or 1)
    seg = segs.get(seq)
    if seg is None:
        seg = segs[seq] = CdrSegment(seq=seq, started_at=ts, kind=event.get("kind") or "call")
    touched.add(seq)
    legs = _legs(event.get("legs"))
    if legs:
        seg.legs = legs
    _outside_facts(cdr, event)
    if kind == EventType.CALL_STARTED:
        cdr.started_at = _earliest(cdr.started_at, ts) or ts
        cdr.caller_number = event.get("caller") or cdr.caller_number
        cdr.caller_name = event.get("caller_name") or cdr.caller_name
        cdr.callee_number = event.get("callee") or cdr.callee_number
        seg.from_number = seg.from_number or event.get("caller", "")
        seg.to_number = seg.to_number or event.get("callee", "")
        seg.started_at = _earliest(seg.started_at, ts) or ts
    elif kind == EventType.CALL_RINGING:
        seg.ringing_at = _earliest(seg.ringing_at, ts)
    elif kind == EventType.CALL_ANSWERED:
        seg.answered_at = _earliest(seg.answered_at, ts)
        cdr.answered_at = _earliest(cdr.answered_at, ts)
        if seg.status == CallStatus.IN_PROGRESS:
            seg.status = CallStatus.ANSWERED
    elif kind in (EventType.CALL_TRANSFERRED, EventType.CALL_FORWARDED):
        # Both open the call's next segment (its kind says which), from the old party to the new.
        seg.kind = event.get("kind") or seg.kind
        seg.from_number = seg.from_number or event.get("from", "")
        seg.to_number = seg.to_number or event.get("to", "")
        seg.started_at = _earliest(seg.started_at, ts) or ts
        prev = segs.get(seq - 1)
        if prev is not None and prev.ended_at is None:
            prev.ended_at = ts  # the segment before it ends where this one starts
            touched.add(seq - 1)
    elif kind == EventType.CALL_PICKED_UP:
        # Answered by another extension than the one that rang: the segment ends there.
        seg.to_number = event.get("by") or seg.to_number
    elif kind in (EventType.CALL_PARKED, EventType.CALL_UNPARKED):
        pass  # the live portal's (PARKED); the CDR keeps the transfer that parked it
    elif kind == EventType.CALL_ENDED:
        cdr.ended_at = _latest(cdr.ended_at, ts)
        cdr.status = event.get("status") or CallStatus.FAILED
        cdr.end_reason = event.get("reason", "")[:64]
        # Close every segment still open; one that never answered takes the call's outcome.
        for other in segs.values():
            if other.ended_at is None or other is seg:
                other.ended_at = _latest(other.ended_at, ts) if other is seg else ts
                if other.status == CallStatus.IN_PROGRESS:
                    other.status = cdr.status
                touched.add(other.seq)


_MAX_TRUNK = 2**31 - 1


def _outside_facts(cdr: Any, event: dict[str, str]) -> None:
    """An outside call's facts (``CDR_FIELDS``) from any call event that carries them
    (``call.started``, ``call.routed``, ...): the last non-empty value of each is kept, and
    a value the record cannot hold (an unknown direction, a trunk that is no id) is ignored."""
    from telephony.models import CallDirection

    for name in CDR_FIELDS:
        value = event.get(name)
        if not value:
            continue
        if name == "direction":
            if value in CallDirection.values:
                cdr.direction = value
        elif name == "trunk":
            try:
                trunk = int(value)
            except ValueError:
                continue
            if 0 < trunk <= _MAX_TRUNK:
                cdr.trunk = trunk
        else:
            setattr(cdr, name, str(value)[: type(cdr)._meta.get_field(name).max_length])


# ------------------------------------------------------------------------------ consuming


class CdrConsumer(EventsReader):
    """Reads call events with a Redis consumer group and writes CDRs in tenant schemas.

    ``redis`` is a synchronous ``redis.Redis``. ``run_once()`` handles one batch and returns the
    number of entries acknowledged; ``drain()`` runs batches until the stream has nothing new.
    """

    kind = GROUP
    default_batch = 500

    def __init__(self, redis: Any, **options: Any) -> None:
        super().__init__(redis, **options)
        self._schemas: dict[str, bool] = {}

    def _tenant_exists(self, schema: str) -> bool:
        known = self._schemas.get(schema)
        if known is None:
            from tenants.models import Tenant

            known = Tenant.objects.filter(schema_name=schema).exclude(schema_name="public").exists()
            self._schemas[schema] = known
        return known

    def process(self, entries: Iterable[tuple[str, dict[str, str]]]) -> int:
        """Apply a batch and acknowledge what was committed; returns entries acknowledged.

        One transaction per tenant per batch (a commit per event would cap us at a few hundred
        events/s); if it fails, that tenant's events are retried one by one so a single bad
        event cannot hold the others back.
        """
        done: list[str] = []
        by_schema: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for entry_id, event in entries:
            schema = event.get("schema", "")
            if event.get("type") in requests.HANDLERS and schema and self._tenant_exists(schema):
                if self._request(schema, event):
                    done.append(entry_id)
            elif event.get("type") not in CALL_EVENTS:
                done.append(entry_id)
            elif not schema or not self._tenant_exists(schema):
                log.warning("call event for unknown schema %r dropped", schema)
                done.append(entry_id)
            else:
                by_schema.setdefault(schema, []).append((entry_id, event))
        for schema, items in by_schema.items():
            with schema_context(schema):
                try:
                    by_call: dict[str, list[dict[str, str]]] = {}
                    for _, event in items:
                        by_call.setdefault(event.get("call_id", ""), []).append(event)
                    with transaction.atomic():
                        for call_id, events in by_call.items():
                            apply_events(call_id, events)
                    done.extend(entry_id for entry_id, _ in items)
                    continue
                except Exception:
                    log.exception(
                        "batch of %d events for %s failed; one by one", len(items), schema
                    )
                for entry_id, event in items:
                    try:
                        apply_event(event)
                    except Exception:
                        # Left pending: retried on the next run (or claimed by another worker).
                        log.exception("could not apply %s for %s", event.get("type"), schema)
                        continue
                    done.append(entry_id)
        for flush in requests.AFTER_BATCH:
            flush()
        if not done:
            return 0
        return int(self.redis.xack(self.stream, self.group, *done))

    @staticmethod
    def _request(schema: str, event: dict[str, str]) -> bool:
        """Apply one of the engine's requests (``requests.py``); False leaves it pending."""
        with schema_context(schema):
            try:
                with transaction.atomic():
                    requests.handle(event)
            except Exception:
                log.exception("could not apply %s for %s", event.get("type"), schema)
                return False
        return True

    def drain(self, max_batches: int = 1000) -> int:
        """Handle everything outstanding; returns the number of entries acknowledged.

        Order: our own entries delivered before a crash and never acknowledged, then entries
        claimed from dead consumers, then new ones. An entry that fails stays pending for the
        next run (each source is read once per run, so a failing entry cannot spin us).
        """
        self.ensure_group()
        total = self.process(self.read("0"))
        total += self.process(self.claim())
        for _ in range(max_batches):
            entries = self.read(">")
            if not entries:
                break
            total += self.process(entries)
        self.trim()
        return total
