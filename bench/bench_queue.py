"""A busy call queue: callers waiting with music and announcements, agents answering them.

    .venv/bin/python bench/bench_queue.py [--callers 500] [--agents 50] [--wait 20]
                                          [--talk 1.0] [--jitter 0.5] [--ring 0.1]
                                          [--announce 10]

All on loopback, nothing but this machine's cores:

1. a synthetic tenant ``bench.test`` under a private Redis prefix: an IP trunk from this
   bench's SIP port whose DID goes to queue 800 (longest idle, no wrap-up, announcements of
   position and estimated wait every ``--announce`` seconds, callers wait when no agent is
   logged in); ``--agents`` extensions are its agents, logged out to begin with;
2. rtpengine (userspace), the media server and the engine (a child process, uvloop);
3. ``--callers`` carrier calls set up at ``--rate`` per second by an asyncio UAC in this
   process, each answered by the queue (music on hold), each counting the RTP it receives;
   for ``--wait`` seconds with every caller waiting: the CPU of each process per waiting
   caller and the packets each caller received (music flowing: about 50 a second);
4. the agents (raw UDP user agents, digest-registered) are made ready the way the API does it
   (the contract's AGENTS hash and AGENTS_CHANGED); each answers every queue call after
   ``--ring`` seconds of ringing, talks ``--talk`` seconds (give or take up to ``--jitter``,
   at random: agents that all hang up in the same millisecond are a burst no call centre
   sees; ``--jitter 0`` measures that burst), and hangs up. The **answer-
   assignment latency** is, for every offer made while callers were still waiting, the time
   from the moment its agent became free (its BYE answered, or it was made ready) to the
   moment the queue's INVITE reached it: p50 / p99 / max, and the time the queue took to
   drain.

Everything written to Redis under the private prefix is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_media_calls as mc  # noqa: E402 -- after the path set-up above
import bench_sip_register as reg  # noqa: E402
from common import percentile  # noqa: E402

from telephony.sip.auth import Credentials, answer_challenge  # noqa: E402

DOMAIN = reg.DOMAIN
SCHEMA = "t_bench"
DID = "+15550100800"
TRUNK_ID = 1
QUEUE = "800"
FIRST_AGENT = 200000

_HEADER = re.compile(rb"^([A-Za-z-]+):[ \t]*(.*?)\r$", re.M)


def headers(data: bytes) -> dict[str, bytes]:
    head = data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    return {m.group(1).lower().decode(): m.group(2) for m in _HEADER.finditer(head)}


def body_of(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def sdp(port: int) -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    ).encode()


def response(req: bytes, status: str, *, to_tag: str = "", extra: bytes = b"",
             body: bytes = b"") -> bytes:  # fmt: skip
    """An answer to ``req``: its Via, From, To (our tag added when given), Call-ID, CSeq."""
    h = headers(req)
    to = h["to"]
    if to_tag and b";tag=" not in to:
        to += b";tag=" + to_tag.encode()
    out = (
        b"SIP/2.0 " + status.encode() + b"\r\nVia: " + h["via"] + b"\r\nFrom: " + h["from"]
        + b"\r\nTo: " + to + b"\r\nCall-ID: " + h["call-id"] + b"\r\nCSeq: " + h["cseq"]
        + b"\r\n" + extra
    )  # fmt: skip
    if body:
        out += b"Content-Type: application/sdp\r\n"
    return out + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def make_media(root: Path) -> None:
    """Short tones for every default prompt (as the tests' media directory has) and music."""
    import numpy as np

    from telephony.media.prompts import PROMPTS

    def tone(path: Path, hz: float, seconds: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(seconds * 8000)) / 8000
        samples = (6000 * np.sin(2 * np.pi * hz * t)).astype("<i2")
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(8000)
            w.writeframes(samples.tobytes())

    for name in PROMPTS:
        tone(root / "prompts" / "en" / f"{name}.wav", 300.0, 0.4)
    tone(root / "moh" / "default.wav", 500.0, 5.0)


def publish(redis_url: str, prefix: str, carrier_port: int, args: argparse.Namespace) -> None:
    import redis

    from telephony.sip import contract

    agents = [str(FIRST_AGENT + i) for i in range(args.agents)]
    extensions = {
        u: contract.ExtensionSnapshot(
            number=u,
            display_name=f"Agent {u}",
            ha1_md5=contract.ha1("MD5", u, DOMAIN, f"pw{u}"),
            ha1_sha256=contract.ha1("SHA-256", u, DOMAIN, f"pw{u}"),
            max_registrations=3,
        )  # fmt: skip
        for u in agents
    }
    queue = contract.Queue(
        number=QUEUE, name="Bench queue", strategy=contract.QueueStrategy.LONGEST_IDLE,
        agents=tuple(contract.QueueAgent(u) for u in agents), ring_seconds=15.0,
        max_wait_seconds=0.0, wait_without_agents=True, wrap_up_seconds=0.0,
        announce_seconds=float(args.announce), auto_ready=False, sla_seconds=30.0,
    )  # fmt: skip
    trunk = contract.TrunkSnapshot(
        id=TRUNK_ID, name="Bench carrier", host="127.0.0.1", addresses=("127.0.0.1",),
        source_port=carrier_port, options_interval=0, tenants=frozenset({SCHEMA}),
    )  # fmt: skip
    rule = contract.InboundRule(1, DID, in_hours=contract.RouteTarget("queue", QUEUE))
    snap = contract.TenantSnapshot(
        tenant_id=999999, schema=SCHEMA, domain=DOMAIN, extensions=extensions,
        routing=contract.RoutingSnapshot(inbound=(rule,)),
        callcenter=contract.CallCenterSnapshot({QUEUE: queue}),
    )  # fmt: skip
    r = redis.Redis.from_url(redis_url)
    r.set(contract.key(prefix, contract.SNAPSHOT, domain=DOMAIN), snap.to_json())
    r.sadd(contract.key(prefix, contract.DOMAINS), DOMAIN)
    carriers = contract.CarrierSnapshot({TRUNK_ID: trunk}, {DID: DOMAIN})
    r.set(contract.key(prefix, contract.CARRIERS), carriers.to_json())
    r.close()


def make_ready(redis_url: str, prefix: str, agents: list[str]) -> None:
    """Every agent ready in the queue, as the Django side's agent-state action writes it."""
    import redis

    from telephony.sip import contract

    now = time.time()
    status = contract.AgentStatus(state=contract.AgentState.READY, since=now, by="api")
    r = redis.Redis.from_url(redis_url)
    name = contract.key(prefix, contract.AGENTS, schema=SCHEMA)
    r.hset(name, mapping={contract.agent_field(QUEUE, a): status.to_json() for a in agents})
    r.publish(contract.key(prefix, contract.AGENTS_CHANGED), SCHEMA)
    r.close()


# ----------------------------------------------------------------------------- callers


class Counter(asyncio.DatagramProtocol):
    """A caller's RTP socket: counts the packets it receives."""

    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.packets += 1


class Carrier(asyncio.DatagramProtocol):
    """The carrier's SIP socket: every caller's INVITE goes out here; answers and the
    engine's requests (the join's re-INVITE, BYE) come back and are dispatched by Call-ID."""

    def __init__(self, engine: tuple[str, int]) -> None:
        self.engine = engine
        self.calls: dict[bytes, Caller] = {}
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        call = self.calls.get(headers(data).get("call-id", b""))
        if call is not None:
            call.received(data, addr)

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr or self.engine)


