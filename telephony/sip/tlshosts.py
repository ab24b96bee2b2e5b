"""Tenants' own TLS certificates, chosen by SNI on the TLS and WSS listeners.

Django writes one field per tenant host name in the hash ``contract.TLS_HOSTS`` (chain and key
as :class:`contract.HostCertificate` JSON) and names the host on ``contract.TLS_HOSTS_CHANGED``.
:class:`TlsHosts` loads every field at start and reloads a host when it is announced, building
its ``SSLContext`` in a worker thread (``asyncio.to_thread``: reading PEM and checking the key
is blocking work). The handshake's SNI callback (:meth:`TlsHosts.sni`) is one dict lookup: the
host's context, or the platform's certificate (the listener's own context) for an unknown name
or none. Like the directory, a lost pub/sub connection reconnects and reloads everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable

import redis.asyncio as aioredis

from . import contract
from .contract import HostCertificate
from .follow import follow

__all__ = ["TlsHosts", "server_context"]

log = logging.getLogger(__name__)

# Where the PEM lives for the instant OpenSSL reads it: memory when the system has it.
_SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - private 0600 file


def server_context(chain: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A server-side context with the engine's TLS settings; with ``chain`` and ``key`` (PEM
    text) loaded into it. Blocking: run it off the event loop."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if chain is not None and key is not None:
        # OpenSSL loads a chain from a file only: a private one (mkstemp: 0600), gone at once.
        fd, path = tempfile.mkstemp(prefix="pbx-tls-", suffix=".pem", dir=_SCRATCH)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(chain)
                f.write("\n")
                f.write(key)
            ctx.load_cert_chain(path)
        finally:
            os.unlink(path)
    return ctx


class TlsHosts:
    """Per-host-name TLS contexts, loaded from Redis and reloaded when announced."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "") -> None:
        self.redis = redis
        self.prefix = prefix
        self.contexts: dict[str, ssl.SSLContext] = {}
        self.fingerprints: dict[str, str] = {}
        self.on_change: list[Callable[[str], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def hash_key(self) -> str:
        return self.prefix + contract.TLS_HOSTS

    @property
    def channel(self) -> str:
        return self.prefix + contract.TLS_HOSTS_CHANGED

    # --- the handshake ---------------------------------------------------------------------
    def sni(self, sslobj: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: object) -> None:
        """``SSLContext.sni_callback``: switch to the host's context when there is one."""
        if name:
            ctx = self.contexts.get(name.lower())
            if ctx is not None:
                sslobj.context = ctx

    def attach(self, platform: ssl.SSLContext) -> None:
        """Make ``platform`` (a listener's context) pick tenant certificates by SNI."""
        platform.sni_callback = self.sni

    # --- loading ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tls-hosts")
        waiter = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            waiter.cancel()
            self._task.result()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _build(self, host: str, raw: bytes | str | None) -> tuple[ssl.SSLContext, str] | None:
        """The host's context and fingerprint from its hash field, or None (logged)."""
        cert = HostCertificate.from_json(raw)
        if cert is None:
            return None
        try:
            ctx = await asyncio.to_thread(server_context, cert.chain, cert.key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.warning("TLS certificate of %s not loaded (%s): the platform's serves", host, exc)
            return None
        return ctx, cert.fingerprint

    async def load_all(self) -> None:
        raw = await self.redis.hgetall(self.hash_key)
        contexts: dict[str, ssl.SSLContext] = {}
        fingerprints: dict[str, str] = {}
        for field, value in raw.items():
            host = (field.decode() if isinstance(field, bytes) else str(field)).lower()
            built = await self._build(host, value)
            if built is not None:
                contexts[host], fingerprints[host] = built
        self.contexts, self.fingerprints = contexts, fingerprints
        log.info("TLS certificates loaded for %d host names", len(contexts))

    async def reload(self, host: str) -> None:
        host = host.lower()
        raw = await self.redis.hget(self.hash_key, host)
        built = await self._build(host, raw) if raw is not None else None
        if built is None:
            self.contexts.pop(host, None)
            self.fingerprints.pop(host, None)
        else:
            self.contexts[host], self.fingerprints[host] = built
        log.info("TLS certificate of %s %s", host, "loaded" if built else "removed")
        for cb in self.on_change:
            try:
                cb(host)
            except Exception:
                log.exception("tls-hosts on_change callback failed")

    async def _run(self) -> None:
        await follow(
            self.redis,
            (self.channel,),
            load=self.load_all,
            on_message=lambda _channel, host: self.reload(host),
            ready=self._ready,
            name="tls-hosts",
        )
