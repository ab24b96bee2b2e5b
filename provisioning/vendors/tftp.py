"""A small read-only TFTP server (RFC 1350, options per RFC 2347/2348/2349) on asyncio.

Why not tftpy's server: it always serves a real directory first (a stray file on disk
would shadow the callback), writes uploads to that directory unless told otherwise, and
polls a blocking ``select`` loop that only notices ``stop()`` after a timeout. Phones need
a fraction of TFTP, so this module implements just that: RRQ in octet/netascii mode with
blksize/tsize/timeout options, every file produced by a ``lookup`` callback, WRQ refused.

The callback is synchronous (the Django side reads the database) and runs in the loop's
default executor so one slow lookup never stalls other transfers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from .loopthread import ServerThread

__all__ = ["Lookup", "TftpServer", "TftpServerThread", "safe_filename"]

log = logging.getLogger(__name__)

#: ``lookup(filename, (client_ip, client_port))`` returns the file's bytes or ``None``.
Lookup = Callable[[str, tuple[str, int]], bytes | None]

OP_RRQ, OP_WRQ, OP_DATA, OP_ACK, OP_ERROR, OP_OACK = 1, 2, 3, 4, 5, 6
ERR_UNDEFINED, ERR_NOT_FOUND, ERR_ACCESS, ERR_ILLEGAL_OP, ERR_OPTION = 0, 1, 2, 4, 8

DEFAULT_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 65464  # RFC 2348 upper bound
MAX_FILENAME = 255


class TftpRequestError(Exception):
    """A request answered with a TFTP ERROR packet."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def error_packet(code: int, message: str) -> bytes:
    """Build an ERROR packet."""
    return struct.pack("!HH", OP_ERROR, code) + message.encode("ascii", "replace") + b"\0"


def safe_filename(raw: str) -> str:
    """The requested name with leading slashes removed, or :class:`TftpRequestError`.

    Phones ask for ``/SEP<MAC>.cnf.xml`` or ``SEP<MAC>.cnf.xml`` alike; anything that
    could climb out of a directory (``..``, backslashes, control characters) is refused
    even though ``lookup`` serves no directory, because the callback may one day.
    """
    name = raw.lstrip("/")
    if not name or len(name) > MAX_FILENAME:
        raise TftpRequestError(ERR_ACCESS, "bad file name")
    if "\\" in name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        raise TftpRequestError(ERR_ACCESS, "bad file name")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise TftpRequestError(ERR_ACCESS, "path traversal refused")
    return name


def to_netascii(data: bytes) -> bytes:
    """RFC 764 NVT encoding: LF -> CR LF, bare CR -> CR NUL."""
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


@dataclass
class _Request:
    opcode: int
    filename: str
    mode: str
    options: dict[str, str] = field(default_factory=dict)


def parse_request(packet: bytes) -> _Request:
    """Parse an RRQ/WRQ; raises :class:`TftpRequestError` for anything else."""
    if len(packet) < 4:
        raise TftpRequestError(ERR_ILLEGAL_OP, "short packet")
    (opcode,) = struct.unpack("!H", packet[:2])
    if opcode not in (OP_RRQ, OP_WRQ):
        raise TftpRequestError(ERR_ILLEGAL_OP, "expected a read request")
    fields = packet[2:].split(b"\0")
    if len(fields) < 3 or fields[-1] != b"":
        raise TftpRequestError(ERR_ILLEGAL_OP, "malformed request")
    fields = fields[:-1]
    try:
        filename, mode, *rest = (f.decode("ascii") for f in fields)
    except UnicodeDecodeError as exc:
        raise TftpRequestError(ERR_ACCESS, "bad file name") from exc
    if len(rest) % 2:
        raise TftpRequestError(ERR_ILLEGAL_OP, "malformed options")
    options = {rest[i].lower(): rest[i + 1] for i in range(0, len(rest), 2)}
    return _Request(opcode, filename, mode.lower(), options)


