"""Run the full PBX engine (``telephony.sip.app.build_engine``) in-process for tests.

The engine runs on its own asyncio loop in a background thread, on free loopback ports, against
this xdist worker's Redis database (``settings.REDIS_URL``), after the conftest tenants'
snapshots (acme.test 101/102, beta.test 201/202, SIP password ``Sip-Secret-Pass-77``) have been
published from the test process (the test transaction is only visible to its own connection).

Fixtures (made available to every test under ``tests/sip`` by ``tests/sip/conftest.py``):

- ``sip_engine``: a started engine (:class:`EngineHandle`) with generous flood limits;
- ``sip_engine_factory``: ``start(**overrides) -> EngineHandle`` for custom configs (guard
  limits, nonce TTL, expiry policy...), all stopped at the end of the test.

:class:`SipTestClient` is a small blocking UDP/TCP client that answers digest challenges, for
tests that want to speak SIP without a real phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import secrets
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
import redis

from telephony.sip import contract
from telephony.sip.app import PbxConfig, PbxEngine, build_engine
from telephony.sip.auth import parse_credentials
from telephony.sip.message import Request, Response, frame_length, parse
from telephony.sip.registrar import RegistrarConfig
from telephony.sip.security import GuardConfig
from telephony.sip.server import EngineConfig
from telephony.sip.transaction import Timers

__all__ = [
    "SIP_PASSWORD",
    "EngineHandle",
    "SipTestClient",
    "clear_sip_keys",
    "publish_world",
    "running_engine",
    "sip_engine",
    "sip_engine_factory",
    "wait_until",
    "worker_redis_url",
]

SIP_PASSWORD = "Sip-Secret-Pass-77"
T = TypeVar("T")

# Generous by default so that tests sending many requests from 127.0.0.1 are not banned; the
# protection tests pass their own GuardConfig.
TEST_GUARD = GuardConfig(max_requests=100_000, request_window=1.0, max_failures=1_000)
TEST_TIMERS = Timers(t1=0.05, t2=0.4, t4=0.5)


def worker_redis_url() -> str:
    from django.conf import settings

    return str(settings.REDIS_URL)


def clear_sip_keys(redis_url: str, prefix: str = "") -> None:
    """Forget locations, bans, events, trunk states and channel counts, mailbox indexes
    (other tests' voicemail would light these phones' lamps), BLF subscriptions and dialogs
    (a stopped engine leaves them for another to adopt), parked calls and the contact
    centre's agent states, sticky agents and waiting callers (``cc:``) and tenants' TLS
    certificates (``sip:tls:``) of this worker's Redis DB (not the snapshots). Engine tests
    publish trunks with small ids of their own: what the engine wrote for them must not show on
    a trunk the database later gives that id."""
    r = redis.Redis.from_url(redis_url)
    try:
        for pattern in (
            "sip:loc:*", "sip:ban:*", "sip:events", "sip:trunk:*", "sip:trunkcalls:*",
            "sip:trunks:leader", "sip:carriers", "sip:vm:*", "sip:subs:*", "sip:dlg:*",
            "sip:park:*", "sip:calls:*", "cc:*", "sip:tls:*",
        ):  # fmt: skip
            keys = list(r.scan_iter(match=prefix + pattern, count=1000))
            if keys:
                r.delete(*keys)
    finally:
        r.close()


def publish_world(world: Any) -> None:
    """Publish the snapshots of the two conftest tenants to this worker's Redis."""
    from telephony.engine.snapshots import publish_tenant

    publish_tenant(world.tenant_a.pk)
    publish_tenant(world.tenant_b.pk)


