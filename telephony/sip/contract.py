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

import base64
import hashlib
import hmac
import json
import logging
import re
import secrets
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
# Outside calls: Django writes the trunks and the DID pool (CarrierSnapshot) as one JSON
# document and announces a change on the channel; every engine reloads it.
CARRIERS = "sip:carriers"
CARRIERS_CHANGED = "sip:carriers:changed"
# Each trunk's live state as the engine sees it (a hash: TRUNK_STATE_FIELDS), written by the
# engine that registers/pings the trunks, read by the API and the portal.
TRUNK_STATE = "sip:trunk:{trunk}"
# A trunk's channels in use, shared by the engines like CALL_COUNT: a hash engine id -> calls.
TRUNK_CALLS = "sip:trunkcalls:{trunk}"
# The engine that registers and pings the trunks (one at a time): a key with a TTL.
TRUNK_LEADER = "sip:trunks:leader"

# Voicemail (Django writes, engines read): one mailbox's messages as :class:`MailboxIndex` JSON,
# and the channel that names a changed mailbox ("<schema> <box>"): the engines send its MWI.
VOICEMAIL_BOX = "sip:vm:{schema}:{box}"
VOICEMAIL_CHANGED = "sip:vm:changed"
# Team features. An extension's (or park slot's) dialogs as each engine sees them (BLF): hash
# field "<number>" -> JSON {engine_id: [DialogView dicts]}; changes are published on
# DIALOG_CHANGED as JSON {"schema", "number", "engine", "dialogs": [...]}.
DIALOG_STATE = "sip:dlg:{schema}"
DIALOG_CHANGED = "sip:dlg:changed"
# The dialog/presence subscriptions an engine holds, so that another engine (or itself after
# a restart) can rebuild them: hash field "<call-id> <our tag>" -> JSON.
SUBSCRIPTIONS = "sip:subs:{engine}"
# Parked calls of a tenant: hash field "<slot>" -> JSON {call_id, caller, caller_name, by,
# at, engine} (the live portal and the other engines read it).
PARKED = "sip:park:{schema}"
# Prepaid credit (billing). CREDIT: a hash per tenant, written by the Django side after every
# commit that moves the balance (``billing.credit``): ``balance`` and ``limit`` in MONEY_SCALE
# units (``limit``: how far below zero the balance may go; 0 for prepaid). CREDIT_HELD: a hash
# per tenant, call-id -> units the engine holds for that call while it runs (``sip.credit``);
# the Django side deletes a call's hold in the same step that writes the balance its charge
# left, so the money is never counted twice nor missing. Available = balance + limit - holds.
CREDIT = "billing:credit:{schema}"
CREDIT_HELD = "billing:held:{schema}"
# The holds' expiry times: a sorted set per tenant (call id -> expiry, epoch seconds), read and
# written by the engine's credit scripts only. Its name is not under CREDIT_HELD's, so a
# reader of ``billing:held:*`` finds hashes only.
CREDIT_HELD_EXPIRY = "billing:held-expiry:{schema}"

# Contact centre. Agent states: a hash per tenant, field "<queue>:<extension>" -> AgentStatus
# JSON, written by the engine (feature codes, wrap-up) and by the Django side (API, web app);
# the writer then publishes the tenant's schema on AGENTS_CHANGED and every engine re-reads
# that tenant's hash. A missing field is the queue's default (``Queue.auto_ready``).
AGENTS = "cc:agents:{schema}"
AGENTS_CHANGED = "cc:agents:changed"
# The callers waiting in a tenant's queues, as each engine holds them: hash field
# "<queue>|<engine>" -> QueueLive JSON (the wallboard merges an engine's fields per queue).
QUEUE_LIVE = "cc:live:{schema}"
# Last-agent routing: a hash per tenant, field "<queue>:<caller number>" -> the extension of
# the agent that last answered that caller from that queue.
QUEUE_STICKY = "cc:sticky:{schema}"

# Tenants' own TLS certificates (Django writes on commit, the engines read): a hash, field = a
# tenant host name (lower case) -> :class:`HostCertificate` JSON (chain and private key as PEM:
# this Redis must be as private as the database; it holds the HA1s already). After a write
# the host name is published on TLS_HOSTS_CHANGED and every engine rebuilds that host's TLS
# context; a host with no field is served the platform's certificate.
TLS_HOSTS = "sip:tls:hosts"
TLS_HOSTS_CHANGED = "sip:tls:changed"


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


class SrtpMode(StrEnum):
    """Media encryption towards an extension's phones (SDES-SRTP, RFC 4568; rtpengine turns
    it into the other leg's profile). Browsers always get DTLS-SRTP (WEBRTC), whatever this is.

    Only phones registered over TLS get SRTP: keys sent in clear text protect nothing."""

    INHERIT = ""  # an extension's "the tenant's"; never a tenant's own value
    OFF = "off"  # plain RTP
    OPTIONAL = "optional"  # RTP/AVP with keys offered (RFC 8643): SRTP when the phone takes it
    REQUIRED = "required"  # RTP/SAVP offered; the phone's own plain-RTP offers get 488


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
    # Outside calls: the numbers the extension may present (the first is its outbound caller
    # ID) and the widest class of number it may dial (CallScope).
    outbound_caller_ids: tuple[str, ...] = ()
    call_scope: str = "international"
    # The extension's mailbox (``audio.Mailbox``); None: it has none.
    voicemail: VoicemailSettings | None = None
    # Hot desking: a desk phone's extension users may log in at (``hot_desk``), and who is
    # logged in there now ("" = nobody): calls to that user ring this extension's phones too,
    # and calls from them are the user's.
    hot_desk: bool = False
    hotdesk_user: str = ""
    # The extension's speed dials (``telephony.SpeedDial``): code ("2".."9", "00".."99") ->
    # number; and the pickup groups it is in (``telephony.PickupGroup`` ids).
    speed_dials: Mapping[str, str] = field(default_factory=dict)
    pickup_groups: tuple[str, ...] = ()
    # Call recording of the extension's calls (RecordingPolicy; "" = the tenant's policy).
    recording: str = ""
    # Media encryption towards the extension's phones (SrtpMode; "" = the tenant's), and
    # whether its user may call from the web app's softphone (a web credential, WEBRTC).
    srtp: str = ""
    web_softphone: bool = True

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
            outbound_caller_ids=_texts(get("outbound_caller_ids")),
            call_scope=_choice(get("call_scope"), CallScope, CallScope.INTERNATIONAL),
            voicemail=VoicemailSettings.read(get("voicemail")),
            hot_desk=get("hot_desk") is True,
            hotdesk_user=_text(get("hotdesk_user")),
            speed_dials=_speed_dials(get("speed_dials")),
            pickup_groups=_texts(get("pickup_groups")),
            recording=_policy(get("recording")),
            srtp=_choice(get("srtp"), SrtpMode, SrtpMode.INHERIT),
            web_softphone=get("web_softphone", True) is not False,
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
            "outbound_caller_ids": list(self.outbound_caller_ids),
            "call_scope": self.call_scope,
            "voicemail": self.voicemail.to_dict() if self.voicemail is not None else None,
            "hot_desk": self.hot_desk,
            "hotdesk_user": self.hotdesk_user,
            "speed_dials": dict(self.speed_dials),
            "pickup_groups": list(self.pickup_groups),
            "recording": self.recording,
            "srtp": self.srtp,
            "web_softphone": self.web_softphone,
        }

    def srtp_mode(self, tenant: TenantSnapshot) -> str:
        """The SrtpMode its phones get: its own, else the tenant's."""
        return self.srtp or tenant.srtp


_SPEED_DIAL = re.compile(r"[2-9]|[0-9]{2}")


def _speed_dials(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): _text(v) for k, v in value.items() if _SPEED_DIAL.fullmatch(str(k)) and _text(v)
    }


# The model fields a snapshot is built from (``Extension.objects.values(*EXTENSION_FIELDS)``);
# the mailbox, speed dials and pickup groups come from their own models.
EXTENSION_FIELDS = tuple(
    f.name
    for f in fields(ExtensionSnapshot)
    if f.name not in ("voicemail", "speed_dials", "pickup_groups")
)


# -------------------------------------------------------------------- outside calls: routing


class CallScope(StrEnum):
    """The widest class of number an extension may dial (call barring). Emergency numbers are
    always allowed."""

    INTERNAL = "internal"  # extensions and features only
    NATIONAL = "national"  # and numbers of the tenant's own country
    INTERNATIONAL = "international"  # and every other country


class MatchKind(StrEnum):
    """How an inbound rule matches the called number."""

    EXACT = "exact"  # ``number`` (E.164)
    RANGE = "range"  # ``number`` .. ``number_end`` (E.164, same length)
    PATTERN = "pattern"  # ``number`` is a dial pattern (:func:`compile_pattern`)


class BlockAction(StrEnum):
    """How a blacklisted caller is answered."""

    BUSY = "busy"  # 486 Busy Here
    REJECT = "reject"  # 603 Decline
    HANGUP = "hangup"  # 480: the line just drops, no busy tone


BLOCK_CODES = {BlockAction.BUSY: 486, BlockAction.REJECT: 603, BlockAction.HANGUP: 480}


class CallerIdHeader(StrEnum):
    """Where a trunk call presents the caller's number."""

    FROM = "from"  # in From only
    PAI = "pai"  # From and P-Asserted-Identity (RFC 3325)
    RPID = "rpid"  # From and Remote-Party-ID


def _texts(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    return tuple(t for t in (_text(v) for v in value) if t)


def _choice(value: Any, enum: type[StrEnum], default: StrEnum) -> str:
    text = str(value or "")
    return text if text in enum._value2member_map_ else str(default)


def _ints(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)):
        return ()
    out = []
    for v in value:
        try:
            out.append(int(v))
        except (TypeError, ValueError, OverflowError):
            continue
    return tuple(out)


def _plain(value: Any) -> Any:
    """A snapshot value as JSON has it: a nested snapshot as its object, a tuple as a list
    (of plain values), a set as a sorted list."""
    if isinstance(value, _Plain):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset):
        return sorted(value)
    return value


