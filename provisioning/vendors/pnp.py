"""SIP plug-and-play responder: tells a booting phone where its configuration lives.

A factory-fresh phone multicasts ``SUBSCRIBE sip:MAC%3a<mac>@224.0.1.75`` with
``Event: ua-profile;profile-type="device";vendor=...;model=...;version=...`` to port 5060.
We answer ``200 OK`` and then send it a ``NOTIFY`` whose ``application/url`` body is the
provisioning URL, chosen by the ``url_for`` callback (the Django side decides whether the
MAC belongs to a known device and which tenant folder serves it).

The SIP handling here is deliberately tiny and self-contained: PnP needs one request
type, no dialogs and no authentication, and must not depend on the call engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from .loopthread import ServerThread
from .mac import normalize_mac

__all__ = [
    "PNP_MULTICAST_GROUP",
    "PNP_PORT",
    "NotifyResult",
    "PnpResponder",
    "PnpResponderThread",
    "SipMessage",
    "UrlFor",
    "extract_mac",
    "parse_event",
    "parse_sip",
]

log = logging.getLogger(__name__)

PNP_MULTICAST_GROUP = "224.0.1.75"  # sip.mcast.net
PNP_PORT = 5060

#: ``url_for(mac, vendor, model, (ip, port))`` -> provisioning URL, or ``None`` for 404.
UrlFor = Callable[[str, str, str, tuple[str, int]], str | None]
#: ``on_result(mac, status)``: the phone's answer to our NOTIFY (``None`` if it never came).
NotifyResult = Callable[[str, int | None], None]

MAX_MESSAGE = 8192
MAX_HEADERS = 64
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "o": "event",
    "l": "content-length",
    "c": "content-type",
}


@dataclass
class SipMessage:
    """A parsed SIP request or response (only what PnP needs)."""

    method: str | None  # None for a response
    uri: str
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)  # (lower-case name, value)
    body: bytes = b""

    def get(self, name: str) -> str | None:
        """First value of header ``name`` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def get_all(self, name: str) -> list[str]:
        """All values of header ``name`` in order."""
        name = name.lower()
        return [v for n, v in self.headers if n == name]


