"""The portal's view of live state: read from the live-state cache that the fan-out keeps
(:mod:`events.live`), so a page is right before its WebSocket delivers the first update, and the
hang-up request the active-calls page sends to the engine."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from events.live import tenant_live_state

log = logging.getLogger(__name__)

# The label a row shows, strongest first: a phone on a call is "on call" whatever else holds.
STATUS_LABELS = {"on_call": "on call", "ringing": "ringing"}


def live_state(tenant) -> dict:
    """The tenant's live state, or an empty one marked ``unavailable`` (a page must render
    when Redis hiccups; the WebSocket's snapshot fills it in once it is back)."""
    try:
        state = tenant_live_state(tenant)
    except Exception:
        log.exception("live state of %s unavailable", tenant.schema_name)
        return {"extensions": {}, "calls": [], "parked": [], "unavailable": True}
    for call in state["calls"]:
        call["started"] = _when(call.get("started_at"))
    state.setdefault("parked", [])
    for entry in state["parked"]:
        entry["since"] = _when(entry.get("at"))
    return state


def status_label(entry: dict | None) -> str:
    """``on call``, ``ringing``, ``online`` or ``offline`` (DND is shown beside it)."""
    if not entry:
        return "offline"
    label = STATUS_LABELS.get(entry.get("call_status") or "")
    if label:
        return label
    return "online" if entry.get("online") else "offline"


def _when(ts) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(ts), tz=UTC)
    except (TypeError, ValueError):
        return None


def request_hangup(tenant, call_id: str, actor) -> bool:
    """Ask the engine to end one of the tenant's calls (the REST API's action). False when the
    engine has no such call of this tenant."""
    from pbx.errors import NotFound
    from telephony.actions import do_hangup_call

    try:
        do_hangup_call(tenant, call_id, actor=actor)
    except NotFound:
        return False
    return True