class _Plain:
    """A snapshot dataclass whose JSON object is its fields by name (:func:`_plain` values);
    its ``read`` is the tolerant way back."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


# Dial patterns (outbound rules, inbound pattern rules, caller matches), as PBX admins know
# them: digits, ``+``, ``*`` and ``#`` stand for themselves; ``X`` any digit, ``Z`` 1-9,
# ``N`` 2-9; ``[1-5]`` / ``[137]`` one digit of a set; ``.`` one or more further characters,
# ``!`` zero or more (only at the end). Anything else is an error (ValueError with the reason).
_PATTERN_CLASSES = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}
_PATTERN_CACHE: dict[str, re.Pattern[str]] = {}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression of a dial pattern (cached); ValueError for a bad pattern."""
    found = _PATTERN_CACHE.get(pattern)
    if found is not None:
        return found
    text = pattern.strip()
    if text.startswith("_"):
        text = text[1:]  # Asterisk's marker, accepted
    if not text or len(text) > 64:
        raise ValueError("a pattern is 1 to 64 characters")
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i].upper()
        if ch.isdigit() or ch in "*#":
            out.append(re.escape(ch))
        elif ch == "+" and i == 0:
            out.append(r"\+")
        elif ch in _PATTERN_CLASSES:
            out.append(_PATTERN_CLASSES[ch])
        elif ch == "[":
            end = text.find("]", i)
            body = text[i + 1 : end] if end > 0 else ""
            if not body or not re.fullmatch(r"[0-9]([0-9]|-[0-9])*", body):
                raise ValueError(f"bad digit set at position {i + 1}")
            out.append(f"[{body}]")
            i = end
        elif ch in ".!" and i == len(text) - 1:
            out.append(".+" if ch == "." else ".*")
        else:
            raise ValueError(f"unexpected {text[i]!r} at position {i + 1}")
        i += 1
    compiled = re.compile("".join(out))
    if len(_PATTERN_CACHE) > 4096:
        _PATTERN_CACHE.clear()
    _PATTERN_CACHE[pattern] = compiled
    return compiled


def pattern_matches(pattern: str, number: str) -> bool:
    """Whether ``number`` matches the dial pattern (a bad pattern matches nothing)."""
    try:
        return compile_pattern(pattern).fullmatch(number) is not None
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class RouteTarget(_Plain):
    """Where a rule sends a call: a destination ``kind`` (``extension``, ``external`` for an
    outside number, ``reject``, or any kind a feature registers: ``voicemail``, ``ivr``,
    ``ring_group``, ``queue``...) and its ``target`` (a number, an id, a SIP code)."""

    kind: str
    target: str = ""

    @classmethod
    def read(cls, value: Any) -> RouteTarget | None:
        if not isinstance(value, dict) or not value.get("kind"):
            return None
        return cls(kind=_text(value["kind"]), target=_text(value.get("target")))


@dataclass(frozen=True, slots=True)
class InboundRule(_Plain):
    """A DID rule: the called number (``match``: exact / range / pattern) and, when
    ``caller`` is set, the caller's number (a dial pattern) pick where the call goes: the
    in-hours target, or out of office hours (``use_hours``) the out-of-hours target (the
    in-hours one when unset), and on a holiday the holiday target (else out-of-hours)."""

    id: int
    number: str
    match: str = MatchKind.EXACT
    number_end: str = ""
    caller: str = ""
    use_hours: bool = True
    in_hours: RouteTarget | None = None
    out_of_hours: RouteTarget | None = None
    holiday: RouteTarget | None = None
    name: str = ""

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> InboundRule:
        return cls(
            id=_count(d.get("id"), 0, 0),
            name=_text(d.get("name")),
            number=_text(d.get("number")),
            match=_choice(d.get("match"), MatchKind, MatchKind.EXACT),
            number_end=_text(d.get("number_end")),
            caller=_text(d.get("caller")),
            use_hours=d.get("use_hours", True) is not False,
            in_hours=RouteTarget.read(d.get("in_hours")),
            out_of_hours=RouteTarget.read(d.get("out_of_hours")),
            holiday=RouteTarget.read(d.get("holiday")),
        )


@dataclass(frozen=True, slots=True)
class OutboundRule(_Plain):
    """An outbound rule: a dialled number that starts with ``prefix`` (and matches
    ``pattern`` and ``min_length``..``max_length`` when set), from one of ``extensions``
    (empty: any), goes out through ``trunks`` in order (failover), with ``strip`` leading
    digits removed and ``prepend`` put in front, presenting ``caller_id`` when set."""

    id: int
    trunks: tuple[int, ...] = ()
    prefix: str = ""
    pattern: str = ""
    min_length: int = 0
    max_length: int = 0
    extensions: frozenset[str] = frozenset()
    strip: int = 0
    prepend: str = ""
    caller_id: str = ""
    name: str = ""

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> OutboundRule:
        return cls(
            id=_count(d.get("id"), 0, 0),
            name=_text(d.get("name")),
            trunks=_ints(d.get("trunks")),
            prefix=_text(d.get("prefix")),
            pattern=_text(d.get("pattern")),
            min_length=_count(d.get("min_length"), 0, 0),
            max_length=_count(d.get("max_length"), 0, 0),
            extensions=frozenset(_texts(d.get("extensions"))),
            strip=_count(d.get("strip"), 0, 0),
            prepend=_text(d.get("prepend")),
            caller_id=_text(d.get("caller_id")),
        )


@dataclass(frozen=True, slots=True)
class EmergencyNumber(_Plain):
    """A number routed before every rule and always allowed (even for a suspended tenant or
    one at its call limit), out through ``trunks`` (empty: every trunk the tenant may use)
    presenting ``caller_id`` (the tenant's emergency caller ID when empty)."""

    number: str
    trunks: tuple[int, ...] = ()
    caller_id: str = ""

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> EmergencyNumber:
        return cls(
            number=_text(d.get("number")),
            trunks=_ints(d.get("trunks")),
            caller_id=_text(d.get("caller_id")),
        )


@dataclass(frozen=True, slots=True)
class Blocked(_Plain):
    """An inbound blacklist entry: callers whose number is ``number`` (or starts with it,
    ``prefix``) are answered as ``action`` says."""

    number: str
    prefix: bool = False
    action: str = BlockAction.BUSY

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Blocked:
        return cls(
            number=_text(d.get("number")),
            prefix=d.get("prefix") is True,
            action=_choice(d.get("action"), BlockAction, BlockAction.BUSY),
        )


@dataclass(frozen=True, slots=True)
class Holiday(_Plain):
    """Closed from ``start`` to ``end`` (ISO dates, inclusive); ``yearly``: every year on the
    same days (the year of the dates is ignored)."""

    start: str
    end: str
    yearly: bool = False
    name: str = ""

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> Holiday:
        start = _text(d.get("start"))
        return cls(
            start=start,
            end=_text(d.get("end")) or start,
            yearly=d.get("yearly") is True,
            name=_text(d.get("name")),
        )


