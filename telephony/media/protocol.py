"""The media server's control protocol: newline-delimited JSON (UTF-8) over TCP.

Requests carry an ``id`` and an ``op``; each gets one reply with the same id::

    {"id": 7, "op": "play", "session": "c1-a", "items": [{"file": "/m/welcome.wav"}], ...}
    {"id": 7, "ok": true}
    {"id": 8, "ok": false, "error": "unknown session"}

Events have no id::

    {"event": "played", "session": "c1-a", "play": 7, "reason": "done"}

Requests (fields beyond id/op):

- ``open`` session, offer (SDP or null), tenant, inband (bool, optional), direction
  (optional: sendrecv | sendonly | recvonly | inactive, the most this session will do; our
  offer says it, our answers never say more than it: a page's listener is opened
  ``sendonly``) -> sdp
- ``answer`` session, sdp -> {}            ``update`` session, sdp -> sdp
- ``play`` session, items, loop, barge -> {}; later ``played`` {play: <request id>, reason}
  with reason done | dtmf | stopped | closed | error. Items: {"file": "/abs.wav"},
  {"tone": "ringback"|"busy"|"beep"|"congestion", "seconds": float?}, {"silence": seconds}.
- ``record`` session, path, max_seconds, silence_seconds, stop_digits, beep -> {}; later
  ``recorded`` {record: <request id>, path, seconds, reason} with reason
  digit | max | silence | stopped | closed (the file is written before the event), or error
  (with an ``error`` text: the file could not be written; seconds is 0).
- ``follow`` session, sources (a list of up to :data:`MAX_SOURCES` session ids of the same
  control connection and tenant; empty: stop) -> {}: the session sends what its sources
  *receive*, decoded, summed when there are several, and encoded for its own codec. The
  basis of every fan-out and mix: a page (each listener follows the pager), a conference
  (each member follows all the others), listen (the supervisor follows both parties) and
  whisper (the agent follows the caller and the supervisor, the caller only the agent). A
  play on the session goes first (a chime, an announcement); the following resumes after
  it. Replaces the previous sources; a source that closes is dropped. Each source keeps its
  last half second of decoded audio in a ring; a follower reads 20 ms per tick from it, a
  little behind the newest sample (jitter), and a frame one source encodes for a codec is
  reused by every follower with that codec in the same tick.
- ``stop`` session -> {}     ``close`` session -> {}
- ``stats`` reset (bool, optional: start the tick-lag figures afresh) -> counters

Other events: ``dtmf`` {session, digit}, ``closed`` {session, reason} (the server ended a
session itself, e.g. "timeout": no RTP for a minute).

``play`` and ``record`` events name the request that started them (``play`` / ``record``), so a
client can tell the end of a replaced play from the end of its successor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DIGITS",
    "MAX_LINE",
    "OPS",
    "ProtocolError",
    "Request",
    "decode",
    "encode",
    "error_reply",
    "event",
    "parse_request",
    "reply",
]

MAX_LINE = 1024 * 1024  # a line longer than this is refused (and the connection dropped)
DIGITS = "0123456789*#ABCD"
TONES = ("ringback", "busy", "beep", "congestion")
OPS = ("open", "answer", "update", "play", "record", "follow", "stop", "close", "stats")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SOURCES = 32
PLAY_REASONS = ("done", "dtmf", "stopped", "closed", "error")
RECORD_REASONS = ("digit", "max", "silence", "stopped", "closed", "error")
MAX_SECONDS = 3600.0
MAX_SESSION_ID = 200


class ProtocolError(Exception):
    """A line or request we cannot act on; the message goes back as the error text."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("bad JSON") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("a message is a JSON object")
    return obj


def reply(req_id: int, **fields: Any) -> dict[str, Any]:
    return {"id": req_id, "ok": True, **fields}


def error_reply(req_id: int | None, text: str) -> dict[str, Any]:
    return {"id": req_id, "ok": False, "error": text}


def event(name: str, session: str, **fields: Any) -> dict[str, Any]:
    return {"event": name, "session": session, **fields}


@dataclass(frozen=True)
class Request:
    """A checked request: ``args`` holds the op's fields, typed and defaulted."""

    id: int
    op: str
    session: str | None
    args: dict[str, Any]


def _str(obj: dict, name: str, *, default: str | None = None, max_len: int = 4096) -> str:
    value = obj.get(name, default)
    if not isinstance(value, str):
        raise ProtocolError(f"{name} must be a string")
    if len(value) > max_len or "\x00" in value:
        raise ProtocolError(f"bad {name}")
    return value


