"""Calls in an IVR, end to end: carrier calls through the engine, rtpengine and the media
server, each caller hearing the menu's prompt and pressing keys.

    .venv/bin/python bench/bench_media_calls.py [--calls 200] [--seconds 20] [--rate 40]
                                                [--no-send-rtp]

All on loopback, nothing but this machine's 2 cores:

1. a synthetic tenant ``bench.test`` under a private Redis prefix: an IP trunk from this
   bench's SIP port, a DID whose inbound rule goes to IVR menu 800, the menu playing a 6 s
   prompt again and again (its "*" key repeats it);
2. rtpengine (userspace), the media server (``python -m telephony.media``) and the engine (a
   child process, uvloop) with both;
3. ``--calls`` calls set up at ``--rate`` per second by an asyncio UAC in this process (the
   carrier: INVITE with SDP, ACK; no digest: an IP trunk), every call anchored by rtpengine and
   answered by the media server. Each caller sends 20 ms PCMU packets (unless
   ``--no-send-rtp``) and an RFC 4733 "*" every 4 s (the menu starts its prompt again), and
   records when each packet of the prompt arrives;
4. for ``--seconds`` with every call up: the received packets' inter-arrival gaps (p50, p99,
   max over all calls), packets lost, and the CPU each process used: the media server's per
   leg, rtpengine's per anchored call, the engine's; then every call is hung up (BYE).

Target (issue 12): at least 200 concurrent media-server legs with a p99 gap of 40 ms or less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sip_register as reg  # noqa: E402 -- after the path set-up above

DOMAIN = reg.DOMAIN
DID = "+15550100800"
TRUNK_ID = 1
MENU = "800"
PROMPT_SECONDS = 6.0


def make_prompt(path: Path) -> None:
    """A 6 s prompt: a tone that changes pitch every half second (a stand-in for speech)."""
    import numpy as np

    rate = 8000
    t = np.arange(int(PROMPT_SECONDS * rate)) / rate
    freq = 300 + 100 * (np.floor(t * 2) % 5)
    samples = (6000 * np.sin(2 * np.pi * freq * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


def publish(redis_url: str, prefix: str, carrier_port: int, prompt: Path) -> None:
    import redis

    from telephony.sip import contract

    trunk = contract.TrunkSnapshot(
        id=TRUNK_ID, name="Bench carrier", host="127.0.0.1", addresses=("127.0.0.1",),
        source_port=carrier_port, options_interval=0, tenants=frozenset({"t_bench"}),
    )  # fmt: skip
    carriers = contract.CarrierSnapshot({TRUNK_ID: trunk}, {DID: DOMAIN})
    rule = contract.InboundRule(1, DID, in_hours=contract.RouteTarget("ivr", MENU))
    repeat = contract.IvrOption("*", contract.RouteTarget("repeat"))
    menu = contract.IvrMenu(
        number=MENU, greeting=str(prompt), options=(repeat,), timeout=0.5, tries=10,
        dial_extension=False,
    )  # fmt: skip
    snap = contract.TenantSnapshot(
        tenant_id=999999, schema="t_bench", domain=DOMAIN,
        routing=contract.RoutingSnapshot(inbound=(rule,)),
        media=contract.MediaSnapshot(ivrs={MENU: menu}),
    )  # fmt: skip
    r = redis.Redis.from_url(redis_url)
    r.set(contract.key(prefix, contract.SNAPSHOT, domain=DOMAIN), snap.to_json())
    r.sadd(contract.key(prefix, contract.DOMAINS), DOMAIN)
    r.set(contract.key(prefix, contract.CARRIERS), carriers.to_json())
    r.close()


# ----------------------------------------------------------------------------- processes


def serve(port: int, redis_url: str, prefix: str, ng: int, media: int, media_dir: str) -> None:
    """The child process: our engine with rtpengine and the media server, until SIGTERM."""
    import logging

    import uvloop

    from telephony.sip.app import build_engine

    logging.basicConfig(level=logging.WARNING)
    config = reg.engine_config(
        port,
        redis_url,
        prefix,
        rtpengine_ng=("127.0.0.1", ng),
        media_server=("127.0.0.1", media),
        media_dir=media_dir,
    )

    async def main() -> None:
        pbx = build_engine(config)
        await pbx.start()
        pbx.tune_gc()
        for _ in range(100):
            if pbx.calls.media.available:
                break
            await asyncio.sleep(0.05)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        await pbx.stop()

    uvloop.run(main())


@contextlib.contextmanager
def rtpengine(ng: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        ["rtpengine", "--config-file=none", "--foreground", "--table=-1",
         "--interface=127.0.0.1", f"--listen-ng=127.0.0.1:{ng}", "--port-min=42000",
         "--port-max=49999", "--log-stderr", "--log-level=3", "--delete-delay=0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        import socket

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            for _ in range(50):
                s.sendto(b"r d7:command4:pinge", ("127.0.0.1", ng))
                with contextlib.suppress(OSError):
                    if b"pong" in s.recv(512):
                        break
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------------------------------------- the UAC


class Rtp(asyncio.DatagramProtocol):
    """One caller's media: arrival times of the prompt's packets; sends PCMU and keys."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.recording = False
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.seq = secrets.randbelow(60000)
        self.ts = secrets.randbelow(2**31)
        self.ssrc = secrets.randbits(32)

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        if self.recording and len(data) > 12 and data[1] & 0x7F == 0:
            self.arrivals.append(time.monotonic())

    def send(self, pt: int, payload: bytes, *, marker: bool = False, step: int = 160) -> None:
        if self.transport is None or self.remote is None:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), self.seq, self.ts,
                             self.ssrc)  # fmt: skip
        self.transport.sendto(header + payload, self.remote)
        self.ts = (self.ts + step) & 0xFFFFFFFF

    def key(self, digit: int = 10) -> None:
        """RFC 4733 "*" (event 10): three packets, then three with the end bit."""
        for i, end in ((1, 0), (2, 0), (3, 0), (4, 1), (4, 1), (4, 1)):
            payload = struct.pack("!BBH", digit, 0x0A | (0x80 if end else 0), 160 * i)
            self.send(101, payload, marker=i == 1, step=0)
        self.ts = (self.ts + 640) & 0xFFFFFFFF