class Caller:
    def __init__(self, carrier: Carrier, port: int, n: int) -> None:
        self.carrier, self.port, self.n = carrier, port, n
        self.call_id = f"{secrets.token_hex(8)}@bench"
        self.tag = secrets.token_hex(4)
        self.rtp = Counter()
        self.rtp_port = 0
        self.to = ""
        self.answered: asyncio.Future[int] = asyncio.get_event_loop().create_future()
        self.ended = asyncio.get_event_loop().create_future()

    def request(self, method: str, cseq: int, body: bytes = b"") -> bytes:
        lines = [
            f"{method} sip:{DID}@{self.carrier.engine[0]}:{self.carrier.engine[1]} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:+1555020{self.n:04d}@carrier.example>;tag={self.tag}",
            f"To: {self.to or f'<sip:{DID}@127.0.0.1>'}",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:carrier@127.0.0.1:{self.port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    def received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data.startswith(b"SIP/2.0 "):
            status = int(data[8:11])
            if status >= 200 and b"INVITE" in headers(data).get("cseq", b""):
                if status < 300 and not self.to:
                    self.to = headers(data)["to"].decode()
                if not self.answered.done():
                    self.answered.set_result(status)
            return
        if data.startswith(b"INVITE "):  # the join's re-INVITE: the agent's media now
            contact = f"<sip:carrier@127.0.0.1:{self.port}>".encode()
            self.carrier.send(
                response(data, "200 OK", extra=b"Contact: " + contact + b"\r\n",
                         body=sdp(self.rtp_port)), addr)  # fmt: skip
        elif data.startswith(b"BYE "):
            self.carrier.send(response(data, "200 OK"), addr)
            if not self.ended.done():
                self.ended.set_result(None)

    async def start(self) -> bool:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self.rtp,
                                                           local_addr=("127.0.0.1", 0))  # fmt: skip
        self.rtp_port = transport.get_extra_info("sockname")[1]
        self.carrier.calls[self.call_id.encode()] = self
        invite = self.request("INVITE", 1, sdp(self.rtp_port))
        for _ in range(20):
            self.carrier.send(invite)
            with contextlib.suppress(TimeoutError):
                status = await asyncio.wait_for(asyncio.shield(self.answered), 0.5)
                if status >= 300:
                    return False
                self.carrier.send(self.request("ACK", 1))
                return True
        return False

    async def bye(self) -> None:
        if self.ended.done():
            return
        self.carrier.send(self.request("BYE", 2))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.ended), 2.0)


