"""A small runnable SIP core: binds the transports and dispatches requests by method.

The layers above (registrar, auth, the call layer in ``calls/``, presence) plug in with
:meth:`Engine.handle`, which registers a coroutine (or plain function)
``handler(tx: ServerTransaction)`` for a method. The engine answers OPTIONS itself, 405 for
methods it knows but nobody handles, and 501 for the rest.
No version appears in the Server header: only the product name it is given.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .message import AbsoluteURI, Message, Request, Response
from .transaction import ServerTransaction, Timers, TransactionLayer
from .transport import Source, Target, TransportLayer

__all__ = ["Engine", "EngineConfig", "Handler"]

log = logging.getLogger(__name__)

Handler = Callable[[ServerTransaction], Awaitable[None] | None]

# Methods the engine recognises (405 if no handler is registered), RFC 3261 and extensions.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "REGISTER", "INFO", "UPDATE", "REFER",
        "SUBSCRIBE", "NOTIFY", "MESSAGE", "PRACK", "PUBLISH",
    }
)  # fmt: skip


@dataclass(slots=True)
class EngineConfig:
    """Where to listen. A port of None disables that transport; 0 picks a free port."""

    host: str = "0.0.0.0"  # noqa: S104 -- a PBX listens on all interfaces unless told otherwise
    udp_port: int | None = 5060
    tcp_port: int | None = 5060
    tls_port: int | None = None
    ws_port: int | None = None
    wss_port: int | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    product: str = "PBX"
    max_size: int = 65536
    max_headers: int = 100
    timers: Timers = Timers()
    supported: tuple[str, ...] = ("path", "outbound", "replaces", "timer")


class Engine:
    """The SIP core: transports + transaction layer + method dispatch.

    ``gate(source_ip)`` runs before parsing (a banned source costs no parse) and
    ``screen(msg, source)`` after it, before the transaction layer: either drops the message
    by returning False.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        gate: Callable[[str], bool] | None = None,
        screen: Callable[[Message, Source], bool] | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.handlers: dict[str, Handler] = {}
        self.transactions = TransactionLayer(
            self._on_request,
            timers=self.config.timers,
            on_ack=self._on_ack,
            on_stray_response=self._on_stray_response,
        )
        receive: Callable[[Message, Source], None] = self.transactions.receive
        if screen is not None:
            to_transactions = receive

            def screened(msg: Message, source: Source) -> None:
                if screen(msg, source):
                    to_transactions(msg, source)

            receive = screened
        self.transport = TransportLayer(
            receive, max_size=self.config.max_size, max_headers=self.config.max_headers
        )
        self.transport.gate = gate
        self.transactions.transport_layer = self.transport
        self.addresses: dict[str, tuple[str, int]] = {}
        self.ack_handler: Callable[[Request, Source], None] | None = None
        self.stray_response_handler: Callable[[Response, Source], None] | None = None
        # Called with the TLS/WSS listeners' context before they bind (tenant certificates
        # by SNI: tlshosts.TlsHosts.attach).
        self.tls_hook: Callable[[ssl.SSLContext], None] | None = None

    # --- extension points ----------------------------------------------------------------
    def handle(self, method: str, handler: Handler) -> None:
        """Register ``handler(tx)`` for requests of ``method`` (replacing any earlier one)."""
        self.handlers[method.upper()] = handler

    @property
    def allow(self) -> str:
        return ", ".join(sorted({"OPTIONS", "ACK", "CANCEL", *self.handlers}))

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> dict[str, tuple[str, int]]:
        """Bind every configured transport; returns the bound addresses by kind."""
        c = self.config
        t = self.transport
        if c.udp_port is not None:
            self.addresses["UDP"] = await t.listen_udp(c.host, c.udp_port)
        if c.tcp_port is not None:
            # TCP on the same port as UDP when UDP got a random one
            port = c.tcp_port or (self.addresses["UDP"][1] if c.udp_port == 0 else 0)
            try:
                self.addresses["TCP"] = await t.listen_tcp(c.host, port)
            except OSError:
                self.addresses["TCP"] = await t.listen_tcp(c.host, 0)
        tls: ssl.SSLContext | None = None
        if c.tls_cert and (c.tls_port is not None or c.wss_port is not None):
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(c.tls_cert, c.tls_key)
            if self.tls_hook is not None:
                self.tls_hook(tls)
        if c.tls_port is not None and tls is not None:
            self.addresses["TLS"] = await t.listen_tcp(c.host, c.tls_port, tls)
        if c.ws_port is not None:
            self.addresses["WS"] = await t.listen_ws(c.host, c.ws_port)
        if c.wss_port is not None and tls is not None:
            self.addresses["WSS"] = await t.listen_ws(c.host, c.wss_port, tls)
        log.info("SIP engine listening on %s", self.addresses)
        return self.addresses

    async def stop(self) -> None:
        self.transactions.close()
        await self.transport.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # --- sending -------------------------------------------------------------------------
    async def request(self, req: Request, target: Target) -> Response:
        """Send a request in a client transaction and wait for the final response."""
        return await self.transactions.request(req, target)

    # --- dispatch ------------------------------------------------------------------------
    def _headers(self) -> list[tuple[str, str]]:
        return [("Server", self.config.product)]

    def _on_request(self, tx: ServerTransaction) -> Awaitable[None] | None:
        req = tx.request
        method = req.method
        if isinstance(req.uri, AbsoluteURI):
            tx.respond(416, headers=self._headers())  # RFC 4475 unkscm/novelsc
            return None
        unsupported = [r for r in req.tokens("Require") if r not in self.config.supported]
        if unsupported and method not in ("CANCEL", "ACK"):
            tx.respond(  # RFC 3261 8.2.2.3, RFC 4475 bext01
                420, headers=[*self._headers(), ("Unsupported", ", ".join(unsupported))]
            )
            return None
        handler = self.handlers.get(method)
        if handler is not None:
            return handler(tx)
        if method == "OPTIONS":
            tx.respond(200, headers=self._options_headers())
        elif method in KNOWN_METHODS:
            tx.respond(405, headers=[*self._headers(), ("Allow", self.allow)])
        else:
            tx.respond(501, headers=[*self._headers(), ("Allow", self.allow)])
        return None

    def _options_headers(self) -> list[tuple[str, str]]:
        return [
            *self._headers(),
            ("Allow", self.allow),
            ("Accept", "application/sdp"),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
            ("Supported", ", ".join(self.config.supported)),
        ]

    def _on_ack(self, ack: Request, source: Source) -> None:
        if self.ack_handler is not None:
            self.ack_handler(ack, source)

    def _on_stray_response(self, resp: Response, source: Source) -> None:
        if self.stray_response_handler is not None:
            self.stray_response_handler(resp, source)
