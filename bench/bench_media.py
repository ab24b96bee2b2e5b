"""The media server under load: N sessions at once, each playing a prompt to a UDP receiver.

    .venv/bin/python bench/bench_media.py [--sessions 200[,400,...]] [--seconds 15] [--digits]

Starts ``python -m telephony.media`` (uvloop) on loopback, opens N sessions over the control
protocol with the engine's client (``telephony.media.client``), one raw UDP receiver per session
in this process, and has every session loop a 5 s prompt. After a short warm-up it measures for
``--seconds``:

- the inter-arrival gap of each session's packets (the 20 ms pacing a phone's jitter buffer
  sees): median of the per-session p50, p99 over all gaps, worst per-session p99, max gap;
- packets lost (sequence numbers never seen) and late (a gap over 40 ms: two frames' worth);
- the server's tick lag (how late its 20 ms timer fired: p50, p99, max, ticks over 10 ms late);
- the server process's CPU time (``/proc/<pid>/stat``, user + system) per session: the figure
  that decides capacity on idle cores (``cores / cpu_per_session`` sessions);
- sessions still playing at the end (all of them, unless the server closed some);
- with ``--digits``, every session also receives an RFC 4733 digit every 2 s, and the ``dtmf``
  events coming back are counted (each exactly once).

No database and no Redis: nothing is left behind but the temporary prompt (removed at the end).
The receivers share the machine with the server; their own CPU is printed too. Target: 200
sessions with a p99 gap within 40 ms on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import percentile, table, tree_cpu_seconds  # noqa: E402

from telephony.media.audio import write_wav  # noqa: E402
from telephony.media.client import MediaClient, MediaSession  # noqa: E402

HEADER = struct.Struct("!BBHII")
DIGITS_NOTE = ", RFC 4733 digit every 2 s per session"


class Receiver(asyncio.DatagramProtocol):
    """A phone that only listens (and presses a key now and then)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.measuring = False
        self.times: list[float] = []
        self.seqs: list[int] = []
        self.remote: tuple[str, int] | None = None
        self.ssrc = random.getrandbits(32)
        self.seq = 0
        self.ts = random.getrandbits(31)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.measuring:
            self.times.append(time.monotonic())
            self.seqs.append((data[2] << 8) | data[3])

    @property
    def port(self) -> int:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[1]

    def offer(self) -> bytes:
        return (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {self.port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()

    def press(self, event: int) -> None:
        """An RFC 4733 event in one burst: start, two updates, three end packets."""
        assert self.transport is not None
        assert self.remote is not None
        for n in range(6):
            end = 0x80 if n >= 3 else 0
            payload = struct.pack("!BBH", event, end | 10, 160 * min(n + 1, 3))
            header = HEADER.pack(0x80, 101 | (0x80 if n == 0 else 0), self.seq, self.ts, self.ssrc)
            self.seq = (self.seq + 1) & 0xFFFF
            self.transport.sendto(header + payload, self.remote)
        self.ts = (self.ts + 800) & 0xFFFFFFFF

    def lost(self) -> int:
        if not self.seqs:
            return 0
        # Unwrap the 16-bit sequence numbers, then count the holes.
        unwrapped = np.unwrap(np.array(self.seqs, dtype=np.float64), period=65536)
        span = int(unwrapped.max() - unwrapped.min()) + 1
        return span - len(set(unwrapped.astype(np.int64).tolist()))


def start_server(port_min: int, port_max: int) -> tuple[subprocess.Popen, tuple[str, int]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "telephony.media",
            "--control",
            "127.0.0.1:0",
            "--rtp-port-min",
            str(port_min),
            "--rtp-port-max",
            str(port_max),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONUNBUFFERED="1", PBX_LOG_LEVEL="WARNING"),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("media server ready on "):
        proc.kill()
        raise SystemExit(f"the media server did not start: {line!r}")
    host, _, port = line.split()[-1].rpartition(":")
    return proc, (host, int(port))


async def level(
    client: MediaClient, server_pid: int, prompt: str, count: int, seconds: float, digits: bool
) -> list[object]:
    loop = asyncio.get_running_loop()
    receivers: list[Receiver] = []
    sessions: list[MediaSession] = []
    for n in range(count):
        _, receiver = await loop.create_datagram_endpoint(Receiver, local_addr=("127.0.0.1", 0))
        session, answer = await client.open(
            f"bench-{count}-{n}", offer=receiver.offer(), tenant="bench"
        )
        port = int(answer.split(b"m=audio ")[1].split()[0])
        receiver.remote = ("127.0.0.1", port)
        receivers.append(receiver)
        sessions.append(session)
    for session in sessions:
        await session.start_play([{"file": prompt}], loop=True)
    await asyncio.sleep(2.0)  # warm-up: every session playing, caches full

    await client.stats(reset=True)  # tick lag figures of the window only
    for s in sessions:
        s.flush_digits()
    cpu0, wall0, own0 = tree_cpu_seconds(server_pid), time.monotonic(), time.process_time()
    for r in receivers:
        r.measuring = True
    pressed = 0
    end = loop.time() + seconds
    if digits:
        # Spread the key presses over each 2 s period.
        next_press = [loop.time() + 2.0 * n / count for n in range(count)]
        while loop.time() < end:
            now = loop.time()
            for n, r in enumerate(receivers):
                if next_press[n] <= now:
                    r.press(pressed % 12)
                    pressed += 1
                    next_press[n] += 2.0
            await asyncio.sleep(0.01)
    else:
        await asyncio.sleep(seconds)
    for r in receivers:
        r.measuring = False
    cpu1, wall1, own1 = tree_cpu_seconds(server_pid), time.monotonic(), time.process_time()
    stats = await client.stats()
    heard = 0
    for s in sessions:
        while await s.next_digit(0) is not None:
            heard += 1
    for s in sessions:
        await s.close()
    for r in receivers:
        assert r.transport is not None
        r.transport.close()

    gaps = [np.diff(np.array(r.times)) * 1000 for r in receivers if len(r.times) > 1]
    all_gaps = np.concatenate(gaps) if gaps else np.zeros(1)
    per_p50 = [float(np.median(g)) for g in gaps]
    per_p99 = [percentile(g.tolist(), 99) for g in gaps]
    received = sum(len(r.times) for r in receivers)
    expected = int(count * (wall1 - wall0) / 0.020)
    lost = sum(r.lost() for r in receivers)
    late = int(np.sum(all_gaps > 40))
    wall = wall1 - wall0
    cpu = cpu1 - cpu0
    return [
        count,
        stats["playing"],
        received,
        expected,
        lost,
        late,
        statistics.median(per_p50),
        percentile(all_gaps.tolist(), 99),
        max(per_p99),
        float(all_gaps.max()),
        stats["p50_tick_lag_ms"],
        stats["p99_tick_lag_ms"],
        stats["max_tick_lag_ms"],
        stats["late_ticks"],
        100.0 * cpu / wall,
        1000.0 * cpu / wall / count,
        100.0 * (own1 - own0) / wall,
        f"{heard}/{pressed}" if digits else "-",
    ]


async def main(args: argparse.Namespace) -> None:
    counts = [int(c) for c in args.sessions.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        prompt = os.path.join(tmp, "prompt.wav")
        t = np.arange(5 * 8000) / 8000
        wave = 3000 * (
            np.sin(2 * np.pi * 300 * t) + np.sin(2 * np.pi * 700 * t) + np.sin(2 * np.pi * 1500 * t)
        )
        write_wav(prompt, np.round(wave * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.int16))
        proc, control = start_server(args.rtp_port_min, args.rtp_port_min + 2 * max(counts) + 100)
        try:
            client = MediaClient(*control, timeout=10.0)
            await client.start()
            rows = []
            for count in counts:
                rows.append(await level(client, proc.pid, prompt, count, args.seconds, args.digits))
            await client.stop()
        finally:
            proc.terminate()
            proc.wait(10)
    table(
        f"Media server: sessions playing a looped prompt for {args.seconds:g} s "
        f"({os.cpu_count()} cores{DIGITS_NOTE if args.digits else ''})",
        [
            "sessions",
            "playing at end",
            "packets",
            "expected",
            "lost",
            "late >40ms",
            "gap p50 ms",
            "gap p99 ms",
            "worst session p99",
            "max gap ms",
            "tick lag p50",
            "tick lag p99",
            "tick lag max",
            "late ticks",
            "server CPU %",
            "CPU ms/s per session",
            "bench CPU %",
            "digits heard",
        ],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", default="200", help="comma-separated levels, e.g. 50,200,400")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--digits", action="store_true", help="send an RFC 4733 digit every 2 s")
    parser.add_argument("--rtp-port-min", type=int, default=24000)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main(args))
    else:
        uvloop.run(main(args))