# ------------------------------------------------------------------------------ agents


class Agent(asyncio.DatagramProtocol):
    """A raw UDP agent phone: registers with digest, answers every INVITE after ``ring``
    seconds, talks ``talk`` seconds, hangs up; notes when each offer came and when it was
    free again."""

    def __init__(self, user: str, engine: tuple[str, int], ring: float, talk: float) -> None:
        self.user, self.engine, self.ring, self.talk = user, engine, ring, talk
        self.jitter = 0.0
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.reg_call_id = secrets.token_hex(8) + "@bench"
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.answer: asyncio.Future[tuple[int, dict[str, bytes]]] | None = None
        self.free_at = 0.0  # when it last became free (monotonic)
        self.offers: list[tuple[float, float]] = []  # (free since, INVITE arrived)
        self.busy = False
        self.answered = 0
        self.bye_done: asyncio.Future[None] | None = None
        self.acked: asyncio.Future[None] | None = None
        self.rtp_port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = transport.get_extra_info("sockname")[1]

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr or self.engine)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.monotonic()
        if data.startswith(b"SIP/2.0 "):
            status = int(data[8:11])
            h = headers(data)
            if status >= 200 and b"BYE" in h.get("cseq", b""):
                if self.bye_done is not None and not self.bye_done.done():
                    # Free from this moment: the queue's next INVITE may come in the very
                    # next datagram, before the task that sent the BYE runs again.
                    self.free_at = now
                    self.busy = False
                    self.bye_done.set_result(None)
            elif status >= 200 and self.answer is not None and not self.answer.done():
                self.answer.set_result((status, h))
            return
        if data.startswith(b"INVITE "):
            h = headers(data)
            if self.busy:
                if b"tag=" in h["to"]:  # a re-INVITE of our call: same media
                    self.send(response(data, "200 OK", extra=self._contact(),
                                       body=sdp(self.rtp_port)), addr)  # fmt: skip
                else:
                    self.send(response(data, "486 Busy Here", to_tag=self.tag), addr)
                return
            self.busy = True
            self.offers.append((self.free_at, now))
            asyncio.get_running_loop().create_task(self.take(data, addr))
        elif data.startswith(b"ACK "):
            if self.acked is not None and not self.acked.done():
                self.acked.set_result(None)
        elif data.startswith((b"BYE ", b"CANCEL ")):
            self.send(response(data, "200 OK"), addr)
            if data.startswith(b"CANCEL "):
                self.free_at = time.monotonic()
                self.busy = False
        elif data.startswith(b"OPTIONS ") or data.startswith(b"NOTIFY "):
            self.send(response(data, "200 OK", to_tag=self.tag), addr)

    def _contact(self) -> bytes:
        return f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>\r\n".encode()

    async def take(self, invite: bytes, addr: tuple[str, int]) -> None:
        h = headers(invite)
        tag = secrets.token_hex(4)
        self.send(response(invite, "180 Ringing", to_tag=tag, extra=self._contact()), addr)
        await asyncio.sleep(self.ring)
        ok = response(invite, "200 OK", to_tag=tag, extra=self._contact(), body=sdp(self.rtp_port))
        # RFC 3261 13.3.1.4: the 200 is sent again until its ACK arrives, and (15) no BYE
        # goes out before it.
        self.acked = asyncio.get_running_loop().create_future()
        for _ in range(8):
            self.send(ok, addr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.acked), 0.5)
                break
        self.answered += 1
        # At least a fifth of a second: an agent hanging up within milliseconds of its answer,
        # while the caller's re-INVITE is still out, is left busy by the engine (a known
        # race, not what this measures).
        await asyncio.sleep(max(0.2, self.talk + random.uniform(-self.jitter, self.jitter)))
        contact = re.search(rb"<([^>]+)>", h.get("contact", b""))
        target = contact.group(1).decode() if contact else f"sip:{DOMAIN}"
        to = h["to"] + b";tag=" + tag.encode()
        bye = (
            f"BYE {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport\r\n"
            f"Max-Forwards: 70\r\nFrom: {to.decode()}\r\nTo: {h['from'].decode()}\r\n"
            f"Call-ID: {h['call-id'].decode()}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        self.bye_done = asyncio.get_running_loop().create_future()
        for _ in range(8):
            self.send(bye, addr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.bye_done), 0.5)
                break
        if self.busy and not self.bye_done.done():  # the BYE was never answered
            self.free_at = time.monotonic()
            self.busy = False

    def _register(self, authorization: str | None) -> bytes:
        self.cseq += 1
        lines = [
            f"REGISTER sip:{DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{DOMAIN}>;tag={self.tag}",
            f"To: <sip:{self.user}@{DOMAIN}>",
            f"Call-ID: {self.reg_call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{self.user}@127.0.0.1:{self.port}>",
            "Expires: 3600",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

    async def _ask(self, data: bytes) -> tuple[int, dict[str, bytes]]:
        for _ in range(5):
            self.answer = asyncio.get_running_loop().create_future()
            self.send(data)
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(asyncio.shield(self.answer), 2.0)
        raise RuntimeError("no answer to REGISTER")

    async def register(self) -> int:
        loop = asyncio.get_running_loop()
        rtp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                     local_addr=("127.0.0.1", 0))  # fmt: skip
        self.rtp_port = rtp.get_extra_info("sockname")[1]
        status, h = await self._ask(self._register(None))
        if status != 401:
            return status
        creds = Credentials(self.user, f"pw{self.user}")
        answer = answer_challenge(
            401, [h["www-authenticate"].decode()], "REGISTER", f"sip:{DOMAIN}", creds
        )
        assert answer is not None
        status, _ = await self._ask(self._register(answer[1]))
        return status


