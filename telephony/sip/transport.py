"""SIP transports on asyncio: UDP, TCP, TLS, WS and WSS (RFC 3261 18, RFC 3581, RFC 5626,
RFC 7118).

Every transport hands parsed messages to one ``on_message(msg, source)`` callback. ``Source``
says where a message came from and carries the :class:`Connection` to answer on. Bad input is
answered 400 when it is a request with enough headers to address an answer, otherwise dropped;
either way it is logged and the transport carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .message import (
    MAX_HEADERS,
    MAX_MESSAGE_SIZE,
    Message,
    Request,
    Response,
    SipParseError,
    frame_length,
    parse,
)

__all__ = [
    "RELIABLE",
    "Connection",
    "Source",
    "Target",
    "TransportLayer",
]

log = logging.getLogger(__name__)

UDP, TCP, TLS, WS, WSS = "UDP", "TCP", "TLS", "WS", "WSS"
# Receive buffer asked for on UDP sockets. The kernel default (~200 KB, some 150 datagrams) is
# overrun by any burst -- a few thousand phones re-registering after an outage, a SIPp run --
# and every datagram dropped there comes back as a retransmission 500 ms later, on top of new
# traffic. The kernel caps it at net.core.rmem_max.
UDP_RCVBUF = 8 * 1024 * 1024
RELIABLE = frozenset({TCP, TLS, WS, WSS})
# Browsers: SIP over WebSocket only, reachable on the flow they opened and nowhere else.
BROWSER = frozenset({WS, WSS})
Addr = tuple[str, int]


class Connection:
    """A flow we can send on: a UDP socket (needs an address) or one stream/WebSocket peer."""

    kind: str = UDP
    remote: Addr | None = None
    local: Addr = ("", 0)

    @property
    def reliable(self) -> bool:
        return self.kind in RELIABLE

    @property
    def closed(self) -> bool:
        return False

    def send(self, data: bytes, addr: Addr | None = None) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from: transport kind, remote and local address, and the flow."""

    kind: str
    remote: Addr
    local: Addr
    conn: Connection

    def send(self, data: bytes) -> None:
        """Send back on the same flow (to the same address for UDP)."""
        self.conn.send(data, self.remote)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a request: transport kind and address (host must be an IP here; DNS
    resolution belongs to the layer above)."""

    kind: str
    host: str
    port: int


def _norm(addr: Any) -> Addr:
    return (str(addr[0]), int(addr[1]))


# ------------------------------------------------------------------------------------------ UDP


_UDP_KEEPALIVES = frozenset({b"\r\n\r\n", b"\r\n", b"\x00\x00\x00\x00"})


class _UdpProtocol(asyncio.DatagramProtocol, Connection):
    kind = UDP

    def __init__(self, layer: TransportLayer) -> None:
        self.layer = layer
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        self.local = _norm(transport.get_extra_info("sockname"))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) <= 4 and data in _UDP_KEEPALIVES:
            # NAT keep-alives. RFC 5626 4.4.1's double-CRLF ping gets its single-CRLF pong on
            # UDP too (many phones send it there rather than STUN), so the phone sees that its
            # NAT mapping and the server are alive; a banned source gets nothing.
            if data == b"\r\n\r\n" and (self.layer.gate is None or self.layer.gate(addr[0])):
                self.send(b"\r\n", _norm(addr))
            return
        remote = _norm(addr)
        self.layer._received(data, Source(UDP, remote, self.local, self), stream=False)

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error on %s: %s", self.local, exc)

    def send(self, data: bytes, addr: Addr | None = None) -> None:
        if self.transport is None or addr is None:
            return
        self.transport.sendto(data, addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# ------------------------------------------------------------------------------- TCP and TLS


class _StreamProtocol(asyncio.Protocol, Connection):
    def __init__(self, layer: TransportLayer, kind: str) -> None:
        self.layer = layer
        self.kind = kind
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.remote = _norm(transport.get_extra_info("peername"))
        self.local = _norm(transport.get_extra_info("sockname"))
        self.layer._add_flow(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.layer._drop_flow(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def data_received(self, data: bytes) -> None:
        self.buf += data
        buf = self.buf
        while buf:
            # RFC 5626 4.4.1: a double CRLF ping is answered with a single CRLF pong.
            if buf[:1] == b"\r" or buf[:1] == b"\n":
                if buf[:4] == b"\r\n\r\n":
                    del buf[:4]
                    self.send(b"\r\n")
                    continue
                if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                    return  # maybe half a ping
                del buf[:1]
                continue
            try:
                n = frame_length(buf, self.layer.max_size)
            except SipParseError as exc:
                # Without a usable Content-Length the stream cannot be re-synchronised.
                log.info("closing %s flow from %s: %s", self.kind, self.remote, exc.reason)
                self.layer._reject(bytes(buf[:4096]), exc, self._source())
                self.close()
                return
            if n is None:
                return
            frame = bytes(buf[:n])
            del buf[:n]
            self.layer._received(frame, self._source(), stream=True)

    def _source(self) -> Source:
        assert self.remote is not None
        return Source(self.kind, self.remote, self.local, self)

    def send(self, data: bytes, addr: Addr | None = None) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


# -------------------------------------------------------------------------------- WebSockets


class _WsConnection(Connection):
    def __init__(self, layer: TransportLayer, ws: ServerConnection, kind: str) -> None:
        self.layer = layer
        self.ws = ws
        self.kind = kind
        self.remote: Addr = _norm(ws.remote_address)
        self.local = _norm(ws.local_address)
        # A queue and one writer keep frames in order without awaiting in the caller.
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def send(self, data: bytes, addr: Addr | None = None) -> None:
        if not self._closed:
            self.queue.put_nowait(data)

    def close(self) -> None:
        self.queue.put_nowait(None)

    async def writer(self) -> None:
        while True:
            data = await self.queue.get()
            if data is None:
                await self.ws.close()
                return
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                await self.ws.send(data)  # binary frame for a non-UTF-8 body
            else:
                await self.ws.send(text)

    async def run(self) -> None:
        writer = asyncio.create_task(self.writer())
        self.layer._add_flow(self)
        source = Source(self.kind, self.remote, self.local, self)
        try:
            async for frame in self.ws:
                data = frame.encode("utf-8") if isinstance(frame, str) else frame
                # RFC 7118: one SIP message per frame; Content-Length optional.
                self.layer._received(data, source, stream=False)
        except ConnectionClosed:
            pass
        finally:
            self._closed = True
            self.layer._drop_flow(self)
            writer.cancel()


# ------------------------------------------------------------------------------------ layer


class TransportLayer:
    """Owns the listening sockets and open flows; parses input and routes output.

    ``on_message(msg, source)`` is called for every well-formed message. Requests arrive with
    ``received``/``rport`` already added to their top Via (RFC 3261 18.2.1, RFC 3581).
    """

    def __init__(
        self,
        on_message: Callable[[Message, Source], None],
        *,
        max_size: int = MAX_MESSAGE_SIZE,
        max_headers: int = MAX_HEADERS,
        udp_rcvbuf: int | None = None,
    ) -> None:
        self.on_message = on_message
        self.max_size = max_size
        self.max_headers = max_headers
        self.udp_rcvbuf = UDP_RCVBUF if udp_rcvbuf is None else udp_rcvbuf
        self.udp: list[_UdpProtocol] = []
        self.servers: list[asyncio.AbstractServer] = []
        self.ws_servers: list[WsServer] = []
        self.flows: dict[tuple[str, str, int], Connection] = {}
        # ``fn(kind, host, port)`` for each flow that closed (the registrar forgets browsers').
        self.on_flow_closed: list[Callable[[str, str, int], None]] = []
        self.listen_addrs: dict[str, Addr] = {}
        # ``gate(source_ip) -> bool`` runs before parsing: banned sources cost no parse.
        self.gate: Callable[[str], bool] | None = None

    # --- listening -----------------------------------------------------------------------
    async def listen_udp(self, host: str, port: int) -> Addr:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port)
        )
        sock = transport.get_extra_info("socket")
        if sock is not None and self.udp_rcvbuf:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.udp_rcvbuf)
        self.udp.append(proto)
        self.listen_addrs.setdefault(UDP, proto.local)
        return proto.local

    async def listen_tcp(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> Addr:
        loop = asyncio.get_running_loop()
        kind = TLS if tls else TCP
        server = await loop.create_server(lambda: _StreamProtocol(self, kind), host, port, ssl=tls)
        self.servers.append(server)
        addr = _norm(server.sockets[0].getsockname())
        self.listen_addrs.setdefault(kind, addr)
        return addr

    async def listen_ws(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> Addr:
        kind = WSS if tls else WS

        async def handler(ws: ServerConnection) -> None:
            await _WsConnection(self, ws, kind).run()

        server = await serve(
            handler,
            host,
            port,
            ssl=tls,
            subprotocols=["sip"],  # type: ignore[list-item]
            max_size=self.max_size,
            ping_interval=None,  # SIP has its own keep-alives; browsers answer pings anyway
            compression=None,
        )
        self.ws_servers.append(server)
        addr = _norm(next(iter(server.sockets)).getsockname())
        self.listen_addrs.setdefault(kind, addr)
        return addr

    async def close(self) -> None:
        for p in self.udp:
            p.close()
        for flow in list(self.flows.values()):
            flow.close()
        for s in self.servers:
            s.close()
        for w in self.ws_servers:
            w.close()
        for s in self.servers:
            with contextlib.suppress(Exception):
                await s.wait_closed()
        for w in self.ws_servers:
            with contextlib.suppress(Exception):
                await w.wait_closed()

    # --- flows ---------------------------------------------------------------------------
    def _add_flow(self, conn: Connection) -> None:
        if conn.remote is not None:
            self.flows[(conn.kind, conn.remote[0], conn.remote[1])] = conn

    def _drop_flow(self, conn: Connection) -> None:
        if conn.remote is not None:
            key = (conn.kind, conn.remote[0], conn.remote[1])
            if self.flows.get(key) is conn:
                del self.flows[key]
                for fn in self.on_flow_closed:
                    try:
                        fn(*key)
                    except Exception:
                        log.exception("flow-closed callback failed")

    # --- input ---------------------------------------------------------------------------
    def _received(self, data: bytes, source: Source, *, stream: bool) -> None:
        if self.gate is not None and not self.gate(source.remote[0]):
            return
        try:
            msg = parse(
                data,
                stream=stream and source.kind in (TCP, TLS),
                max_size=self.max_size,
                max_headers=self.max_headers,
            )
        except SipParseError as exc:
            self._reject(data, exc, source)
            return
        if isinstance(msg, Request):
            self._stamp_via(msg, source)
        try:
            self.on_message(msg, source)
        except Exception:
            # A bug above must not take the transport down with it.
            log.exception("on_message failed for %r from %s", msg, source.remote)

    @staticmethod
    def _stamp_via(msg: Request, source: Source) -> None:
        # The top Via was parsed from this very message a moment ago and nothing else holds
        # it yet, so it is stamped in place: no copy, and the parsed views stay valid.
        via = msg.top_via
        params = via.params
        ip, port = source.remote
        changed = False
        if via.host != ip:
            params["received"] = ip
            changed = True
        if "rport" in params and via.rport is None:
            params["rport"] = str(port)
            if "received" not in params:
                params["received"] = ip  # RFC 3581 4: received is always added with rport
            changed = True
        if changed:
            # Header names of a parsed message are canonical, so "Via" is spelled "Via";
            # replace_first() would drop every parsed view the parse just built.
            headers = msg.headers
            for i, (name, _) in enumerate(headers):
                if name == "Via":
                    headers[i] = ("Via", str(via))
                    break

    def _reject(self, data: bytes, exc: SipParseError, source: Source) -> None:
        log.info("malformed %s message from %s:%s: %s", source.kind, *source.remote, exc.reason)
        if not exc.is_request or not exc.partial:
            return
        headers = [(n, v) for n, v in exc.partial if n in ("Via", "From", "To", "Call-ID", "CSeq")]
        if not any(n == "Via" for n, _ in headers):
            return
        resp = Response(exc.status, None, headers)
        # The Via may be the broken part, so answer to where the bytes came from.
        source.send(bytes(resp))

    # --- output --------------------------------------------------------------------------
    def response_route(
        self, resp: Response, source: Source | None = None
    ) -> tuple[Connection, Addr | None] | None:
        """Where a response goes per RFC 3261 18.2.2 and RFC 3581: the flow the request came
        on when it is reliable and still open, else received/rport (or sent-by) of the top
        Via. Returns (connection, address for UDP or None), or None when there is no way."""
        if source is not None and source.kind in RELIABLE and not source.conn.closed:
            return source.conn, None
        via = resp.top_via
        host = via.received or via.host
        port = via.rport or via.port or (5061 if via.transport == TLS else 5060)
        if source is not None and source.kind == UDP:
            if via.rport is None and via.received is None and source.remote[0] == via.host:
                port = via.port or 5060
            return source.conn, (host, port)
        flow = self.flows.get((via.transport, host, port))
        if flow is not None:
            return flow, None
        if self.udp:
            return self.udp[0], (host, port)
        return None

    def send_response(
        self, resp: Response, source: Source | None = None, data: bytes | None = None
    ) -> tuple[Connection, Addr | None] | None:
        """Send a response (see :meth:`response_route`); returns the route it took, so that a
        transaction can resend the same bytes without working it out again. ``data`` is
        ``bytes(resp)`` when the caller has it already."""
        route = self.response_route(resp, source)
        if route is not None:
            route[0].send(bytes(resp) if data is None else data, route[1])
        return route

    def send_request_nowait(
        self, req: Request, target: Target, data: bytes | None = None
    ) -> Source | None:
        """:meth:`send_request` without a task when nothing has to be awaited (UDP, or an open
        flow); None when a connection must be opened first (then await send_request)."""
        kind = target.kind.upper()
        if kind == UDP:
            if not self.udp:
                raise OSError("no UDP listener")
            sock = self.udp[0]
            addr = (target.host, target.port)
            sock.send(bytes(req) if data is None else data, addr)
            return Source(UDP, addr, sock.local, sock)
        flow = self.flows.get((kind, target.host, target.port))
        if flow is None or flow.closed:
            return None
        flow.send(bytes(req) if data is None else data)
        assert flow.remote is not None
        return Source(kind, flow.remote, flow.local, flow)

    async def send_request(self, req: Request, target: Target, data: bytes | None = None) -> Source:
        """Send a request to ``target``, reusing an open flow to that address (clients behind
        NAT are reachable only on the flow they registered on). Opens TCP/TLS if needed.
        ``data`` is ``bytes(req)`` when the caller has it already."""
        if data is None:
            data = bytes(req)
        kind = target.kind.upper()
        if kind == UDP:
            if not self.udp:
                raise OSError("no UDP listener")
            sock = self.udp[0]
            sock.send(data, (target.host, target.port))
            return Source(UDP, (target.host, target.port), sock.local, sock)
        flow = self.flows.get((kind, target.host, target.port))
        if flow is None or flow.closed:
            if kind not in (TCP, TLS):
                raise ConnectionError(f"no open {kind} flow to {target.host}:{target.port}")
            loop = asyncio.get_running_loop()
            ctx = ssl.create_default_context() if kind == TLS else None
            _, proto = await loop.create_connection(
                lambda: _StreamProtocol(self, kind), target.host, target.port, ssl=ctx
            )
            flow = proto
        flow.send(data)
        assert flow.remote is not None
        return Source(kind, flow.remote, flow.local, flow)

    def via_for(self, kind: str) -> tuple[str, int]:
        """The sent-by to put in our Via for a transport kind."""
        addr = self.listen_addrs.get(kind.upper()) or self.listen_addrs.get(UDP) or ("", 0)
        return addr
