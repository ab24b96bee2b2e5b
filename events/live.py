"""The live state of a tenant in Redis: who is online on which devices, on a call, ringing, DND.

Written only by the fan-out (:mod:`events.fanout`), in the order the engine emitted events;
read by page loads and by WebSocket subscribers right after they subscribe, so a page shows the
current state before live updates arrive. Keys carry the PBX's prefix (``SIP_REDIS_PREFIX``) and
the schema name (the templates are ``telephony.sip.contract``'s ``LIVE_*``):

- ``live:<schema>:dev:<ext>``  hash contact -> device JSON (address, port, transport, user agent,
  expires_at); expired devices are ignored on read, so a lost "expired" event does no harm
- ``live:<schema>:online``     set of extensions that have (or recently had) devices
- ``live:<schema>:calls``      hash call id -> {state, caller, callee, parties, started_at, and
                               for trunk calls direction, trunk, did, dialled, number, presented}
- ``live:<schema>:dnd``        hash extension -> "1" / "0" (from the routing snapshots)

and reads the engines' parked calls (``sip:park:<schema>``, the contract's ``PARKED``: slot ->
{call_id, caller, caller_name, by, at, engine}), which the engines write themselves.

A cached call also keeps what the team features did to it: ``called`` (the number first called,
so a call to a ring group still shows the group when a member rings), ``picked_up_by`` (the
extension that answered it through a pickup) and ``parked`` ({slot, by, at} while parked).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from telephony.sip.contract import (
    CDR_FIELDS,
    LIVE_CALLS,
    LIVE_DEVICES,
    LIVE_DND,
    LIVE_ONLINE,
    PARKED,
    EventType,
)
from telephony.sip.contract import key as contract_key

if TYPE_CHECKING:
    from telephony.sip.contract import ExtensionSnapshot, RingGroup

KEY_TTL = 24 * 3600  # a tenant with no traffic for a day starts again from nothing
CALL_MAX_AGE = 12 * 3600  # a call whose end we never heard of stops counting after this

ON_CALL = "on_call"
RINGING = "ringing"
PARKED_STATE = "parked"


def parse_source(source: str) -> tuple[str, str, int]:
    """``udp:203.0.113.5:5060`` (or ``tls:[2001:db8::1]:5061``) -> transport, address, port."""
    transport, _, rest = source.partition(":")
    address, _, port = rest.rpartition(":")
    address = address.strip("[]")
    return transport.lower(), address, int(port) if port.isdigit() else 0


def device_from_event(event: dict[str, str], now: float | None = None) -> dict[str, Any]:
    transport, address, port = parse_source(event.get("source", ""))
    now = time.time() if now is None else now
    try:
        expires = max(0, int(float(event.get("expires") or 0)))
    except ValueError:
        expires = 0
    return {
        "contact": event.get("contact", ""),
        "address": address,
        "port": port,
        "transport": transport,
        "user_agent": event.get("user_agent", ""),
        "expires_at": round(now + expires, 3),
    }


def _loads(raw: bytes | str | None) -> Any:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _device_alive(device: Any, now: float) -> bool:
    """A device entry whose registration has not expired."""
    return isinstance(device, dict) and device.get("expires_at", 0) > now


def _call_alive(call: Any, now: float) -> bool:
    """A call entry not older than any call can be (its end was heard, or it is let go)."""
    return isinstance(call, dict) and now - call.get("started_at", now) < CALL_MAX_AGE


def _alive(
    raw: Mapping[Any, Any], now: float, alive: Callable[[Any, float], bool]
) -> dict[str, dict]:
    """A ``LIVE_DEVICES`` or ``LIVE_CALLS`` hash as read: its entries still ``alive`` (the
    unexpired devices by contact, the calls still going by call id)."""
    out = {}
    for field, value in raw.items():
        entry = _loads(value)
        if alive(entry, now):
            out[_s(field)] = entry
    return out


def _dnd(raw: Mapping[Any, Any]) -> dict[str, bool]:
    return {_s(k): _s(v) == "1" for k, v in raw.items()}


def _parked(raw: Mapping[Any, Any]) -> list[dict[str, Any]]:
    """A ``PARKED`` hash as read: see :meth:`LiveState.parked`."""
    out: list[dict[str, Any]] = []
    for slot, value in raw.items():
        entry = _loads(value)
        if not isinstance(entry, dict):
            continue
        out.append(
            {
                "slot": _s(slot),
                "call_id": str(entry.get("call_id") or ""),
                "caller": str(entry.get("caller") or ""),
                "caller_name": str(entry.get("caller_name") or ""),
                "by": str(entry.get("by") or ""),
                "at": _float(str(entry.get("at") or "")) or 0.0,
            }
        )
    out.sort(key=lambda p: (len(p["slot"]), p["slot"]))
    return out


class LiveState:
    """Reads and writes of one Redis (a synchronous ``redis.Redis``); ``prefix`` goes before
    every name (default: this PBX's ``SIP_REDIS_PREFIX``)."""

    def __init__(self, redis: Any, prefix: str | None = None) -> None:
        if prefix is None:
            from django.conf import settings

            prefix = settings.SIP_REDIS_PREFIX
        self.redis = redis
        self.prefix = prefix

    def _key(self, template: str, schema: str, ext: str = "") -> str:
        return contract_key(self.prefix, template, schema=schema, ext=ext)

    # ----------------------------------------------------------------------- devices
    def devices(self, schema: str, ext: str, now: float | None = None) -> dict[str, dict]:
        """Unexpired devices of an extension, by contact."""
        now = time.time() if now is None else now
        return _alive(self.redis.hgetall(self._key(LIVE_DEVICES, schema, ext)), now, _device_alive)

    def put_device(self, schema: str, ext: str, device: dict[str, Any]) -> None:
        key = self._key(LIVE_DEVICES, schema, ext)
        online = self._key(LIVE_ONLINE, schema)
        pipe = self.redis.pipeline()
        pipe.hset(key, device["contact"], json.dumps(device))
        pipe.expire(key, max(60, int(device["expires_at"] - time.time()) + 60))
        pipe.sadd(online, ext)
        pipe.expire(online, KEY_TTL)
        pipe.execute()

    def remove_device(self, schema: str, ext: str, contact: str) -> None:
        key = self._key(LIVE_DEVICES, schema, ext)
        self.redis.hdel(key, contact)
        if not self.redis.hlen(key):
            self.redis.srem(self._key(LIVE_ONLINE, schema), ext)

    # ------------------------------------------------------------------------- calls
    def calls(self, schema: str, now: float | None = None) -> dict[str, dict]:
        now = time.time() if now is None else now
        return _alive(self.redis.hgetall(self._key(LIVE_CALLS, schema)), now, _call_alive)

    def put_call(self, schema: str, call_id: str, call: dict[str, Any] | None) -> None:
        key = self._key(LIVE_CALLS, schema)
        if call is None:
            self.redis.hdel(key, call_id)
            return
        pipe = self.redis.pipeline()
        pipe.hset(key, call_id, json.dumps(call))
        pipe.expire(key, CALL_MAX_AGE)
        pipe.execute()

    # --------------------------------------------------------------------------- DND
    def dnd(self, schema: str) -> dict[str, bool]:
        return _dnd(self.redis.hgetall(self._key(LIVE_DND, schema)))

    def put_dnd(self, schema: str, values: dict[str, bool]) -> None:
        key = self._key(LIVE_DND, schema)
        pipe = self.redis.pipeline()
        pipe.delete(key)
        if values:
            pipe.hset(key, mapping={k: "1" if v else "0" for k, v in values.items()})
            pipe.expire(key, KEY_TTL)
        pipe.execute()

    # ------------------------------------------------------------------- parked calls
    def parked(self, schema: str) -> list[dict[str, Any]]:
        """The tenant's parked calls as the engines hold them (``PARKED``), by slot number:
        each {slot, call_id, caller, caller_name, by, at}. An entry that is not the
        contract's JSON object is passed over (an engine of another version, a hand edit)."""
        return _parked(self.redis.hgetall(self._key(PARKED, schema)))

    # ----------------------------------------------------------------------- reading
    def online_extensions(self, schema: str) -> set[str]:
        return {_s(e) for e in self.redis.smembers(self._key(LIVE_ONLINE, schema))}

    def usage(self, schemas: list[str], now: float | None = None) -> dict[str, tuple[int, int]]:
        """``schema -> (extensions online, calls in progress)`` for many tenants at once (the
        provider's dashboard), counted as :meth:`tenant_state` counts them, in two pipelined
        round trips whatever the number of tenants."""
        now = time.time() if now is None else now
        pipe = self.redis.pipeline(transaction=False)
        for schema in schemas:
            pipe.smembers(self._key(LIVE_ONLINE, schema))
            pipe.hvals(self._key(LIVE_CALLS, schema))
        first = pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        asked = []
        for schema, members in zip(schemas, first[::2], strict=True):
            for ext in members:
                pipe.hvals(self._key(LIVE_DEVICES, schema, _s(ext)))
                asked.append(schema)
        devices = pipe.execute() if asked else []
        online = Counter(
            schema
            for schema, values in zip(asked, devices, strict=True)
            if any(_device_alive(_loads(v), now) for v in values)
        )
        return {
            schema: (online[schema], sum(1 for v in calls if _call_alive(_loads(v), now)))
            for schema, calls in zip(schemas, first[1::2], strict=True)
        }

    def tenant_state(
        self,
        schema: str,
        extensions: Mapping[str, ExtensionSnapshot] | None = None,
        ring_groups: Mapping[str, RingGroup] | None = None,
    ) -> dict:
        """Everything a live page shows: every known extension's status, the calls and the
        parked calls.

        ``extensions`` (the tenant's routing snapshot's) adds the offline ones and names;
        ``ring_groups`` (its team snapshot's) names the group a call was made to
        (``group``), and is handed to the page (``groups``: number -> name) for the calls
        that start after it was drawn.
        """
        now = time.time()
        # Two round trips, whatever the number of extensions: the tenant's hashes, then the
        # devices of every extension shown.
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(self._key(LIVE_CALLS, schema))
        pipe.hgetall(self._key(LIVE_DND, schema))
        pipe.smembers(self._key(LIVE_ONLINE, schema))
        pipe.hgetall(self._key(PARKED, schema))
        raw_calls, raw_dnd, online, raw_parked = pipe.execute()
        calls = _alive(raw_calls, now, _call_alive)
        statuses = call_statuses(calls)
        dnd = _dnd(raw_dnd)
        numbers = set(extensions or {}) | {_s(e) for e in online} | set(statuses)
        if extensions is not None:
            numbers &= set(extensions)  # only the tenant's extensions, not outside numbers
        shown = sorted(numbers)
        pipe = self.redis.pipeline(transaction=False)
        for number in shown:
            pipe.hgetall(self._key(LIVE_DEVICES, schema, number))
        raw_devices = pipe.execute() if shown else []
        out = {}
        for number, raw in zip(shown, raw_devices, strict=True):
            ext = (extensions or {}).get(number)
            out[number] = status_payload(
                number,
                list(_alive(raw, now, _device_alive).values()),
                statuses.get(number, ""),
                dnd.get(number, ext is not None and ext.dnd),
                display_name=ext.display_name if ext is not None else "",
            )
        groups = {n: g.name or n for n, g in (ring_groups or {}).items()}
        rows = []
        for cid, c in calls.items():
            row = {"call_id": cid, **{k: v for k, v in c.items() if k != "parties"}}
            if c.get("called") in groups:
                row["group"] = groups[c["called"]]
            rows.append(row)
        state: dict[str, Any] = {
            "extensions": out,
            "calls": sorted(rows, key=lambda c: (c.get("started_at", 0), c["call_id"])),
        }
        parked = _parked(raw_parked)
        if parked:
            state["parked"] = parked
        if groups:
            state["groups"] = groups
        return state


def status_payload(
    ext: str, devices: list[dict], call_status: str, dnd: bool, *, display_name: str = ""
) -> dict[str, Any]:
    """The data of an ``extension.status`` event (and of one row of a live page)."""
    payload: dict[str, Any] = {
        "extension": ext,
        "online": bool(devices),
        "devices": sorted(
            (
                {k: d.get(k) for k in ("address", "port", "transport", "user_agent", "contact")}
                for d in devices
            ),
            key=lambda d: d["contact"] or "",
        ),
        "call_status": call_status,
        "dnd": dnd,
    }
    if display_name:
        payload["display_name"] = display_name
    return payload


def call_statuses(calls: dict[str, dict]) -> dict[str, str]:
    """Extension -> ``on_call`` or ``ringing`` over all calls (on a call wins over ringing)."""
    out: dict[str, str] = {}
    for call in calls.values():
        for ext, state in (call.get("parties") or {}).items():
            if state == ON_CALL or out.get(ext) != ON_CALL:
                out[ext] = state
    return out


def _leg_users(event: dict[str, str]) -> list[str]:
    """Extensions on the call's legs right now (the engine's ``legs``: [{"leg", "user"}])."""
    legs = _loads(event.get("legs")) or []
    if not isinstance(legs, list):
        return []
    return [str(leg["user"]) for leg in legs if isinstance(leg, dict) and leg.get("user")]


#: The recording states a live call shows (``call.recording``'s ``state``; "stopped": none).
RECORDING_SHOWN = ("recording", "paused")


def next_call(call: dict[str, Any] | None, event: dict[str, str]) -> dict[str, Any] | None:
    """The cached call after a call event (None: the call is over).

    The engine names the extensions on the call's legs in every event (after a transfer: the
    party that stayed and the new one), so answered and transferred calls take their parties
    from the legs; the caller and callee fields (caller-ID numbers) are the fallback. A callee
    rings before it has a leg of its own, so ringing uses the callee of ``call.started``.
    """
    kind = event.get("type", "")
    if kind == EventType.CALL_ENDED:
        return None
    if kind == EventType.CALL_UNPARKED and event.get("reason") == "hangup":
        return None  # the parked caller hung up: nothing is left of the call
    ts = _float(event.get("ts")) or time.time()
    call = dict(call or {"state": "started", "started_at": ts, "parties": {}})
    parties: dict[str, str] = dict(call.get("parties") or {})
    users = _leg_users(event)
    caller = call.get("caller") or event.get("caller", "")
    callee = event.get("callee") or call.get("callee", "")
    call.update(caller=caller, callee=callee)
    if callee and not call.get("called"):
        call["called"] = callee  # a ring group's number stays, whichever member rings
    if event.get("caller_name") and not call.get("caller_name"):
        call["caller_name"] = event["caller_name"]
    # An outside call's facts (trunk, DID, numbers): the last non-empty value, as in the CDR.
    for name in CDR_FIELDS:
        if event.get(name):
            call[name] = event[name]
    if kind == EventType.CALL_STARTED:
        # The caller is busy from the moment it dials (as phones show it).
        for party in users or [caller]:
            if party:
                parties[party] = ON_CALL
    elif kind == EventType.CALL_RINGING:
        call["state"] = "ringing"
        if callee and parties.get(callee) != ON_CALL:
            parties[callee] = RINGING
    elif kind == EventType.CALL_FORWARDED:
        # The forwarding extension stops ringing; the target rings on the next call.ringing.
        if parties.get(event.get("from", "")) == RINGING:
            del parties[event["from"]]
        if event.get("to"):
            call["callee"] = event["to"]
    elif kind in (EventType.CALL_ANSWERED, EventType.CALL_TRANSFERRED):
        call["state"] = "answered"
        call.setdefault("answered_at", ts)
        if users:
            # Whoever is not on a leg any more (the transferor, a callee that never answered)
            # has left the call.
            parties = {user: ON_CALL for user in users}
        else:
            for party in (caller, callee, event.get("to", "")):
                if party:
                    parties[party] = ON_CALL
        if kind == EventType.CALL_TRANSFERRED and event.get("to"):
            call["callee"] = event["to"]
    elif kind in (EventType.CALL_PICKED_UP, EventType.CALL_PARKED, EventType.CALL_UNPARKED):
        parties = _team_event(call, parties, kind, event, users, ts)
    elif kind == EventType.CALL_RECORDING:
        # Shown on the live page: "recording" or "paused"; stopped, nothing.
        if event.get("state") in RECORDING_SHOWN:
            call["recording"] = event["state"]
        else:
            call.pop("recording", None)
    call["parties"] = parties
    return call


def _team_event(
    call: dict[str, Any],
    parties: dict[str, str],
    kind: str,
    event: dict[str, str],
    users: list[str],
    ts: float,
) -> dict[str, str]:
    """The parties after a pickup, a park or an unpark; ``call`` takes the facts shown. As
    for an answer, the legs name the parties when the event has them."""
    by = event.get("by", "")
    if kind == EventType.CALL_UNPARKED:
        parked = call.pop("parked", None) or {}
        if event.get("reason") == "timeout":  # back to ring its parker
            call["state"] = "ringing"
            parker = by or parked.get("by", "")
            if parker:
                call["callee"] = parker
                if parties.get(parker) != ON_CALL:
                    parties[parker] = RINGING
            return parties
    if kind == EventType.CALL_PARKED:
        call.update(state=PARKED_STATE, parked={"slot": event.get("slot", ""), "by": by, "at": ts})
        kept = {p: s for p, s in parties.items() if p != by}  # the parker hung up on it
    else:  # picked up, or retrieved from its slot, by ``by``
        call["state"] = "answered"
        kept = parties
        if kind == EventType.CALL_PICKED_UP:
            call["picked_up_by"] = by
            call.setdefault("answered_at", ts)
            # Whoever else was ringing stops: the call was answered elsewhere.
            kept = {p: s for p, s in parties.items() if s == ON_CALL}
        if by:
            kept[by] = ON_CALL
    return {user: ON_CALL for user in users} if users else kept


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def tenant_live_state(tenant) -> dict:
    """The live state of ``tenant``, its extensions taken from its routing snapshot."""
    from telephony.engine import store
    from telephony.engine.snapshots import published_snapshot

    client = store.client()
    try:
        snapshot = published_snapshot(client, tenant.sip_domain or "")
        extensions = snapshot.extensions if snapshot is not None else {}
        groups = snapshot.team.ring_groups if snapshot is not None else {}
        return LiveState(client).tenant_state(tenant.schema_name, extensions, groups)
    finally:
        client.close()