# --------------------------------------------------------------------------------- run


async def run(args: argparse.Namespace, engine_port: int, carrier_port: int,
              pids: dict[str, int], redis_url: str, prefix: str) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    engine = ("127.0.0.1", engine_port)
    agents = [Agent(str(FIRST_AGENT + i), engine, args.ring, args.talk) for i in range(args.agents)]
    for a in agents:
        a.jitter = args.jitter
    for a in agents:
        await loop.create_datagram_endpoint(lambda a=a: a, local_addr=("127.0.0.1", 0))
    registered = await asyncio.gather(*(a.register() for a in agents))
    print(f"agents registered: {sum(s == 200 for s in registered)} of {len(agents)}")

    carrier = Carrier(engine)
    await loop.create_datagram_endpoint(lambda: carrier, local_addr=("127.0.0.1", carrier_port))
    callers = [Caller(carrier, carrier_port, n) for n in range(args.callers)]
    began = time.monotonic()
    pending = []
    for i, c in enumerate(callers):
        pending.append(asyncio.ensure_future(c.start()))
        await asyncio.sleep(max(0.0, began + (i + 1) / args.rate - time.monotonic()))
    ok = await asyncio.gather(*pending)
    waiting = [c for c, good in zip(callers, ok, strict=True) if good]
    print(f"callers queued: {len(waiting)} of {args.callers} in {time.monotonic() - began:.1f} s")
    await asyncio.sleep(2.0)

    # Phase 1: everybody waits (no agent logged in): music and announcements only.
    before = {name: reg.cpu_seconds(pid) for name, pid in pids.items()}
    packets = [c.rtp.packets for c in waiting]
    t0 = time.monotonic()
    await asyncio.sleep(args.wait)
    wall = time.monotonic() - t0
    used = {name: reg.cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    got = sorted((c.rtp.packets - p) / wall for c, p in zip(waiting, packets, strict=True))
    n = max(len(waiting), 1)
    print(f"{len(waiting)} callers waiting for {wall:.1f} s (music, an announcement every "
          f"{args.announce} s): RTP packets received per caller per second p1 "
          f"{percentile(got, 1):.1f}, p50 {percentile(got, 50):.1f}")  # fmt: skip
    total = 0.0
    for name, secs in used.items():
        total += secs
        print(f"CPU {name}: {secs / wall * 100:.0f} % of a core, "
              f"{secs / wall / n * 1000:.2f} ms/s per waiting caller")  # fmt: skip
    print(f"CPU all three: {total / wall * 100:.0f} % of a core, {total / wall / n * 1000:.2f} "
          f"ms/s per waiting caller")  # fmt: skip

    # Phase 2: the agents become ready and answer until the queue is empty.
    t1 = time.monotonic()
    for a in agents:
        a.free_at = t1
    make_ready(redis_url, prefix, [a.user for a in agents])
    deadline = t1 + args.drain_timeout
    while time.monotonic() < deadline:
        if sum(a.answered for a in agents) >= len(waiting) and not any(a.busy for a in agents):
            break
        await asyncio.sleep(0.1)
    drained = time.monotonic() - t1
    answered = sum(a.answered for a in agents)
    # Every offer was made while callers were waiting (they all joined before any agent was
    # ready); an agent freed when nobody waited any more got no offer and is not counted.
    offers = sorted((arrived - free) * 1000 for a in agents for free, arrived in a.offers)
    # The first offer of each agent (all made ready at once, t1) apart from those that
    # followed a call of its own (steady state: one agent freed at a time).
    first = sorted((arrived - free) * 1000 for a in agents for free, arrived in a.offers[:1])
    later = sorted((arrived - free) * 1000 for a in agents for free, arrived in a.offers[1:])
    print(f"answered: {answered} of {len(waiting)} by {len(agents)} agents in {drained:.1f} s "
          f"(ring {args.ring} s, talk {args.talk} s +- {args.jitter} s, no wrap-up)")  # fmt: skip
    for label, values in (
        ("all offers", offers),
        ("an agent freed by its call's end", later),
        (f"the first offers, {len(agents)} agents made ready at once", first),
    ):
        if values:
            print(f"answer-assignment latency (agent free -> queue INVITE at the agent), "
                  f"{label}: {len(values)} offers, p50 {percentile(values, 50):.1f} ms, "
                  f"p99 {percentile(values, 99):.1f} ms, max {values[-1]:.1f} ms")  # fmt: skip
    await asyncio.gather(*(c.bye() for c in waiting))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--callers", type=int, default=500)
    ap.add_argument("--agents", type=int, default=50)
    ap.add_argument("--wait", type=float, default=20.0, help="seconds all callers wait")
    ap.add_argument("--rate", type=float, default=50.0, help="callers queued per second")
    ap.add_argument("--ring", type=float, default=0.1)
    ap.add_argument("--talk", type=float, default=1.0)
    ap.add_argument("--jitter", type=float, default=0.5, help="talk time varies by this much")
    ap.add_argument("--announce", type=int, default=10, help="seconds between announcements")
    ap.add_argument("--drain-timeout", type=float, default=180.0)
    ap.add_argument("--serve", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        port, url, prefix, ng, media, media_dir = args.serve
        mc.serve(int(port), url, prefix, int(ng), int(media), media_dir)
        return
    import uvloop

    redis_url = os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/13")
    prefix = f"benchqueue{os.getpid()}:"
    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    make_media(tmp)
    engine_port, carrier_port, ng, media = (reg.free_port() for _ in range(4))
    print(f"Call queue benchmark ({os.cpu_count()} cores)")
    publish(redis_url, prefix, carrier_port, args)
    media_cmd = [sys.executable, "-m", "telephony.media", "--control", f"127.0.0.1:{media}",
                 "--rtp-port-min", "50000", "--rtp-port-max", "59999"]  # fmt: skip
    engine_cmd = [sys.executable, __file__, "--serve", str(engine_port), redis_url, prefix,
                  str(ng), str(media), str(tmp)]  # fmt: skip
    quiet = subprocess.DEVNULL
    try:
        with (
            mc.rtpengine(ng) as rtp,
            reg.process(media_cmd, "media server ready", "media server", stderr=quiet) as ms,
            reg.process(engine_cmd, "READY", "engine", stderr=quiet) as engine,
        ):
            pids = {"media server": ms.pid, "rtpengine": rtp.pid, "engine": engine.pid}
            uvloop.run(run(args, engine_port, carrier_port, pids, redis_url, prefix))
    finally:
        reg.cleanup(redis_url, prefix)


if __name__ == "__main__":
    main()
