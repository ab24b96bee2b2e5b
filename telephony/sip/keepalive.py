"""Keeping UDP bindings behind NAT reachable, and dropping the ones that are gone.

A phone behind NAT registers over UDP from a public address and port that only exist while its
router keeps the mapping open (often 30-60 s of silence). Phones that send their own keep-alives
(RFC 5626 CRLF, answered by the transport) keep it open themselves; for the rest the engine
sends an out-of-dialog ``OPTIONS`` to every such binding every ``interval`` seconds, which both
refreshes the mapping and tells us whether the phone is still there. A binding that leaves
``failures`` pings in a row unanswered is removed (an ``expired`` registration event), so calls
stop being forked to a phone that went away without unregistering.

"Behind NAT" means: registered over UDP, and the address the REGISTER came from is not the one
its Contact names. Only bindings registered through this engine are pinged (another engine
pings its own), so several engines never ping one phone twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from .context import EngineContext
from .message import Request, SipURI, parse_uri
from .registrar import Binding
from .transaction import new_tag

__all__ = ["NatKeepalive", "behind_nat"]

log = logging.getLogger(__name__)


def behind_nat(binding: Binding) -> bool:
    """A UDP binding whose observed source differs from its Contact's address."""
    if binding.transport.upper() != "UDP":
        return False
    try:
        uri = parse_uri(binding.contact)
    except ValueError:
        return False
    if not isinstance(uri, SipURI):
        return False
    return uri.host != binding.source_host or (uri.port or 5060) != binding.source_port


class NatKeepalive:
    """Periodic OPTIONS pings to this engine's UDP bindings that are behind NAT."""

    def __init__(
        self,
        pbx: EngineContext,
        *,
        interval: float,
        failures: int = 2,
        user_agent: Callable[[str], str] | None = None,
    ) -> None:
        self.pbx = pbx
        self.interval = interval
        self.failures = max(1, failures)
        self.user_agent = user_agent or (lambda _domain: pbx.config.engine.product)
        self.missed: dict[tuple[str, str, str], int] = {}  # (domain, user, binding key) -> pings
        self.sent = 0
        self._task: asyncio.Task[None] | None = None
        self._pings: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self.interval > 0 and self._task is None:
            self._task = asyncio.create_task(self._run(), name="nat-keepalive")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._pings) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.round()
            except Exception:
                log.exception("NAT keep-alive round failed")

    def round(self) -> int:
        """Ping every NATed binding of this engine once; returns how many pings went out.
        The answers are awaited in the background, each with ``interval`` as its deadline, so
        one round never waits for the previous one."""
        locations = self.pbx.locations
        now = time.time()
        seen: set[tuple[str, str, str]] = set()
        count = 0
        for (domain, user), bindings in list(locations.hot.items()):
            for binding in list(bindings.values()):
                if binding.expires_at <= now or binding.engine != locations.engine_id:
                    continue
                if not behind_nat(binding):
                    continue
                key = (domain, user, binding.key)
                seen.add(key)
                task = asyncio.ensure_future(self._ping(domain, user, binding, key))
                self._pings.add(task)
                task.add_done_callback(self._pings.discard)
                count += 1
        # Bindings that went away by themselves need no counter any more.
        for key in [k for k in self.missed if k not in seen]:
            del self.missed[key]
        self.sent += count
        return count

    async def _ping(
        self, domain: str, user: str, binding: Binding, key: tuple[str, str, str]
    ) -> None:
        target, _flow = self.pbx.locations.target_for(binding)
        req = self.options(binding, domain, user)
        tx = self.pbx.engine.transactions.send_request(req, target)
        try:
            resp = await asyncio.wait_for(asyncio.shield(tx.future), self.interval)
            # Any answer proves the phone and its NAT mapping are there; only silence (the
            # transaction's own 408) or an unusable address (503 from the transport) counts.
            answered = resp.status not in (408, 503)
        except TimeoutError:
            answered = False
        if answered:
            self.missed.pop(key, None)
            return
        missed = self.missed.get(key, 0) + 1
        self.missed[key] = missed
        if missed < self.failures:
            return
        self.missed.pop(key, None)
        current = self.pbx.locations.hot.get((domain, user), {}).get(binding.key)
        if current is None or current.registered_at != binding.registered_at:
            return  # re-registered meanwhile: that binding is a fresh one
        log.info("dropping unreachable binding %s of %s@%s", binding.contact, user, domain)
        self.pbx.registrar.drop(domain, user, binding)

    def options(self, binding: Binding, domain: str, user: str) -> Request:
        """An out-of-dialog OPTIONS to the binding's Contact (the transaction layer adds Via)."""
        host, port = self.pbx.engine.transport.via_for("UDP")
        return Request(
            "OPTIONS",
            parse_uri(binding.contact),
            [
                ("Max-Forwards", "70"),
                ("From", f"<sip:ping@{domain}>;tag={new_tag()}"),
                ("To", f"<sip:{user}@{domain}>"),
                ("Call-ID", secrets.token_hex(12) + "@pbx"),
                ("CSeq", "1 OPTIONS"),
                ("Contact", f"<sip:ping@{host}:{port}>"),
                ("User-Agent", self.user_agent(domain)),
                ("Accept", "application/sdp"),
            ],
        )