def _periods(value: Any) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Seven days (Monday first), each a tuple of (start, end) minutes after midnight."""
    days: list[tuple[tuple[int, int], ...]] = []
    listed = value if isinstance(value, list) else []
    for i in range(7):
        day = listed[i] if i < len(listed) and isinstance(listed[i], list) else []
        spans = []
        for span in day:
            try:
                start, end = int(span[0]), int(span[1])
            except (TypeError, ValueError, IndexError, KeyError):
                continue
            if 0 <= start < end <= 1440:
                spans.append((start, end))
        days.append(tuple(sorted(spans)))
    return tuple(days)


@dataclass(frozen=True, slots=True)
class RoutingSnapshot(_Plain):
    """A tenant's outside-call routing: its country (national numbers), time zone and office
    hours (``weekly``: per weekday, Monday first, the open (start, end) minutes; ``hours``
    False: always open), holidays, inbound rules in the order they are tried, the caller
    blacklist, outbound rules in order, emergency numbers, the privacy code, the destinations
    it may not call (E.164 prefixes), the countries it may call (ISO 3166 codes, empty: all)
    and its default and emergency caller IDs."""

    country: str = ""
    time_zone: str = "UTC"
    hours: bool = False
    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: tuple[Holiday, ...] = ()
    inbound: tuple[InboundRule, ...] = ()
    blacklist: tuple[Blocked, ...] = ()
    outbound: tuple[OutboundRule, ...] = ()
    emergency: tuple[EmergencyNumber, ...] = ()
    privacy_code: str = "*67"
    blocked_prefixes: tuple[str, ...] = ()
    allowed_countries: frozenset[str] = frozenset()
    caller_id: str = ""
    emergency_caller_id: str = ""

    @classmethod
    def read(cls, d: Any) -> RoutingSnapshot:
        if not isinstance(d, dict):
            return cls()

        def rows(name: str) -> list[Mapping[str, Any]]:
            value = d.get(name)
            return [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []

        return cls(
            country=_text(d.get("country")).upper(),
            time_zone=_text(d.get("time_zone")) or "UTC",
            hours=d.get("hours") is True,
            weekly=_periods(d.get("weekly")),
            holidays=tuple(Holiday.read(r) for r in rows("holidays")),
            inbound=tuple(InboundRule.read(r) for r in rows("inbound")),
            blacklist=tuple(Blocked.read(r) for r in rows("blacklist")),
            outbound=tuple(OutboundRule.read(r) for r in rows("outbound")),
            emergency=tuple(EmergencyNumber.read(r) for r in rows("emergency")),
            privacy_code=_text(d.get("privacy_code", "*67")),
            blocked_prefixes=_texts(d.get("blocked_prefixes")),
            allowed_countries=frozenset(c.upper() for c in _texts(d.get("allowed_countries"))),
            caller_id=_text(d.get("caller_id")),
            emergency_caller_id=_text(d.get("emergency_caller_id")),
        )


# ------------------------------------------------------------------------ media services


def pin_hash(pin: str, salt: str | None = None) -> str:
    """How a voicemail PIN is stored and published: ``pbkdf2$<iterations>$<salt>$<hex>``.
    A PIN is short, so the hash buys little against someone holding the database; the engine
    limits tries per call, which is what protects a mailbox."""
    salt = salt if salt is not None else secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), _PIN_ITERATIONS).hex()
    return f"pbkdf2${_PIN_ITERATIONS}${salt}${digest}"


_PIN_ITERATIONS = 2000


def pin_matches(stored: str, pin: str) -> bool:
    """Whether ``pin`` is the one :func:`pin_hash` stored (False for no or a bad stored hash)."""
    try:
        scheme, iterations, salt, digest = stored.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2" or not 1 <= rounds <= 1_000_000:
        return False
    found = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt.encode(), rounds).hex()
    return hmac.compare_digest(found, digest)


@dataclass(frozen=True, slots=True)
class VoicemailSettings(_Plain):
    """An extension's mailbox: whether it takes messages; its PIN (:func:`pin_hash`, "" = none
    set: only the extension's own phone may open the box, without one); its recorded greetings
    (file paths, "" = the default prompt) for "unavailable" (no answer, not registered) and
    "busy" (busy, DND); the longest message in seconds; and when calls go to it instead of
    answering 486/480: ``always``, on ``busy`` (DND too), on ``no_answer`` (not registered
    too). A forward to a number set for the same case wins."""

    enabled: bool = True
    pin: str = ""
    greeting_unavailable: str = ""
    greeting_busy: str = ""
    max_seconds: int = 120
    always: bool = False
    busy: bool = True
    no_answer: bool = True

    @classmethod
    def read(cls, d: Any) -> VoicemailSettings | None:
        if not isinstance(d, dict):
            return None
        return cls(
            enabled=d.get("enabled", True) is not False,
            pin=_text(d.get("pin")),
            greeting_unavailable=_text(d.get("greeting_unavailable")),
            greeting_busy=_text(d.get("greeting_busy")),
            max_seconds=min(_count(d.get("max_seconds"), 120, 5), 3600),
            always=d.get("always") is True,
            busy=d.get("busy", True) is not False,
            no_answer=d.get("no_answer", True) is not False,
        )


@dataclass(frozen=True, slots=True)
class IvrOption(_Plain):
    """A key of an IVR menu (``0``-``9``, ``*``, ``#``) and where it leads: a RouteTarget whose
    kind is ``extension``, ``voicemail`` (a mailbox's number), ``ivr`` (a menu's number),
    ``external`` (an outside number, by the outbound rules), ``repeat`` or ``hangup``."""

    digit: str
    target: RouteTarget

    @classmethod
    def read(cls, d: Any) -> IvrOption | None:
        if not isinstance(d, dict):
            return None
        digit = _text(d.get("digit"))
        target = RouteTarget.read(d.get("target"))
        if len(digit) != 1 or digit not in "0123456789*#" or target is None:
            return None
        return cls(digit=digit, target=target)


@dataclass(frozen=True, slots=True)
class IvrMenu(_Plain):
    """A virtual receptionist, reached at its ``number`` (an extension-like number of the
    tenant, a DID's inbound rule, another menu's option): it answers, plays ``greeting`` (a
    prompt file; "" = the default welcome), and takes a key (``options``) or, when
    ``dial_extension``, an extension's number. No key within ``timeout`` seconds or an unknown
    one: the ``invalid`` prompt and the greeting again, ``tries`` times in all, then
    ``timeout_target`` (None: hang up). Outside office hours (``use_hours`` and the tenant's
    hours), ``closed_greeting`` plays instead and, when ``closed_target`` is set, the call
    goes there without a menu."""

    number: str
    name: str = ""
    greeting: str = ""
    invalid: str = ""
    options: tuple[IvrOption, ...] = ()
    dial_extension: bool = True
    timeout: float = 5.0
    tries: int = 3
    timeout_target: RouteTarget | None = None
    use_hours: bool = False
    closed_greeting: str = ""
    closed_target: RouteTarget | None = None

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> IvrMenu:
        options = d.get("options")
        read = [IvrOption.read(o) for o in options] if isinstance(options, list) else []
        return cls(
            number=_text(d.get("number")),
            name=_text(d.get("name")),
            greeting=_text(d.get("greeting")),
            invalid=_text(d.get("invalid")),
            options=tuple(o for o in read if o is not None),
            dial_extension=d.get("dial_extension", True) is not False,
            timeout=min(_seconds(d.get("timeout")) or 5.0, 60.0),
            tries=min(_count(d.get("tries"), 3, 1), 10),
            timeout_target=RouteTarget.read(d.get("timeout_target")),
            use_hours=d.get("use_hours") is True,
            closed_greeting=_text(d.get("closed_greeting")),
            closed_target=RouteTarget.read(d.get("closed_target")),
        )

    def option(self, digit: str) -> RouteTarget | None:
        return next((o.target for o in self.options if o.digit == digit), None)


@dataclass(frozen=True, slots=True)
class Disa(_Plain):
    """Direct inward system access: a caller (typically from outside, through a DID's rule or
    an IVR key) who knows the ``pin`` (:func:`pin_hash`) may dial a number, which is called as
    if ``extension`` had dialled it (its outbound rules, call barring and caller ID)."""

    id: str
    name: str = ""
    pin: str = ""
    extension: str = ""

    @classmethod
    def read(cls, d: Any) -> Disa | None:
        if not isinstance(d, dict) or not _text(d.get("id")):
            return None
        return cls(
            id=_text(d["id"]),
            name=_text(d.get("name")),
            pin=_text(d.get("pin")),
            extension=_text(d.get("extension")),
        )


class Feature(StrEnum):
    """Feature access codes: what a dialled code does. Codes that take a number (``*72`` +
    the forward target, ``*55`` + a mailbox) are the features in :data:`FEATURE_TAKES_NUMBER`;
    those that may take one (``*68`` parks in the first free slot, ``*68702`` in slot 702) are
    in :data:`FEATURE_MAY_TAKE_NUMBER`."""

    VOICEMAIL = "voicemail"  # the caller's own mailbox (or any, with its number and PIN)
    VOICEMAIL_DIRECT = "voicemail_direct"  # + number: leave a message in that mailbox
    DND_ON = "dnd_on"
    DND_OFF = "dnd_off"
    FORWARD_ALWAYS_ON = "forward_always_on"  # + number
    FORWARD_ALWAYS_OFF = "forward_always_off"
    FORWARD_BUSY_ON = "forward_busy_on"  # + number
    FORWARD_BUSY_OFF = "forward_busy_off"
    FORWARD_NO_ANSWER_ON = "forward_no_answer_on"  # + number
    FORWARD_NO_ANSWER_OFF = "forward_no_answer_off"
    VOICEMAIL_ALWAYS_ON = "voicemail_always_on"
    VOICEMAIL_ALWAYS_OFF = "voicemail_always_off"
    VOICEMAIL_BUSY_ON = "voicemail_busy_on"
    VOICEMAIL_BUSY_OFF = "voicemail_busy_off"
    VOICEMAIL_NO_ANSWER_ON = "voicemail_no_answer_on"
    VOICEMAIL_NO_ANSWER_OFF = "voicemail_no_answer_off"
    # Team features.
    PICKUP = "pickup"  # + extension: answer the call ringing there (directed pickup)
    PICKUP_GROUP = "pickup_group"  # the longest-ringing call of the caller's pickup groups
    PARK = "park"  # [+ slot]: park the caller (a blind transfer to it parks the transferee)
    RETRIEVE = "retrieve"  # + slot: take the call parked there
    INTERCOM = "intercom"  # + extension: call it with auto-answer (intercom / page)
    SPEED_DIAL_8 = "speed_dial_8"  # + digit (2-9) + number; + digit + "*" clears it
    SPEED_DIAL_100 = "speed_dial_100"  # + two digits (00-99) + number; + digits + "*" clears
    CALLBACK_ON = "callback_on"  # [+ number]: call me back when it is free (default: the
    #                               last number that was busy)
    CALLBACK_OFF = "callback_off"
    HOTDESK_LOGIN = "hotdesk_login"  # + extension (then its PIN): this desk phone becomes it
    HOTDESK_LOGOUT = "hotdesk_logout"
    # Call recording, keyed in during a call (DTMF): start (on demand), stop, pause, resume.
    RECORD_START = "record_start"
    RECORD_STOP = "record_stop"
    RECORD_PAUSE = "record_pause"
    RECORD_RESUME = "record_resume"
    # Contact centre: an agent's state in one queue (+ its number) or in all of its queues.
    AGENT_LOGIN = "agent_login"  # [+ queue]
    AGENT_LOGOUT = "agent_logout"  # [+ queue]
    AGENT_READY = "agent_ready"  # [+ queue]; also ends a wrap-up early
    AGENT_NOT_READY = "agent_not_ready"  # [+ queue]
    # A queue supervisor joins an agent's queue call (+ the agent's extension): listens
    # silently, whispers to the agent only, or barges in (both parties hear). During it, the
    # supervisor's keys 1, 2 and 3 switch between the three (SUPERVISION_KEYS).
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# The codes a tenant starts with (PortSIP's defaults, so its users' habits carry over).
FEATURE_DEFAULTS: dict[str, str] = {
    Feature.VOICEMAIL: "*57",
    Feature.VOICEMAIL_DIRECT: "*55",
    Feature.DND_ON: "*78",
    Feature.DND_OFF: "*79",
    Feature.FORWARD_ALWAYS_ON: "*72",
    Feature.FORWARD_ALWAYS_OFF: "*73",
    Feature.FORWARD_BUSY_ON: "*90",
    Feature.FORWARD_BUSY_OFF: "*91",
    Feature.FORWARD_NO_ANSWER_ON: "*92",
    Feature.FORWARD_NO_ANSWER_OFF: "*93",
    Feature.VOICEMAIL_ALWAYS_ON: "*21",
    Feature.VOICEMAIL_ALWAYS_OFF: "*34",
    Feature.VOICEMAIL_BUSY_ON: "*40",
    Feature.VOICEMAIL_BUSY_OFF: "*42",
    Feature.VOICEMAIL_NO_ANSWER_ON: "*41",
    Feature.VOICEMAIL_NO_ANSWER_OFF: "*35",
    Feature.PICKUP: "*97",
    Feature.PICKUP_GROUP: "*98",
    Feature.PARK: "*68",
    Feature.RETRIEVE: "*88",
    Feature.INTERCOM: "*46",
    Feature.SPEED_DIAL_8: "*74",
    Feature.SPEED_DIAL_100: "*75",
    Feature.CALLBACK_ON: "*33",
    Feature.CALLBACK_OFF: "*43",
    Feature.HOTDESK_LOGIN: "*70",
    Feature.HOTDESK_LOGOUT: "*71",
    Feature.RECORD_START: "*44",
    Feature.RECORD_STOP: "*45",
    Feature.RECORD_PAUSE: "*48",
    Feature.RECORD_RESUME: "*49",
    Feature.AGENT_READY: "*36",
    Feature.AGENT_NOT_READY: "*37",
    Feature.AGENT_LOGIN: "*38",
    Feature.AGENT_LOGOUT: "*39",
    Feature.LISTEN: "*63",
    Feature.WHISPER: "*64",
    Feature.BARGE: "*65",
}
# The codes keyed in during a call (DTMF to the engine), never dialled as a call of their own.
FEATURE_IN_CALL = frozenset(
    {Feature.RECORD_START, Feature.RECORD_STOP, Feature.RECORD_PAUSE, Feature.RECORD_RESUME}
)
FEATURE_TAKES_NUMBER = frozenset(
    {
        Feature.VOICEMAIL_DIRECT,
        Feature.FORWARD_ALWAYS_ON,
        Feature.FORWARD_BUSY_ON,
        Feature.FORWARD_NO_ANSWER_ON,
        Feature.PICKUP,
        Feature.RETRIEVE,
        Feature.INTERCOM,
        Feature.SPEED_DIAL_8,
        Feature.SPEED_DIAL_100,
        Feature.HOTDESK_LOGIN,
        Feature.LISTEN,
        Feature.WHISPER,
        Feature.BARGE,
    }
)
FEATURE_MAY_TAKE_NUMBER = frozenset(
    {
        Feature.PARK,
        Feature.CALLBACK_ON,
        Feature.AGENT_LOGIN,
        Feature.AGENT_LOGOUT,
        Feature.AGENT_READY,
        Feature.AGENT_NOT_READY,
    }
)


@dataclass(frozen=True, slots=True)
class MediaSnapshot(_Plain):
    """What a tenant's calls play: its language (the default prompt set's, "en" when there
    is none in it), its own prompts replacing default ones (name -> file), its default music
    on hold (files; empty: the shipped music), its music classes (id -> files; queues pick
    one), its IVR menus by number, its feature codes (feature -> code; a feature that is
    missing is off) and its DISA entries by id."""

    language: str = "en"
    prompts: Mapping[str, str] = field(default_factory=dict)
    moh: tuple[str, ...] = ()
    moh_classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ivrs: Mapping[str, IvrMenu] = field(default_factory=dict)
    codes: Mapping[str, str] = field(default_factory=lambda: dict(FEATURE_DEFAULTS))
    disa: Mapping[str, Disa] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "prompts": dict(self.prompts),
            "moh": list(self.moh),
            "moh_classes": {k: list(v) for k, v in self.moh_classes.items()},
            "ivrs": [m.to_dict() for m in self.ivrs.values()],
            "codes": dict(self.codes),
            "disa": [d.to_dict() for d in self.disa.values()],
        }

    @classmethod
    def read(cls, d: Any) -> MediaSnapshot:
        if not isinstance(d, dict):
            return cls()
        prompts = d.get("prompts")
        classes = d.get("moh_classes")
        ivrs = d.get("ivrs")
        codes = d.get("codes")
        menus = (
            [IvrMenu.read(m) for m in ivrs if isinstance(m, dict)] if isinstance(ivrs, list) else []
        )
        disa = d.get("disa")
        entries = [Disa.read(e) for e in disa] if isinstance(disa, list) else []
        return cls(
            language=_text(d.get("language")) or "en",
            prompts={
                _text(k): _text(v) for k, v in prompts.items() if _text(v)
            } if isinstance(prompts, dict) else {},
            moh=_texts(d.get("moh")),
            moh_classes={
                _text(k): _texts(v) for k, v in classes.items()
            } if isinstance(classes, dict) else {},
            ivrs={m.number: m for m in menus if m.number},
            codes={
                str(k): _text(v) for k, v in codes.items()
                if str(k) in Feature._value2member_map_ and _text(v)
            } if isinstance(codes, dict) else dict(FEATURE_DEFAULTS),
            disa={e.id: e for e in entries if e is not None},
        )  # fmt: skip

    def feature(self, number: str) -> tuple[str, str] | None:
        """(feature, the number after its code) for a dialled ``number`` that starts with a
        feature code; None otherwise. An exact code wins; a code that takes a number needs one."""
        best: tuple[str, str] | None = None
        for feature, code in self.codes.items():
            if number == code and feature not in FEATURE_TAKES_NUMBER:
                return feature, ""
            if (
                (feature in FEATURE_TAKES_NUMBER or feature in FEATURE_MAY_TAKE_NUMBER)
                and number.startswith(code)
                and len(number) > len(code)
                and (best is None or len(code) > len(self.codes[best[0]]))
            ):
                best = (feature, number[len(code) :])
        return best


def _epoch(value: Any) -> float:
    try:
        t = float(value or 0)
    except (TypeError, ValueError):
        return 0.0
    return t if t > 0 and t == t else 0.0


@dataclass(frozen=True, slots=True)
class VoicemailMessage(_Plain):
    """One message of a mailbox as the engine's mailbox menu plays it: its id, the file, who
    left it (number, name), when (epoch seconds) and how long it is."""

    id: str
    path: str
    caller: str = ""
    caller_name: str = ""
    at: float = 0.0
    seconds: float = 0.0

    @classmethod
    def read(cls, d: Any) -> VoicemailMessage | None:
        if not isinstance(d, dict) or not d.get("id") or not d.get("path"):
            return None
        return cls(
            id=_text(d["id"]),
            path=_text(d["path"]),
            caller=_text(d.get("caller")),
            caller_name=_text(d.get("caller_name")),
            at=_epoch(d.get("at")),
            seconds=_seconds(d.get("seconds")),
        )


@dataclass(frozen=True, slots=True)
class MailboxIndex(_Plain):
    """A mailbox's messages (``VOICEMAIL_BOX``), oldest first: the new (unheard) ones and the
    saved ones. Its counts are the MWI the phones are sent (RFC 3842)."""

    new: tuple[VoicemailMessage, ...] = ()
    saved: tuple[VoicemailMessage, ...] = ()

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> MailboxIndex:
        """Tolerant: no key, bad JSON or bad entries read as fewer messages, never an error."""
        try:
            d = json.loads(raw) if raw else {}
        except ValueError:
            d = {}
        if not isinstance(d, dict):
            d = {}

        def messages(name: str) -> tuple[VoicemailMessage, ...]:
            value = d.get(name)
            rows = [VoicemailMessage.read(m) for m in value] if isinstance(value, list) else []
            return tuple(m for m in rows if m is not None)

        return cls(new=messages("new"), saved=messages("saved"))


# ------------------------------------------------------------------------------ team features


class RingStrategy(StrEnum):
    RING_ALL = "ring_all"  # every member at once, the first to answer wins
    HUNT = "hunt"  # one after the other, in the members' order
    ROUND_ROBIN = "round_robin"  # one after the other, starting after the last one rung
    LONGEST_IDLE = "longest_idle"  # one after the other, the longest idle first


@dataclass(frozen=True, slots=True)
class RingMember(_Plain):
    """A ring group's member: an extension's number, or (``external``) an outside number
    dialled through the tenant's outbound rules."""

    number: str
    external: bool = False

    @classmethod
    def read(cls, d: Any) -> RingMember | None:
        if not isinstance(d, dict) or not _text(d.get("number")):
            return None
        return cls(number=_text(d["number"]), external=d.get("external") is True)