class Sip(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.waiting: dict[str, asyncio.Queue[bytes]] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[no-untyped-def]
        from telephony.sip.message import parse as parse_message

        try:
            msg = parse_message(data)
        except ValueError:
            return
        queue = self.waiting.get(msg.call_id)
        if queue is not None:
            queue.put_nowait(data)


class Caller:
    def __init__(self, sip: Sip, sip_port: int, engine_port: int, n: int) -> None:
        self.sip, self.sip_port, self.engine_port, self.n = sip, sip_port, engine_port, n
        self.call_id = f"{secrets.token_hex(8)}@bench"
        self.tag = secrets.token_hex(4)
        self.rtp = Rtp()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.to = ""
        self.route_target = ("127.0.0.1", engine_port)

    def request(self, method: str, cseq: int, body: bytes = b"", to: str = "") -> bytes:
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"{method} sip:{DID}@127.0.0.1:{self.engine_port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.sip_port};branch={branch};rport",
            "Max-Forwards: 70",
            f"From: <sip:+1555020{self.n:04d}@carrier.example>;tag={self.tag}",
            f"To: {to or f'<sip:{DID}@127.0.0.1>'}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:carrier@127.0.0.1:{self.sip_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def start(self) -> bool:
        from telephony.sip.media import connection_address
        from telephony.sip.message import parse as parse_message

        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self.rtp,
                                                           local_addr=("127.0.0.1", 0))  # fmt: skip
        port = transport.get_extra_info("sockname")[1]
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n"
            f"a=sendrecv\r\n"
        ).encode()
        self.sip.waiting[self.call_id] = self.queue
        assert self.sip.transport is not None
        invite = self.request("INVITE", 1, sdp)
        self.sip.transport.sendto(invite, self.route_target)
        deadline = loop.time() + 10
        while loop.time() < deadline:
            try:
                data = await asyncio.wait_for(self.queue.get(), 0.5)
            except TimeoutError:
                self.sip.transport.sendto(invite, self.route_target)
                continue
            resp = parse_message(data)
            status = getattr(resp, "status", 0)
            if status < 200:
                continue
            if status >= 300:
                return False
            self.to = resp.get("To") or ""
            body = resp.body
            host = connection_address(body) or "127.0.0.1"
            m = next(ln for ln in body.decode().splitlines() if ln.startswith("m=audio"))
            self.rtp.remote = (host, int(m.split()[1]))
            self.sip.transport.sendto(self.request("ACK", 1, to=self.to), self.route_target)
            return True
        return False

    async def bye(self) -> None:
        from telephony.sip.message import parse as parse_message

        assert self.sip.transport is not None
        bye = self.request("BYE", 2, to=self.to)
        for _ in range(6):
            self.sip.transport.sendto(bye, self.route_target)
            try:
                data = await asyncio.wait_for(self.queue.get(), 0.5)
            except TimeoutError:
                continue
            if getattr(parse_message(data), "status", 0) >= 200:
                break
        if self.rtp.transport is not None:
            self.rtp.transport.close()


