"""The registration client of one registration trunk: REGISTER to the carrier with digest,
again before the granted time runs out, with an exponential back-off after a failure (a
refused password, 403, no answer, a name that does not resolve), and Expires 0 when the trunk
goes away or the engine stops. Each outcome is reported (``on_status``) in words an admin can
act on ("401 Unauthorized from registrar (credentials refused)", "no response from
registrar")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from telephony.sip.auth import answer_challenge
from telephony.sip.calls.inbound import contact_user
from telephony.sip.contract import TrunkSnapshot
from telephony.sip.message import Address, Request, Response, SipURI, parse_address
from telephony.sip.server import Engine
from telephony.sip.transaction import new_tag
from telephony.sip.transport import Target

from .client import (
    TargetError,
    credentials,
    new_call_id,
    out_of_dialog,
    registrar_uri,
    target_of,
    transport_param,
)

__all__ = ["RegistrationClient", "RegistrationError", "RegistrationTiming"]

log = logging.getLogger(__name__)


class RegistrationError(Exception):
    """A registration that failed; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class RegistrationTiming:
    """Refresh at ``refresh`` of the granted time; after a failure wait ``retry_min``,
    doubling up to ``retry_max`` (with a little jitter so many trunks do not retry at once)."""

    refresh: float = 0.85
    retry_min: float = 5.0
    retry_max: float = 300.0
    unregister_timeout: float = 2.0


def describe(resp: Response, sent: bool = True) -> str:
    if resp.status == 408:
        return "no response from registrar"
    if resp.status == 503 and not sent:
        return "registrar unreachable"
    return f"{resp.status} {resp.reason} from registrar"


class RegistrationClient:
    """Keeps one trunk registered while :meth:`run` runs; :meth:`unregister` ends it."""

    def __init__(
        self,
        engine: Engine,
        trunk: TrunkSnapshot,
        timing: RegistrationTiming,
        on_status: Callable[[str, str, float], None],
    ) -> None:
        self.engine = engine
        self.trunk = trunk
        self.timing = timing
        self.on_status = on_status  # (registration "registered"/"failed", error, expires at)
        self.call_id = new_call_id()
        self.tag = new_tag()
        self.cseq = 0
        self.registered_until = 0.0
        self.target: Target | None = None
        self.registrations = 0

    # --- the request ---------------------------------------------------------------------
    def contact(self) -> str:
        kind = self.trunk.transport.upper()
        host, port = self.engine.transport.via_for(kind)
        uri = SipURI(host, user=contact_user(self.trunk), port=port or None)
        return f"<{uri}{transport_param(self.trunk)}>"

    def request(self, expires: int, auth: tuple[str, str] | None = None) -> tuple[Request, str]:
        t = self.trunk
        aor = Address(SipURI(t.host, user=t.username))
        self.cseq += 1
        req = out_of_dialog(
            "REGISTER",
            registrar_uri(t),
            f"{aor};tag={self.tag}",
            str(aor),
            self.call_id,
            self.cseq,
            self.contact(),
        )
        req.add("Expires", str(expires))
        req.add("User-Agent", self.engine.config.product)
        if auth is not None:
            req.add(*auth)
        return req, str(req.uri)

    async def send(self, expires: int) -> Response:
        """One REGISTER, its challenge answered once; the final answer."""
        t = self.trunk
        if self.target is None:
            try:
                self.target = await target_of(t)
            except TargetError as exc:
                raise RegistrationError(str(exc)) from exc
        creds = credentials(t)
        req, uri = self.request(expires)
        tx = self.engine.transactions.send_request(req, self.target)
        resp = await tx.future
        if resp.status in (401, 407):
            name = "WWW-Authenticate" if resp.status == 401 else "Proxy-Authenticate"
            answer = answer_challenge(resp.status, resp.get_all(name), "REGISTER", uri, creds)
            if answer is None:
                raise RegistrationError(f"{describe(resp)} (cannot answer its challenge)")
            req, uri = self.request(expires, answer)
            tx = self.engine.transactions.send_request(req, self.target)
            resp = await tx.future
            if resp.status in (401, 407):
                raise RegistrationError(f"{describe(resp)} (credentials refused)")
        if resp.status in (408, 503):
            self.target = None  # look the name up again next time
            if tx.source is None:
                raise RegistrationError(describe(resp, sent=False))
        return resp

    def granted(self, resp: Response, asked: int) -> int:
        """The time the registrar granted our Contact (its ``expires`` in the answer's
        Contact list, else the Expires header, else what we asked)."""
        ours = contact_user(self.trunk)
        for value in resp.get_all("Contact"):
            for part in value.split(","):
                with contextlib.suppress(ValueError):
                    address = parse_address(part.strip())
                    uri = address.uri
                    if isinstance(uri, SipURI) and uri.user == ours and address.expires:
                        return address.expires
        header = resp.get("Expires")
        if header and header.strip().isdigit():
            return int(header.strip())
        return asked

    async def register(self) -> int:
        """Register once; the seconds granted. RegistrationError says why not."""
        asked = self.trunk.register_expires
        resp = await self.send(asked)
        if resp.status == 423:
            minimum = (resp.get("Min-Expires") or "").strip()
            if minimum.isdigit():
                asked = int(minimum)
                resp = await self.send(asked)
        if not 200 <= resp.status < 300:
            raise RegistrationError(describe(resp))
        granted = self.granted(resp, asked)
        if granted <= 0:
            raise RegistrationError("registrar granted no time")
        return granted

    # --- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = self.timing.retry_min
        while True:
            try:
                granted = await self.register()
            except RegistrationError as exc:
                self.registered_until = 0.0
                log.warning("trunk %s: registration failed: %s", self.trunk.id, exc)
                self.on_status("failed", str(exc), 0.0)
                await asyncio.sleep(backoff * random.uniform(0.9, 1.1))  # noqa: S311
                backoff = min(backoff * 2, self.timing.retry_max)
                continue
            backoff = self.timing.retry_min
            self.registrations += 1
            self.registered_until = time.time() + granted
            self.on_status("registered", "", self.registered_until)
            await asyncio.sleep(max(1.0, granted * self.timing.refresh))

    async def unregister(self) -> None:
        """Expires 0 for our Contact (best effort, bounded: the engine may be stopping)."""
        if not self.registered_until:
            return
        self.registered_until = 0.0
        try:
            await asyncio.wait_for(self.send(0), self.timing.unregister_timeout)
        except (RegistrationError, TimeoutError) as exc:
            log.info("trunk %s: un-registering failed: %s", self.trunk.id, exc)
