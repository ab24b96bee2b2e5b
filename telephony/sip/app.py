"""The PBX engine assembled: SIP core + directory + guard + digest auth + locations + events +
registrar, and the place where the call layer (B2BUA) plugs in.

``build_engine(config)`` wires everything without starting it; ``await pbx.start()`` connects to
Redis, loads snapshots and bans, and binds the transports. ``run(config)`` is the blocking entry
point used by ``manage.py sipengine`` (uvloop when installed).

Request path: transport ``gate`` (banned source: dropped before parsing) -> parse ->
``PbxEngine._on_message`` (scanner User-Agent: dropped; flood counter) -> transactions ->
handler by method.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from . import contract
from .auth import DigestAuth
from .directory import Directory
from .events import EventSink
from .keepalive import NatKeepalive
from .message import Message, Request
from .registrar import LocationStore, Registrar, RegistrarConfig
from .security import Guard, GuardConfig
from .server import KNOWN_METHODS, Engine, EngineConfig, Handler
from .transport import Source

__all__ = ["PbxConfig", "PbxEngine", "build_engine", "parse_hostport", "run"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PbxConfig:
    """Everything the engine needs; every value comes from settings/environment upstream."""

    engine: EngineConfig = field(default_factory=EngineConfig)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = ""
    nonce_secret: bytes = b""
    nonce_ttl: float = 300.0
    # Challenge order. MD5 only: baresip/libre, SIPp and others fail on any SHA-256 challenge;
    # a tenant whose snapshot says so gets SHA-256 first, then these.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    guard: GuardConfig = field(default_factory=GuardConfig)
    registrar: RegistrarConfig = field(default_factory=RegistrarConfig)
    event_stream: str = contract.EVENTS
    # Hard cap on the event stream's length (consumers trim what every group acknowledged; the
    # cap only stops a stream whose consumers are gone from filling Redis: see events.py).
    event_stream_cap: int = 1_000_000
    # The call layer (b2bua.B2buaConfig is built from these).
    rtpengine_ng: tuple[str, int] | None = None  # rtpengine's ng address; None: media direct
    no_answer_timeout: float = 30.0  # ringing before "no answer", unless the extension says
    anchor_all: bool = False  # media of every call through rtpengine (else: NAT or tenant)
    max_forward_hops: int = 5  # call forwarding steps one call may take
    # OPTIONS pings to UDP bindings behind NAT (keepalive.py); 0 turns them off.
    nat_ping_interval: float = 30.0
    nat_ping_failures: int = 2

    @property
    def engine_id(self) -> str:
        """This engine's name in shared state: the same after a restart, unlike a pid."""
        e = self.engine
        return f"{e.host}:{e.udp_port or e.tcp_port or e.tls_port or e.ws_port or 0}"


def parse_hostport(value: str, default_host: str = "127.0.0.1") -> tuple[str, int] | None:
    """``"host:port"`` (or ``":port"``, ``"port"``) as an address; "" or no port gives None."""
    host, _, port = value.strip().rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return (host or default_host, int(port))