@dataclass(frozen=True, slots=True)
class RingGroup(_Plain):
    """A number that rings several members (``strategy``: RingStrategy): each one for
    ``member_seconds`` (one after the other), the group for ``total_seconds`` at most; busy
    and DND members are passed over when ``skip_busy``; the members see the caller's name
    after ``caller_id_prefix``; nobody answers: ``overflow`` (None: 480)."""

    number: str
    name: str = ""
    strategy: str = RingStrategy.RING_ALL
    members: tuple[RingMember, ...] = ()
    member_seconds: float = 20.0
    total_seconds: float = 60.0
    skip_busy: bool = True
    caller_id_prefix: str = ""
    overflow: RouteTarget | None = None
    enabled: bool = True

    @classmethod
    def read(cls, d: Any) -> RingGroup | None:
        if not isinstance(d, dict) or not _text(d.get("number")):
            return None
        members = d.get("members")
        read = [RingMember.read(m) for m in members] if isinstance(members, list) else []
        return cls(
            number=_text(d["number"]),
            name=_text(d.get("name")),
            strategy=_choice(d.get("strategy"), RingStrategy, RingStrategy.RING_ALL),
            members=tuple(m for m in read if m is not None),
            member_seconds=min(_seconds(d.get("member_seconds")) or 20.0, 300.0),
            total_seconds=min(_seconds(d.get("total_seconds")) or 60.0, 3600.0),
            skip_busy=d.get("skip_busy", True) is not False,
            caller_id_prefix=_text(d.get("caller_id_prefix"))[:16],
            overflow=RouteTarget.read(d.get("overflow")),
            enabled=d.get("enabled", True) is not False,
        )


@dataclass(frozen=True, slots=True)
class PagingGroup(_Plain):
    """A number that calls every member's phones with auto-answer: a page (one-way: the
    members only listen) or, when ``duplex``, an intercom conversation with the first."""

    number: str
    name: str = ""
    members: tuple[str, ...] = ()
    duplex: bool = False

    @classmethod
    def read(cls, d: Any) -> PagingGroup | None:
        if not isinstance(d, dict) or not _text(d.get("number")):
            return None
        return cls(
            number=_text(d["number"]),
            name=_text(d.get("name")),
            members=_texts(d.get("members")),
            duplex=d.get("duplex") is True,
        )


