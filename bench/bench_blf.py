"""BLF fan-out: 1,000 raw UDP subscribers watching 100 extensions (10 each); how long a change
of an extension's dialogs takes to reach every watcher, and the engine's CPU per NOTIFY.

    .venv/bin/python bench/bench_blf.py [--extensions 100] [--watchers 10] [--rounds 20]

All on loopback:

1. publishes a synthetic tenant ``bench.test`` (users 100000.., password ``pw<user>``) to
   Redis under a private key prefix -- no database needed;
2. starts our engine in a child process (uvloop; the bench address on the guard's allow-list)
   with a tiny control socket: a datagram ``<number> <dialog id> <state>`` makes the engine
   call ``ExtensionStates.put`` for that extension (what the call layer does on a call's
   change), ``<number> - -`` removes the dialog;
3. subscribes ``extensions x watchers`` raw UDP sockets (digest MD5, ``Event: dialog``),
   each authenticated as one of the extensions, and waits for every first NOTIFY;
4. drives ``--rounds`` rounds of one change on every extension (``--gap`` apart; the dialog id
   is new each time, so a NOTIFY tells which change it carries) and measures, per NOTIFY, the
   time from the control datagram to the NOTIFY's arrival (p50/p99/max), the NOTIFYs lost, and
   the engine's CPU time (``/proc/<pid>/stat``) per NOTIFY over the change phase.

Everything written to Redis under the private prefix is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sip_register as reg  # noqa: E402 -- after the path set-up above
from common import percentile  # noqa: E402

from telephony.sip.auth import Credentials, answer_challenge  # noqa: E402

DOMAIN = reg.DOMAIN
SCHEMA = reg.SCHEMA
FIRST_USER = reg.FIRST_USER


# ----------------------------------------------------------------------------- the engine


def serve(port: int, control: int, redis_url: str, prefix: str) -> None:
    """The child process: our engine on udp ``port``, driven on udp ``control``."""
    import logging

    from telephony.sip.app import build_engine
    from telephony.sip.contract import DialogView

    logging.basicConfig(level=logging.WARNING)
    config = reg.engine_config(port, redis_url, prefix, digest_algorithms=("MD5",))

    async def main() -> None:
        pbx = build_engine(config)
        await pbx.start()
        pbx.tune_gc()
        states = pbx.calls.states

        class Control(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: object) -> None:
                number, view_id, state = data.decode().split()
                if view_id == "-":
                    states.put(SCHEMA, number, "bench", None)
                    return
                view = DialogView(
                    id=view_id, state=state, call_id=f"{view_id}@bench", local_tag="a",
                    remote_tag="b", remote="100999", remote_name="Bench caller",
                )  # fmt: skip
                states.put(SCHEMA, number, "bench", view)

        loop = asyncio.get_running_loop()
        ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        ctl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # a round's burst
        ctl.bind(("127.0.0.1", control))
        await loop.create_datagram_endpoint(Control, sock=ctl)
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        await pbx.stop()

    # BENCH_PROFILE: a path, where the engine's cProfile stats go.
    reg.run_engine(main, os.environ.get("BENCH_PROFILE"))


def engine_process(
    port: int, control: int, redis_url: str, prefix: str
) -> contextlib.AbstractContextManager[subprocess.Popen[str]]:
    """The engine child process (a context manager), once it is ready."""
    cmd = [sys.executable, __file__, "--serve", str(port), "--control", str(control)]
    cmd += ["--redis-url", redis_url, "--prefix", prefix]
    return reg.process(cmd, "READY", "engine", wait=60)


# ----------------------------------------------------------------------------- watchers

_HEADER = re.compile(rb"^([A-Za-z-]+):[ \t]*(.*?)\r$", re.M)
_ID = re.compile(rb'<dialog id="([^"]+)"')


def _headers(data: bytes) -> dict[str, bytes]:
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return {m.group(1).lower().decode(): m.group(2) for m in _HEADER.finditer(head)}


class Watcher(asyncio.DatagramProtocol):
    """One raw UDP subscriber: SUBSCRIBE (with the digest answer), then answers NOTIFYs 200
    and notes when each arrived and which dialog id it carried."""

    def __init__(self, user: str, resource: str, engine: tuple[str, int]) -> None:
        self.user = user
        self.resource = resource
        self.engine = engine
        self.transport: asyncio.DatagramTransport | None = None
        self.local = ("127.0.0.1", 0)
        self.call_id = secrets.token_hex(8) + "@bench"
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.answer: asyncio.Future[tuple[int, dict[str, bytes]]] | None = None
        self.arrivals: list[tuple[float, bytes | None]] = []
        self.seen: set[bytes] = set()
        self.retransmitted = 0
        self.first = asyncio.get_event_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.local = transport.get_extra_info("sockname")

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        if data.startswith(b"SIP/2.0 "):
            status = int(data[8:11])
            if status >= 200 and self.answer is not None and not self.answer.done():
                self.answer.set_result((status, _headers(data)))
            return
        if not data.startswith(b"NOTIFY "):
            return
        h = _headers(data)
        if h["cseq"] in self.seen:
            self.retransmitted += 1  # our 200 was late or lost: not a new NOTIFY
        else:
            self.seen.add(h["cseq"])
            found = _ID.search(data)
            self.arrivals.append((now, found.group(1) if found else None))
        if not self.first.done():
            self.first.set_result(None)
        ok = (
            b"SIP/2.0 200 OK\r\nVia: " + h["via"] + b"\r\nFrom: " + h["from"] + b"\r\nTo: "
            + h["to"] + b"\r\nCall-ID: " + h["call-id"] + b"\r\nCSeq: " + h["cseq"]
            + b"\r\nContent-Length: 0\r\n\r\n"
        )  # fmt: skip
        assert self.transport is not None
        self.transport.sendto(ok, addr)
        if os.environ.get("BLF_DEBUG"):
            print(data.decode(), ok.decode(), sep="\n----\n")

    def _subscribe(self, authorization: str | None) -> bytes:
        self.cseq += 1
        host, port = self.local
        ruri = f"sip:{self.resource}@{DOMAIN}"
        lines = [
            f"SUBSCRIBE {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{DOMAIN}>;tag={self.tag}",
            f"To: <{ruri}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} SUBSCRIBE",
            f"Contact: <sip:{self.user}@{host}:{port}>",
            "Event: dialog",
            "Accept: application/dialog-info+xml",
            "Expires: 3600",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    async def _ask(self, data: bytes) -> tuple[int, dict[str, bytes]]:
        assert self.transport is not None
        for _ in range(5):
            self.answer = asyncio.get_running_loop().create_future()
            self.transport.sendto(data, self.engine)
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(self.answer), 2.0)
        raise RuntimeError("no answer to SUBSCRIBE")

    async def subscribe(self) -> int:
        status, h = await self._ask(self._subscribe(None))
        if status != 401:
            return status
        uri = f"sip:{self.resource}@{DOMAIN}"
        creds = Credentials(self.user, f"pw{self.user}")
        answer = answer_challenge(401, [h["www-authenticate"].decode()], "SUBSCRIBE", uri, creds)
        assert answer is not None
        auth = answer[1]
        status, _ = await self._ask(self._subscribe(auth))
        return status


async def run(args: argparse.Namespace, engine: tuple[str, int], control: int, pid: int) -> None:
    loop = asyncio.get_running_loop()
    numbers = [str(FIRST_USER + i) for i in range(args.extensions)]
    watchers: list[Watcher] = []
    for i in range(args.extensions * args.watchers):
        w = Watcher(numbers[i % len(numbers)], numbers[(i // args.watchers) % len(numbers)], engine)
        t, _ = await loop.create_datagram_endpoint(lambda w=w: w, local_addr=("127.0.0.1", 0))
        w.connection_made(t)
        watchers.append(w)

    cpu0, t0 = reg.cpu_seconds(pid), time.monotonic()
    sem = asyncio.Semaphore(100)

    async def one(w: Watcher) -> int:
        async with sem:
            return await w.subscribe()

    statuses = await asyncio.gather(*(one(w) for w in watchers))
    if any(s != 200 for s in statuses):
        from collections import Counter

        print(f"SUBSCRIBE answers: {dict(Counter(statuses))}")
    await asyncio.wait_for(asyncio.gather(*(w.first for w in watchers)), 30)
    sub_wall, sub_cpu = time.monotonic() - t0, reg.cpu_seconds(pid) - cpu0
    refused = sum(1 for s in statuses if s != 200)
    print(f"subscribed {len(watchers) - refused}/{len(watchers)} watchers in {sub_wall:.2f} s "
          f"(engine CPU {sub_cpu * 1000 / len(watchers):.2f} ms per subscription incl. its 401 "
          "and first NOTIFY)")  # fmt: skip
    for w in watchers:
        w.arrivals.clear()

    ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent: dict[bytes, float] = {}
    cpu0 = reg.cpu_seconds(pid)
    for r in range(args.rounds):
        state = "early" if r % 2 == 0 else "confirmed"
        for number in numbers:
            view_id = f"r{r}n{number}"
            sent[view_id.encode()] = time.monotonic()
            ctl.sendto(f"{number} {view_id} {state}".encode(), ("127.0.0.1", control))
        await asyncio.sleep(args.gap)
    await asyncio.sleep(1.0)  # the last NOTIFYs (and their 200s)
    cpu = reg.cpu_seconds(pid) - cpu0
    ctl.close()

    latencies: list[float] = []
    notifies = 0
    for w in watchers:
        for at, view_id in w.arrivals:
            notifies += 1
            if view_id is not None and view_id in sent:
                latencies.append(at - sent[view_id])
    expected = args.rounds * len(watchers)
    again = sum(w.retransmitted for w in watchers)
    bench_cpu = time.process_time()
    ms = [x * 1000 for x in latencies]
    p50, p90, p99 = (percentile(ms, p) for p in (50, 90, 99))
    print(
        f"{args.rounds} rounds x {len(numbers)} extensions = {args.rounds * len(numbers)} "
        f"changes, {args.gap * 1000:.0f} ms apart per round; {len(watchers)} watchers"
    )
    print(
        f"NOTIFYs received: {notifies} (one per change and watcher: {expected}; fewer means "
        f"coalesced); retransmissions {again}"
    )
    print(
        f"change -> NOTIFY arrival: p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, "
        f"max {max(ms):.2f} ms"
    )
    print(
        f"engine CPU over the change phase: {cpu:.2f} s = {cpu * 1e6 / max(1, notifies):.0f} us "
        "per NOTIFY (incl. its 200, the state published to Redis, the fan-out)"
    )
    print(f"(the watchers' own process used {bench_cpu:.2f} s of CPU in all)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--extensions", type=int, default=100)
    ap.add_argument("--watchers", type=int, default=10, help="watchers per extension")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--gap", type=float, default=0.2, help="seconds between rounds")
    ap.add_argument(
        "--redis-url", default=os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    ap.add_argument("--prefix", default=f"bench-blf-{secrets.token_hex(3)}:")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--control", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.control, args.redis_url, args.prefix)
        return
    reg.publish_tenant(args.redis_url, args.prefix, args.extensions)
    port, control = reg.free_port(), reg.free_port()
    try:
        with engine_process(port, control, args.redis_url, args.prefix) as proc:
            import uvloop

            uvloop.run(run(args, ("127.0.0.1", port), control, proc.pid))
    finally:
        reg.cleanup(args.redis_url, args.prefix)


if __name__ == "__main__":
    main()
