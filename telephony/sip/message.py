"""SIP message parsing and serialisation (RFC 3261 section 7, 19, 20, 25).

Pure functions and plain data classes, no I/O. ``parse(data)`` returns a :class:`Request` or a
:class:`Response`; ``bytes(message)`` serialises it. Anything malformed raises
:class:`SipParseError`, which carries the status a server should answer with (400, 413, 505) —
no other exception escapes ``parse``.

Headers are kept as an ordered list of ``(name, value)`` pairs with canonical names; list headers
(Via, Contact, Route, ...) are split into one entry per value so that ``headers`` is the single
source of truth. Structured views (``msg.via``, ``msg.from_``, ``msg.cseq`` ...) are parsed on first
use and cached; the mutating helpers (``add``, ``set``, ``remove`` ...) drop the cache.
Content-Length is never stored: it is derived from ``body`` when serialising.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias
from urllib.parse import quote, unquote

__all__ = [
    "REASONS",
    "URI",
    "AbsoluteURI",
    "Address",
    "CSeq",
    "Message",
    "Request",
    "Response",
    "SipParseError",
    "SipURI",
    "TelURI",
    "Via",
    "canonical_name",
    "frame_length",
    "make_response",
    "parse",
    "parse_address",
    "parse_uri",
    "parse_via",
]

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 65536
MAX_HEADERS = 100
BRANCH_MAGIC = "z9hG4bK"


class SipParseError(ValueError):
    """Malformed SIP input.

    ``status`` is the response a server should send (400 Bad Request, 413 for an oversized
    message, 505 for an unsupported SIP version). ``partial`` holds whatever headers could be
    read before the error, so a transport can still address a 400 to the sender.
    """

    def __init__(
        self,
        reason: str,
        status: int = 400,
        *,
        partial: list[tuple[str, str]] | None = None,
        is_request: bool | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial
        self.is_request = is_request


# --------------------------------------------------------------------------------------------
# header names

_COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "f": "From",
    "t": "To",
    "v": "Via",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "b": "Referred-By",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_KNOWN = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "History-Info",
    "Identity", "Identity-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "Min-SE",
    "MIME-Version", "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path",
    "Priority", "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck",
    "Reason", "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces",
    "Reply-To", "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server",
    "Service-Route", "Session-Expires", "SIP-ETag", "SIP-If-Match", "Subject",
    "Subscription-State", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate",
]  # fmt: skip

_CANON: dict[str, str] = {n.lower(): n for n in _KNOWN}
_CANON.update(_COMPACT)
# The spellings seen on the wire (canonical, lower case, compact in both cases), looked up as
# they are without lower-casing each name first.
_CANON_EXACT: dict[str, str] = {**_CANON, **{n: n for n in _KNOWN}}
_CANON_EXACT.update({k.upper(): v for k, v in _COMPACT.items()})

# Headers whose value is a comma-separated list (RFC 3261 7.3.1). The auth headers are not in
# here: their values contain commas that are not list separators.
_LIST_HEADERS = frozenset(
    {
        "Via", "Contact", "Route", "Record-Route", "Path", "Service-Route", "Accept",
        "Accept-Encoding", "Accept-Language", "Allow", "Allow-Events", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Content-Encoding", "Content-Language", "Alert-Info",
        "Call-Info", "Error-Info", "In-Reply-To", "Warning", "Reason", "P-Asserted-Identity",
        "P-Preferred-Identity", "History-Info", "Accept-Contact", "Reject-Contact",
    }
)  # fmt: skip
# Empty elements in these are a syntax error; in the others they are harmless and dropped.
_STRICT_LIST = frozenset({"Via", "Contact", "Route", "Record-Route", "Path", "Service-Route"})
_SINGLE = ("From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type", "Expires")
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
_SPECIAL_HEADERS = _LIST_HEADERS | {"Content-Length"}

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# gen-value = token / host / quoted-string; host may be an IPv6 address (received=2001:db8::1)
_PVALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_HOST_RE = re.compile(r"[A-Za-z0-9\-.]+")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]+")
_BAD_ESCAPE_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_VERSION_RE = re.compile(r"SIP/(\d+)\.(\d+)", re.IGNORECASE)
_URI_FORBIDDEN = frozenset(' \t<>"\r\n')
_URI_FORBIDDEN_RE = re.compile('[ \t<>"\r\n]')


def canonical_name(name: str) -> str:
    """Return the canonical spelling of a header name (compact forms expanded)."""
    return _CANON.get(name.lower(), name)


def _is_token(s: str) -> bool:
    return _TOKEN_RE.fullmatch(s) is not None


# --------------------------------------------------------------------------------------------
# low-level splitting helpers


_SPECIAL = {
    (";", False): re.compile(r'[;"]'),
    (";", True): re.compile(r'[;"<>]'),
    (",", False): re.compile(r'[,"]'),
    (",", True): re.compile(r'[,"<>]'),
}
_QUOTED_END = re.compile(r'(?:[^"\\]|\\.)*"', re.DOTALL)


def _split_quoted(value: str, sep: str, *, angle: bool) -> list[str]:
    """Split ``value`` on ``sep`` outside quoted strings (and outside <...> if ``angle``)."""
    if '"' not in value and not (angle and "<" in value):
        return value.split(sep)
    # Jump from one special character to the next with a compiled search instead of a
    # Python-level loop over every character: this runs for every Contact with +sip.instance.
    special = _SPECIAL[(sep, angle)]
    parts: list[str] = []
    start = 0
    pos = 0
    in_angle = False
    search = special.search
    while True:
        m = search(value, pos)
        if m is None:
            break
        c = m.group()
        pos = m.end()
        if c == '"':
            q = _QUOTED_END.match(value, pos)
            if q is None:
                raise SipParseError("unterminated quoted string")
            pos = q.end()
        elif c == "<":
            in_angle = True
        elif c == ">":
            in_angle = False
        elif not in_angle:
            parts.append(value[start : pos - 1])
            start = pos
    parts.append(value[start:])
    return parts


def _parse_params(s: str, *, allow_empty_seg: bool = False) -> dict[str, str | None]:
    """Parse ``;name=value;flag`` (leading ';' already removed). Names are lower-cased;
    values keep their quotes so that serialising gives the same bytes back."""
    params: dict[str, str | None] = {}
    for seg in _split_quoted(s, ";", angle=False):
        eq = seg.find("=")
        if eq < 0:
            name = seg.strip(" \t")
            value: str | None = None
        else:
            name = seg[:eq].strip(" \t")
            value = seg[eq + 1 :].strip(" \t")
            if not value:
                raise SipParseError("empty parameter value")
            if value[0] == '"':
                if len(value) < 2 or value[-1] != '"':
                    raise SipParseError("bad quoted parameter value")
            elif _PVALUE_RE.fullmatch(value) is None:
                raise SipParseError("bad parameter value")
        if not name:
            if allow_empty_seg:
                continue
            raise SipParseError("empty parameter")
        if not _is_token(name):
            raise SipParseError("bad parameter name")
        params[name.lower()] = value
    return params


def _params_str(params: dict[str, str | None]) -> str:
    # a list, not a generator: join() builds one first anyway, and this runs for every Via
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params.items()])


def _unescape(s: str) -> str:
    if "%" not in s:
        return s
    if _BAD_ESCAPE_RE.search(s):
        raise SipParseError("bad %-escape in URI")
    return unquote(s, encoding="utf-8", errors="surrogateescape")


# RFC 3261 25.1: characters that may appear unescaped in each URI component.
_USER_SAFE = "-_.!~*'()&=+$,;?/"
_PASSWORD_SAFE = "-_.!~*'()&=+$,"  # noqa: S105 -- a character set, not a secret
_PARAM_SAFE = "-_.!~*'()[]/:&+$"
_HEADER_SAFE = "-_.!~*'()[]/?:+$"


def _escape(s: str, safe: str) -> str:
    return quote(s, safe=safe, encoding="utf-8", errors="surrogateescape")


def unquote_string(s: str) -> str:
    """Remove the quotes and backslash escapes of a quoted-string (used for digest params)."""
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        s = s[1:-1]
        if "\\" in s:
            s = re.sub(r"\\(.)", r"\1", s, flags=re.DOTALL)
    return s


# Control characters (HTAB aside): never in a header value we write. CR or LF would end the
# header line and start one the text chose (header injection); a quoted-string cannot carry
# them even escaped (RFC 3261 25.1: quoted-pair excludes CR and LF).
_CTL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")


def one_line(s: str) -> str:
    """``s`` with every run of control characters (CR, LF, NUL...; not HTAB) made one space."""
    return _CTL_RE.sub(" ", s)


def quote_string(s: str) -> str:
    """Make a quoted-string (RFC 3261 25.1): backslash and double quote escaped, control
    characters (CR, LF...) replaced by a space, so the text can never leave the quotes or the
    header line, whatever its source."""
    s = _CTL_RE.sub(" ", s)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --------------------------------------------------------------------------------------------
# URIs


@dataclass(slots=True)
class SipURI:
    """A sip: or sips: URI. ``user``/``password``/params/headers are stored unescaped;
    ``host`` is bare (no brackets around IPv6)."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    scheme: str = "sip"

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(_escape(self.user, _USER_SAFE))
            if self.password is not None:
                out += [":", _escape(self.password, _PASSWORD_SAFE)]
            out.append("@")
        out.append(f"[{self.host}]" if ":" in self.host else self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for k, v in self.params.items():
            out += [";", _escape(k, _PARAM_SAFE)]
            if v is not None:
                out += ["=", _escape(v, _PARAM_SAFE)]
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{_escape(k, _HEADER_SAFE)}={_escape(v, _HEADER_SAFE)}"
                    for k, v in self.headers.items()
                )
            )
        return "".join(out)

    @property
    def transport(self) -> str | None:
        t = self.params.get("transport")
        return t.lower() if t else None

    @property
    def lr(self) -> bool:
        return "lr" in self.params

    @property
    def hostport(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return h if self.port is None else f"{h}:{self.port}"

    def copy(self) -> SipURI:
        return SipURI(
            self.host,
            self.user,
            self.password,
            self.port,
            dict(self.params),
            dict(self.headers),
            self.scheme,
        )


@dataclass(slots=True)
class TelURI:
    """A tel: URI (RFC 3966): the number and its parameters."""

    number: str
    params: dict[str, str | None] = field(default_factory=dict)
    scheme: str = "tel"

    def __str__(self) -> str:
        return f"tel:{self.number}{_params_str(self.params)}"


@dataclass(slots=True)
class AbsoluteURI:
    """Any other scheme, kept opaque (RFC 4475 unkscm/novelsc: parse, then answer 416)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


URI: TypeAlias = SipURI | TelURI | AbsoluteURI


def _parse_hostport(s: str) -> tuple[str, int | None]:
    if not s:
        raise SipParseError("empty host")
    if s[0] == "[":
        end = s.find("]")
        if end < 0:
            raise SipParseError("bad IPv6 reference")
        host = s[1:end]
        if not _IPV6_RE.fullmatch(host) or ":" not in host:
            raise SipParseError("bad IPv6 reference")
        rest = s[end + 1 :]
        if not rest:
            return host, None
        if rest[0] != ":":
            raise SipParseError("bad host")
        port_s = rest[1:]
    else:
        host, sep, port_s = s.partition(":")
        if not _HOST_RE.fullmatch(host):
            raise SipParseError("bad host")
        if not sep:
            return host, None
    if not port_s.isdigit() or not port_s.isascii() or len(port_s) > 5:
        raise SipParseError("bad port")
    port = int(port_s)
    if not 0 < port < 65536:
        raise SipParseError("port out of range")
    return host, port


def parse_uri(s: str) -> URI:
    """Parse a URI (sip, sips, tel; others kept opaque). Raises SipParseError."""
    m = _FAST_URI_RE.fullmatch(s)
    if m is not None:
        uri = _fast_sip_uri(m)
        if uri is not None:
            return uri
    return _parse_uri_slow(s)


def _parse_uri_slow(s: str) -> URI:
    colon = s.find(":")
    if colon <= 0 or not _SCHEME_RE.fullmatch(s[:colon]):
        raise SipParseError("bad URI scheme")
    if _URI_FORBIDDEN_RE.search(s) is not None:  # one C-level scan, not a Python loop
        raise SipParseError("illegal character in URI")
    scheme = s[:colon].lower()
    rest = s[colon + 1 :]
    if scheme == "sip" or scheme == "sips":
        return _parse_sip_uri(scheme, rest)
    if scheme == "tel":
        number, _, params = rest.partition(";")
        if not number:
            raise SipParseError("empty tel number")
        return TelURI(number, _parse_params(params) if params else {})
    if not rest:
        raise SipParseError("empty URI")
    return AbsoluteURI(scheme, rest)


def _parse_sip_uri(scheme: str, rest: str) -> SipURI:
    user = password = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        u, sep, p = userinfo.partition(":")
        if not u:
            raise SipParseError("empty user")
        user = _unescape(u)
        if sep:
            password = _unescape(p)
    headers: dict[str, str] = {}
    q = rest.find("?")
    if q >= 0:
        for h in rest[q + 1 :].split("&"):
            hn, sep, hv = h.partition("=")
            if not hn or not sep:
                raise SipParseError("bad URI header")
            headers[_unescape(hn)] = _unescape(hv)
        rest = rest[:q]
    params: dict[str, str | None] = {}
    semi = rest.find(";")
    if semi >= 0:
        for seg in rest[semi + 1 :].split(";"):
            pn, sep, pv = seg.partition("=")
            if not pn or (sep and not pv):
                raise SipParseError("bad URI parameter")
            params[_unescape(pn).lower()] = _unescape(pv) if sep else None
        rest = rest[:semi]
    host, port = _parse_hostport(rest)
    return SipURI(host, user, password, port, params, headers, scheme)


# --------------------------------------------------------------------------------------------
# fast paths
#
# Nearly every URI, address and Via a phone or SIPp sends has one plain shape: no escapes, no
# whitespace, no display name or a quoted one without backslashes, no URI headers. One compiled
# ``fullmatch`` recognises that shape and the fields are taken from the match groups, instead of
# the general parser's many Python-level splits and checks (it was most of the ~55 µs a REGISTER
# took to parse). The character classes are *subsets* of what the general parser accepts, chosen
# so that whatever matches gives exactly the general parser's result; anything else (and any
# value the fast path would reject) goes to the general parser, which decides and raises.
# ``tests/sip/test_sip_message_fastpath.py`` checks the two against each other.

_FP_TK = r"[A-Za-z0-9\-.!%*_+`'~]+"
# A header parameter: token name, optional token/host value or a quoted string without escapes.
_FP_HPARAM = rf"""(?:;{_FP_TK}(?:=(?:[A-Za-z0-9\-.!%*_+`'~:\[\]]+|"[^"\\\r\n]*"))?)"""
_FP_HOST = r"[A-Za-z0-9\-.]+"
# user: unreserved / user-unreserved without '%' (no unescaping), ':' (password), '@', ';', '?'.
_FP_USER = r"[A-Za-z0-9\-_.!~*'()&=+$,/]+"
# URI parameter name and value: param-unreserved / unreserved without '%', '=', '@', '?', ','.
_FP_UPCHARS = r"[A-Za-z0-9\-_.!~*'()\[\]/:&+$]+"
_FP_URI = (
    rf"((?i:sips?)):(?:({_FP_USER})@)?({_FP_HOST})(?::([0-9]{{1,5}}))?"
    rf"((?:;{_FP_UPCHARS}(?:={_FP_UPCHARS})?)*)"
)
_FAST_URI_RE = re.compile(_FP_URI)
# name-addr with no display name or a quoted one without escapes; groups 1 display, 2-6 URI,
# 7 header parameters.
_FAST_ADDR_RE = re.compile(rf'(?:"([^"\\\r\n]*)"[ \t]*)?<{_FP_URI}>({_FP_HPARAM}*)')
# groups: transport, host, port, parameters
_FAST_VIA_RE = re.compile(rf"SIP/2\.0/([A-Za-z]+) ({_FP_HOST})(?::([0-9]{{1,5}}))?({_FP_HPARAM}*)")
_FAST_CSEQ_RE = re.compile(r"([0-9]{1,10}) ([A-Za-z]+)")


def _fast_uri_params(s: str) -> dict[str, str | None]:
    """``;a=b;c`` already validated by a fast regex (no '%', so nothing to unescape)."""
    params: dict[str, str | None] = {}
    for seg in s[1:].split(";"):
        name, sep, value = seg.partition("=")
        params[name.lower()] = value if sep else None
    return params


def _fast_header_params(s: str) -> dict[str, str | None]:
    """Header parameters already validated by a fast regex; a quoted value may hold ';'."""
    if '"' in s:
        return _parse_params(s[1:])
    params: dict[str, str | None] = {}
    for seg in s[1:].split(";"):
        name, sep, value = seg.partition("=")
        params[name.lower()] = value if sep else None
    return params


def _fast_sip_uri(m: re.Match[str], first: int = 1) -> SipURI | None:
    """A SipURI from the URI groups of a fast match; None if the port is out of range (the
    general parser then raises)."""
    scheme, user, host, port_s, params_s = m.group(first, first + 1, first + 2, first + 3,
                                                   first + 4)  # fmt: skip
    port: int | None = None
    if port_s is not None:
        port = int(port_s)
        if not 0 < port < 65536:
            return None
    return SipURI(
        host,
        user,
        None,
        port,
        _fast_uri_params(params_s) if params_s else {},
        {},
        scheme.lower(),
    )


# --------------------------------------------------------------------------------------------
# name-addr / addr-spec


@dataclass(slots=True)
class Address:
    """name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route,
    Refer-To... ``display_name`` is unquoted text (None when absent)."""

    uri: URI
    display_name: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.display_name:
            return f"{quote_string(self.display_name)} <{self.uri}>{_params_str(self.params)}"
        return f"<{self.uri}>{_params_str(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @property
    def expires(self) -> int | None:
        v = self.params.get("expires")
        if v is None or not v.isdigit():
            return None
        return min(int(v), 2**32 - 1)

    @property
    def q(self) -> float | None:
        v = self.params.get("q")
        try:
            return float(v) if v is not None else None
        except ValueError:
            return None

    def copy(self) -> Address:
        uri = self.uri.copy() if isinstance(self.uri, SipURI) else self.uri
        return Address(uri, self.display_name, dict(self.params))


def _read_quoted(s: str, start: int) -> tuple[str, int]:
    """Read a quoted-string whose opening quote is at ``start``; return (text, index after)."""
    out: list[str] = []
    i = start + 1
    n = len(s)
    while i < n:
        c = s[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise SipParseError("unterminated quoted string")


def parse_address(value: str) -> Address:
    """Parse a From/To/Contact/Route style value. Raises SipParseError."""
    m = _FAST_ADDR_RE.fullmatch(value)
    if m is not None:
        uri = _fast_sip_uri(m, 2)
        if uri is not None:
            params_s = m.group(7)
            return Address(uri, m.group(1), _fast_header_params(params_s) if params_s else {})
    return _parse_address_slow(value)


def _parse_address_slow(value: str) -> Address:
    s = value.strip(" \t")
    if not s:
        raise SipParseError("empty address")
    display: str | None = None
    if s[0] == '"':
        display, i = _read_quoted(s, 0)
        s = s[i:].lstrip(" \t")
        if not s or s[0] != "<":
            raise SipParseError("display name without <URI>")
        lt = 0
    else:
        lt = s.find("<")
    if lt >= 0:
        if display is None:
            words = s[:lt].split()
            for w in words:
                if not _is_token(w):
                    raise SipParseError("unquoted display name is not a token")
            display = " ".join(words) or None
        gt = s.find(">", lt)
        if gt < 0:
            raise SipParseError("missing >")
        uri_s = s[lt + 1 : gt]
        rest = s[gt + 1 :].lstrip(" \t")
    else:
        # addr-spec: the URI ends at the first ';' and may not carry ?headers or commas
        # (RFC 3261 20.10); RFC 4475 regbadct.
        semi = s.find(";")
        uri_s = s if semi < 0 else s[:semi]
        uri_s = uri_s.rstrip(" \t")
        rest = "" if semi < 0 else s[semi:]
        if "?" in uri_s or "," in uri_s:
            raise SipParseError("addr-spec with reserved characters must use <>")
    uri = parse_uri(uri_s)
    params: dict[str, str | None] = {}
    if rest:
        if rest[0] != ";":
            raise SipParseError("junk after address")
        params = _parse_params(rest[1:])
    return Address(uri, display, params)


# --------------------------------------------------------------------------------------------
# Via, CSeq


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/<transport> host[:port];params``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        hp = h if self.port is None else f"{h}:{self.port}"
        return f"SIP/2.0/{self.transport} {hp}{_params_str(self.params)}"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def rport(self) -> int | None:
        v = self.params.get("rport")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def wants_rport(self) -> bool:
        return "rport" in self.params

    @property
    def is_rfc3261(self) -> bool:
        """A branch that starts with the magic cookie *and* has something after it; a bare
        cookie (RFC 4475 badbranch) falls back to pre-3261 matching."""
        b = self.branch
        return b is not None and b.startswith(BRANCH_MAGIC) and len(b) > len(BRANCH_MAGIC)

    def copy(self) -> Via:
        return Via(self.transport, self.host, self.port, dict(self.params))


def parse_via(value: str) -> Via:
    """Parse one Via value (LWS allowed around '/' as in RFC 4475 wsinv)."""
    m = _FAST_VIA_RE.fullmatch(value)
    if m is not None:
        transport, host, port_s, params_s = m.groups()
        port: int | None = None
        if port_s is not None:
            port = int(port_s)
        if port is None or 0 < port < 65536:
            params = _fast_header_params(params_s) if params_s else {}
            return Via(transport.upper(), host, port, params)
    return _parse_via_slow(value)


def _parse_via_slow(value: str) -> Via:
    semi = value.find(";")
    head = value if semi < 0 else value[:semi]
    parts = head.split("/", 2)
    if len(parts) != 3:
        raise SipParseError("bad Via sent-protocol")
    if parts[0].strip(" \t").upper() != "SIP" or parts[1].strip(" \t") != "2.0":
        raise SipParseError("bad Via protocol")
    ts = parts[2].split()
    if len(ts) != 2 or not _is_token(ts[0]):
        raise SipParseError("bad Via transport/sent-by")
    host, port = _parse_hostport(ts[1])
    params = _parse_params(value[semi + 1 :]) if semi >= 0 else {}
    return Via(ts[0].upper(), host, port, params)


@dataclass(slots=True, frozen=True)
class CSeq:
    """CSeq: sequence number (< 2**31) and method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    m = _FAST_CSEQ_RE.fullmatch(value)
    if m is not None:
        seq = int(m.group(1))
        if seq < 2**31:
            return CSeq(seq, m.group(2))
    return _parse_cseq_slow(value)


def _parse_cseq_slow(value: str) -> CSeq:
    parts = value.split()
    if len(parts) != 2 or not parts[0].isdigit() or not parts[0].isascii():
        raise SipParseError("bad CSeq")
    if len(parts[0]) > 10 or int(parts[0]) >= 2**31:
        raise SipParseError("CSeq number too large")
    if not _is_token(parts[1]):
        raise SipParseError("bad CSeq method")
    return CSeq(int(parts[0]), parts[1])


def _parse_uint(value: str, limit: int, what: str) -> int:
    v = value.strip(" \t")
    if not v.isdigit() or not v.isascii() or len(v) > 10:
        raise SipParseError(f"bad {what}")
    n = int(v)
    if n > limit:
        raise SipParseError(f"{what} too large")
    return n


# --------------------------------------------------------------------------------------------
# messages


class Message:
    """Common part of requests and responses: ordered headers and the body."""

    __slots__ = ("headers", "body", "_cache")

    def __init__(self, headers: Iterable[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.headers: list[tuple[str, str]] = list(headers) if headers else []
        self.body = body
        self._cache: dict[str, Any] = {}

    def _identity(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        """Equal when of the same kind with the same start line, headers and body (the parsed
        views in ``_cache`` do not count)."""
        if type(other) is not type(self):
            return NotImplemented
        return self._identity() == other._identity()

    __hash__ = None  # type: ignore[assignment]

    # --- header access -------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of a header (case-insensitive, compact forms accepted)."""
        canon = _CANON.get(name.lower())
        if canon is not None:
            # known names are stored canonical, so a plain comparison is enough (hot path)
            for n, v in self.headers:
                if n == canon:
                    return v
            return default
        key = name.lower()
        for n, v in self.headers:
            if n.lower() == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        canon = _CANON.get(name.lower())
        if canon is not None:
            return [v for n, v in self.headers if n == canon]
        key = name.lower()
        return [v for n, v in self.headers if n.lower() == key]

    def add(self, name: str, value: str) -> None:
        """Append a header (after any existing ones of the same name)."""
        self.headers.append((canonical_name(name), value))
        self._cache.clear()

    def prepend(self, name: str, value: str) -> None:
        """Insert a header value before the others of its name (top Via, Record-Route)."""
        name = canonical_name(name)
        key = name.lower()
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == key:
                self.headers.insert(i, (name, value))
                break
        else:
            self.headers.insert(0, (name, value))
        self._cache.clear()

    def set(self, name: str, value: str) -> None:
        """Replace all values of a header by one (keeping the position of the first)."""
        name = canonical_name(name)
        key = name.lower()
        out: list[tuple[str, str]] = []
        done = False
        for n, v in self.headers:
            if n.lower() == key:
                if not done:
                    out.append((name, value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((name, value))
        self.headers = out
        self._cache.clear()

    def remove(self, name: str) -> None:
        key = canonical_name(name).lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != key]
        self._cache.clear()

    def remove_first(self, name: str) -> None:
        key = canonical_name(name).lower()
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == key:
                del self.headers[i]
                break
        self._cache.clear()

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of a header (the top Via, for received/rport)."""
        name = canonical_name(name)
        key = name.lower()
        for i, (n, _) in enumerate(self.headers):
            if n.lower() == key:
                self.headers[i] = (name, value)
                break
        else:
            self.headers.append((name, value))
        self._cache.clear()

    # --- structured views (cached) -------------------------------------------------------
    def _cached(self, key: str, fn: Any) -> Any:
        try:
            return self._cache[key]
        except KeyError:
            v = self._cache[key] = fn()
            return v

    # The structured views are read many times per message by the layers above: a dict lookup
    # in a try block is the cheapest way to serve them from the cache.
    @property
    def via(self) -> list[Via]:
        try:
            return self._cache["via"]  # type: ignore[no-any-return]
        except KeyError:
            v = self._cache["via"] = [parse_via(v) for v in self.get_all("Via")]
            return v

    @property
    def top_via(self) -> Via:
        vias = self.via
        if not vias:
            raise SipParseError("missing Via")
        return vias[0]

    def _addr(self, name: str) -> Address:
        v = self.get(name)
        if v is None:
            raise SipParseError(f"missing {name}")
        return parse_address(v)

    @property
    def from_(self) -> Address:
        try:
            return self._cache["from"]  # type: ignore[no-any-return]
        except KeyError:
            a = self._cache["from"] = self._addr("From")
            return a

    @property
    def to(self) -> Address:
        try:
            return self._cache["to"]  # type: ignore[no-any-return]
        except KeyError:
            a = self._cache["to"] = self._addr("To")
            return a

    @property
    def call_id(self) -> str:
        v = self.get("Call-ID")
        if v is None:
            raise SipParseError("missing Call-ID")
        return v

    @property
    def cseq(self) -> CSeq:
        try:
            return self._cache["cseq"]  # type: ignore[no-any-return]
        except KeyError:
            v = self.get("CSeq")
            if v is None:
                raise SipParseError("missing CSeq") from None
            c = self._cache["cseq"] = parse_cseq(v)
            return c

    @property
    def max_forwards(self) -> int | None:
        v = self.get("Max-Forwards")
        return None if v is None else _parse_uint(v, 255, "Max-Forwards")

    @property
    def expires(self) -> int | None:
        v = self.get("Expires")
        if v is None:
            return None
        v = v.strip()
        # Huge values (RFC 4475 scalar02) are clamped, not rejected: 2**32-1 is the cap.
        return min(int(v), 2**32 - 1) if v.isdigit() and v.isascii() else None

    def _addr_list(self, name: str) -> list[Address]:
        return [parse_address(v) for v in self.get_all(name) if v.strip() != "*"]

    @property
    def contacts(self) -> list[Address]:
        """Contact values; a ``*`` Contact is not included (see ``contact_star``)."""
        return self._cached("contact", lambda: self._addr_list("Contact"))  # type: ignore[no-any-return]

    @property
    def contact_star(self) -> bool:
        return any(v.strip() == "*" for v in self.get_all("Contact"))

    @property
    def routes(self) -> list[Address]:
        return self._cached("route", lambda: self._addr_list("Route"))  # type: ignore[no-any-return]

    @property
    def record_routes(self) -> list[Address]:
        return self._cached("rr", lambda: self._addr_list("Record-Route"))  # type: ignore[no-any-return]

    @property
    def content_type(self) -> str | None:
        v = self.get("Content-Type")
        return None if v is None else v.split(";", 1)[0].strip().lower()

    def tokens(self, name: str) -> list[str]:
        """Values of a token-list header (Require, Supported, Allow...), lower-cased."""
        return [v.strip().lower() for v in self.get_all(name) if v.strip()]

    # --- serialisation -------------------------------------------------------------------
    def _start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        parts = [self._start_line()]
        parts += [f"{n}: {v}" for n, v in self.headers]
        parts.append(f"Content-Length: {len(self.body)}\r\n\r\n")
        text = "\r\n".join(parts)
        # The last resort against header injection, whatever built the value: a CR or LF
        # inside a line (two scans in C, cheaper than a check per header) makes it one line.
        lines = len(parts) + 1
        if text.count("\n") != lines or text.count("\r") != lines:
            log.warning("control characters replaced in %s", one_line(parts[0])[:80])
            text = "\r\n".join([one_line(p) for p in parts[:-1]] + [parts[-1]])
        return text.encode("utf-8", "surrogateescape") + self.body

    def _validate(self) -> None:
        """Checks every request/response must pass (RFC 3261 8.1.1, 20); fills the cache.

        Runs on every received message, so it reads the headers in as few passes as it can:
        ``dict(headers)`` keeps one value per name, which for the headers allowed once is the
        only one (checked first) and spares a ``get()`` walk for each of them."""
        headers = self.headers
        one = dict(headers)
        for name in _REQUIRED:
            if name not in one:
                raise SipParseError(f"missing {name}")
        if len(one) != len(headers):  # some name repeats: only list headers may
            counts: dict[str, int] = {}
            for n, _ in headers:
                counts[n] = counts.get(n, 0) + 1
            for name in _SINGLE:
                if counts.get(name, 0) > 1:
                    raise SipParseError(f"more than one {name}")
        call_id = one["Call-ID"]
        if not call_id or " " in call_id or "\t" in call_id:
            raise SipParseError("bad Call-ID")
        cache = self._cache
        cache["via"] = [parse_via(v) for n, v in headers if n == "Via"]
        cache["from"] = parse_address(one["From"])
        cache["to"] = parse_address(one["To"])
        cache["cseq"] = parse_cseq(one["CSeq"])
        mf = one.get("Max-Forwards")
        if mf is not None:
            _parse_uint(mf, 255, "Max-Forwards")
        if "Contact" in one:
            cache["contact"] = self._addr_list("Contact")
        if "Route" in one:
            cache["route"] = self._addr_list("Route")
        if "Record-Route" in one:
            cache["rr"] = self._addr_list("Record-Route")


class Request(Message):
    """A SIP request. ``uri`` is the Request-URI."""

    __slots__ = ("method", "uri")

    def __init__(
        self,
        method: str,
        uri: URI,
        headers: Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.uri = uri

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def _identity(self) -> tuple[object, ...]:
        return (self.method, self.uri, self.headers, self.body)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = REASONS.get(status, "") if reason is None else reason

    def _start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def _identity(self) -> tuple[object, ...]:
        return (self.status, self.reason, self.headers, self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# --------------------------------------------------------------------------------------------
# parsing


def _find_head_end(data: bytes) -> tuple[int, int]:
    """Return (end of headers, start of body); (-1, -1) if no blank line."""
    i = data.find(b"\r\n\r\n")
    if i >= 0:
        return i, i + 4
    i = data.find(b"\n\n")
    if i >= 0:
        return i, i + 2
    return -1, -1


def _content_length(headers_blob: bytes) -> int | None:
    """Find Content-Length in raw header bytes (stream framing, before the full parse)."""
    for line in headers_blob.split(b"\n"):
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = line[:colon].strip().lower()
        if name == b"content-length" or name == b"l":
            v = line[colon + 1 :].strip()
            if not v.isdigit() or len(v) > 10:
                raise SipParseError("bad Content-Length")
            return int(v)
    return None


def frame_length(buf: bytes | bytearray, max_size: int = MAX_MESSAGE_SIZE) -> int | None:
    """Length of the first complete message in a stream buffer, or None if more is needed.

    Leading CRLFs must have been stripped by the caller (they are keep-alives). Raises
    SipParseError if the headers exceed ``max_size`` or Content-Length is missing/invalid
    (RFC 3261 18.3: mandatory on stream transports).
    """
    b = bytes(buf[: max_size + 4])
    end, body_start = _find_head_end(b)
    if end < 0:
        if len(buf) > max_size:
            raise SipParseError("message too large", 413)
        return None
    cl = _content_length(b[:end])
    if cl is None:
        raise SipParseError("missing Content-Length on stream transport")
    total = body_start + cl
    if total > max_size:
        raise SipParseError("message too large", 413)
    return total if len(buf) >= total else None


def parse(
    data: bytes,
    *,
    stream: bool = False,
    max_size: int = MAX_MESSAGE_SIZE,
    max_headers: int = MAX_HEADERS,
) -> Request | Response:
    """Parse one SIP message.

    ``stream=True`` for TCP/TLS/WS frames (Content-Length mandatory on TCP/TLS and must match);
    on datagrams the body is the rest of the packet, truncated to Content-Length if that is
    smaller, and an error if it is larger (RFC 3261 18.3).
    """
    try:
        return _parse(data, stream, max_size, max_headers)
    except SipParseError:
        raise
    except Exception as exc:  # the contract: nothing but SipParseError escapes
        raise SipParseError(f"malformed message ({type(exc).__name__})") from exc


def _slow_headers(
    lines: list[str], max_headers: int, is_request: bool
) -> tuple[list[tuple[str, str]], int | None]:
    """The general header loop, for heads with continuation lines (folded values)."""
    headers: list[tuple[str, str]] = []
    content_length: int | None = None
    name = ""
    value = ""
    pending = False
    canon = _CANON
    for line in lines[1:] + [""]:
        if line and (line[0] == " " or line[0] == "\t"):
            if not pending:
                raise SipParseError("continuation line without header", is_request=is_request)
            cont = line.strip(" \t")
            value = f"{value} {cont}" if value else cont
            continue
        if pending:
            # flush the previous header
            if name == "Content-Length":
                if content_length is not None:
                    raise SipParseError("more than one Content-Length", partial=headers)
                try:
                    content_length = _parse_uint(value, 2**31, "Content-Length")
                except SipParseError as exc:
                    exc.partial = headers
                    raise
            elif name in _LIST_HEADERS and "," in value:
                for item in _split_quoted(value, ",", angle=True):
                    item = item.strip(" \t")
                    if item:
                        headers.append((name, item))
                    elif name in _STRICT_LIST:
                        raise SipParseError(f"empty {name} element", partial=headers)
            else:
                headers.append((name, value))
            if len(headers) > max_headers:
                raise SipParseError("too many headers", partial=headers)
            pending = False
        if not line:
            continue
        colon = line.find(":")
        if colon <= 0:
            raise SipParseError("header line without colon", partial=headers)
        raw = line[:colon].rstrip(" \t")
        name = canon.get(raw.lower(), "")
        if not name:
            if not _is_token(raw):
                raise SipParseError("bad header name", partial=headers)
            name = raw
        value = line[colon + 1 :].strip(" \t")
        pending = True

    return headers, content_length


def _fast_headers(lines: list[str], max_headers: int) -> tuple[list[tuple[str, str]], int | None]:
    """:func:`_slow_headers` for heads without continuation lines (nearly all of them): each
    line is a whole header, so it is stored at once instead of when the next line shows that
    it is not folded. Same results and the same errors in the same order."""
    headers: list[tuple[str, str]] = []
    append = headers.append
    content_length: int | None = None
    exact = _CANON_EXACT
    special = _SPECIAL_HEADERS
    # Only a head with more lines than the limit, or one whose list headers were split into
    # more entries than lines, can go over it: spare the check on every line otherwise.
    check = len(lines) > max_headers
    for line in lines[1:]:
        raw, colon, value = line.partition(":")
        name = exact.get(raw)  # the usual spellings, without lower-casing each name
        if name is None or not colon:
            if not colon or not raw:
                if not line:
                    continue
                raise SipParseError("header line without colon", partial=headers)
            raw = raw.rstrip(" \t")
            name = _CANON.get(raw.lower())
            if name is None:
                if not _is_token(raw):
                    raise SipParseError("bad header name", partial=headers)
                name = raw
        value = value.strip(" \t")
        if name in special:
            if name == "Content-Length":
                if content_length is not None:
                    raise SipParseError("more than one Content-Length", partial=headers)
                try:
                    content_length = _parse_uint(value, 2**31, "Content-Length")
                except SipParseError as exc:
                    exc.partial = headers
                    raise
                continue  # never stored: derived from the body when serialising
            if "," in value:
                for item in _split_quoted(value, ",", angle=True):
                    item = item.strip(" \t")
                    if item:
                        append((name, item))
                    elif name in _STRICT_LIST:
                        raise SipParseError(f"empty {name} element", partial=headers)
                check = True
            else:
                append((name, value))
        else:
            append((name, value))
        if check and len(headers) > max_headers:
            raise SipParseError("too many headers", partial=headers)
    return headers, content_length


def _parse(data: bytes, stream: bool, max_size: int, max_headers: int) -> Request | Response:
    if len(data) > max_size:
        raise SipParseError("message too large", 413)
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")  # RFC 3261 7.5: ignore CRLFs before the start line
    end, body_start = _find_head_end(data)
    if end < 0:
        head_b = data.rstrip(b"\r\n")
        rest = b""
    else:
        head_b = data[:end]
        rest = data[body_start:]
    if not head_b:
        raise SipParseError("empty message")
    head = head_b.decode("utf-8", "surrogateescape")
    lines = head.split("\r\n") if "\r\n" in head else head.split("\n")

    start = lines[0]
    is_request = not start.startswith("SIP/")
    msg: Request | Response
    if is_request:
        parts = start.split(" ")
        if len(parts) != 3:
            raise SipParseError("bad request line", is_request=True)
        method, uri_s, version = parts
        if version != "SIP/2.0":
            m = _VERSION_RE.fullmatch(version)
            if m is None:
                raise SipParseError("bad SIP version", is_request=True)
            if m.group(1, 2) != ("2", "0"):
                raise SipParseError("SIP version not supported", 505, is_request=True)
        if not _is_token(method):
            raise SipParseError("bad method", is_request=True)
        try:
            uri = parse_uri(uri_s)
            if isinstance(uri, SipURI) and uri.headers:
                # RFC 3261 19.1.1: headers are not allowed in a Request-URI (RFC 4475 escruri).
                raise SipParseError("headers in Request-URI")
        except SipParseError as exc:
            exc.is_request = True
            raise
        msg = Request(method, uri)
    else:
        parts = start.split(" ", 2)
        if len(parts) < 2 or parts[0] != "SIP/2.0":
            raise SipParseError("bad status line", is_request=False)
        code = parts[1]
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise SipParseError("bad status code", is_request=False)
        msg = Response(int(code), parts[2] if len(parts) == 3 else "")

    if "\n " in head or "\n\t" in head:
        headers, content_length = _slow_headers(lines, max_headers, is_request)
    else:
        headers, content_length = _fast_headers(lines, max_headers)
    msg.headers = headers

    if content_length is None:
        if stream:
            raise SipParseError("missing Content-Length", partial=headers, is_request=is_request)
        body = rest
    elif content_length > len(rest):
        raise SipParseError("Content-Length larger than body", partial=headers)
    else:
        if stream and content_length != len(rest):
            raise SipParseError("Content-Length does not match frame", partial=headers)
        body = rest[:content_length]
    msg.body = body

    try:
        msg._validate()
        if isinstance(msg, Request) and msg.cseq.method != msg.method:
            raise SipParseError("CSeq method does not match request method")
    except SipParseError as exc:
        exc.partial = headers
        exc.is_request = is_request
        raise
    return msg


# --------------------------------------------------------------------------------------------
# building responses


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to ``request`` (RFC 3261 8.2.6): Via, From, To, Call-ID, CSeq copied;
    ``to_tag`` added to To if it has none (and status > 100); Record-Route copied for
    dialog-creating responses (12.1.1)."""
    out: list[tuple[str, str]] = []
    for n, v in request.headers:
        if n == "Via" or n == "From" or n == "Call-ID" or n == "CSeq":
            out.append((n, v))
        elif n == "To":
            if to_tag and status > 100 and "tag" not in request.to.params:
                v = f"{v};tag={to_tag}"
            out.append((n, v))
        elif n == "Record-Route" and 100 < status < 300:
            out.append((n, v))
    out.extend(headers)
    resp = Response(status, reason, out, body)
    vias = request._cache.get("via")
    if vias is not None:
        # The Vias are copied verbatim: share their parsed form (sending a response reads it).
        resp._cache["via"] = vias
    return resp


REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    430: "Flow Failed",
    433: "Anonymity Disallowed",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
}