def wait_until(predicate: Callable[[], T], timeout: float = 5.0, interval: float = 0.01) -> T:
    """Poll ``predicate`` until it returns something truthy (and return that), else fail."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


@dataclass
class EngineHandle:
    """A started engine in a background thread: ``pbx`` plus where it listens."""

    pbx: PbxEngine
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    config: PbxConfig
    addresses: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.addresses["UDP"][0]

    @property
    def udp_port(self) -> int:
        return self.addresses["UDP"][1]

    @property
    def tcp_port(self) -> int:
        return self.addresses["TCP"][1]

    @property
    def ws_port(self) -> int | None:
        a = self.addresses.get("WS")
        return a[1] if a else None

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the engine's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run a plain function on the engine's loop (to read engine state safely)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper(), timeout)

    def client(self, transport: str = "UDP") -> SipTestClient:
        port = self.addresses[transport.upper()][1]
        return SipTestClient(self.host, port, transport)


@contextlib.contextmanager
def running_engine(
    *,
    redis_url: str | None = None,
    prefix: str = "",
    guard: GuardConfig | None = None,
    registrar: RegistrarConfig | None = None,
    nonce_ttl: float = 300.0,
    digest_algorithms: tuple[str, ...] | None = ("SHA-256", "MD5"),
    timers: Timers = TEST_TIMERS,
    product: str = "TestPBX",
    ws: bool = True,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    on_build: Callable[[PbxEngine], None] | None = None,
) -> Iterator[EngineHandle]:
    """Build and start a full engine on free loopback ports; stop it on exit.

    ``on_build(pbx)`` runs after ``build_engine`` and before start (plug in handlers there).
    ``digest_algorithms=None``: the engine's defaults, exactly what ``make run`` gets (the
    suite's engines offer SHA-256 and MD5 to every tenant unless a test says otherwise).
    """
    from telephony.management.commands.sipengine import web_secret

    if digest_algorithms is None:
        from telephony.management.commands.sipengine import digest_algorithms as from_env

        digest_algorithms = from_env()
    config = PbxConfig(
        engine=EngineConfig(
            host="127.0.0.1",
            udp_port=0,
            tcp_port=0,
            ws_port=0 if ws else None,
            tls_port=0 if tls_cert else None,
            wss_port=0 if tls_cert else None,
            tls_cert=tls_cert,
            tls_key=tls_key,
            product=product,
            timers=timers,
        ),
        redis_url=redis_url or worker_redis_url(),
        redis_prefix=prefix,
        nonce_secret=secrets.token_bytes(32),
        web_secret=web_secret(),
        nonce_ttl=nonce_ttl,
        digest_algorithms=digest_algorithms,
        guard=guard or TEST_GUARD,
        registrar=registrar or RegistrarConfig(reap_interval=0.1),
    )
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready = threading.Event()
    holder: dict[str, PbxEngine] = {}

    def target() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            pbx = build_engine(config)
            holder["pbx"] = pbx
            if on_build is not None:
                on_build(pbx)
            started["addresses"] = await pbx.start()

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=target, name="sip-engine", daemon=True)
    thread.start()
    if not ready.wait(15):
        raise RuntimeError("the engine did not start within 15 s")
    if "error" in started:
        raise started["error"]
    handle = EngineHandle(holder["pbx"], loop, thread, config, started["addresses"])
    try:
        yield handle
    finally:
        with contextlib.suppress(Exception):
            handle.run(handle.pbx.stop(), timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def sip_engine_factory(world: Any) -> Iterator[Callable[..., EngineHandle]]:
    """``start(**running_engine kwargs) -> EngineHandle``; every engine is stopped at the end."""
    url = worker_redis_url()
    clear_sip_keys(url)
    publish_world(world)
    with contextlib.ExitStack() as stack:

        def start(**kw: Any) -> EngineHandle:
            return stack.enter_context(running_engine(**kw))

        yield start
    clear_sip_keys(url)


@pytest.fixture
def sip_engine(sip_engine_factory: Callable[..., EngineHandle]) -> EngineHandle:
    """A started engine with the conftest tenants loaded."""
    return sip_engine_factory()


# ----------------------------------------------------------------------------- test client


def _h(alg: str, s: str) -> str:
    fn = hashlib.sha256 if alg.upper() == "SHA-256" else hashlib.md5
    return fn(s.encode()).hexdigest()


def digest_authorization(
    challenge: str,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """An Authorization value answering one WWW-Authenticate challenge (qop=auth)."""
    c = parse_credentials(challenge)
    assert c is not None, challenge
    alg = c.get("algorithm", "MD5")
    realm, nonce = c["realm"], c["nonce"]
    cnonce = cnonce or secrets.token_hex(8)
    ha1 = contract.ha1(alg, username, realm, password)
    ha2 = _h(alg, f"{method}:{uri}")
    nc_s = f"{nc:08x}"
    response = _h(alg, f"{ha1}:{nonce}:{nc_s}:{cnonce}:auth:{ha2}")
    value = (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={alg}, cnonce="{cnonce}", qop=auth, nc={nc_s}'
    )
    if "opaque" in c:
        value += f', opaque="{c["opaque"]}"'
    return value


class SipTestClient:
    """A blocking SIP client over UDP, TCP, TLS or WS on loopback (one socket, one local
    port); over WS each SIP message is one text frame (RFC 7118), as a browser sends it."""

    _counter = itertools.count(1)

    def __init__(self, host: str, port: int, transport: str = "UDP") -> None:
        self.host = host
        self.port = port
        self.transport = transport.upper()
        if self.transport == "UDP":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
        elif self.transport == "TLS":
            import ssl

            # The test engine's certificate is self-signed: encryption, not identity, is tested.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            raw = socket.create_connection((host, port), timeout=5)
            self.sock = ctx.wrap_socket(raw, server_hostname=host)
        elif self.transport == "WS":
            from websockets.sync.client import connect as ws_connect

            self._ws = contextlib.ExitStack()
            self.ws = self._ws.enter_context(
                ws_connect(f"ws://{host}:{port}", subprotocols=["sip"], open_timeout=5)
            )
            self.sock = self.ws.socket
        else:
            self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.settimeout(5)
        self.local = self.sock.getsockname()
        self.buf = b""
        self.call_id = f"{secrets.token_hex(8)}@test"
        self.cseq = 0

    def close(self) -> None:
        if self.transport == "WS":
            self._ws.close()
        self.sock.close()

    def __enter__(self) -> SipTestClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        if self.transport == "UDP":
            self.sock.sendto(data, (self.host, self.port))
        elif self.transport == "WS":
            self.ws.send(data.decode())
        else:
            self.sock.sendall(data)

    def recv(self, timeout: float = 3.0) -> Response | Request:
        self.sock.settimeout(timeout)
        if self.transport == "UDP":
            data, _ = self.sock.recvfrom(65536)
            return parse(data)
        if self.transport == "WS":
            frame = self.ws.recv(timeout)
            return parse(frame.encode() if isinstance(frame, str) else frame)
        while True:
            self.buf = self.buf.lstrip(b"\r\n")
            n = frame_length(self.buf) if self.buf else None
            if n is not None:
                frame, self.buf = self.buf[:n], self.buf[n:]
                return parse(frame, stream=True)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def response_to(self, call_id: str, cseq: int, timeout: float = 3.0) -> Response:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.05, deadline - time.monotonic()))
            if (
                isinstance(msg, Response)
                and msg.status >= 200
                and msg.call_id == call_id
                and msg.cseq.seq == cseq
            ):
                return msg

    def register_request(
        self,
        user: str,
        domain: str,
        *,
        contacts: list[str] | None = None,
        expires: int | None = 300,
        authorization: str | None = None,
        user_agent: str = "pytest-sip",
        extra: list[tuple[str, str]] | None = None,
        ruri: str | None = None,
    ) -> Request:
        self.cseq += 1
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        lhost, lport = self.local[0], self.local[1]
        if contacts is None:
            contacts = [f"<sip:{user}@{lhost}:{lport};transport={self.transport.lower()}>"]
        headers = [
            ("Via", f"SIP/2.0/{self.transport} {lhost}:{lport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{user}@{domain}>;tag={secrets.token_hex(4)}"),
            ("To", f"<sip:{user}@{domain}>"),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("User-Agent", user_agent),
        ]
        headers += [("Contact", c) for c in contacts]
        if expires is not None:
            headers.append(("Expires", str(expires)))
        if authorization is not None:
            headers.append(("Authorization", authorization))
        headers += extra or []
        from telephony.sip.message import parse_uri

        return Request("REGISTER", parse_uri(ruri or f"sip:{domain}"), headers)

    def request(self, req: Request, timeout: float = 3.0) -> Response:
        self.send_raw(bytes(req))
        return self.response_to(req.call_id, req.cseq.seq, timeout)

    def register(
        self,
        user: str,
        domain: str,
        password: str = SIP_PASSWORD,
        *,
        username: str | None = None,
        algorithm: str = "SHA-256",
        **kw: Any,
    ) -> Response:
        """REGISTER, answer the 401 with ``algorithm``'s challenge, return the final answer."""
        first = self.request(self.register_request(user, domain, **kw))
        if first.status != 401:
            return first
        challenge = next(
            v
            for v in first.get_all("WWW-Authenticate")
            if f"algorithm={algorithm}" in v.replace('"', "")
        )
        ruri = kw.get("ruri") or f"sip:{domain}"
        auth = digest_authorization(
            challenge, method="REGISTER", uri=ruri, username=username or user, password=password
        )
        return self.request(self.register_request(user, domain, authorization=auth, **kw))