class _Session(asyncio.DatagramProtocol):
    """One transfer on its own port (the server's transfer ID)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait(data)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.server._request_received(data, addr)


class TftpServer:
    """Read-only TFTP server answering every RRQ from ``lookup``.

    ``host``/``port`` default to all interfaces and port 69 (root or CAP_NET_BIND_SERVICE
    needed); pass ``port=0`` for an ephemeral port and read :attr:`address`.
    """

    def __init__(
        self,
        lookup: Lookup,
        host: str = "0.0.0.0",  # noqa: S104 - phones reach us on any LAN interface
        port: int = 69,
        *,
        timeout: float = 1.0,
        retries: int = 5,
        max_sessions: int = 256,
    ) -> None:
        self.lookup = lookup
        self.host = host
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.max_sessions = max_sessions
        self._transport: asyncio.DatagramTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)``; only valid after :meth:`start`."""
        assert self._transport is not None, "server not started"
        host, port = self._transport.get_extra_info("sockname")[:2]
        return host, port

    async def start(self) -> None:
        """Bind the listening socket."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Listener(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        log.info("TFTP server listening on %s:%s", *self.address)

    async def close(self) -> None:
        """Stop listening and abort transfers in progress."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> TftpServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _request_received(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None
        if len(self._tasks) >= self.max_sessions:
            self._transport.sendto(error_packet(ERR_UNDEFINED, "server busy"), addr)
            return
        task = asyncio.get_running_loop().create_task(self._serve(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        # A fresh socket per transfer is the server's TID (RFC 1350 section 4); connecting
        # it to the client makes the kernel drop datagrams from any other address.
        transport, session = await loop.create_datagram_endpoint(
            _Session, local_addr=(self.address[0], 0), remote_addr=addr
        )
        try:
            await self._transfer(data, addr, transport, session)
        except TftpRequestError as exc:
            log.info("TFTP %s:%s refused: %s", addr[0], addr[1], exc.message)
            transport.sendto(error_packet(exc.code, exc.message))
        except TimeoutError:
            log.info("TFTP %s:%s timed out", *addr)
        except Exception:
            log.exception("TFTP %s:%s failed", *addr)
            transport.sendto(error_packet(ERR_UNDEFINED, "internal error"))
        finally:
            transport.close()

    async def _transfer(
        self,
        data: bytes,
        addr: tuple[str, int],
        transport: asyncio.DatagramTransport,
        session: _Session,
    ) -> None:
        request = parse_request(data)
        if request.opcode == OP_WRQ:
            raise TftpRequestError(ERR_ACCESS, "read-only server: writes are refused")
        if request.mode not in ("octet", "netascii"):
            raise TftpRequestError(ERR_ILLEGAL_OP, f"unsupported mode {request.mode!r}")
        name = safe_filename(request.filename)
        loop = asyncio.get_running_loop()
        content = await loop.run_in_executor(None, self.lookup, name, addr)
        if content is None:
            raise TftpRequestError(ERR_NOT_FOUND, "file not found")
        if request.mode == "netascii":
            content = to_netascii(content)
        log.info("TFTP %s:%s RRQ %s (%d bytes)", addr[0], addr[1], name, len(content))

        block_size, timeout, oack = self._negotiate(request.options, len(content))
        if oack:
            # RFC 2347: the client acknowledges our option answer with ACK 0.
            await self._exchange(transport, session, self._oack(oack), 0, timeout)
        block = 1
        offset = 0
        while True:
            chunk = content[offset : offset + block_size]
            packet = struct.pack("!HH", OP_DATA, block & 0xFFFF) + chunk
            await self._exchange(transport, session, packet, block & 0xFFFF, timeout)
            offset += len(chunk)
            if len(chunk) < block_size:
                return  # a short (possibly empty) block ends the transfer
            block += 1

    def _negotiate(self, options: dict[str, str], size: int) -> tuple[int, float, dict[str, str]]:
        block_size, timeout = DEFAULT_BLOCK_SIZE, self.timeout
        answer: dict[str, str] = {}
        # Unknown options are ignored, as RFC 2347 asks; bad values of known ones too.
        with contextlib.suppress(ValueError):
            if "blksize" in options:
                requested = int(options["blksize"])
                if requested >= 8:
                    block_size = min(requested, MAX_BLOCK_SIZE)
                    answer["blksize"] = str(block_size)
        with contextlib.suppress(ValueError):
            if "timeout" in options and 1 <= int(options["timeout"]) <= 255:
                timeout = float(int(options["timeout"]))
                answer["timeout"] = options["timeout"]
        if "tsize" in options:
            answer["tsize"] = str(size)
        return block_size, timeout, answer

    @staticmethod
    def _oack(options: dict[str, str]) -> bytes:
        body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items())
        return struct.pack("!H", OP_OACK) + body

    async def _exchange(
        self,
        transport: asyncio.DatagramTransport,
        session: _Session,
        packet: bytes,
        block: int,
        interval: float,
    ) -> None:
        """Send ``packet`` until ACK ``block`` arrives, retransmitting on timeout only.

        Duplicate ACKs for the previous block are ignored rather than answered, which is
        what avoids the "Sorcerer's Apprentice" doubling of traffic (RFC 1123 4.2.3.1).
        """
        loop = asyncio.get_running_loop()
        for _attempt in range(self.retries + 1):
            transport.sendto(packet)
            deadline = loop.time() + interval
            while (remaining := deadline - loop.time()) > 0:
                try:
                    reply = await asyncio.wait_for(session.queue.get(), remaining)
                except TimeoutError:
                    break
                if len(reply) < 4:
                    continue
                opcode, number = struct.unpack("!HH", reply[:4])
                if opcode == OP_ACK and number == block:
                    return
                if opcode == OP_ERROR:
                    # The client gave up (e.g. refused our OACK): end quietly.
                    raise TimeoutError
        raise TimeoutError


class TftpServerThread(ServerThread):
    """Run a :class:`TftpServer` on its own event loop in a daemon thread.

    For callers without an event loop, e.g. a Django management command::

        server = TftpServerThread(lookup, "0.0.0.0", 69)
        server.start()          # returns once the socket is bound
        ...
        server.stop()
    """

    def __init__(
        self,
        lookup: Lookup,
        host: str = "0.0.0.0",  # noqa: S104 - phones reach us on any LAN interface
        port: int = 69,
        *,
        timeout: float = 1.0,
        retries: int = 5,
    ) -> None:
        super().__init__(
            TftpServer(lookup, host, port, timeout=timeout, retries=retries), name="tftp"
        )
