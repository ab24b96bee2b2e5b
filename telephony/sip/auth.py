"""SIP digest authentication (RFC 3261 22, RFC 2617, RFC 7616, RFC 8760).

Challenges offer MD5 only by default: baresip/libre fails the whole registration when any
challenge uses SHA-256 (whatever the order), and SIPp and sipvicious cannot answer one. A tenant
that opts in (``sha256=True``, from its snapshot) is offered SHA-256 first and MD5 second (two
``WWW-Authenticate`` or ``Proxy-Authenticate`` headers, RFC 8760 2.4). Always ``qop="auth"``,
the tenant's SIP domain as realm and an ``opaque`` derived from the realm.

Nonces are stateless: ``<time><random><HMAC(secret, time, random, realm)>``. Any engine that shares
the secret can check one without a lookup, and an expired nonce with an otherwise correct answer
gets ``stale=true`` so the phone retries without asking its user for a password.

Replay protection (RFC 7616 3.4.5): the highest ``nc`` seen per nonce is kept **in memory**, in an
insertion-ordered dict whose entries die with their nonce (``nonce_ttl``) and whose size is
bounded. Why not Redis: a Redis round trip per authenticated request would cost more than the
whole digest check, and replaying a captured REGISTER through a *second* engine only refreshes the
binding the captured request already made (``qop=auth`` does not protect the headers, so an
on-path attacker can do as much without a replay). When the table is full the oldest entries are
dropped and every nonce issued at or before the dropped one is treated as stale, so eviction
never opens a replay window.

Unknown users are answered exactly like wrong passwords: the challenge does not depend on the
user, and the response is checked against a dummy HA1 so the work done is the same.

The web app's softphone answers with a *web credential* (``contract.issue_web_credential``): the
user name ``web.<expires>.<number>`` and a password the engine recomputes from ``web_secret``,
the tenant's schema and the extension's HA1. It is refused once expired, for an extension whose
web softphone is off, in another tenant's realm (the schema is in the HMAC), and over anything
but WS/WSS. The result names the extension's number, like a SIP-password answer.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .contract import (
    DIGEST_HASHES,
    WEB_CREDENTIAL_MAX_SECONDS,
    ExtensionSnapshot,
    TenantSnapshot,
    digest_hash,
    ha1,
    read_web_username,
    web_credential_password,
)
from .message import Request
from .transport import BROWSER

if TYPE_CHECKING:
    from .transaction import ServerTransaction

__all__ = ["AuthResult", "Credentials", "DigestAuth", "answer_challenge", "parse_credentials"]

_PARAM_RE = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]+)')
_HA1_LEN = {"SHA-256": 64, "MD5": 32}
# RFC 7616: the first challenge is the preferred one. MD5 for everyone by default; SHA-256
# goes first for the tenants that opt in (DigestAuth.offered).
ALGORITHMS = ("MD5",)
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The outcome of :meth:`DigestAuth.verify`.

    ``ok`` only when the digest is right, the nonce fresh and not replayed. ``stale`` when the
    digest was right but the nonce expired or was replayed (answer a challenge with
    ``stale=true``). ``extension`` is set whenever the user exists and the digest was right, so
    the caller can refuse a disabled extension with 403 only after a correct password.
    ``username`` is the extension's number once the answer is right (for a web credential too,
    ``web`` then says so), else the name the client sent.
    """

    ok: bool
    username: str | None
    extension: ExtensionSnapshot | None
    stale: bool
    reason: str
    web: bool = False

    @property
    def failed(self) -> bool:
        """Credentials were presented and were wrong (counts towards a ban)."""
        return not self.ok and not self.stale and self.reason not in ("no credentials",)


