"""The PBX engine assembled: SIP core + directory + guard + digest auth + locations + events +
registrar + NAT keep-alive + the call layer (``calls/``).

``build_engine(config)`` wires everything without starting it; ``await pbx.start()`` starts
the services in order (Redis snapshots, bans and locations first, then the transports, then
the call layer) and ``await pbx.stop()`` stops them in reverse. ``run(config)`` is the blocking
entry point used by ``manage.py sipengine`` (uvloop when installed).

Request path: transport ``gate`` (banned source: dropped before parsing) -> parse ->
``PbxEngine._screen`` (scanner User-Agent: dropped; flood counter) -> transactions ->
handler by method (``REGISTER``: the registrar; ``SUBSCRIBE``: presence by event package, MWI
or BLF; the call layer's methods: its dispatcher).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import secrets

import redis.asyncio as aioredis

from .auth import DigestAuth
from .calls import CallLayer
from .config import PbxConfig, parse_hostport
from .context import Service
from .directory import Directory
from .events import EventSink
from .keepalive import NatKeepalive
from .message import Message, Request
from .presence import DialogPresence, MessageWaiting, SubscribeRouter
from .registrar import LocationStore, Registrar
from .security import Guard
from .server import Engine, Handler
from .tlshosts import TlsHosts
from .transport import Source
from .trunks import TrunkService

__all__ = ["PbxConfig", "PbxEngine", "build_engine", "parse_hostport", "run"]

log = logging.getLogger(__name__)


class PbxEngine:
    """The running PBX engine: owns the SIP core and the services the handlers share, and
    starts and stops them (:attr:`services`, in order)."""

    def __init__(self, config: PbxConfig) -> None:
        self.config = config
        self.redis: aioredis.Redis = aioredis.Redis.from_url(config.redis_url)
        p = config.redis_prefix
        self.guard = Guard(self.redis, config.guard, prefix=p)
        # Guard before parsing (bans) and after (scanners, flood counter).
        self.engine = Engine(config.engine, gate=self.guard.allow, screen=self._screen)
        # Tenants' own certificates on TLS and WSS, by SNI (the platform's for other names).
        self.tls_hosts = TlsHosts(self.redis, prefix=p)
        self.engine.tls_hook = self.tls_hosts.attach
        self.directory = Directory(self.redis, prefix=p)
        self.auth = DigestAuth(
            config.nonce_secret or secrets.token_bytes(32),
            config.nonce_ttl,
            algorithms=config.digest_algorithms,
            web_secret=config.web_secret,
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
        self.keepalive = NatKeepalive(
            self,
            interval=config.nat_ping_interval,
            failures=config.nat_ping_failures,
            user_agent=self.product_for,
        )
        self.calls = CallLayer(self)
        # Registrations and health checks of the carriers' trunks (one engine at a time).
        self.trunks = TrunkService(self)
        self.addresses: dict[str, tuple[str, int]] = {}
        self.handle("REGISTER", self.registrar)
        self.engine.transport.on_flow_closed.append(self.registrar.flow_closed)
        self.mwi = MessageWaiting(self)
        # Busy lamp fields: the extensions' (and park slots') dialogs from the call layer.
        self.blf = DialogPresence(self, self.calls.states)
        self.subscribe = SubscribeRouter(
            self,
            {
                "message-summary": self.mwi.on_subscribe,
                "dialog": self.blf.on_subscribe,
                "presence": self.blf.on_subscribe,
            },
        )
        self.handle("SUBSCRIBE", self.subscribe)
        for method, handler in self.calls.handlers.items():
            self.handle(method, handler)
        self.engine.ack_handler = self.calls.on_ack
        self.engine.stray_response_handler = self.calls.on_stray_response
        self.services: list[Service] = [
            self.directory,
            self.guard,
            self.locations,
            self.events,
            self.tls_hosts,
            self.engine,
            self.keepalive,
            self.mwi,
            *self.calls.service_list(),
            # After the call layer: its heartbeat key tells which engines are alive.
            self.blf,
            # Last: stopped first, so the trunks are un-registered while the transports run.
            self.trunks,
        ]

    @property
    def engine_id(self) -> str:
        """This engine's name in shared state (``PbxConfig.engine_id``); when the
        configuration let the transports pick their ports, with the port they got."""
        configured = self.config.engine_id
        bound = self.engine.addresses
        if configured.endswith(":0") and bound:
            host, port = next(iter(bound.values()))
            return f"{host}:{port}"
        return configured

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

    # --- input filter --------------------------------------------------------------------
    def _screen(self, msg: Message, source: Source) -> bool:
        if isinstance(msg, Request):
            if self.guard.is_scanner(msg):
                return False  # no answer: an answer confirms a SIP server to the scanner
            if not self.guard.note_request(source.remote[0]):
                return False
        return True

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> dict[str, tuple[str, int]]:
        for service in self.services:
            await service.start()
        self.addresses = self.engine.addresses
        return self.addresses

    async def stop(self) -> None:
        for service in reversed(self.services):
            try:
                await service.stop()
            except Exception:
                log.exception("stopping %s failed", type(service).__name__)
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
    return PbxEngine(config)


def run(config: PbxConfig) -> None:
    """Run the engine until interrupted, on uvloop when it is installed."""
    pbx = build_engine(config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements
        asyncio.run(pbx.serve_forever())
    else:
        uvloop.run(pbx.serve_forever())