async def talk(callers: list[Caller], seconds: float, send_rtp: bool) -> None:
    """Every caller sends a 20 ms packet per tick and a key every 4 s, for ``seconds``."""
    silence = b"\xff" * 160
    loop = asyncio.get_running_loop()
    start = loop.time()
    tick = 0
    for c in callers:
        c.rtp.recording = True
    while loop.time() - start < seconds:
        tick += 1
        for i, c in enumerate(callers):
            if (tick + i) % 200 == 0:
                c.rtp.key()
            elif send_rtp:
                c.rtp.send(0, silence)
        await asyncio.sleep(max(0.0, start + tick * 0.02 - loop.time()))
    for c in callers:
        c.rtp.recording = False


def cpu(pid: int) -> float:
    return reg.cpu_seconds(pid)


async def run(args: argparse.Namespace, engine_port: int, sip_port: int,
              pids: dict[str, int]) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    sip = Sip()
    await loop.create_datagram_endpoint(lambda: sip, local_addr=("127.0.0.1", sip_port))
    callers = [Caller(sip, sip_port, engine_port, n) for n in range(args.calls)]
    began = time.monotonic()
    pending = []
    for i, c in enumerate(callers):
        pending.append(asyncio.ensure_future(c.start()))
        await asyncio.sleep(max(0.0, began + (i + 1) / args.rate - time.monotonic()))
    ok = await asyncio.gather(*pending)
    up = [c for c, good in zip(callers, ok, strict=True) if good]
    print(f"calls set up: {len(up)} of {args.calls} in {time.monotonic() - began:.1f} s")
    await asyncio.sleep(1.0)
    before = {name: cpu(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    await talk(up, args.seconds, not args.no_send_rtp)
    wall = time.monotonic() - t0
    used = {name: cpu(pid) - before[name] for name, pid in pids.items()}
    gaps: list[float] = []
    lost = 0
    for c in up:
        a = c.rtp.arrivals
        gaps += [(y - x) * 1000 for x, y in zip(a, a[1:], strict=False)]
        lost += max(0, int(wall / 0.02) - len(a))
    gaps.sort()

    def pct(p: float) -> float:
        return gaps[min(len(gaps) - 1, int(p * len(gaps)))] if gaps else float("nan")

    n = max(len(up), 1)
    print(f"{len(up)} calls in the IVR for {wall:.1f} s "
          f"({'callers sending RTP' if not args.no_send_rtp else 'callers silent'}, a key "
          f"every 4 s)")  # fmt: skip
    print(f"prompt packets received: {len(gaps) + len(up)}; inter-arrival gap p50 "
          f"{pct(0.5):.1f} ms, p99 {pct(0.99):.1f} ms, max {gaps[-1] if gaps else 0:.1f} ms; "
          f"{lost} packets short of 50/s per call")  # fmt: skip
    for name, secs in used.items():
        share = secs / wall * 100
        print(f"CPU {name}: {share:.0f} % of a core, {secs / wall / n * 1000:.2f} ms/s per "
              f"call ({'per media-server leg' if name == 'media server' else 'per anchored call' if name == 'rtpengine' else 'per call'})")  # noqa: E501 # fmt: skip
    verdict = "met" if len(up) >= 200 and pct(0.99) <= 40 else "NOT met"
    print(f"target >= 200 legs with p99 <= 40 ms: {verdict}")
    await asyncio.gather(*(c.bye() for c in up))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=float, default=40.0, help="calls set up per second")
    ap.add_argument("--no-send-rtp", action="store_true")
    ap.add_argument("--serve", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        port, url, prefix, ng, media, media_dir = args.serve
        serve(int(port), url, prefix, int(ng), int(media), media_dir)
        return
    import uvloop

    redis_url = os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/13")
    prefix = f"benchmedia{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-media-"))
    prompt = tmp / "prompt.wav"
    make_prompt(prompt)
    engine_port, sip_port, ng, media = (reg.free_port() for _ in range(4))
    print(f"IVR calls benchmark ({os.cpu_count()} cores)")
    publish(redis_url, prefix, sip_port, prompt)
    media_cmd = [sys.executable, "-m", "telephony.media", "--control", f"127.0.0.1:{media}",
                 "--rtp-port-min", "50000", "--rtp-port-max", "59999"]  # fmt: skip
    engine_cmd = [sys.executable, __file__, "--serve", str(engine_port), redis_url, prefix,
                  str(ng), str(media), str(tmp)]  # fmt: skip
    quiet = subprocess.DEVNULL
    try:
        with (
            rtpengine(ng) as rtp,
            reg.process(media_cmd, "media server ready", "media server", stderr=quiet) as ms,
            reg.process(engine_cmd, "READY", "engine", stderr=quiet) as engine,
        ):
            pids = {"media server": ms.pid, "rtpengine": rtp.pid, "engine": engine.pid}
            uvloop.run(run(args, engine_port, sip_port, pids))
    finally:
        reg.cleanup(redis_url, prefix)


if __name__ == "__main__":
    main()
