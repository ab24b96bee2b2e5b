"""The contract between the SIP engine and the Django side (pure: no Django, no I/O).

Both sides import this module and nothing else of each other:

- **Redis names**: every key and channel, built with the deployment's prefix
  (``PBX_SIP_REDIS_PREFIX``; the engine's ``PbxConfig.redis_prefix``) by :func:`key`, so several
  PBXs, or parallel test runs, can share one Redis without meeting;
- **routing snapshots** (Django writes, the engine reads): :class:`TenantSnapshot` and
  :class:`ExtensionSnapshot`, whose fields are named as the model fields they come from;
- **call and registration events** (the engine writes, the CDR consumer and the fan-out read):
  :class:`EventType` and :class:`RegistrationAction`;
- **control messages** (Django sends, every engine obeys): :class:`HangUpCall`, :class:`CheckSync`;
- **digest HA1s** (Django stores them, the engine checks answers with them): :func:`ha1`.

A name or a format written here and nowhere else cannot drift between the writer and the reader.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, ClassVar

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- Redis names

# Routing snapshots: Django writes, the engine reads (telephony.engine.snapshots -> sip.directory).
SNAPSHOT = "sip:snapshot:{domain}"
DOMAINS = "sip:domains"
SNAPSHOT_CHANGED = "sip:snapshot:changed"
# Call events: the engine writes, the CDR consumer and the fan-out read.
EVENTS = "sip:events"
# Live engine state: the engine writes, the API and portal read (telephony.engine.state).
CALLS = "sip:calls:{schema}"
LOCATION = "sip:loc:{domain}:{user}"
LOCATION_EXPIRY = "sip:loc:expiry"  # engines only: the reaper's index
LOCATION_CHANGED = "sip:loc:changed"  # engines only: drop a hot copy another engine changed
BAN = "sip:ban:{ip}"
BAN_CHANGED = "sip:ban:changed"
# The tenants' calls in progress, shared by the engines for the per-tenant call limit: per
# tenant a hash of engine id -> its calls of that tenant, the set of tenants that have one, and
# each engine's heartbeat (a key with a TTL: a dead engine's calls stop counting). Engines only.
CALL_COUNT = "sip:callcount:{schema}"
CALL_COUNT_TENANTS = "sip:callcounts"
ENGINE_ALIVE = "sip:engine:{engine}"
# Commands to the engines (hang-up, check-sync NOTIFY): ControlMessage JSON.
CONTROL = "sip:control"
# The Django side's own names for what it derives from the events; prefixed like the rest, so
# that two PBXs on one Redis do not share a CDR drain lock, a fan-out leader or live state.
CDR_LOCK = "sip:cdr:lock"
FANOUT_LEADER = "events:fanout:leader"
LIVE_DEVICES = "live:{schema}:dev:{ext}"
LIVE_ONLINE = "live:{schema}:online"
LIVE_CALLS = "live:{schema}:calls"
LIVE_DND = "live:{schema}:dnd"


def key(prefix: str, template: str, **parts: str) -> str:
    """``template`` filled with ``parts``, behind ``prefix``."""
    return prefix + template.format(**parts)


# ------------------------------------------------------------------------ routing snapshots

ALL_TRANSPORTS = frozenset({"udp", "tcp", "tls", "ws", "wss"})


def _text(value: Any) -> str:
    """Snapshot text as the engine may put it in a header: printable characters only (no CR,
    LF or other control character, whatever the API let through), trimmed."""
    text = str(value or "")
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.strip()


def _product(value: Any) -> str:
    """The white-label name as a header value: one line, no control characters, bounded."""
    text = "".join(ch for ch in str(value or "") if ch.isprintable()).strip()
    return text[:64]


def _count(value: Any, default: int, minimum: int) -> int:
    """A whole number of at least ``minimum``; missing, 0 or unreadable is ``default``."""
    try:
        number = int(value or default)
    except (TypeError, ValueError, OverflowError):
        return default
    return max(minimum, number)


def _seconds(value: Any) -> float:
    """A non-negative number of seconds; anything else is 0 (the engine's default)."""
    try:
        seconds = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    # NaN and negatives mean the default; a day is more than any phone rings.
    return min(seconds, 86400.0) if seconds > 0 else 0.0


# Most extensions allow the same few transport lists: one set each, shared by all of them.
_TRANSPORT_SETS: dict[tuple[Any, ...], frozenset[str]] = {}


def _transports(value: Any) -> frozenset[str]:
    if not isinstance(value, list):
        return ALL_TRANSPORTS
    listed = tuple(value)
    try:
        return _TRANSPORT_SETS[listed]
    except KeyError:
        allowed = _TRANSPORT_SETS[listed] = frozenset(str(t).lower() for t in listed)
        if len(_TRANSPORT_SETS) > 256:  # odd lists from a bad snapshot must not pile up
            _TRANSPORT_SETS.clear()
        return allowed
    except TypeError:  # an element that is not hashable (a list, an object): never a transport
        return frozenset(str(t).lower() for t in listed)


@dataclass(frozen=True, slots=True)
class ExtensionSnapshot:
    """What the engine knows of one extension: digest HA1s (never the password) and limits.

    Each field is named as the ``telephony.Extension`` field it comes from.
    """

    number: str
    display_name: str = ""
    enabled: bool = True
    dnd: bool = False
    ha1_md5: str = ""
    ha1_sha256: str = ""
    max_registrations: int = 1  # contacts one extension may have registered at once
    allowed_transports: frozenset[str] = ALL_TRANSPORTS  # lower-case: udp, tcp, tls, ws, wss
    # Shown to the called party; the display name and the number when the extension has none.
    caller_id_name: str = ""
    caller_id_number: str = ""
    # Call forwarding: target numbers ("" = off) and the seconds of ringing before "no answer"
    # (0 = the engine's default).
    forward_always: str = ""
    forward_busy: str = ""
    forward_no_answer: str = ""
    no_answer_timeout: float = 0.0

    @classmethod
    def from_dict(cls, number: str, d: Mapping[str, Any]) -> ExtensionSnapshot:
        """Tolerant: a missing or unreadable value takes its default, text is made safe for a
        header. Django builds its snapshot with it from ``Extension.objects.values()`` rows
        (:data:`EXTENSION_FIELDS`), the engine from the published JSON."""
        get = d.get
        return cls(
            number=number,
            display_name=_text(get("display_name")),
            enabled=bool(get("enabled", True)),
            dnd=bool(get("dnd", False)),
            ha1_md5=str(get("ha1_md5") or ""),
            ha1_sha256=str(get("ha1_sha256") or ""),
            max_registrations=_count(get("max_registrations"), 1, 1),
            allowed_transports=_transports(get("allowed_transports")),
            caller_id_name=_text(get("caller_id_name") or get("display_name")),
            caller_id_number=_text(get("caller_id_number") or number),
            forward_always=_text(get("forward_always")),
            forward_busy=_text(get("forward_busy")),
            forward_no_answer=_text(get("forward_no_answer")),
            no_answer_timeout=_seconds(get("no_answer_timeout")),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this extension in its tenant's snapshot (keyed by ``number``)."""
        return {
            "display_name": self.display_name,
            "enabled": self.enabled,
            "dnd": self.dnd,
            "ha1_md5": self.ha1_md5,
            "ha1_sha256": self.ha1_sha256,
            "max_registrations": self.max_registrations,
            "allowed_transports": sorted(self.allowed_transports),
            "caller_id_name": self.caller_id_name,
            "caller_id_number": self.caller_id_number,
            "forward_always": self.forward_always,
            "forward_busy": self.forward_busy,
            "forward_no_answer": self.forward_no_answer,
            "no_answer_timeout": self.no_answer_timeout,
        }


# The model fields a snapshot is built from (``Extension.objects.values(*EXTENSION_FIELDS)``).
EXTENSION_FIELDS = tuple(f.name for f in fields(ExtensionSnapshot))


@dataclass(frozen=True, slots=True)
class TenantSnapshot:
    """One tenant's routing data, keyed by its SIP domain (``SNAPSHOT``).

    ``tenant_id``, ``schema`` and ``domain`` are the tenant's primary key, schema name and SIP
    domain; the other fields are named as the ``tenants.Tenant`` fields they come from.
    """

    tenant_id: int
    schema: str
    domain: str
    status: str = "active"
    anchor_media: bool = False
    extensions: dict[str, ExtensionSnapshot] = field(default_factory=dict)
    product: str = ""  # white-label product name ("" = the engine's own): Server, User-Agent
    max_concurrent_calls: int = 0  # calls the tenant may have at once (0 = no limit)
    sip_digest_sha256: bool = False  # challenges offer SHA-256 first, then MD5 (RFC 8760)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_json(self) -> str:
        return json.dumps(
            {
                "tenant_id": self.tenant_id,
                "schema": self.schema,
                "domain": self.domain,
                "status": self.status,
                "anchor_media": self.anchor_media,
                "product": self.product,
                "max_concurrent_calls": self.max_concurrent_calls,
                "sip_digest_sha256": self.sip_digest_sha256,
                "extensions": {n: e.to_dict() for n, e in self.extensions.items()},
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> TenantSnapshot:
        """Parse a published snapshot. Raises ValueError when it is not JSON or lacks the
        tenant's identity (tenant_id, schema, domain); any other missing or unreadable value
        takes its default, and an extension entry that is not an object is left out, so one
        bad value never costs the engine a tenant, let alone its loop."""
        d = json.loads(raw)
        if not isinstance(d, dict):
            raise ValueError("a snapshot is a JSON object")
        try:
            tenant_id, schema, domain = int(d["tenant_id"]), str(d["schema"]), str(d["domain"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"a snapshot needs tenant_id, schema and domain ({exc!r})") from exc
        extensions = d.get("extensions")
        return cls(
            tenant_id=tenant_id,
            schema=schema,
            domain=domain.lower(),
            status=str(d.get("status") or "active"),
            anchor_media=bool(d.get("anchor_media", False)),
            product=_product(d.get("product")),
            max_concurrent_calls=_count(d.get("max_concurrent_calls"), 0, 0),
            sip_digest_sha256=d.get("sip_digest_sha256") is True,
            extensions={
                str(n): ExtensionSnapshot.from_dict(str(n), e)
                for n, e in (extensions.items() if isinstance(extensions, dict) else ())
                if isinstance(e, dict)
            },
        )


def read_snapshot(domain: str, raw: bytes | str | None) -> TenantSnapshot | None:
    """The snapshot read from ``domain``'s key; None when there is none, or (logged) when it
    cannot be parsed: a reader carries on without that tenant."""
    if raw is None:
        return None
    try:
        return TenantSnapshot.from_json(raw)
    except ValueError:
        log.exception("bad routing snapshot for %s", domain)
        return None


# ----------------------------------------------------------------------------------- events


class EventType(StrEnum):
    """The ``type`` of every entry the engine writes to the ``EVENTS`` stream."""

    CALL_STARTED = "call.started"
    CALL_RINGING = "call.ringing"
    CALL_ANSWERED = "call.answered"
    # Both open the call's next segment: a transfer (REFER) and a forward by the callee's rules.
    CALL_TRANSFERRED = "call.transferred"
    CALL_FORWARDED = "call.forwarded"
    CALL_ENDED = "call.ended"
    REGISTRATION = "registration"  # its ``action`` is a RegistrationAction


CALL_EVENTS = frozenset(t for t in EventType if t.startswith("call."))


class RegistrationAction(StrEnum):
    """What happened to one binding (the ``action`` of a ``registration`` event)."""

    REGISTERED = "registered"
    REFRESHED = "refreshed"
    UNREGISTERED = "unregistered"
    EXPIRED = "expired"  # timed out, or dropped as unreachable


# ------------------------------------------------------------------------- control messages


class ControlMessage:
    """A command to every engine on the ``CONTROL`` channel: a JSON object with an ``op``."""

    __slots__ = ()
    OP: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self) -> str:
        return json.dumps({"op": self.OP, **self.to_dict()})

    @staticmethod
    def from_json(raw: Any) -> HangUpCall | CheckSync | None:
        """The command in ``raw``; None for anything else (not JSON, an unknown ``op``, a
        notify of another event): engines ignore what they do not know."""
        try:
            d = json.loads(raw)
        except (TypeError, ValueError):
            return None
        if not isinstance(d, dict):
            return None
        parse = _CONTROL_PARSERS.get(str(d.get("op")))
        return parse(d) if parse is not None else None


@dataclass(frozen=True, slots=True)
class HangUpCall(ControlMessage):
    """End call ``call_id`` (the API's hang-up); only a call of tenant ``schema`` is ended."""

    OP: ClassVar[str] = "hangup"
    schema: str
    call_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "call_id": self.call_id}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HangUpCall:
        return cls(schema=str(d.get("schema") or ""), call_id=str(d.get("call_id") or ""))


@dataclass(frozen=True, slots=True)
class CheckSync(ControlMessage):
    """Send ``Event: check-sync;reboot=...`` to every phone registered as ``user@domain``
    (re-provision; ``reboot``: restart as well)."""

    OP: ClassVar[str] = "notify"
    EVENT: ClassVar[str] = "check-sync"
    domain: str
    user: str
    reboot: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "user": self.user,
            "event": self.EVENT,
            "reboot": self.reboot,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckSync | None:
        if d.get("event") != cls.EVENT:
            return None
        return cls(
            domain=str(d.get("domain") or "").lower(),
            user=str(d.get("user") or ""),
            reboot=d.get("reboot") is True,
        )


_CONTROL_PARSERS: dict[str, Callable[[Mapping[str, Any]], HangUpCall | CheckSync | None]] = {
    HangUpCall.OP: HangUpCall.from_dict,
    CheckSync.OP: CheckSync.from_dict,
}


# ----------------------------------------------------------------------------------- digest

DIGEST_HASHES: dict[str, Callable[..., Any]] = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}


def digest_hash(algorithm: str, text: str) -> str:
    """H(text) of RFC 7616 for ``algorithm`` ("MD5" or "SHA-256"), lower-case hex."""
    data = text.encode("utf-8", "surrogateescape")
    # A protocol's hash, not a security choice of ours: allowed where FIPS forbids MD5.
    return str(DIGEST_HASHES[algorithm](data, usedforsecurity=False).hexdigest())


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """HA1 = H(username:realm:password) (RFC 2617, RFC 7616 / RFC 8760 for SHA-256)."""
    return digest_hash(algorithm, f"{username}:{realm}:{password}")
