"""RFC 3261 section 17 transactions (with the RFC 6026 Accepted states).

Client transactions retransmit with ``loop.call_later`` on unreliable transports and resolve a
Future with the final response (a synthesised 408 on timeout, 503 on transport error). Server
transactions absorb retransmitted requests by resending their last response. The
:class:`TransactionLayer` sits on a :class:`~telephony.sip.transport.TransportLayer` and hands
every new server transaction to the core's ``on_request``.

A non-INVITE server transaction on UDP lives on for Timer J (64*T1, 32 s) after its final
response only to answer retransmissions of the request. For that it needs the response bytes and
where they went, nothing else: the layer keeps just that (:class:`_Absorber`) and expires them in
time buckets with one timer, instead of keeping the whole transaction (request, response, parsed
views, a Future, a timer handle each) -- at a few thousand registrations a second those were the
bulk of the engine's memory and of the loop's timer heap.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import math
import secrets
import types
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from typing import Any

from .message import (
    BRANCH_MAGIC,
    Message,
    Request,
    Response,
    SipParseError,
    Via,
    make_response,
)
from .transport import RELIABLE, UDP, Addr, Connection, Source, Target, TransportLayer

__all__ = [
    "ClientTransaction",
    "ServerTransaction",
    "Timers",
    "TransactionLayer",
    "make_ack",
    "make_cancel",
    "new_branch",
    "new_tag",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 timer values in seconds (tests shorten them)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float = 0.2  # 100 Trying if the TU is silent this long (17.2.1)


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def make_ack(invite: Request, response: Response) -> Request:
    """ACK for a non-2xx final response (17.1.1.3): same branch, To from the response."""
    headers: list[tuple[str, str]] = [("Via", invite.get_all("Via")[0])]
    for name in ("Route",):
        headers += [(name, v) for v in invite.get_all(name)]
    headers += [
        ("Max-Forwards", "70"),
        ("From", invite.get("From") or ""),
        ("To", response.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} ACK"),
    ]
    return Request("ACK", invite.uri, headers)


def make_cancel(invite: Request) -> Request:
    """CANCEL for a pending INVITE (9.1): same Request-URI, Call-ID, From, To, CSeq number and
    top Via (so the branch matches), Route copied."""
    headers: list[tuple[str, str]] = [("Via", invite.get_all("Via")[0])]
    headers += [("Route", v) for v in invite.get_all("Route")]
    headers += [
        ("Max-Forwards", "70"),
        ("From", invite.get("From") or ""),
        ("To", invite.get("To") or ""),
        ("Call-ID", invite.call_id),
        ("CSeq", f"{invite.cseq.seq} CANCEL"),
    ]
    return Request("CANCEL", invite.uri, headers)


def _server_key(req: Request) -> tuple[Any, ...]:
    """17.2.3 matching key; ACK and CANCEL keep their own method except that ACK matches the
    INVITE it acknowledges. Pre-3261 (no magic cookie) falls back to dialog-ish fields."""
    via = req.top_via
    method = "INVITE" if req.method == "ACK" else req.method
    if via.is_rfc3261:
        return (via.branch, via.host, via.port, method)
    return (
        str(req.uri) if req.method != "ACK" else None,
        req.from_.tag,
        req.call_id,
        req.cseq.seq,
        via.host,
        via.port,
        method,
    )


def _fallback_ack_key(req: Request) -> tuple[Any, ...]:
    via = req.top_via
    return (None, req.from_.tag, req.call_id, req.cseq.seq, via.host, via.port, "INVITE")


# ---------------------------------------------------------------------------------- client


class ClientTransaction:
    """A client transaction (INVITE or non-INVITE).

    ``future`` resolves with the final response; ``on_response`` (if given) is called for every
    response, provisional ones included, and for 2xx retransmissions while in Accepted.
    """

    __slots__ = (
        "layer", "request", "target", "on_response", "is_invite", "branch", "key", "state",
        "future", "source", "ack", "_data", "_timers", "_interval", "sends",
    )  # fmt: skip

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        target: Target,
        on_response: Callable[[Response], None] | None = None,
    ) -> None:
        self.layer = layer
        self.request = request
        self.target = target
        self.on_response = on_response
        self.is_invite = request.method == "INVITE"
        self.branch = request.top_via.branch or ""
        self.key = (self.branch, request.method)
        self.state = "calling" if self.is_invite else "trying"
        self.future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self.source: Source | None = None
        self.ack: Request | None = None
        self._data = bytes(request)
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._interval = layer.timers.t1
        self.sends = 0

    @property
    def reliable(self) -> bool:
        return self.target.kind.upper() in RELIABLE

    def _later(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        self._timers[name] = asyncio.get_running_loop().call_later(delay, fn)

    def _cancel_timers(self, *names: str) -> None:
        for name in names or list(self._timers):
            h = self._timers.pop(name, None)
            if h is not None:
                h.cancel()

    async def start(self) -> None:
        try:
            self.source = await self.layer.transport_layer.send_request(
                self.request, self.target, self._data
            )
        except OSError as exc:
            log.info("transport error sending %s: %s", self.request.method, exc)
            self._finish_error(503, "Service Unavailable")
            return
        self._sent()

    def start_nowait(self) -> bool:
        """Send at once when no connection has to be opened (UDP, open flows): saves a task
        per request. False when :meth:`start` must run instead."""
        try:
            source = self.layer.transport_layer.send_request_nowait(
                self.request, self.target, self._data
            )
        except OSError:
            return False  # start() reports it, from a task as before
        if source is None:
            return False
        self.source = source
        self._sent()
        return True

    def _sent(self) -> None:
        t = self.layer.timers
        self.sends += 1
        if not self.reliable:
            self._later("retransmit", t.t1, self._retransmit)  # Timer A / E
        self._later("timeout", 64 * t.t1, self._timeout)  # Timer B / F

    def _retransmit(self) -> None:
        if self.state not in ("calling", "trying", "proceeding"):
            return
        if self.is_invite and self.state == "proceeding":
            return
        if self.source is not None:
            self.source.conn.send(self._data, (self.target.host, self.target.port))
            self.sends += 1
        if self.is_invite:
            self._interval *= 2  # Timer A doubles without a cap
        else:
            # Timer E doubles up to T2; in Proceeding it stays at T2
            t2 = self.layer.timers.t2
            self._interval = t2 if self.state == "proceeding" else min(self._interval * 2, t2)
        self._later("retransmit", self._interval, self._retransmit)

    def _timeout(self) -> None:
        if self.is_invite and self.state == "proceeding":
            # Timer B only ends an INVITE still in Calling (RFC 3261 17.1.1.2): a phone that
            # rings may ring for as long as the TU lets it (the B2BUA's no-answer timer).
            return
        if self.state in ("calling", "trying", "proceeding"):
            self._finish_error(408, "Request Timeout")

    def _finish_error(self, status: int, reason: str) -> None:
        resp = make_response(self.request, status, reason)
        self.state = "terminated"
        self._cancel_timers()
        if not self.future.done():
            self.future.set_result(resp)
        if self.on_response is not None:
            self.on_response(resp)
        self.layer._remove_client(self)

    def receive(self, resp: Response) -> None:
        t = self.layer.timers
        status = resp.status
        if status < 200:
            if self.state in ("calling", "trying"):
                self.state = "proceeding"
                if self.is_invite:
                    self._cancel_timers("retransmit")
            if self.state == "proceeding" and self.on_response is not None:
                self.on_response(resp)
            return
        if self.is_invite:
            if status < 300:
                if self.state in ("calling", "proceeding"):
                    # RFC 6026 Accepted: further 2xx go to the TU, which ACKs them.
                    self.state = "accepted"
                    self._cancel_timers()
                    self._later("timeout", 64 * t.t1, self._terminate)  # Timer M
                    self._deliver_final(resp)
                elif self.state == "accepted" and self.on_response is not None:
                    self.on_response(resp)
                return
            if self.state in ("calling", "proceeding"):
                self.state = "completed"
                self._cancel_timers()
                self.ack = make_ack(self.request, resp)
                self._send_ack()
                self._later("timeout", 0 if self.reliable else 32.0, self._terminate)  # D
                self._deliver_final(resp)
            elif self.state == "completed":
                self._send_ack()  # the final response was retransmitted: our ACK was lost
            return
        if self.state in ("trying", "proceeding"):
            self.state = "completed"
            self._cancel_timers()
            self._later("timeout", 0 if self.reliable else t.t4, self._terminate)  # Timer K
            self._deliver_final(resp)

    def _send_ack(self) -> None:
        if self.ack is not None and self.source is not None:
            self.source.conn.send(bytes(self.ack), (self.target.host, self.target.port))

    def _deliver_final(self, resp: Response) -> None:
        if not self.future.done():
            self.future.set_result(resp)
        if self.on_response is not None:
            self.on_response(resp)

    def _terminate(self) -> None:
        self.state = "terminated"
        self._cancel_timers()
        self.layer._remove_client(self)


# ---------------------------------------------------------------------------------- server


class ServerTransaction:
    """A server transaction: the request, where it came from, and ``respond()``.

    The core receives one of these for every new request (except ACK for 2xx). For INVITE,
    ``on_cancel`` is called when a matching CANCEL arrives before the final response (the
    layer has already answered the CANCEL 200 and, unless ``on_cancel`` responds itself,
    answers the INVITE 487).
    """

    __slots__ = (
        "layer", "request", "source", "key", "is_invite", "state", "last_response",
        "_last_bytes", "_route", "to_tag", "on_cancel", "_timers", "_interval", "_acked",
    )  # fmt: skip

    def __init__(
        self,
        layer: TransactionLayer,
        request: Request,
        source: Source,
        *,
        key: tuple[Any, ...] | None = None,
    ) -> None:
        self.layer = layer
        self.request = request
        self.source = source
        self.key = _server_key(request) if key is None else key
        self.is_invite = request.method == "INVITE"
        self.state = "proceeding" if self.is_invite else "trying"
        self.last_response: Response | None = None
        self._last_bytes: bytes | None = None
        # (connection, address) the last response went to: retransmissions reuse it.
        self._route: tuple[Connection, Addr | None] | None = None
        self.to_tag = new_tag()
        self.on_cancel: Callable[[ServerTransaction], None] | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._interval = layer.timers.t1
        self._acked: asyncio.Future[Request | None] | None = None

    @property
    def acked(self) -> asyncio.Future[Request | None]:
        """Resolves with the ACK (INVITE), or None when none came. Made on first use: only
        INVITE transactions are ever acknowledged, and a Future per REGISTER adds up."""
        if self._acked is None:
            self._acked = asyncio.get_running_loop().create_future()
        return self._acked

    def _resolve_acked(self, ack: Request | None) -> None:
        if self._acked is None:
            if ack is None and not self.is_invite:
                return  # nobody asked, nobody will
            self._acked = asyncio.get_running_loop().create_future()
        if not self._acked.done():
            self._acked.set_result(ack)

    @property
    def reliable(self) -> bool:
        return self.source.kind in RELIABLE

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def final_sent(self) -> bool:
        return self.last_response is not None and self.last_response.status >= 200

    def _later(self, name: str, delay: float, fn: Callable[[], None]) -> None:
        old = self._timers.pop(name, None)
        if old is not None:
            old.cancel()
        self._timers[name] = asyncio.get_running_loop().call_later(delay, fn)

    def _cancel_timers(self) -> None:
        for h in self._timers.values():
            h.cancel()
        self._timers.clear()

    def make_response(
        self,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Response:
        """Build (not send) a response carrying this transaction's To-tag."""
        return make_response(
            self.request, status, reason, to_tag=self.to_tag, headers=headers or [], body=body
        )

    def respond(
        self,
        status_or_response: int | Response,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Response | None:
        """Send a response. A second final response is ignored (returns None)."""
        if self.final_sent or self.state == "terminated":
            return None
        if isinstance(status_or_response, Response):
            resp = status_or_response
        else:
            resp = self.make_response(status_or_response, reason, headers=headers, body=body)
        self.last_response = resp
        self._last_bytes = bytes(resp)
        self._route = None  # a new response may carry another Via (it never does in practice)
        self._send()
        t = self.layer.timers
        status = resp.status
        if status < 200:
            if self.state == "trying":
                self.state = "proceeding"
            return resp
        self._timers.pop("trying", None)
        if self.is_invite:
            if status < 300:
                # RFC 6026 Accepted: absorb INVITE retransmissions; 2xx retransmission until
                # the ACK is the UAS core's job (13.3.1.4), done here for UDP as a service.
                self.state = "accepted"
                if not self.reliable:
                    self._later("g", t.t1, self._retransmit_2xx)
                self._later("h", 64 * t.t1, self._terminate)
                self.layer._expect_ack(self)
            else:
                self.state = "completed"
                if not self.reliable:
                    self._later("g", t.t1, self._retransmit_final)  # Timer G
                self._later("h", 64 * t.t1, self._ack_timeout)  # Timer H
        else:
            self.state = "completed"
            self._cancel_timers()
            route = self._route
            if self.reliable:
                self._terminate()  # Timer J is 0 on reliable transports
            elif route is not None and self.source.kind == UDP:
                # Timer J: hand the retransmission duty to a compact absorber (module doc).
                self.layer._absorb(self, self._last_bytes, route)
            else:
                self._later("j", 64 * t.t1, self._terminate)
        return resp

    def _send(self) -> None:
        data = self._last_bytes
        if data is None or self.last_response is None:
            return
        if self.source.kind in RELIABLE and not self.source.conn.closed:
            self.source.conn.send(data)
            return
        route = self._route
        if route is not None and self.source.kind == UDP:
            route[0].send(data, route[1])
        else:
            self._route = self.layer.transport_layer.send_response(
                self.last_response, self.source, data
            )

    def _retransmit_final(self) -> None:
        if self.state != "completed":
            return
        self._send()
        self._interval = min(self._interval * 2, self.layer.timers.t2)
        self._later("g", self._interval, self._retransmit_final)

    def _retransmit_2xx(self) -> None:
        if self.state != "accepted" or (self._acked is not None and self._acked.done()):
            return
        self._send()
        self._interval = min(self._interval * 2, self.layer.timers.t2)
        self._later("g", self._interval, self._retransmit_2xx)

    def _ack_timeout(self) -> None:
        self._resolve_acked(None)
        self._terminate()

    def _send_trying(self) -> None:
        if self.last_response is None and self.state == "proceeding":
            self.respond(100)

    def receive_retransmission(self, req: Request) -> None:
        if req.method == "ACK":
            if self.state == "completed":
                self.state = "confirmed"
                self._cancel_timers()
                self._resolve_acked(req)
                # Timer I
                self._later("i", 0 if self.reliable else self.layer.timers.t4, self._terminate)
            return
        if self.state in ("proceeding", "completed") and self._last_bytes is not None:
            self._send()

    def ack_2xx(self, ack: Request) -> None:
        self._timers.pop("g", None)
        self._resolve_acked(ack)

    def cancelled(self) -> None:
        if self.final_sent:
            return
        if self.on_cancel is not None:
            self.on_cancel(self)
        if not self.final_sent:
            self.respond(487)

    def _terminate(self) -> None:
        self.state = "terminated"
        self._cancel_timers()
        self._resolve_acked(None)
        self.layer._remove_server(self)


class _Absorber:
    """A completed non-INVITE server transaction on UDP during Timer J (RFC 3261 17.2.2): a
    retransmitted request gets the final response again, and that is all it does."""

    __slots__ = ("data", "conn", "addr")

    def __init__(self, data: bytes, conn: Connection, addr: Addr | None) -> None:
        self.data = data
        self.conn = conn
        self.addr = addr

    def receive_retransmission(self, req: Request) -> None:
        if req.method != "ACK":
            self.conn.send(self.data, self.addr)


# ----------------------------------------------------------------------------------- layer

RequestHandler = Callable[[ServerTransaction], Awaitable[None] | None]


class TransactionLayer:
    """Matches messages to transactions and creates new ones.

    ``on_request(tx)`` gets every new server transaction (it may be a coroutine function;
    an exception in it answers 500). ``on_ack(ack, source)`` gets ACKs that match no
    transaction (ACK for 2xx, RFC 3261 17.2.3); ``on_stray_response(resp, source)`` gets
    responses that match no client transaction (2xx retransmissions a B2BUA must ACK).
    """

    def __init__(
        self,
        on_request: RequestHandler,
        *,
        timers: Timers | None = None,
        on_ack: Callable[[Request, Source], None] | None = None,
        on_stray_response: Callable[[Response, Source], None] | None = None,
        transport: TransportLayer | None = None,
    ) -> None:
        self.on_request = on_request
        self.on_ack = on_ack
        self.on_stray_response = on_stray_response
        self.timers = timers or Timers()
        self.transport_layer = transport or TransportLayer(self.receive)
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[tuple[Any, ...], ServerTransaction | _Absorber] = {}
        self._awaiting_ack: dict[tuple[str, int], ServerTransaction] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Timer J buckets: (deadline, [(key, absorber)]) in deadline order, swept by one timer.
        self._absorbing: deque[tuple[float, list[tuple[tuple[Any, ...], _Absorber]]]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        # Deadlines are rounded up to this step so that one bucket (and one timer run) serves
        # all the transactions completed within it; T1/4 keeps Timer J within 5% of 64*T1.
        self._tick = self.timers.t1 / 4

    # --- input ---------------------------------------------------------------------------
    def receive(self, msg: Message, source: Source) -> None:
        """The transport's ``on_message`` callback."""
        try:
            if isinstance(msg, Response):
                self._receive_response(msg, source)
            elif isinstance(msg, Request):
                self._receive_request(msg, source)
        except SipParseError as exc:
            log.info("dropping message from %s: %s", source.remote, exc.reason)

    def _receive_response(self, resp: Response, source: Source) -> None:
        via = resp.top_via
        tx = self.clients.get((via.branch or "", resp.cseq.method))
        if tx is not None:
            tx.receive(resp)
        elif self.on_stray_response is not None:
            self.on_stray_response(resp, source)

    def _receive_request(self, req: Request, source: Source) -> None:
        key = _server_key(req)
        tx = self.servers.get(key)
        if tx is None and req.method == "ACK" and not req.top_via.is_rfc3261:
            tx = self.servers.get(_fallback_ack_key(req))
        if tx is not None:
            tx.receive_retransmission(req)
            return
        if req.method == "ACK":
            pending = self._awaiting_ack.pop((req.call_id, req.cseq.seq), None)
            if pending is not None:
                pending.ack_2xx(req)
            if self.on_ack is not None:
                self.on_ack(req, source)
            return
        tx = ServerTransaction(self, req, source, key=key)
        self.servers[key] = tx
        if not req.top_via.is_rfc3261 and req.method == "INVITE":
            self.servers[_fallback_ack_key(req)] = tx
        if req.method == "CANCEL":
            self._handle_cancel(tx)
            return
        if tx.is_invite:
            tx._later("trying", self.timers.trying_delay, tx._send_trying)
        self._dispatch(tx)

    def _handle_cancel(self, tx: ServerTransaction) -> None:
        invite = self.find_invite(tx.request)
        if invite is None:
            tx.respond(481)
            return
        tx.respond(200)
        invite.cancelled()

    def find_invite(self, cancel: Request) -> ServerTransaction | None:
        """The INVITE server transaction a CANCEL refers to (RFC 3261 9.2)."""
        key = _server_key(cancel)
        tx = self.servers.get((*key[:-1], "INVITE"))
        return tx if isinstance(tx, ServerTransaction) else None  # INVITEs are never absorbed

    def _dispatch(self, tx: ServerTransaction) -> None:
        try:
            result = self.on_request(tx)
        except Exception:
            log.exception("request handler failed for %s", tx.method)
            tx.respond(500)
            return
        if result is None:
            return
        context: contextvars.Context | None = None
        if isinstance(result, types.CoroutineType):
            # Run the handler now, up to its first real suspension: many finish without one
            # (a 401 challenge, OPTIONS), and those need no task and no extra loop turn. It runs
            # in its own copy of the context, as it would in a task, and a task goes on in it.
            context = contextvars.copy_context()
            try:
                first = context.run(result.send, None)
            except (StopIteration, asyncio.CancelledError):
                return  # done (or cancelled itself, which a task would have swallowed too)
            except Exception:
                log.exception("request handler failed for %s", tx.method)
                tx.respond(500)
                return
            result = _resume(result, first)
        if inspect.isawaitable(result):
            task = asyncio.get_running_loop().create_task(self._guard(tx, result), context=context)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _guard(self, tx: ServerTransaction, aw: Awaitable[None]) -> None:
        try:
            await aw
        except Exception:
            log.exception("request handler failed for %s", tx.method)
            tx.respond(500)

    # --- output --------------------------------------------------------------------------
    def prepare(self, req: Request, target: Target) -> None:
        """Make sure the request has our top Via with a fresh branch."""
        vias = req.get_all("Via")
        if not vias:
            host, port = self.transport_layer.via_for(target.kind)
            via = Via(target.kind.upper(), host or "127.0.0.1", port or None)
            via.params["branch"] = new_branch()
            via.params["rport"] = None
            req.prepend("Via", str(via))
        elif not req.top_via.is_rfc3261 and req.method not in ("ACK", "CANCEL"):
            top = req.top_via.copy()
            top.params["branch"] = new_branch()
            req.replace_first("Via", str(top))

    def send_request(
        self,
        req: Request,
        target: Target,
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        """Start a client transaction; await ``tx.future`` for the final response."""
        self.prepare(req, target)
        tx = ClientTransaction(self, req, target, on_response)
        self.clients[tx.key] = tx
        if not tx.start_nowait():
            task = asyncio.ensure_future(tx.start())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return tx

    async def request(self, req: Request, target: Target) -> Response:
        """Send a request and wait for its final response."""
        return await self.send_request(req, target).future

    async def send_stateless(self, req: Request, target: Target) -> None:
        """Send without a transaction (ACK for 2xx)."""
        if not req.get_all("Via"):
            self.prepare(req, target)
        await self.transport_layer.send_request(req, target)

    # --- bookkeeping ---------------------------------------------------------------------
    def _absorb(
        self, tx: ServerTransaction, data: bytes, route: tuple[Connection, Addr | None]
    ) -> None:
        """Replace a completed non-INVITE UDP transaction by an absorber for Timer J."""
        if self.servers.get(tx.key) is not tx:
            return
        absorber = _Absorber(data, route[0], route[1])
        self.servers[tx.key] = absorber
        loop = asyncio.get_running_loop()
        tick = self._tick
        deadline = math.ceil((loop.time() + 64 * self.timers.t1) / tick) * tick
        buckets = self._absorbing
        if buckets and buckets[-1][0] >= deadline:
            buckets[-1][1].append((tx.key, absorber))
        else:
            buckets.append((deadline, [(tx.key, absorber)]))
        if self._sweeper is None:
            self._sweeper = loop.call_at(buckets[0][0], self._sweep)

    def _sweep(self) -> None:
        """Drop the absorbers whose Timer J has fired; re-arm for the next bucket."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        buckets = self._absorbing
        servers = self.servers
        while buckets and buckets[0][0] <= now:
            for key, absorber in buckets.popleft()[1]:
                if servers.get(key) is absorber:
                    del servers[key]
        if buckets:
            self._sweeper = loop.call_at(buckets[0][0], self._sweep)

    def _expect_ack(self, tx: ServerTransaction) -> None:
        self._awaiting_ack[(tx.request.call_id, tx.request.cseq.seq)] = tx

    def _remove_client(self, tx: ClientTransaction) -> None:
        if self.clients.get(tx.key) is tx:
            del self.clients[tx.key]
        # Nothing calls it any more; it usually closes over the TU's objects, which refer
        # back to the transaction (a cycle only the cycle collector would free).
        tx.on_response = None

    def _remove_server(self, tx: ServerTransaction) -> None:
        tx.on_cancel = None  # as for clients: free the TU's objects it closes over
        for k in (
            [k for k, v in self.servers.items() if v is tx]
            if not tx.request.top_via.is_rfc3261
            else [tx.key]
        ):
            if self.servers.get(k) is tx:
                del self.servers[k]
        ak = (tx.request.call_id, tx.request.cseq.seq)
        if self._awaiting_ack.get(ak) is tx:
            del self._awaiting_ack[ak]

    def close(self) -> None:
        for c in list(self.clients.values()):
            c._cancel_timers()
        for s in list(self.servers.values()):
            if isinstance(s, ServerTransaction):
                s._cancel_timers()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for t in self._tasks:
            t.cancel()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """Go on driving a coroutine that has already been stepped once by hand and yielded
    ``yielded`` (a Future it waits for, or None for a bare yield): hand that to the task that
    now runs this generator, and relay what the task sends or throws in. ``await`` on a Future
    leaves it marked as blocking, so the task treats the re-yielded Future as if the coroutine
    had yielded it to it directly."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation, thrown in by the task
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value