class PbxEngine:
    """The running PBX engine: owns the SIP core and the services the handlers share.

    Handlers for other methods are plugged in with :meth:`handle` or :meth:`register_handlers`.
    """

    def __init__(self, config: PbxConfig) -> None:
        self.config = config
        self.engine = Engine(config.engine)
        self.redis: aioredis.Redis = aioredis.Redis.from_url(config.redis_url)
        p = config.redis_prefix
        self.directory = Directory(self.redis, prefix=p)
        self.guard = Guard(self.redis, config.guard, prefix=p)
        self.auth = DigestAuth(
            config.nonce_secret or secrets.token_bytes(32),
            config.nonce_ttl,
            algorithms=config.digest_algorithms,
        )
        self.locations = LocationStore(
            self.redis,
            prefix=p,
            transport=self.engine.transport,
            reap_interval=config.registrar.reap_interval,
        )
        self.events = EventSink(self.redis, p + config.event_stream, cap=config.event_stream_cap)
        self.registrar = Registrar(
            self.directory,
            self.auth,
            self.guard,
            self.locations,
            self.events,
            config=config.registrar,
            server_header=config.engine.product,
        )
        self.engine.handle("REGISTER", self.registrar)
        self.keepalive = NatKeepalive(
            self,
            interval=config.nat_ping_interval,
            failures=config.nat_ping_failures,
            user_agent=self.product_for,
        )
        self.components: dict[str, Any] = {}  # the call layer keeps its objects here
        # Guard before parsing (bans) and after (scanners, flood counter).
        self.engine.transport.gate = self.guard.allow
        self._receive = self.engine.transactions.receive
        self.engine.transport.on_message = self._on_message
        self.addresses: dict[str, tuple[str, int]] = {}

    # --- white label ---------------------------------------------------------------------
    def product_for(self, domain: str | None) -> str:
        """The product name for a message of the tenant at ``domain``: its white-label name
        from the snapshot, else the engine's own (never a version)."""
        tenant = self.directory.tenant(domain) if domain else None
        if tenant is not None and tenant.product:
            return tenant.product
        return self.config.engine.product

    # --- plugging in ---------------------------------------------------------------------
    def handle(self, method: str, handler: Handler) -> None:
        """Register ``handler(tx)`` for a method (coroutine or plain function)."""
        self.engine.handle(method, handler)

    def register_handlers(self, obj: object) -> None:
        """Plug in every ``on_<method>(tx)`` of ``obj`` (``on_invite``, ``on_bye``, ...), plus
        ``on_ack(ack, source)`` for ACKs outside transactions and
        ``on_stray_response(resp, source)`` for responses matching no client transaction."""
        for method in KNOWN_METHODS:
            fn = getattr(obj, f"on_{method.lower()}", None)
            if fn is not None and method != "ACK":
                self.engine.handle(method, fn)
        on_ack = getattr(obj, "on_ack", None)
        if on_ack is not None:
            self.engine.ack_handler = on_ack
        on_stray = getattr(obj, "on_stray_response", None)
        if on_stray is not None:
            self.engine.stray_response_handler = on_stray

    # --- input filter --------------------------------------------------------------------
    def _on_message(self, msg: Message, source: Source) -> None:
        if isinstance(msg, Request):
            ip = source.remote[0]
            if self.guard.is_scanner(msg):
                return  # no answer: an answer confirms a SIP server to the scanner
            if not self.guard.note_request(ip):
                return
        self._receive(msg, source)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> dict[str, tuple[str, int]]:
        await self.directory.start()
        await self.guard.start()
        await self.locations.start()
        self.events.start()
        self.addresses = await self.engine.start()
        self.keepalive.start()
        return self.addresses

    async def stop(self) -> None:
        await self.keepalive.stop()
        await self.engine.stop()
        await self.events.stop()
        await self.locations.stop()
        await self.guard.stop()
        await self.directory.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    @staticmethod
    def tune_gc() -> None:
        """Make the cyclic GC cheap for a long-lived server holding many live objects.

        What is alive after start (snapshots, locations) is frozen out of the collector's view,
        and young collections run less often: with the default thresholds the collector walked
        every pending transaction dozens of times a second and cut the REGISTER rate by 60%.
        Full collections stay possible (third threshold 10, and CPython's own rule that they
        wait until a quarter of the old generation is new): the call layer frees its objects by
        reference counting, and whatever cyclic garbage remains must not pile up for ever, as
        it did with a third threshold of 1000 (calls kept: ~15 KB each, RSS without bound).
        """
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 10)

    async def serve_forever(self) -> None:
        await self.start()
        self.tune_gc()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()


def build_engine(config: PbxConfig) -> PbxEngine:
    """Wire the engine (nothing is started or bound here)."""
    pbx = PbxEngine(config)
    # B2BUA wiring: the call layer plugs in on the next line (one line, added by its owner), e.g.
    # from .b2bua import B2BUA; pbx.register_handlers(B2BUA(pbx))
    from .b2bua import B2BUA

    pbx.register_handlers(B2BUA(pbx))  # noqa: E702, I001
    return pbx


def run(config: PbxConfig) -> None:
    """Run the engine until interrupted, on uvloop when it is installed."""
    pbx = build_engine(config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements
        asyncio.run(pbx.serve_forever())
    else:
        uvloop.run(pbx.serve_forever())
