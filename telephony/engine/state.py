"""The SIP engines' live state in Redis, read (and commanded) from the Django side.

The engines write locations (``telephony/sip/registrar.py``), bans (``security.py``) and the
mirror of calls in progress (the call layer) and listen on a control channel; the API, the portal
and the actions read and command them only through this module. Keys carry the engine's optional
prefix (``SIP_REDIS_PREFIX``); the names are the contract's (``telephony/sip/contract.py``).
"""

import json
import time
from datetime import UTC, datetime

import redis
from redis.typing import EncodableT, FieldT

from telephony.sip.contract import (
    BAN,
    BAN_CHANGED,
    CALLS,
    CONTROL,
    EVENTS,
    LOCATION,
    ControlMessage,
    EventType,
)

from . import store
from .store import redis_key


def _redis() -> redis.Redis:
    return store.client(decode=True)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat()


# ----------------------------------------------------------------------------- registrations


def tenant_registrations(domain: str, extension: str | None = None) -> list[dict]:
    """Every live binding of a SIP domain, ordered by extension then contact."""
    r = _redis()
    pattern = redis_key(LOCATION, domain=domain, user=extension or "*")
    keys = sorted(r.scan_iter(match=pattern, count=1000))
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    now = time.time()
    prefix = redis_key(LOCATION, domain=domain, user="")
    items = []
    for key, fields in zip(keys, pipe.execute(), strict=True):
        user = key[len(prefix) :]
        for raw in fields.values():
            b = json.loads(raw)
            if b["expires_at"] <= now:
                continue  # expired, not yet reaped
            items.append(
                {
                    "extension": user,
                    "contact": b["contact"],
                    "transport": b["transport"],
                    "source_address": b["source_host"],
                    "source_port": b["source_port"],
                    "user_agent": b["user_agent"],
                    "instance": b.get("instance"),
                    "expires": int(b["expires_at"] - now + 0.5),
                    "expires_at": _iso(b["expires_at"]),
                    "registered_at": _iso(b.get("registered_at") or now),
                }
            )
    items.sort(key=lambda i: (i["extension"], i["contact"]))
    return items


# ------------------------------------------------------------------------------ calls


def active_calls(schema: str) -> list[dict]:
    """The tenant's calls in progress, oldest first."""
    calls = []
    for value in _redis().hvals(redis_key(CALLS, schema=schema)):
        try:
            calls.append(json.loads(value))
        except ValueError:
            continue
    return sorted(calls, key=lambda c: (c.get("started_at") or 0, c.get("call_id", "")))


def active_call(schema: str, call_id: str) -> dict | None:
    raw = _redis().hget(redis_key(CALLS, schema=schema), call_id or "")
    return json.loads(raw) if raw is not None else None


def close_orphaned_calls(
    client: redis.Redis, *, prefix: str, engine_id: str, stream: str = EVENTS
) -> int:
    """End the calls a previous run of this engine left in the mirror (it crashed or was
    killed: no ``call.ended`` was ever written for them). Run by ``manage.py sipengine`` before
    the engine starts. Each gets a ``call.ended`` event (status from whether it was answered,
    reason ``engine_restart``, now as its end), so the CDR consumer closes its record as for
    any call, and leaves the mirror. Calls of other engines (another ``engine_id``) are not
    touched; entries written before engines named themselves count as this engine's.
    """
    pattern = prefix + CALLS.format(schema="*")
    closed = 0
    for key in client.scan_iter(match=pattern, count=1000):
        key = key.decode() if isinstance(key, bytes) else key
        schema = key[len(prefix + CALLS.format(schema="")) :]
        for call_id, raw in client.hgetall(key).items():
            try:
                call = json.loads(raw)
            except ValueError:
                call = {}
            if call.get("engine", engine_id) != engine_id:
                continue
            event: dict[FieldT, EncodableT] = {
                "type": EventType.CALL_ENDED,
                "ts": f"{time.time():.3f}",
                "call_id": call.get("call_id") or _text(call_id),
                "schema": schema,
                "tenant_id": str(call.get("tenant_id") or ""),
                "segment": str(call.get("segment") or 1),
                "legs": json.dumps(call.get("legs") or []),
                "status": "answered" if call.get("answered_at") else "failed",
                "reason": "engine_restart",
            }
            pipe = client.pipeline(transaction=True)
            pipe.xadd(prefix + stream, event, maxlen=100_000, approximate=True)
            pipe.hdel(key, call_id)
            pipe.execute()
            closed += 1
    return closed


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def send_control(message: ControlMessage) -> None:
    """Publish a command to every engine (``CONTROL``)."""
    _redis().publish(redis_key(CONTROL), message.to_json())


# ------------------------------------------------------------------------------- bans


def current_bans() -> list[dict]:
    r = _redis()
    prefix = redis_key(BAN, ip="")
    keys = sorted(r.scan_iter(match=prefix + "*", count=1000))
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.pttl(key)
    out = pipe.execute()
    items = []
    for key, raw, ttl in zip(keys, out[::2], out[1::2], strict=True):
        if raw is None or ttl is None or ttl <= 0:
            continue
        try:
            info = json.loads(raw)
        except ValueError:
            info = {}
        items.append(
            {
                "ip": key[len(prefix) :],
                "reason": info.get("reason", ""),
                "banned_at": _iso(info["banned_at"]) if "banned_at" in info else None,
                "expires_in": round(ttl / 1000),
            }
        )
    return items


def lift_ban(ip: str) -> bool:
    """Delete a ban and tell every engine; False when the address was not banned."""
    r = _redis()
    if not r.delete(redis_key(BAN, ip=ip)):
        return False
    r.publish(redis_key(BAN_CHANGED), f"unban {ip}")
    return True