def parse_sip(data: bytes) -> SipMessage | None:
    """Parse a datagram; ``None`` for anything that is not a plausible SIP message."""
    if len(data) > MAX_MESSAGE:
        return None
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")  # tolerate bare-LF senders
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) != 3:
        return None
    if parts[0] == "SIP/2.0":
        if not parts[1].isdigit():
            return None
        message = SipMessage(None, "", int(parts[1]))
    elif parts[2] == "SIP/2.0" and re.fullmatch(r"[A-Z]+", parts[0]):
        message = SipMessage(parts[0], parts[1], None)
    else:
        return None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and message.headers:  # folded continuation line
            name, value = message.headers[-1]
            message.headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            return None
        name = name.strip().lower()
        message.headers.append((_COMPACT.get(name, name), value.strip()))
        if len(message.headers) > MAX_HEADERS:
            return None
    length = message.get("content-length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    message.body = body
    return message


_PARAM = re.compile(r';\s*([^=;\s]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;]*))?')


def parse_event(value: str) -> tuple[str, dict[str, str]]:
    """Split ``ua-profile;vendor="Yealink";...`` into the package and unquoted params."""
    package, _, rest = value.partition(";")
    params = {m[1].lower(): (m[2] or "").strip().strip('"') for m in _PARAM.finditer(";" + rest)}
    return package.strip().lower(), params


def _uri_of(name_addr: str) -> str:
    if "<" in name_addr:
        return name_addr.split("<", 1)[1].split(">", 1)[0]
    return name_addr.split(";", 1)[0].strip()


def _host_port(uri: str) -> tuple[str, int | None]:
    hostpart = uri.split("@", 1)[-1].split(";", 1)[0].split("?", 1)[0]
    hostpart = re.sub(r"^sips?:", "", hostpart)
    if hostpart.startswith("["):  # IPv6 reference
        host, _, port = hostpart[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostpart.partition(":")
    return host, int(port) if port.isdigit() else None


_MAC_PREFIX = re.compile(r"^mac[:=_\-]?", re.IGNORECASE)
_MAC_TOKEN = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{12}(?![0-9a-fA-F])")


def extract_mac(from_header: str, event_params: dict[str, str] | None = None) -> str | None:
    """The phone's MAC from a PnP SUBSCRIBE, normalised, or ``None``.

    Vendors disagree on the From user part: ``MAC%3a0015651234ab`` (Yealink, Snom),
    ``MAC:000B82123456`` (Grandstream), a bare ``0c383e123456`` (Fanvil) or a
    colon-separated MAC; some also send ``mac=`` on the Event header.
    """
    uri = _uri_of(from_header)
    user = re.sub(r"^sips?:", "", uri).split("@", 1)[0] if "@" in uri else ""
    user = unquote(user)
    candidates = [_MAC_PREFIX.sub("", user), *_MAC_TOKEN.findall(user)]
    if event_params and event_params.get("mac"):
        candidates.append(event_params["mac"])
    for candidate in candidates:
        with contextlib.suppress(ValueError):
            return normalize_mac(candidate)
    return None


def _tag(header: str) -> str | None:
    found = re.search(r";\s*tag=([^;\s]+)", header.rsplit(">", 1)[-1])
    return found.group(1) if found else None


def _reason(status: int) -> str:
    return {
        200: "OK",
        400: "Bad Request",
        404: "Not Found",
        489: "Bad Event",
        500: "Server Internal Error",
    }.get(status, "Unknown")


def _via_target(via: str, source: tuple[str, int]) -> tuple[str, int]:
    # RFC 3261 18.2.2 + RFC 3581: reply to the source IP (the "received" address); to the
    # source port when rport was asked for, else to the port in the Via's sent-by.
    sent_by = via.split(None, 1)[-1].split(";", 1)[0]
    _, port = _host_port(sent_by)
    if re.search(r";\s*rport(?:[;=\s]|$)", via):
        return source
    return source[0], port or PNP_PORT


@dataclass
class _PendingNotify:
    mac: str
    future: asyncio.Future[int]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, responder: PnpResponder) -> None:
        self.responder = responder
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.responder._datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("PnP socket error: %s", exc)  # ICMP unreachable from a vanished phone


class PnpResponder:
    """Answers ua-profile SUBSCRIBEs on ``host:port`` (multicast group or unicast).

    ``host`` defaults to the PnP multicast group; when it is a multicast address the
    socket joins the group on ``interface`` (default: the kernel's choice) and replies go
    out from a separate unicast socket, since a socket bound to a group address cannot
    be a source. Tests pass ``127.0.0.1`` and port ``0``.

    ``advertise_host`` is the address written into Via/Contact; by default the local
    address the kernel would use to reach the phone.
    """

    def __init__(
        self,
        url_for: UrlFor,
        host: str = PNP_MULTICAST_GROUP,
        port: int = PNP_PORT,
        *,
        interface: str = "0.0.0.0",  # noqa: S104 - multicast membership on the default interface
        advertise_host: str | None = None,
        on_result: NotifyResult | None = None,
        t1: float = 0.5,
        timer_f: float = 32.0,
    ) -> None:
        self.url_for = url_for
        self.host = host
        self.port = port
        self.interface = interface
        self.advertise_host = advertise_host
        self.on_result = on_result
        self.t1 = t1
        self.timer_f = timer_f
        self._recv: _Protocol | None = None
        self._send: _Protocol | None = None
        self._pending: dict[str, _PendingNotify] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def multicast(self) -> bool:
        """Whether the responder listens on a multicast group."""
        return ipaddress.ip_address(self.host).is_multicast

    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` of the listening socket."""
        if self._recv is None or self._recv.transport is None:
            raise RuntimeError("PnP responder is not started")
        host, port = self._recv.transport.get_extra_info("sockname")[:2]
        return host, port

    def _listening_socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        if self.multicast:
            # The SIP engine owns 0.0.0.0:5060; sharing the port needs SO_REUSEADDR on both.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if hasattr(socket, "SO_REUSEPORT"):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            # Binding the group address (not 0.0.0.0) keeps unicast SIP out of this socket.
            sock.bind((self.host, self.port))
            membership = struct.pack(
                "4s4s", socket.inet_aton(self.host), socket.inet_aton(self.interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind((self.host, self.port))
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        """Bind (and join the group when multicast)."""
        loop = asyncio.get_running_loop()
        _, self._recv = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), sock=self._listening_socket()
        )
        if self.multicast:
            bind = "0.0.0.0" if self.interface == "0.0.0.0" else self.interface  # noqa: S104
            _, self._send = await loop.create_datagram_endpoint(
                lambda: _Protocol(self), local_addr=(bind, 0)
            )
        else:
            self._send = self._recv
        log.info("PnP responder listening on %s:%s", *self.address)

    async def close(self) -> None:
        """Stop listening; pending NOTIFYs are abandoned."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proto in {id(p): p for p in (self._recv, self._send) if p}.values():
            if proto.transport is not None:
                proto.transport.close()
        self._recv = self._send = None

    async def __aenter__(self) -> PnpResponder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- receiving ---------------------------------------------------------------------------

    def _datagram(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_sip(data)
        if message is None:
            log.debug("PnP: ignored %d-byte non-SIP datagram from %s:%s", len(data), *addr)
            return
        if message.status is not None:
            self._response(message)
            return
        if message.method != "SUBSCRIBE":
            # The group is shared with other SIP multicast users; stay silent for them.
            return
        task = asyncio.get_running_loop().create_task(self._subscribe(message, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _response(self, message: SipMessage) -> None:
        via = message.get("via") or ""
        branch = re.search(r";\s*branch=([^;\s]+)", via)
        cseq = (message.get("cseq") or "").split()
        if not branch or cseq[-1:] != ["NOTIFY"] or message.status is None:
            return
        pending = self._pending.get(branch.group(1))
        if pending and not pending.future.done() and message.status >= 200:
            pending.future.set_result(message.status)

    async def _subscribe(self, request: SipMessage, addr: tuple[str, int]) -> None:
        vias = request.get_all("via")
        if not vias:
            return  # nowhere to send an answer
        required = ("from", "to", "call-id", "cseq")
        if any(request.get(name) is None for name in required):
            self._reply(request, addr, 400)
            return
        package, params = parse_event(request.get("event") or "")
        if package != "ua-profile":
            self._reply(request, addr, 489)
            return
        mac = extract_mac(request.get("from") or "", params)
        if mac is None:
            log.info("PnP: SUBSCRIBE from %s:%s without a usable MAC", *addr)
            self._reply(request, addr, 400)
            return
        vendor, model = params.get("vendor", ""), params.get("model", "")
        loop = asyncio.get_running_loop()
        try:
            url = await loop.run_in_executor(None, self.url_for, mac, vendor, model, addr)
        except Exception:
            log.exception("PnP: url_for failed for %s", mac)
            self._reply(request, addr, 500)
            return
        if not url:
            log.info("PnP: no provisioning for %s (%s %s) at %s:%s", mac, vendor, model, *addr)
            self._reply(request, addr, 404)
            return
        our_to = self._reply(request, addr, 200)
        log.info("PnP: %s (%s %s) at %s:%s -> %s", mac, vendor, model, addr[0], addr[1], url)
        status = await self._notify(request, addr, our_to, url, mac)
        if self.on_result is not None:
            self.on_result(mac, status)

    # --- sending -------------------------------------------------------------------------------

    def _local_host(self, peer: str) -> str:
        if self.advertise_host:
            return self.advertise_host
        if not self.multicast and not ipaddress.ip_address(self.host).is_unspecified:
            return self.host
        # Connecting a UDP socket sends nothing; it only asks the routing table.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((peer, 9))
            return str(probe.getsockname()[0])

    def _send_transport(self) -> asyncio.DatagramTransport:
        if self._send is None or self._send.transport is None:
            raise RuntimeError("PnP responder is not started")
        return self._send.transport

    def _sendto(self, data: bytes, target: tuple[str, int]) -> None:
        self._send_transport().sendto(data, target)

    def _reply(self, request: SipMessage, addr: tuple[str, int], status: int) -> str:
        """Answer ``request``; returns the To header sent (with our tag)."""
        to = request.get("to") or ""
        if _tag(to) is None:
            to = f"{to};tag={secrets.token_hex(6)}"
        lines = [f"SIP/2.0 {status} {_reason(status)}"]
        lines += [f"Via: {via}" for via in request.get_all("via")]
        lines += [
            f"From: {request.get('from')}",
            f"To: {to}",
            f"Call-ID: {request.get('call-id')}",
            f"CSeq: {request.get('cseq')}",
        ]
        if status == 200:
            port = self._send_transport().get_extra_info("sockname")[1]
            lines += [f"Contact: <sip:{self._local_host(addr[0])}:{port}>", "Expires: 0"]
        lines.append("Content-Length: 0")
        target = _via_target(request.get_all("via")[0], addr)
        self._sendto(("\r\n".join(lines) + "\r\n\r\n").encode(), target)
        return to

    async def _notify(
        self, request: SipMessage, addr: tuple[str, int], our_to: str, url: str, mac: str
    ) -> int | None:
        contact = request.get("contact")
        target_uri = _uri_of(contact) if contact else _uri_of(request.get("from") or "")
        contact_host, contact_port = _host_port(target_uri)
        # Only ever send to the address the SUBSCRIBE came from: a forged Contact must not
        # turn us into a reflector aiming NOTIFYs at some third host.
        if contact_port and contact_host == addr[0]:
            target = (addr[0], contact_port)
        else:
            target = _via_target(request.get_all("via")[0], addr)
        local = (self._local_host(addr[0]), self._send_transport().get_extra_info("sockname")[1])
        branch = "z9hG4bK" + secrets.token_hex(8)
        body = url.encode("utf-8")
        headers = [
            f"NOTIFY {target_uri} SIP/2.0",
            f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: {our_to}",  # roles swap: we are the notifier now
            f"To: {request.get('from')}",
            f"Call-ID: {request.get('call-id')}",
            "CSeq: 1 NOTIFY",
            f"Event: {request.get('event')}",
            "Subscription-State: terminated;reason=timeout",
            f"Contact: <sip:{local[0]}:{local[1]}>",
            "Content-Type: application/url",
            f"Content-Length: {len(body)}",
        ]
        packet = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        loop = asyncio.get_running_loop()
        pending = _PendingNotify(mac, loop.create_future())
        self._pending[branch] = pending
        # RFC 3261 17.1.2.2 over UDP: retransmit at T1, doubling up to T2 (4 s), until
        # a final response or Timer F (64*T1) expires.
        interval, deadline = self.t1, loop.time() + self.timer_f
        try:
            while True:
                self._sendto(packet, target)
                wait = min(interval, deadline - loop.time())
                if wait <= 0:
                    log.warning("PnP: %s never answered the NOTIFY", mac)
                    return None
                with contextlib.suppress(TimeoutError):
                    status = await asyncio.wait_for(asyncio.shield(pending.future), wait)
                    if status >= 300:
                        log.warning("PnP: %s answered the NOTIFY with %s", mac, status)
                    return status
                interval = min(interval * 2, 4.0)
        finally:
            self._pending.pop(branch, None)


class PnpResponderThread(ServerThread):
    """Run a :class:`PnpResponder` on its own event loop in a daemon thread.

    ``PnpResponderThread(PnpResponder(url_for)).start()`` from a management command.
    """

    def __init__(self, responder: PnpResponder) -> None:
        super().__init__(responder, name="sip-pnp")
        self.responder = responder
