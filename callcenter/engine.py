"""The engine's contact-centre events into the statistics' rows, applied inside the tenant's
schema and a transaction by the CDR drain (``telephony.engine.requests``). Each is idempotent
(an entry may come twice) and drops what it cannot apply with a log line:

- ``queue.joined``: a :class:`QueueCall` (one per call, queue and join time);
- ``queue.answered`` / ``queue.left`` / ``queue.sla`` / ``queue.callback``: that visit's
  outcome, agent, wait, SLA flags and callback number (a visit whose ``queue.joined`` was lost
  is made from the later event: it joined ``waited`` seconds before); once an outcome is
  recorded the tenant's wallboard is sent again after the drain's batch, once per tenant (its
  answered and abandoned counts moved);
- ``agent.state``: an :class:`AgentStateChange` (the agent reports' history);
- ``call.ended`` (observed with the CDR, ``requests.observe_calls``): the talk time of the
  call's answered visits.

``queue.supervision`` has nothing to keep: the fan-out sends it to webhooks and the WebSocket.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction

from pbx.tenancy import current_schema
from telephony.engine.requests import after_batch, observe_calls, register
from telephony.sip.contract import AgentState, EventType, QueueExit, clean_reason

from .choices import QueueOutcome
from .models import AgentStateChange, Queue, QueueCall
from .wallboard import push

log = logging.getLogger(__name__)

# A visit's later events name it by call and queue; they follow its join within this much
# clock skew between engines (a caller who comes back to the queue is a new visit).
SKEW = timedelta(seconds=5)
# Tenants whose figures of the day moved in the drain's current batch (their wallboards go out
# after it: one frame per tenant, not one per event).
_moved: set[str] = set()


def _text(value, limit: int) -> str:
    spaced = "".join(c if c.isprintable() else " " for c in str(value or ""))
    return " ".join(spaced.split())[:limit]


def _ts(event: dict[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(float(event.get("ts") or ""), tz=UTC)
    except (ValueError, OverflowError):
        return datetime.now(tz=UTC)


def _seconds(value) -> float:
    try:
        seconds = float(value or 0)
    except ValueError:
        return 0.0
    return seconds if 0 <= seconds < 7 * 86400 else 0.0


def _visit(event: dict[str, str], *, create: bool) -> QueueCall | None:
    """The visit an event of a waiting caller is about (locked), the latest one of its call in
    its queue; made from the event when its ``queue.joined`` never came and ``create``."""
    call_id, number = _text(event.get("call_id"), 128), _text(event.get("queue"), 64)
    if not call_id or not number:
        log.warning("%s without call or queue dropped: %r", event.get("type"), event)
        return None
    ts = _ts(event)
    visit = (
        QueueCall.objects.select_for_update()
        .filter(call_id=call_id, queue_number=number, joined_at__lte=ts + SKEW)
        .order_by("-joined_at", "-id")
        .first()
    )
    if visit is None and create:
        joined = ts - timedelta(seconds=_seconds(event.get("waited")))
        visit, _ = QueueCall.objects.get_or_create(
            call_id=call_id,
            queue_number=number,
            joined_at=joined,
            defaults={"queue": Queue.objects.filter(number=number).first()},
        )
    return visit


def _figures_moved() -> None:
    """The tenant's answered / abandoned / overflowed today moved: once this transaction
    commits, its wallboard goes out after the batch."""
    schema = current_schema()
    transaction.on_commit(lambda: _moved.add(schema))


@after_batch
def push_wallboards() -> None:
    """Send the wallboard of each tenant whose figures moved in the batch."""
    if not _moved:
        return
    from channels.layers import get_channel_layer

    schemas = [_moved.pop() for _ in range(len(_moved))]
    layer = get_channel_layer()
    if layer is not None:
        push(layer, schemas)


@register(EventType.QUEUE_JOINED)
def queue_joined(event: dict[str, str]) -> None:
    call_id, number = _text(event.get("call_id"), 128), _text(event.get("queue"), 64)
    if not call_id or not number:
        log.warning("queue.joined without call or queue dropped: %r", event)
        return
    QueueCall.objects.get_or_create(
        call_id=call_id,
        queue_number=number,
        joined_at=_ts(event),
        defaults={
            "queue": Queue.objects.filter(number=number).first(),
            "caller": _text(event.get("caller"), 64),
            "caller_name": _text(event.get("caller_name"), 120),
            "vip": event.get("vip") == "1",
        },
    )


@register(EventType.QUEUE_ANSWERED)
def queue_answered(event: dict[str, str]) -> None:
    visit = _visit(event, create=True)
    if visit is None:
        return
    visit.outcome = QueueOutcome.ANSWERED
    visit.answered_at = _ts(event)
    visit.agent = _text(event.get("agent"), 64)
    visit.waited_seconds = _seconds(event.get("waited"))
    visit.within_sla = event.get("sla") == "1"
    visit.save(update_fields=["outcome", "answered_at", "agent", "waited_seconds", "within_sla"])
    _figures_moved()  # "answered today"


@register(EventType.QUEUE_LEFT)
def queue_left(event: dict[str, str]) -> None:
    reason = event.get("reason", "")
    if reason not in QueueExit._value2member_map_:
        log.warning("queue.left with unknown reason %r dropped", reason)
        return
    visit = _visit(event, create=True)
    if visit is None or visit.outcome == QueueOutcome.ANSWERED:
        return  # answered is final: a late "left" of the same visit changes nothing
    visit.outcome = reason  # QueueExit's values are QueueOutcome's
    visit.left_at = _ts(event)
    visit.waited_seconds = _seconds(event.get("waited")) or visit.waited_seconds
    visit.save(update_fields=["outcome", "left_at", "waited_seconds"])
    _figures_moved()  # abandoned or overflowed today


@register(EventType.QUEUE_SLA)
def queue_sla(event: dict[str, str]) -> None:
    visit = _visit(event, create=False)
    if visit is not None and not visit.sla_breached:
        visit.sla_breached = True
        visit.save(update_fields=["sla_breached"])


@register(EventType.QUEUE_CALLBACK)
def queue_callback(event: dict[str, str]) -> None:
    visit = _visit(event, create=False)
    number = _text(event.get("number"), 64)
    if visit is None or not number:
        log.info("queue.callback for an unknown visit dropped: %r", event)
        return
    fields = []
    if visit.callback_number != number:
        visit.callback_number = number
        fields.append("callback_number")
    if visit.outcome == QueueOutcome.WAITING:
        visit.outcome = QueueOutcome.CALLBACK
        fields.append("outcome")
    if fields:
        visit.save(update_fields=fields)


@register(EventType.AGENT_STATE)
def agent_state(event: dict[str, str]) -> None:
    agent, state = _text(event.get("agent"), 64), event.get("state", "")
    if not agent or state not in AgentState._value2member_map_:
        log.warning("agent.state without agent or with unknown state dropped: %r", event)
        return
    row = {
        "extension": agent,
        "queue_number": _text(event.get("queue"), 64),
        "state": state,
        "reason": clean_reason(event.get("reason")),
        "by": _text(event.get("by"), 16),
        "at": _ts(event),
    }
    if not AgentStateChange.objects.filter(**row).exists():  # delivered twice
        AgentStateChange.objects.create(**row)


@observe_calls
def call_ended(call_id: str, events: list[dict[str, str]]) -> None:
    """The talk time of the call's answered visits, from its end."""
    ended = [_ts(e) for e in events if e.get("type") == EventType.CALL_ENDED]
    if not ended or not call_id:
        return
    end = max(ended)
    for visit in QueueCall.objects.select_for_update().filter(
        call_id=call_id, outcome=QueueOutcome.ANSWERED, answered_at__isnull=False
    ):
        assert visit.answered_at is not None  # noqa: S101 - filtered above
        talk = round(max(0.0, (end - visit.answered_at).total_seconds()), 1)
        if visit.talk_seconds != talk:
            visit.talk_seconds = talk
            visit.save(update_fields=["talk_seconds"])