def _number(obj: dict, name: str, default: float | None = None, *, maximum: float) -> float:
    value = obj.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError(f"{name} must be a number")
    value = float(value)
    if not math.isfinite(value) or value < 0 or value > maximum:
        raise ProtocolError(f"{name} out of range")
    return value


def _bool(obj: dict, name: str, default: bool = False) -> bool:
    value = obj.get(name, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"{name} must be true or false")
    return value


def _direction(obj: dict) -> str:
    value = obj.get("direction")
    if value not in DIRECTIONS:
        raise ProtocolError(f"direction: one of {', '.join(DIRECTIONS)}")
    return str(value)


def _path(obj: dict, name: str) -> str:
    value = _str(obj, name)
    if not value.startswith("/"):
        raise ProtocolError(f"{name} must be an absolute path")
    return value


def _items(obj: dict) -> list[dict[str, Any]]:
    items = obj.get("items")
    if not isinstance(items, list) or not items:
        raise ProtocolError("items must be a non-empty list")
    if len(items) > 1000:
        raise ProtocolError("too many items")
    out: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            raise ProtocolError("an item is an object")
        if "file" in item:
            out.append({"file": _path(item, "file")})
        elif "tone" in item:
            name = item["tone"]
            if name not in TONES:
                raise ProtocolError(f"unknown tone (one of {', '.join(TONES)})")
            seconds = None
            if item.get("seconds") is not None:
                seconds = _number(item, "seconds", maximum=MAX_SECONDS)
            out.append({"tone": name, "seconds": seconds})
        elif "silence" in item:
            out.append({"silence": _number(item, "silence", maximum=MAX_SECONDS)})
        else:
            raise ProtocolError("an item is a file, a tone or silence")
    return out


def parse_request(obj: dict[str, Any]) -> Request:
    """Check a decoded request; :class:`ProtocolError` says what is wrong."""
    req_id = obj.get("id")
    if isinstance(req_id, bool) or not isinstance(req_id, int):
        raise ProtocolError("id must be an integer")
    op = obj.get("op")
    if op not in OPS:
        raise ProtocolError(f"unknown op {str(op)[:40]!r}")
    if op == "stats":
        return Request(req_id, op, None, {"reset": _bool(obj, "reset")})
    session = _str(obj, "session", max_len=MAX_SESSION_ID)
    if not session:
        raise ProtocolError("session must not be empty")
    args: dict[str, Any] = {}
    if op == "open":
        offer = obj.get("offer")
        if offer is not None and not isinstance(offer, str):
            raise ProtocolError("offer must be SDP text or null")
        args = {
            "offer": offer,
            "tenant": _str(obj, "tenant", default="", max_len=200),
            "inband": _bool(obj, "inband"),
        }
        if obj.get("direction") is not None:  # only when given: sendrecv is the default
            args["direction"] = _direction(obj)
    elif op in ("answer", "update"):
        args = {"sdp": _str(obj, "sdp", max_len=65536)}
    elif op == "play":
        args = {"items": _items(obj), "loop": _bool(obj, "loop"), "barge": _bool(obj, "barge")}
    elif op == "follow":
        sources = obj.get("sources")
        if not isinstance(sources, list) or len(sources) > MAX_SOURCES:
            raise ProtocolError(f"sources must be a list of at most {MAX_SOURCES} sessions")
        names: list[str] = []
        for source in sources:
            if not isinstance(source, str) or not source or len(source) > MAX_SESSION_ID:
                raise ProtocolError("a source is a session id")
            if source == session:
                raise ProtocolError("a session cannot follow itself")
            if source not in names:
                names.append(source)
        args = {"sources": names}
    elif op == "record":
        digits = _str(obj, "stop_digits", default="#", max_len=16)
        if any(d not in DIGITS for d in digits):
            raise ProtocolError("stop_digits: only 0-9 * # A-D")
        args = {
            "path": _path(obj, "path"),
            "max_seconds": _number(obj, "max_seconds", maximum=MAX_SECONDS),
            "silence_seconds": _number(obj, "silence_seconds", 0.0, maximum=MAX_SECONDS),
            "stop_digits": digits,
            "beep": _bool(obj, "beep"),
        }
        if args["max_seconds"] <= 0:
            raise ProtocolError("max_seconds must be positive")
    return Request(req_id, op, session, args)