def parse_credentials(value: str) -> dict[str, str] | None:
    """Parse ``Digest k=v, k="v"`` into a dict (keys lower-cased), or None if not Digest."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    out: dict[str, str] = {}
    for m in _PARAM_RE.finditer(rest):
        v = m.group(2)
        if v[:1] == '"':
            v = v[1:-1]
            if "\\" in v:
                v = re.sub(r"\\(.)", r"\1", v)
        out[m.group(1).lower()] = v
    return out


class DigestAuth:
    """Issues challenges and checks answers. One per engine; cheap, no I/O.

    ``clock`` returns seconds (tests move time without sleeping).
    """

    def __init__(
        self,
        secret: bytes,
        nonce_ttl: float = 300,
        *,
        max_tracked: int = 500_000,
        clock: Callable[[], float] = time.time,
        algorithms: tuple[str, ...] = ALGORITHMS,
        web_secret: bytes = b"",
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret must have at least 16 bytes")
        if not algorithms or any(a not in DIGEST_HASHES for a in algorithms):
            raise ValueError(f"digest algorithms must be among {', '.join(DIGEST_HASHES)}")
        # Offered in this order to every tenant; a tenant with SHA-256 on gets it first.
        self.algorithms = algorithms
        self._with_sha256 = ("SHA-256", *(a for a in algorithms if a != "SHA-256"))
        self.secret = secret
        self.web_secret = web_secret  # b"": web credentials are not accepted
        self.nonce_ttl = nonce_ttl
        self.max_tracked = max_tracked
        self.clock = clock
        # nonce -> (highest nc, issue time); insertion order ~ issue order
        self._nc: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._floor = -1  # nonces issued at or before this time, if untracked, are stale
        self._opaque: dict[str, str] = {}

    # --- nonces --------------------------------------------------------------------------
    def _mac(self, body: str, realm: str) -> str:
        return hmac.new(self.secret, f"{body}:{realm}".encode(), hashlib.sha256).hexdigest()[:32]

    def make_nonce(self, realm: str) -> str:
        body = f"{int(self.clock()):08x}{secrets.token_hex(8)}"
        return body + self._mac(body, realm)

    def _nonce_time(self, nonce: str, realm: str) -> int | None:
        """Issue time of a nonce we made for ``realm``, or None if forged/mangled."""
        if len(nonce) != 56:
            return None
        body, mac = nonce[:24], nonce[24:]
        if not hmac.compare_digest(mac, self._mac(body, realm)):
            return None
        try:
            return int(body[:8], 16)
        except ValueError:
            return None

    def opaque(self, realm: str) -> str:
        o = self._opaque.get(realm)
        if o is None:
            o = hmac.new(self.secret, b"opaque:" + realm.encode(), hashlib.sha256).hexdigest()[:24]
            if len(self._opaque) < 100_000:
                self._opaque[realm] = o
        return o

    # --- challenges ----------------------------------------------------------------------
    def offered(self, sha256: bool) -> tuple[str, ...]:
        """The algorithms challenged with, in order (``sha256``: the tenant opted in)."""
        return self._with_sha256 if sha256 else self.algorithms

    def challenge(
        self, realm: str, *, proxy: bool, stale: bool = False, sha256: bool = False
    ) -> list[tuple[str, str]]:
        """Header (name, value) pairs for a 401 (``proxy=False``) or 407 (``proxy=True``)."""
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        nonce = self.make_nonce(realm)
        tail = f', opaque="{self.opaque(realm)}", qop="auth"' + (", stale=true" if stale else "")
        return [
            (name, f'Digest realm="{realm}", nonce="{nonce}", algorithm={alg}{tail}')
            for alg in self.offered(sha256)
        ]

    # --- verification --------------------------------------------------------------------
    def verify(
        self,
        request: Request,
        realm: str,
        lookup: Callable[[str], ExtensionSnapshot | None],
        *,
        proxy: bool,
        sha256: bool = False,
    ) -> AuthResult:
        """Check the request's credentials for ``realm``; see :class:`AuthResult`. Answers
        with an algorithm we do not offer (``sha256``: the tenant's choice) are refused."""
        creds = self._pick(request, realm, proxy)
        if creds is None:
            return AuthResult(False, None, None, False, "no credentials")
        username = creds.get("username")
        nonce = creds.get("nonce")
        response = creds.get("response")
        uri = creds.get("uri")
        alg = (creds.get("algorithm") or "MD5").upper()
        qop = creds.get("qop")
        nc_s = creds.get("nc") or ""
        cnonce = creds.get("cnonce")
        if (
            not username
            or not nonce
            or not response
            or uri is None
            or alg not in self.offered(sha256)
        ):
            return AuthResult(False, username, None, False, "malformed credentials")
        # qop is required: without it there is no nc and so no replay protection.
        if qop is None or qop.lower() != "auth" or not cnonce or not _NC_RE.fullmatch(nc_s):
            return AuthResult(False, username, None, False, "qop=auth required")
        issued = self._nonce_time(nonce, realm)
        if issued is None:
            # Not ours (or for another realm): a fresh challenge, not stale.
            return AuthResult(False, username, None, False, "bad nonce")
        opaque = creds.get("opaque")
        if opaque is not None and opaque != self.opaque(realm):
            return AuthResult(False, username, None, False, "bad opaque")

        ext = lookup(username)
        if ext is not None:
            ha1 = ext.ha1_sha256 if alg == "SHA-256" else ext.ha1_md5
        else:
            ha1 = ""
        if not ha1:
            # Same work for unknown users: a dummy HA1 nobody can know.
            ha1 = hmac.new(
                self.secret, f"dummy:{username}:{realm}".encode(), hashlib.sha256
            ).hexdigest()[: _HA1_LEN[alg]]
            ext = None
        ha2 = digest_hash(alg, f"{request.method}:{uri}")
        expected = digest_hash(alg, f"{ha1}:{nonce}:{nc_s}:{cnonce}:auth:{ha2}")
        if not hmac.compare_digest(expected, response.lower()) or ext is None:
            return AuthResult(False, username, None, False, "wrong credentials")

        now = self.clock()
        if now - issued > self.nonce_ttl or issued > now + 5:
            return AuthResult(False, username, ext, True, "stale nonce")
        nc = int(nc_s, 16)
        seen = self._nc.get(nonce)
        if seen is None:
            if issued <= self._floor:
                return AuthResult(False, username, ext, True, "stale nonce")
        elif nc <= seen[0]:
            return AuthResult(False, username, ext, True, "replayed nonce count")
        self._track(nonce, nc, issued, now)
        return AuthResult(True, ext.number, ext, False, "ok", web=ext.number != username)

    def authenticate(
        self,
        tx: ServerTransaction,
        tenant: TenantSnapshot | None,
        realm: str,
        *,
        proxy: bool,
        server: tuple[str, str],
        failed: Callable[[str], object],
    ) -> AuthResult | None:
        """Check the request of ``tx`` against ``tenant``'s extensions in ``realm`` (the
        sender's own domain: it can only ever reach its own tenant). Without valid
        credentials the same 401 (or 407, ``proxy``) with a fresh challenge is sent for
        known and unknown users alike, a wrong answer is counted by ``failed(address)``,
        and None returned; else the result (its extension and user name)."""
        lookup: Callable[[str], ExtensionSnapshot | None] = _nobody
        if tenant is not None:
            extensions = tenant.extensions

            def lookup(username: str) -> ExtensionSnapshot | None:
                ext = extensions.get(username)
                return ext if ext is not None else self.web_extension(tenant, username, realm)

        sha256 = tenant is not None and tenant.sip_digest_sha256
        result = self.verify(tx.request, realm, lookup, proxy=proxy, sha256=sha256)
        if result.ok:
            if result.web and tx.source.kind.upper() not in BROWSER:
                # A browser's credential, presented by something else: refused as such.
                tx.respond(403, "Web Credential Needs WebSocket", headers=[server])
                return None
            return result
        if result.failed:
            failed(tx.source.remote[0])
        challenge = self.challenge(realm, proxy=proxy, stale=result.stale, sha256=sha256)
        tx.respond(407 if proxy else 401, headers=[server, *challenge])
        return None

    def web_extension(
        self, tenant: TenantSnapshot, username: str, realm: str
    ) -> ExtensionSnapshot | None:
        """The extension a web credential's user name names, with the HA1s of the credential's
        password; None when the name is not one, has expired or names a later expiry than any
        credential gets, or the extension is unknown or has its web softphone off."""
        named = read_web_username(username) if self.web_secret else None
        if named is None:
            return None
        number, expires = named
        now = self.clock()
        if not now < expires <= now + WEB_CREDENTIAL_MAX_SECONDS:
            return None
        ext = tenant.extensions.get(number)
        if ext is None or not ext.web_softphone or not ext.ha1_md5:
            return None
        password = web_credential_password(
            self.web_secret, tenant.schema, number, expires, ext.ha1_md5
        )
        return replace(
            ext,
            ha1_md5=ha1("MD5", username, realm, password),
            ha1_sha256=ha1("SHA-256", username, realm, password),
        )

    def _pick(self, request: Request, realm: str, proxy: bool) -> dict[str, str] | None:
        """The credentials for our realm, SHA-256 preferred when a client sends several."""
        best: dict[str, str] | None = None
        for value in request.get_all("Proxy-Authorization" if proxy else "Authorization"):
            creds = parse_credentials(value)
            if creds is None or creds.get("realm", "").lower() != realm.lower():
                continue
            if best is None or (creds.get("algorithm") or "MD5").upper() == "SHA-256":
                best = creds
        return best

    def _track(self, nonce: str, nc: int, issued: int, now: float) -> None:
        table = self._nc
        if nonce in table:
            table[nonce] = (nc, issued)
            return
        table[nonce] = (nc, issued)
        # Expired entries leave from the front (they are stale anyway); then enforce the bound.
        horizon = now - self.nonce_ttl
        while table:
            first_t = next(iter(table.values()))[1]
            if first_t < horizon:
                table.popitem(last=False)  # expired: its nonce is refused as stale anyway
            elif len(table) > self.max_tracked:
                table.popitem(last=False)
                self._floor = max(self._floor, first_t)
            else:
                break


# --------------------------------------------------------------------------- our credentials


@dataclass(frozen=True, slots=True)
class Credentials:
    """What we answer a carrier's challenge with: ``realm`` "" = any realm it names."""

    username: str
    password: str
    realm: str = ""


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def answer_challenge(
    response_status: int,
    challenges: list[str],
    method: str,
    uri: str,
    creds: Credentials,
    *,
    nc: int = 1,
) -> tuple[str, str] | None:
    """The header (``Authorization`` for a 401, ``Proxy-Authorization`` for a 407) answering
    the first challenge we can answer (MD5 or SHA-256, qop ``auth`` or none), or None when
    there is none (an unknown algorithm or scheme, another realm than ``creds.realm``, or
    ``qop=auth-int`` only) — the request then fails with the carrier's answer."""
    name = "Proxy-Authorization" if response_status == 407 else "Authorization"
    for value in challenges:
        params = parse_credentials(value)
        if params is None or "nonce" not in params:
            continue
        realm = params.get("realm", "")
        if creds.realm and realm != creds.realm:
            continue
        algorithm = params.get("algorithm", "MD5")
        base = algorithm.upper().removesuffix("-SESS")
        base = "SHA-256" if base == "SHA-256" else base
        if base not in DIGEST_HASHES:
            continue
        sess = algorithm.upper().endswith("-SESS")
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        if qops and "auth" not in qops:
            continue
        nonce = params["nonce"]
        cnonce = secrets.token_hex(8)
        ha1 = digest_hash(base, f"{creds.username}:{realm}:{creds.password}")
        if sess:
            ha1 = digest_hash(base, f"{ha1}:{nonce}:{cnonce}")
        ha2 = digest_hash(base, f"{method}:{uri}")
        nc_text = f"{nc:08x}"
        if qops:
            response = digest_hash(base, f"{ha1}:{nonce}:{nc_text}:{cnonce}:auth:{ha2}")
        else:
            response = digest_hash(base, f"{ha1}:{nonce}:{ha2}")
        parts = [
            f"username={_quoted(creds.username)}",
            f"realm={_quoted(realm)}",
            f"nonce={_quoted(nonce)}",
            f"uri={_quoted(uri)}",
            f"response={_quoted(response)}",
            f"algorithm={algorithm}",
        ]
        if qops:
            parts += ["qop=auth", f"nc={nc_text}", f"cnonce={_quoted(cnonce)}"]
        if "opaque" in params:
            parts.append(f"opaque={_quoted(params['opaque'])}")
        return name, "Digest " + ", ".join(parts)
    return None


def _nobody(_user: str) -> None:
    return None