@dataclass(frozen=True, slots=True)
class ParkSettings(_Plain):
    """Call park: ``count`` slots numbered from ``first`` (numbers of the tenant, watched
    by BLF keys); a call parked longer than ``timeout`` seconds rings its parker again (then
    the parker's no-answer fallback)."""

    first: int = 701
    count: int = 10
    timeout: float = 120.0

    @classmethod
    def read(cls, d: Any) -> ParkSettings:
        if not isinstance(d, dict):
            return cls()
        return cls(
            first=_count(d.get("first"), 701, 1),
            count=min(_count(d.get("count"), 10, 0), 100),
            timeout=min(_seconds(d.get("timeout")) or 120.0, 3600.0),
        )

    def slots(self) -> tuple[str, ...]:
        return tuple(str(self.first + i) for i in range(self.count))

    def is_slot(self, number: str) -> bool:
        return number.isdigit() and 0 <= int(number) - self.first < self.count


@dataclass(frozen=True, slots=True)
class TeamSnapshot(_Plain):
    """A tenant's team features: ring groups and paging groups by number, call park."""

    ring_groups: Mapping[str, RingGroup] = field(default_factory=dict)
    paging: Mapping[str, PagingGroup] = field(default_factory=dict)
    park: ParkSettings = field(default_factory=ParkSettings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ring_groups": [g.to_dict() for g in self.ring_groups.values()],
            "paging": [g.to_dict() for g in self.paging.values()],
            "park": self.park.to_dict(),
        }

    @classmethod
    def read(cls, d: Any) -> TeamSnapshot:
        if not isinstance(d, dict):
            return cls()
        rings = d.get("ring_groups")
        pages = d.get("paging")
        groups = [RingGroup.read(g) for g in rings] if isinstance(rings, list) else []
        paging = [PagingGroup.read(g) for g in pages] if isinstance(pages, list) else []
        return cls(
            ring_groups={g.number: g for g in groups if g is not None},
            paging={g.number: g for g in paging if g is not None},
            park=ParkSettings.read(d.get("park")),
        )


# ------------------------------------------------------------------------------ contact centre


class QueueStrategy(StrEnum):
    """How a queue offers its next caller to its agents (only agents that are ready, idle,
    not ringing and out of wrap-up are offered a call)."""

    RING_ALL = "ring_all"  # every available agent at once, the first to answer wins
    HUNT = "hunt"  # one at a time, in the agents' order
    LONGEST_IDLE = "longest_idle"  # one at a time, the agent idle longest first
    ROUND_ROBIN = "round_robin"  # one at a time, starting after the agent offered last
    FEWEST_CALLS = "fewest_calls"  # one at a time, the agent with the fewest answered today
    # One at a time, only agents that have every required skill at its level, the most
    # skilled first (sum of their levels in the required skills), then the longest idle.
    SKILLS = "skills"


class AgentState(StrEnum):
    """An agent's state in one queue, as stored (``AGENTS``). On a call and ringing are not
    stored: they come from the agent's calls (the engine's ``ExtensionStates``, BLF)."""

    LOGGED_OUT = "logged_out"  # not in the queue: offered nothing
    NOT_READY = "not_ready"  # logged in, not taking queue calls (``reason`` says why)
    READY = "ready"  # offered queue calls
    WRAP_UP = "wrap_up"  # after a queue call, until ``until``; then ready again


AGENT_REASON_MAX = 40  # characters of a not-ready reason


def agent_field(queue: str, extension: str) -> str:
    """The ``AGENTS`` hash field of ``extension``'s state in ``queue``."""
    return f"{queue}:{extension}"


def clean_reason(value: Any) -> str:
    """A not-ready reason as stored: printable text only (no CR/LF: it reaches webhooks and
    pages), at most :data:`AGENT_REASON_MAX` characters."""
    text = "".join(ch for ch in str(value or "") if ch.isprintable())
    return text.strip()[:AGENT_REASON_MAX]


