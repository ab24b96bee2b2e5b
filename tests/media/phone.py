"""A raw RTP "phone" for the media server tests: a UDP socket on loopback that records every
packet it receives (with its arrival time) and sends G.711 audio and RFC 4733 digits."""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import time

import numpy as np

from telephony.media import codecs

HEADER = struct.Struct("!BBHII")
EVENTS = "0123456789*#ABCD"


def sdp_offer(
    port: int,
    *,
    pts: tuple[int, ...] = (0, 8, 101),
    direction: str = "sendrecv",
    address: str = "127.0.0.1",
) -> bytes:
    lines = [
        "v=0",
        f"o=- 42 1 IN IP4 {address}",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {' '.join(map(str, pts))}",
    ]
    for pt in pts:
        if pt == 101:
            lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
        elif pt in (0, 8):
            lines.append(f"a=rtpmap:{pt} {'PCMU' if pt == 0 else 'PCMA'}/8000")
    lines += ["a=ptime:20", f"a={direction}"]
    return ("\r\n".join(lines) + "\r\n").encode()


def sdp_port(sdp: bytes) -> int:
    for line in sdp.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no m=audio in {sdp!r}")


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000
    return np.round(amplitude * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_frequency(pcm: np.ndarray, rate: int = 8000) -> float:
    """The strongest frequency of ``pcm`` (Hann window, FFT)."""
    x = pcm.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])


class RtpPhone(asyncio.DatagramProtocol):
    """Create with ``await RtpPhone.create()``; ``remote`` is where it sends (the server's SDP)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, bytes]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts = random.getrandbits(32)
        self.arrived = asyncio.Event()

    @classmethod
    async def create(cls) -> RtpPhone:
        loop = asyncio.get_running_loop()
        _, phone = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        return phone

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.received.append((time.monotonic(), data))
        self.arrived.set()

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def offer(self, **kw) -> bytes:
        return sdp_offer(self.port, **kw)

    def connect(self, server_sdp: bytes) -> None:
        self.remote = ("127.0.0.1", sdp_port(server_sdp))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---------------------------------------------------------------- what arrived
    def headers(self) -> list[tuple[int, int, int, int, int]]:
        """(marker, pt, seq, ts, ssrc) of each packet, in arrival order."""
        out = []
        for _, data in self.received:
            _, b1, seq, ts, ssrc = HEADER.unpack_from(data)
            out.append((b1 >> 7, b1 & 0x7F, seq, ts, ssrc))
        return out

    def audio(self) -> np.ndarray:
        """The G.711 audio received, decoded, in arrival order."""
        chunks = []
        for _, data in self.received:
            pt = data[1] & 0x7F
            if pt in (0, 8):
                chunks.append(codecs.decode(pt, data[12:]))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def gaps_ms(self) -> np.ndarray:
        times = np.array([t for t, _ in self.received])
        return np.diff(times) * 1000

    async def wait_packets(self, count: int, within: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                while len(self.received) < count:
                    self.arrived.clear()
                    await self.arrived.wait()

    async def quiet(self, seconds: float = 0.2) -> None:
        """Wait until nothing has arrived for ``seconds``."""
        while True:
            before = len(self.received)
            await asyncio.sleep(seconds)
            if len(self.received) == before:
                return

    # ---------------------------------------------------------------- sending
    def _packet(self, pt: int, payload: bytes, *, marker: bool = False, ts: int | None = None):
        assert self.transport is not None
        assert self.remote is not None
        header = HEADER.pack(
            0x80, pt | (0x80 if marker else 0), self.seq, self.ts if ts is None else ts, self.ssrc
        )
        self.seq = (self.seq + 1) & 0xFFFF
        self.transport.sendto(header + payload, self.remote)

    async def stream(
        self, pcm: np.ndarray, *, pt: int = 0, skip: range = range(0), pace: bool = True
    ) -> None:
        """Send ``pcm`` in 20 ms packets at real-time pace; frame indexes in ``skip`` are not
        sent (lost), but their timestamps pass."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(0, len(pcm) // 160):
            if i not in skip:
                self._packet(pt, codecs.encode(pt, pcm[i * 160 : (i + 1) * 160]), marker=i == 0)
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            if pace:
                await asyncio.sleep(max(0.0, start + (i + 1) * 0.02 - loop.time()))

    async def digit(self, digit: str, *, pt: int = 101, packets: int = 4) -> None:
        """An RFC 4733 event as phones send it: updates every 20 ms, then three end packets,
        all with the event's timestamp."""
        event = EVENTS.index(digit)
        ts = self.ts
        for n in range(packets):
            self._packet(pt, struct.pack("!BBH", event, 10, 160 * (n + 1)), marker=n == 0, ts=ts)
            await asyncio.sleep(0.02)
        for _ in range(3):
            self._packet(pt, struct.pack("!BBH", event, 0x80 | 10, 160 * packets), ts=ts)
        self.ts = (self.ts + 160 * (packets + 1)) & 0xFFFFFFFF