@dataclass(frozen=True, slots=True)
class AgentStatus(_Plain):
    """One agent's state in one queue (``AGENTS`` value): ``since`` (epoch seconds) it has
    been in it, ``until`` when a wrap-up ends (0 otherwise), ``by`` who set it (``phone``,
    ``api``, ``portal``, ``engine``)."""

    state: str = AgentState.LOGGED_OUT
    reason: str = ""
    since: float = 0.0
    until: float = 0.0
    by: str = ""

    def effective(self, now: float) -> str:
        """The state at ``now``: a wrap-up that is over is ready."""
        if self.state == AgentState.WRAP_UP and self.until and now >= self.until:
            return AgentState.READY
        return self.state

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def read(cls, raw: Any) -> AgentStatus | None:
        """The status in a hash value (JSON text or bytes); None when it is unreadable."""
        try:
            d = json.loads(raw)
        except (TypeError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("state") not in AgentState._value2member_map_:
            return None
        return cls(
            state=str(d["state"]),
            reason=clean_reason(d.get("reason")),
            since=_epoch(d.get("since")),
            until=_epoch(d.get("until")),
            by=_text(d.get("by"))[:16],
        )


@dataclass(frozen=True, slots=True)
class QueueAgent(_Plain):
    """An agent of a queue: an extension's number and its skill levels (name -> 1..10) for
    the skills strategy. The queue's ``agents`` order is the hunt order."""

    number: str
    skills: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def read(cls, d: Any) -> QueueAgent | None:
        if not isinstance(d, dict) or not _text(d.get("number")):
            return None
        return cls(number=_text(d["number"]), skills=_levels(d.get("skills")))

    def qualifies(self, required: Mapping[str, int]) -> bool:
        """Whether the agent has every ``required`` skill at its level at least."""
        return all(self.skills.get(name, 0) >= level for name, level in required.items())

    def level(self, required: Mapping[str, int]) -> int:
        """How skilled the agent is for ``required``: the sum of its levels in those skills."""
        return sum(self.skills.get(name, 0) for name in required)


def _levels(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    out: dict[str, int] = {}
    for name, level in value.items():
        if _text(name) and isinstance(level, int) and not isinstance(level, bool):
            out[_text(name)] = max(1, min(level, 10))
    return out


def number_listed(entries: tuple[str, ...], number: str) -> bool:
    """Whether a caller's ``number`` is in a queue's VIP list or blacklist: an entry is a
    number (exact) or a dial pattern (``compile_pattern``)."""
    if not number:
        return False
    return any(e == number or (not e.isdigit() and pattern_matches(e, number)) for e in entries)


@dataclass(frozen=True, slots=True)
class Queue(_Plain):
    """A call queue (``callcenter.Queue``): callers wait with music (``music_class``; "" =
    the tenant's) and hear, every ``announce_seconds`` (0: never), their position and the
    estimated wait; agents are offered a caller by ``strategy`` for ``ring_seconds`` each,
    and after a queue call stay in wrap-up for ``wrap_up_seconds``.

    A caller leaves to ``overflow`` (None: a goodbye, then hang-up) after ``max_wait_seconds``
    (0: no limit), at once when ``max_callers`` (0: no limit) are waiting already, or when no
    agent is logged in unless ``wait_without_agents``. ``vip`` callers go before every other
    caller; ``blacklist`` callers are refused (603). ``callback``: a waiting caller may key 3
    to hang up and keep its place; when its turn comes an agent is rung first, then the
    caller is called back (``callback_prefix`` before its number, to match an outbound rule).
    ``sticky``: a caller is offered first to the agent who last answered it from this queue.
    ``auto_ready``: an agent without a stored state is ready (else logged out).
    ``supervisors`` (extensions) may listen, whisper and barge in on this queue's calls.
    ``sla_seconds``: a caller answered later (or still waiting after it) breaks the service
    level; the wallboard alerts when the service level falls below ``sla_percent``."""

    number: str
    name: str = ""
    enabled: bool = True
    strategy: str = QueueStrategy.LONGEST_IDLE
    agents: tuple[QueueAgent, ...] = ()
    required_skills: Mapping[str, int] = field(default_factory=dict)
    ring_seconds: float = 20.0
    max_wait_seconds: float = 600.0
    max_callers: int = 0
    overflow: RouteTarget | None = None
    wait_without_agents: bool = False
    wrap_up_seconds: float = 10.0
    music_class: str = ""
    greeting: str = ""  # a prompt file played once when the caller joins ("" = none)
    announce_position: bool = True
    announce_wait: bool = True
    announce_seconds: float = 30.0
    sla_seconds: float = 20.0
    sla_percent: int = 80
    sticky: bool = False
    vip: tuple[str, ...] = ()
    blacklist: tuple[str, ...] = ()
    callback: bool = False
    callback_prefix: str = ""
    auto_ready: bool = True
    supervisors: tuple[str, ...] = ()
    recording: str = ""  # RecordingPolicy of the queue's calls ("" = the parties' own)
    caller_id_prefix: str = ""  # shown before the caller's name on the agents' phones

    @classmethod
    def read(cls, d: Any) -> Queue | None:
        if not isinstance(d, dict) or not _text(d.get("number")):
            return None
        agents = d.get("agents")
        read = [QueueAgent.read(a) for a in agents] if isinstance(agents, list) else []
        return cls(
            number=_text(d["number"]),
            name=_text(d.get("name")),
            enabled=d.get("enabled", True) is not False,
            strategy=_choice(d.get("strategy"), QueueStrategy, QueueStrategy.LONGEST_IDLE),
            agents=tuple(a for a in read if a is not None),
            required_skills=_levels(d.get("required_skills")),
            ring_seconds=min(_seconds(d.get("ring_seconds")) or 20.0, 300.0),
            max_wait_seconds=min(_seconds(d.get("max_wait_seconds")), 86400.0)
            if d.get("max_wait_seconds") is not None
            else 600.0,
            max_callers=_count(d.get("max_callers"), 0, 0),
            overflow=RouteTarget.read(d.get("overflow")),
            wait_without_agents=d.get("wait_without_agents") is True,
            wrap_up_seconds=min(_seconds(d.get("wrap_up_seconds")), 3600.0)
            if d.get("wrap_up_seconds") is not None
            else 10.0,
            music_class=_text(d.get("music_class")),
            greeting=_text(d.get("greeting")),
            announce_position=d.get("announce_position", True) is not False,
            announce_wait=d.get("announce_wait", True) is not False,
            announce_seconds=min(_seconds(d.get("announce_seconds")), 3600.0)
            if d.get("announce_seconds") is not None
            else 30.0,
            sla_seconds=min(_seconds(d.get("sla_seconds")) or 20.0, 3600.0),
            sla_percent=min(_count(d.get("sla_percent"), 80, 0), 100),
            sticky=d.get("sticky") is True,
            vip=_texts(d.get("vip")),
            blacklist=_texts(d.get("blacklist")),
            callback=d.get("callback") is True,
            callback_prefix=_text(d.get("callback_prefix"))[:8],
            auto_ready=d.get("auto_ready", True) is not False,
            supervisors=_texts(d.get("supervisors")),
            recording=_policy(d.get("recording")),
            caller_id_prefix=_text(d.get("caller_id_prefix"))[:16],
        )

    def agent(self, number: str) -> QueueAgent | None:
        return next((a for a in self.agents if a.number == number), None)

    def default_status(self) -> AgentStatus:
        """An agent's state while none is stored."""
        return AgentStatus(state=AgentState.READY if self.auto_ready else AgentState.LOGGED_OUT)


@dataclass(frozen=True, slots=True)
class CallCenterSnapshot(_Plain):
    """A tenant's call queues by number (``TenantSnapshot.callcenter``)."""

    queues: Mapping[str, Queue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"queues": [q.to_dict() for q in self.queues.values()]}

    @classmethod
    def read(cls, d: Any) -> CallCenterSnapshot:
        if not isinstance(d, dict):
            return cls()
        queues = d.get("queues")
        read = [Queue.read(q) for q in queues] if isinstance(queues, list) else []
        return cls(queues={q.number: q for q in read if q is not None})

    def supervised_by(self, extension: str) -> tuple[str, ...]:
        """The numbers of the queues ``extension`` supervises."""
        return tuple(n for n, q in self.queues.items() if extension in q.supervisors)

    def queues_of(self, extension: str) -> tuple[Queue, ...]:
        """The queues ``extension`` is an agent of."""
        return tuple(q for q in self.queues.values() if q.agent(extension) is not None)


@dataclass(frozen=True, slots=True)
class WaitingCaller(_Plain):
    """A caller waiting in a queue (``QueueLive``): since (epoch seconds), whether a VIP,
    whether it hung up for a callback (``callback``: the number it is called back on)."""

    call_id: str
    caller: str = ""
    caller_name: str = ""
    since: float = 0.0
    vip: bool = False
    callback: str = ""

    @classmethod
    def read(cls, d: Any) -> WaitingCaller | None:
        if not isinstance(d, dict) or not _text(d.get("call_id")):
            return None
        return cls(
            call_id=_text(d["call_id"]),
            caller=_text(d.get("caller")),
            caller_name=_text(d.get("caller_name")),
            since=_epoch(d.get("since")),
            vip=d.get("vip") is True,
            callback=_text(d.get("callback")),
        )


@dataclass(frozen=True, slots=True)
class QueueLive(_Plain):
    """The callers one engine holds in one queue, in queue order (``QUEUE_LIVE`` value),
    written at every change; ``at`` is when (epoch seconds)."""

    waiting: tuple[WaitingCaller, ...] = ()
    at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def read(cls, raw: Any) -> QueueLive:
        try:
            d = json.loads(raw)
        except (TypeError, ValueError):
            return cls()
        if not isinstance(d, dict):
            return cls()
        waiting = d.get("waiting")
        read = [WaitingCaller.read(w) for w in waiting] if isinstance(waiting, list) else []
        return cls(waiting=tuple(w for w in read if w is not None), at=_epoch(d.get("at")))


class SupervisionMode(StrEnum):
    """How a supervisor is in an agent's call: hears both (listen), is heard by the agent
    only (whisper), or is heard by both (barge)."""

    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# The keys a supervisor presses during supervision, and the mode each one switches to.
SUPERVISION_KEYS: dict[str, str] = {
    "1": SupervisionMode.LISTEN,
    "2": SupervisionMode.WHISPER,
    "3": SupervisionMode.BARGE,
}


class QueueExit(StrEnum):
    """Why a caller left a queue other than being answered (``queue.left``'s ``reason``)."""

    ABANDONED = "abandoned"  # hung up while waiting
    MAX_WAIT = "max_wait"  # waited ``max_wait_seconds``: overflow
    MAX_CALLERS = "max_callers"  # the queue was full: overflow
    NO_AGENTS = "no_agents"  # nobody logged in (and not ``wait_without_agents``): overflow
    CALLBACK = "callback"  # hung up to be called back (keeps its place)
    BLACKLISTED = "blacklisted"  # refused
    FAILED = "failed"  # the media server or an error: the caller could not be queued


@dataclass(frozen=True, slots=True)
class DialogView(_Plain):
    """One dialog of a watched extension (or park slot) as BLF shows it (RFC 4235): ``state``
    ``early`` (ringing) or ``confirmed``; ``direction`` ``initiator`` or ``recipient``; the
    SIP dialog of the watched phone (``call_id``, its tag ``local_tag`` when known, ours
    ``remote_tag``: a phone picks a ringing call up with ``Replaces`` naming them) and the
    other party (``remote``, ``remote_name``)."""

    id: str
    state: str
    direction: str = "recipient"
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""
    remote: str = ""
    remote_name: str = ""

    @classmethod
    def read(cls, d: Any) -> DialogView | None:
        if not isinstance(d, dict) or not _text(d.get("id")):
            return None
        state = _text(d.get("state"))
        if state not in ("early", "confirmed"):
            return None
        return cls(
            id=_text(d["id"]),
            state=state,
            direction="initiator" if d.get("direction") == "initiator" else "recipient",
            call_id=_text(d.get("call_id")),
            local_tag=_text(d.get("local_tag")),
            remote_tag=_text(d.get("remote_tag")),
            remote=_text(d.get("remote")),
            remote_name=_text(d.get("remote_name")),
        )


# -------------------------------------------------------------------------- call recording


class RecordingPolicy(StrEnum):
    """Whether a call is recorded: never, on demand (someone keys RECORD_START, or the API
    starts it), or always (from the answer; pause and resume allowed). A trunk's or an
    extension's "" means: the tenant's policy. Of a call's parties, the strongest policy wins
    (always > on demand > never): a trunk set to always records every call through it."""

    NEVER = "never"
    ON_DEMAND = "on_demand"
    ALWAYS = "always"


_POLICY_RANK = {
    "": 0,
    RecordingPolicy.NEVER: 1,
    RecordingPolicy.ON_DEMAND: 2,
    RecordingPolicy.ALWAYS: 3,
}


def _policy(value: Any) -> str:
    text = str(value or "")
    return text if text in RecordingPolicy._value2member_map_ else ""


def strongest_policy(*policies: str) -> str:
    """The policy that wins among a call's parties ("" when none is set)."""
    return max(policies, key=lambda p: _POLICY_RANK.get(p, 0), default="")


@dataclass(frozen=True, slots=True)
class RecordingSnapshot(_Plain):
    """A tenant's recording settings (``audio.RecordingSettings``): its default ``policy`` and
    the prompt (a file path on the media host, "" = none) both parties hear before a recording
    starts."""

    policy: str = RecordingPolicy.NEVER
    announcement: str = ""

    @classmethod
    def read(cls, d: Any) -> RecordingSnapshot:
        if not isinstance(d, dict):
            return cls()
        return cls(
            policy=_policy(d.get("policy")) or RecordingPolicy.NEVER,
            announcement=_text(d.get("announcement")),
        )


class RecordingAction(StrEnum):
    """What a RECORD_* code or the API does to an active call's recording."""

    START = "start"
    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"


# ------------------------------------------------------------------------------ billing

# Money, wherever it is counted by both sides (rates in snapshots, balances and holds in
# Redis, the engine's credit check): whole ten-thousandths of the currency unit, so the engine
# and the Django side compute the same cost to the last unit, without floats.
MONEY_SCALE = 10_000


class BillingMode(StrEnum):
    NONE = "none"
    PREPAID = "prepaid"  # calls stop when the credit runs out
    POSTPAID = "postpaid"  # invoiced monthly; calls stop at the credit limit


@dataclass(frozen=True, slots=True)
class Rate(_Plain):
    """The price of calls to numbers starting ``prefix`` (E.164 digits, no "+"), money in
    MONEY_SCALE units: calls shorter than ``grace_seconds`` cost nothing; any other answered
    call pays ``connection_fee``, its first ``first_interval`` seconds (at least), then
    ``free_seconds`` free, then the rest rounded up to whole ``next_interval`` seconds, all at
    ``per_minute`` (60/60: by the minute; 1/1: by the second; 30/6 and the like between)."""

    prefix: str
    per_minute: int = 0
    connection_fee: int = 0
    first_interval: int = 60
    next_interval: int = 60
    free_seconds: int = 0
    grace_seconds: int = 0

    @classmethod
    def read(cls, d: Any) -> Rate | None:
        if not isinstance(d, dict):
            return None
        prefix = str(d.get("prefix") or "")
        if not prefix.isdigit():
            return None
        return cls(
            prefix=prefix,
            per_minute=_count(d.get("per_minute"), 0, 0),
            connection_fee=_count(d.get("connection_fee"), 0, 0),
            first_interval=_count(d.get("first_interval"), 60, 1),
            next_interval=_count(d.get("next_interval"), 60, 1),
            free_seconds=_count(d.get("free_seconds"), 0, 0),
            grace_seconds=_count(d.get("grace_seconds"), 0, 0),
        )

    def charged_seconds(self, seconds: int) -> int:
        """The seconds a call of ``seconds`` (answer to end) is charged for."""
        if seconds <= 0 or seconds < self.grace_seconds:
            return 0
        rest = max(0, seconds - self.first_interval - self.free_seconds)
        return self.first_interval + -(-rest // self.next_interval) * self.next_interval

    def cost(self, seconds: int) -> int:
        """What a call of ``seconds`` costs, in MONEY_SCALE units (rounded up)."""
        charged = self.charged_seconds(seconds)
        if charged == 0:
            return 0
        return self.connection_fee + -(-self.per_minute * charged // 60)

    def max_seconds(self, amount: int) -> int | None:
        """The longest call ``amount`` pays for (seconds; None: no limit, the rate is free;
        0: not even the first interval)."""
        if self.per_minute == 0:
            return None if amount >= self.connection_fee else 0
        if amount < self.cost(1):
            return 0
        # cost() is monotonic in seconds: the last interval boundary that fits.
        left = amount - self.connection_fee - -(-self.per_minute * self.first_interval // 60)
        step = self.per_minute * self.next_interval
        extra = (left * 60 // step) * self.next_interval if left > 0 else 0
        seconds = self.first_interval + self.free_seconds + extra
        while seconds > 1 and self.cost(seconds) > amount:  # the rounding of one step
            seconds -= 1
        return seconds


@dataclass(frozen=True, slots=True)
class BillingSnapshot(_Plain):
    """A tenant's billing as the engine needs it at call set-up: the mode and its sell rates
    by prefix (longest prefix wins). A number no rate covers is not billed (nor limited)."""

    mode: str = BillingMode.NONE
    currency: str = "USD"
    rates: Mapping[str, Rate] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "currency": self.currency,
            "rates": [r.to_dict() for r in self.rates.values()],
        }

    @classmethod
    def read(cls, d: Any) -> BillingSnapshot:
        if not isinstance(d, dict):
            return cls()
        rates = d.get("rates")
        parsed = [Rate.read(r) for r in rates] if isinstance(rates, list) else []
        return cls(
            mode=_choice(d.get("mode"), BillingMode, BillingMode.NONE),
            currency=_text(d.get("currency"))[:3] or "USD",
            rates={r.prefix: r for r in parsed if r is not None},
        )

    def rate_for(self, number: str) -> Rate | None:
        """The rate of ``number`` (E.164, with or without "+"): the longest matching prefix."""
        digits = number.lstrip("+")
        for end in range(min(len(digits), 16), 0, -1):
            found = self.rates.get(digits[:end])
            if found is not None:
                return found
        return None


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
    srtp: str = "off"  # SrtpMode of extensions that do not set their own
    routing: RoutingSnapshot = field(default_factory=RoutingSnapshot)  # outside calls
    media: MediaSnapshot = field(default_factory=MediaSnapshot)  # prompts, music, IVRs, codes
    team: TeamSnapshot = field(default_factory=TeamSnapshot)  # ring groups, paging, park
    recording: RecordingSnapshot = field(default_factory=RecordingSnapshot)
    billing: BillingSnapshot = field(default_factory=BillingSnapshot)
    callcenter: CallCenterSnapshot = field(default_factory=CallCenterSnapshot)  # queues

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
                "srtp": self.srtp,
                "extensions": {n: e.to_dict() for n, e in self.extensions.items()},
                "routing": self.routing.to_dict(),
                "media": self.media.to_dict(),
                "team": self.team.to_dict(),
                "recording": self.recording.to_dict(),
                "billing": self.billing.to_dict(),
                "callcenter": self.callcenter.to_dict(),
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
            srtp=_choice(d.get("srtp"), SrtpMode, SrtpMode.OFF) or SrtpMode.OFF,
            routing=RoutingSnapshot.read(d.get("routing")),
            media=MediaSnapshot.read(d.get("media")),
            team=TeamSnapshot.read(d.get("team")),
            recording=RecordingSnapshot.read(d.get("recording")),
            billing=BillingSnapshot.read(d.get("billing")),
            callcenter=CallCenterSnapshot.read(d.get("callcenter")),
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


# -------------------------------------------------------------------- outside calls: trunks


class TrunkKind(StrEnum):
    REGISTER = "register"  # the engine registers to the carrier with digest
    IP = "ip"  # the carrier sends from known addresses; nothing registers


class TrunkState(StrEnum):
    """A trunk's live state (``TRUNK_STATE``'s ``state``)."""

    UNKNOWN = "unknown"  # not checked yet
    UP = "up"  # answers OPTIONS
    DOWN = "down"  # OPTIONS timed out or were refused
    REGISTERED = "registered"
    FAILED = "failed"  # registration refused or unanswered (``error`` says why)
    DISABLED = "disabled"


# The fields of a trunk's TRUNK_STATE hash: state (TrunkState), error (the last failure in
# words, "" when fine), at (epoch seconds of the last change), checked (epoch seconds of the
# last check), expires (epoch seconds a registration runs out, 0 when not registered).
TRUNK_STATE_FIELDS = ("state", "error", "at", "checked", "expires")


@dataclass(frozen=True, slots=True)
class TrunkSnapshot(_Plain):
    """A SIP trunk to a carrier, as the engine uses it. ``tenants``: the schemas that may use
    it (its owner tenant, or those a provider/dealer trunk is shared with). ``password`` is
    the carrier's secret in clear: the engine answers the carrier's challenges with it (it is
    stored encrypted in the database and never leaves the API)."""

    id: int
    name: str = ""
    kind: str = TrunkKind.IP
    enabled: bool = True
    host: str = ""
    port: int = 0  # 0: the transport's default (5060, 5061 for TLS)
    transport: str = "udp"
    outbound_proxy: str = ""  # host[:port]; requests go there instead of host
    realm: str = ""  # "" = answer whichever realm the carrier challenges with
    username: str = ""
    auth_username: str = ""  # "" = username
    password: str = ""
    register_expires: int = 3600
    # IP trunks: where the carrier's calls come from (addresses or CIDRs) and, when set, the
    # source port; registration trunks also accept calls from their host / proxy.
    addresses: tuple[str, ...] = ()
    source_port: int = 0
    country: str = ""  # how the carrier's national numbers read (ISO 3166), "" = E.164
    codecs: tuple[str, ...] = ()
    dtmf_mode: str = "rfc2833"  # rfc2833, info, inband
    max_channels: int = 0  # 0 = no limit
    from_user: str = ""  # replaces the user in From (some carriers want the account)
    from_domain: str = ""  # replaces the host in From
    caller_id_header: str = CallerIdHeader.PAI
    send_diversion: bool = True
    caller_id: str = ""  # the number presented when nothing more specific is set
    options_interval: int = 60  # seconds between OPTIONS pings, 0 = off
    tenants: frozenset[str] = frozenset()
    recording: str = ""  # RecordingPolicy of calls through it ("" = the tenant's / extension's)

    @classmethod
    def read(cls, d: Mapping[str, Any]) -> TrunkSnapshot:
        get = d.get
        return cls(
            id=_count(get("id"), 0, 0),
            name=_text(get("name")),
            kind=_choice(get("kind"), TrunkKind, TrunkKind.IP),
            enabled=get("enabled", True) is not False,
            host=_text(get("host")).lower(),
            port=_count(get("port"), 0, 0),
            transport=_choice(get("transport"), _Transport, _Transport.UDP),
            outbound_proxy=_text(get("outbound_proxy")),
            realm=_text(get("realm")),
            username=_text(get("username")),
            auth_username=_text(get("auth_username")),
            password=str(get("password") or ""),
            register_expires=_count(get("register_expires"), 3600, 60),
            addresses=_texts(get("addresses")),
            source_port=_count(get("source_port"), 0, 0),
            country=_text(get("country")).upper(),
            codecs=_texts(get("codecs")),
            dtmf_mode=_text(get("dtmf_mode")) or "rfc2833",
            max_channels=_count(get("max_channels"), 0, 0),
            from_user=_text(get("from_user")),
            from_domain=_text(get("from_domain")),
            caller_id_header=_choice(get("caller_id_header"), CallerIdHeader, CallerIdHeader.PAI),
            send_diversion=get("send_diversion", True) is not False,
            caller_id=_text(get("caller_id")),
            options_interval=_count(get("options_interval"), 0, 0),
            tenants=frozenset(_texts(get("tenants"))),
            recording=_policy(get("recording")),
        )

    def next_hop(self) -> tuple[str, int]:
        """Where the trunk's requests go: its outbound proxy (``host[:port]``, ``[v6]:port``)
        when set, else its host and port; without a port the transport's default (5060, 5061
        for TLS). The host lower-case ("" when there is none)."""
        default = 5061 if self.transport == "tls" else 5060
        proxy = self.outbound_proxy.strip()
        if not proxy:
            return self.host, self.port or default
        if proxy.startswith("["):
            host, _, port = proxy[1:].partition("]")
            port = port.lstrip(":")
        elif proxy.count(":") == 1:
            host, _, port = proxy.partition(":")
        else:
            host, port = proxy, ""
        return host.lower(), int(port) if port.isdigit() and 0 < int(port) < 65536 else default


class _Transport(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class CarrierSnapshot:
    """Every trunk (by id) and the DID pool's assigned numbers (E.164 -> the SIP domain of the
    tenant that holds it), published as one document (``CARRIERS``)."""

    trunks: dict[int, TrunkSnapshot] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "trunks": [t.to_dict() for t in self.trunks.values()],
                "numbers": self.numbers,
            }
        )

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> CarrierSnapshot:
        """Tolerant like the tenant snapshot: a bad entry is left out; unreadable JSON is an
        empty snapshot (logged)."""
        if raw is None:
            return cls()
        try:
            d = json.loads(raw)
        except ValueError:
            log.exception("bad carrier snapshot")
            return cls()
        if not isinstance(d, dict):
            return cls()
        trunks = {}
        listed = d.get("trunks")
        for row in listed if isinstance(listed, list) else ():
            if isinstance(row, dict):
                trunk = TrunkSnapshot.read(row)
                if trunk.id:
                    trunks[trunk.id] = trunk
        numbers = d.get("numbers")
        return cls(
            trunks=trunks,
            numbers={
                str(n): str(dom).lower()
                for n, dom in (numbers.items() if isinstance(numbers, dict) else ())
                if isinstance(dom, str)
            },
        )


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
    # An outside call's facts, for its CDR (CDR_FIELDS): sent when a trunk leg is tried or the
    # inbound call is accepted (direction, trunk, did, dialled, number, presented).
    CALL_ROUTED = "call.routed"
    REGISTRATION = "registration"  # its ``action`` is a RegistrationAction
    # Requests of the engine's media features, applied by the Django side (its CDR drain:
    # ``telephony.engine.requests``), each with ``schema``:
    # a caller left a message: box, message (its id), path, seconds, caller, caller_name,
    # call_id;
    VOICEMAIL_LEFT = "voicemail.left"
    # the box's owner heard, saved or deleted a message on the phone: box, message, action
    # (MailboxAction);
    VOICEMAIL_UPDATED = "voicemail.updated"
    # the owner recorded a greeting on the phone: box, greeting ("unavailable" or "busy"),
    # path;
    VOICEMAIL_GREETING = "voicemail.greeting"
    # a feature code changed an extension's setting: extension, feature (Feature), number
    # (the forward target, for the codes that take one).
    FEATURE_SET = "feature.set"
    # Team features, for the CDR and the live portal (each with call_id, schema, segment):
    # the ringing call was answered by ``by`` (an extension) through a pickup;
    CALL_PICKED_UP = "call.picked_up"
    # the call was parked in ``slot`` by ``by`` / left it: ``reason`` retrieved (``by``: who
    # took it), timeout (it rings its parker again) or hangup.
    CALL_PARKED = "call.parked"
    CALL_UNPARKED = "call.unparked"
    # Call recording (each with call_id, schema): its state changed (``state``: recording,
    # paused, stopped; ``by``: the extension or "api" that asked), for the live portal;
    CALL_RECORDING = "call.recording"
    # a call's recording is complete on the recording host (one event per call, sent after
    # rtpengine's delete: the file is closed): ``path`` (the file rtpengine or the media
    # server wrote), ``format`` ("pcap": rtpengine's, both directions in one capture; "wav":
    # the media server's stereo WAV), ``caller`` (the address:port the caller's RTP came
    # from, which tells its stream from the callee's in a pcap; "" when rtpengine could not
    # say), ``started`` (epoch seconds, "%.3f"), with the usual call_id, schema, tenant_id,
    # segment, legs. A request of the engine's (``telephony.engine.requests``): the Django
    # side makes the ``audio.Recording`` and queues its conversion and upload.
    # The pcap (rtpengine 10.5, ``--recording-method=pcap``): classic libpcap, little-endian
    # (magic a1b2c3d4), microsecond timestamps, link type 101 (LINKTYPE_RAW: each record
    # starts at the IPv4 header, no Ethernet). Each record is one UDP datagram as rtpengine
    # received it: source = a phone's (or carrier's) address:port, destination = rtpengine's
    # own port; so the caller's packets are those whose source is ``caller``, the callee's
    # the other source. RTCP (second byte of the payload 200..204) and RFC 4733
    # telephone-events (the payload type negotiated as telephone-event, usually 101) are in
    # it too; audio payload types as negotiated (0 PCMU, 8 PCMA, 9 G722, dynamic ones by the
    # SDP). A paused and resumed recording is several rtpengine parts joined by the engine in
    # time order: the pause is a gap in the capture times (and in the RTP sequence numbers
    # and timestamps, which the phones kept counting).
    RECORDING_READY = "recording.ready"
    # Contact centre (each with schema, tenant_id, queue; the caller's events with call_id):
    # a caller joined a queue: caller, caller_name, position (1 = next), vip ("1"/"0");
    QUEUE_JOINED = "queue.joined"
    # an agent answered it: agent, waited (seconds, "%.1f"), sla ("1" when within
    # sla_seconds);
    QUEUE_ANSWERED = "queue.answered"
    # it left unanswered: reason (QueueExit), waited, position; an overflow goes on to the
    # queue's overflow destination;
    QUEUE_LEFT = "queue.left"
    # it has waited sla_seconds and is still waiting: waited (the wallboard's alert);
    QUEUE_SLA = "queue.sla"
    # a callback: number, state (requested, calling, answered, failed);
    QUEUE_CALLBACK = "queue.callback"
    # an agent's state changed: agent (extension), state (AgentState), reason, by;
    AGENT_STATE = "agent.state"
    # a supervisor joined, changed mode in, or left an agent's call: supervisor, agent, mode
    # (SupervisionMode, or "ended").
    QUEUE_SUPERVISION = "queue.supervision"


CALL_EVENTS = frozenset(t for t in EventType if t.startswith("call."))
QUEUE_EVENTS = frozenset(
    t for t in EventType if t.startswith("queue.") or t == EventType.AGENT_STATE
)

# The CDR fields any call event may carry (the CDR keeps the last non-empty value): direction
# (inbound, outbound, internal), trunk (its id), did (the E.164 number called in), dialled (as
# the user dialled it), number (the outside number in E.164) and presented (the caller ID the
# far end was shown; "anonymous" when withheld).
CDR_FIELDS = ("direction", "trunk", "did", "dialled", "number", "presented")


class MailboxAction(StrEnum):
    """What the owner did with a message in the mailbox menu."""

    SAVE = "save"  # heard: moves to the saved messages
    DELETE = "delete"


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
    def from_json(raw: Any) -> Control | None:
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


@dataclass(frozen=True, slots=True)
class RecordCall(ControlMessage):
    """Start, stop, pause or resume (``RecordingAction``) the recording of call ``call_id`` of
    tenant ``schema`` (the API's recording control); ``by`` names who asked, for the event."""

    OP: ClassVar[str] = "record"
    schema: str
    call_id: str
    action: str
    by: str = "api"

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "call_id": self.call_id,
            "action": self.action,
            "by": self.by,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RecordCall | None:
        action = str(d.get("action") or "")
        if action not in RecordingAction._value2member_map_:
            return None
        return cls(
            schema=str(d.get("schema") or ""),
            call_id=str(d.get("call_id") or ""),
            action=action,
            by=_text(d.get("by")) or "api",
        )


@dataclass(frozen=True, slots=True)
class SuperviseCall(ControlMessage):
    """Ring ``supervisor``'s phones (an extension of tenant ``schema``) and, answered, join
    it to ``agent``'s current queue call in ``mode`` (SupervisionMode): the wallboard's
    listen / whisper / barge. The engine checks that the supervisor supervises that call's
    queue, exactly as for the feature codes."""

    OP: ClassVar[str] = "supervise"
    schema: str
    supervisor: str
    agent: str
    mode: str = SupervisionMode.LISTEN

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "supervisor": self.supervisor,
            "agent": self.agent,
            "mode": self.mode,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SuperviseCall | None:
        mode = str(d.get("mode") or SupervisionMode.LISTEN)
        if mode not in SupervisionMode._value2member_map_:
            return None
        return cls(
            schema=str(d.get("schema") or ""),
            supervisor=_text(d.get("supervisor")),
            agent=_text(d.get("agent")),
            mode=mode,
        )


Control = HangUpCall | CheckSync | RecordCall | SuperviseCall

_CONTROL_PARSERS: dict[str, Callable[[Mapping[str, Any]], Control | None]] = {
    HangUpCall.OP: HangUpCall.from_dict,
    CheckSync.OP: CheckSync.from_dict,
    RecordCall.OP: RecordCall.from_dict,
    SuperviseCall.OP: SuperviseCall.from_dict,
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


# ----------------------------------------------------------------------- web softphone credential
#
# The web app's softphone never sees the extension's SIP password. The signed-in user is issued
# a short-lived credential instead: the digest user name ``web.<expires>.<number>`` and a password
# that is an HMAC of the tenant's schema, the extension, the expiry and the extension's MD5 HA1
# (so a new SIP password revokes every credential issued before it). Django issues it, the engine
# recomputes it from the same secret: no state, no lookup on the SIP path.

WEB_CREDENTIAL_PREFIX = "web"
WEB_CREDENTIAL_SECONDS = 3600  # the lifetime of an issued credential (the page renews it)
WEB_CREDENTIAL_MAX_SECONDS = 86400  # a credential naming a later expiry than this is refused


def derive_secret(secret_key: str, label: str) -> bytes:
    """A key of its own for ``label`` from the installation's SECRET_KEY: every engine and web
    worker computes the same one, and none is ever stored."""
    return hmac.new(secret_key.encode(), label.encode(), hashlib.sha256).digest()


WEB_CREDENTIAL_LABEL = "sip-web-credential"


@dataclass(frozen=True, slots=True)
class WebCredential:
    username: str  # the digest user name (the AOR stays sip:<number>@<domain>)
    password: str
    expires: int  # Unix time


def web_credential_password(
    secret: bytes, schema: str, number: str, expires: int, ha1_md5: str
) -> str:
    mac = hmac.new(secret, f"{schema}|{number}|{expires}|{ha1_md5}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode("ascii")


def issue_web_credential(
    secret: bytes, schema: str, number: str, ha1_md5: str, now: float, lifetime: int = 0
) -> WebCredential:
    expires = int(now) + (lifetime or WEB_CREDENTIAL_SECONDS)
    return WebCredential(
        username=f"{WEB_CREDENTIAL_PREFIX}.{expires}.{number}",
        password=web_credential_password(secret, schema, number, expires, ha1_md5),
        expires=expires,
    )


def read_web_username(username: str) -> tuple[str, int] | None:
    """``(number, expires)`` of a web credential's user name; None for any other name."""
    prefix, _, rest = username.partition(".")
    expires, _, number = rest.partition(".")
    # ASCII digits, at most 12 (Unix time for 30,000 years): int() of anything else could raise.
    if (
        prefix != WEB_CREDENTIAL_PREFIX
        or not (expires.isascii() and expires.isdigit() and len(expires) <= 12)
        or not number
    ):
        return None
    return number, int(expires)


# ----------------------------------------------------------------------- TLS certificates


@dataclass(frozen=True, slots=True)
class HostCertificate:
    """One host name's certificate as the engines load it (``TLS_HOSTS``): the chain, leaf
    first, and its unencrypted private key, both PEM; the fingerprint names the version."""

    chain: str
    key: str
    fingerprint: str = ""

    def to_json(self) -> str:
        return json.dumps({"chain": self.chain, "key": self.key, "fingerprint": self.fingerprint})

    @classmethod
    def from_json(cls, raw: bytes | str | None) -> HostCertificate | None:
        """The certificate in ``raw``, or None when it is missing or unreadable (logged)."""
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            chain, key_pem = data["chain"], data["key"]
            if not isinstance(chain, str) or not isinstance(key_pem, str):
                raise TypeError("chain and key must be strings")
            return cls(chain, key_pem, str(data.get("fingerprint", "")))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("unreadable host certificate: %s", exc)
            return None
