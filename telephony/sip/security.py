"""Flood and brute-force protection per source address.

:class:`Guard` counts requests and failed authentications per source IP in fixed windows and bans
an address for a while when it crosses a limit (defaults: 10 failures in 60 s, or 50 requests in
2 s, banned 5 minutes). Bans are written to Redis as ``sip:ban:<ip>`` with a TTL, so every engine
and the REST API see them, and announced on ``sip:ban:changed`` (``ban <ip> <until>`` or
``unban <ip>``) so the other engines update their local cache at once. The hot path,
:meth:`Guard.allow`, reads only that local cache.

Requests from known scanners (by User-Agent) are dropped without an answer: an answer tells the
scanner there is a SIP server here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from . import contract
from .message import Request

__all__ = ["SCANNER_AGENTS", "Guard", "GuardConfig"]

log = logging.getLogger(__name__)

# Lower-case substrings of User-Agent (or From display names) used by SIP scanners.
SCANNER_AGENTS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sipscan",
    "vaxsipuseragent",
    "sundayddr",
    "iwar",
    "sivus",
    "smap",
    "pplsip",
    "voipbuster",
    "sipsak",
    "nessus",
)


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """Limits. ``allow_list`` addresses are never counted nor banned (loopback is not exempt by
    default: a local process can brute-force as well as a remote one)."""

    max_failures: int = 10
    failure_window: float = 60.0
    max_requests: int = 50
    request_window: float = 2.0
    ban_seconds: float = 300.0
    allow_list: tuple[str, ...] = ()
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS
    sweep_interval: float = 10.0


class _Window:
    __slots__ = ("count", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0


class Guard:
    """Per-address counters, bans (Redis + local cache) and the scanner filter."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        config: GuardConfig | None = None,
        *,
        prefix: str = "",
    ) -> None:
        self.redis = redis
        self.config = config or GuardConfig()
        self.prefix = prefix
        self.allow_list = frozenset(self.config.allow_list)
        # Carrier addresses (trunks without a port restriction): their call bursts are not a
        # flood. Set by the trunk index; failures are still counted.
        self.trusted: frozenset[str] = frozenset()
        self.strangers = 0  # INVITEs refused from no trunk and no tenant's domain
        self.bans: dict[str, float] = {}  # ip -> monotonic time the ban ends
        self._requests: dict[str, _Window] = {}
        self._failures: dict[str, _Window] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Task[None] | None = None
        self.dropped = 0

    # --- keys ----------------------------------------------------------------------------
    def ban_key(self, ip: str) -> str:
        return self.prefix + contract.BAN.format(ip=ip)

    @property
    def channel(self) -> str:
        return self.prefix + contract.BAN_CHANGED

    # --- hot path --------------------------------------------------------------------------
    def allow(self, source_ip: str) -> bool:
        """False while ``source_ip`` is banned. A dict lookup."""
        until = self.bans.get(source_ip)
        if until is None:
            return True
        if time.monotonic() < until:
            self.dropped += 1
            return False
        del self.bans[source_ip]
        return True

    def is_scanner(self, request: Request) -> bool:
        ua = request.get("User-Agent")
        if ua is None:
            return False
        ua = ua.lower()
        return any(s in ua for s in self.config.scanner_agents)

    def note_request(self, ip: str) -> bool:
        """Count a request; returns False (and bans) when the address floods."""
        if ip in self.allow_list or ip in self.trusted:
            return True
        c = self.config
        if self._hit(self._requests, ip, c.request_window) > c.max_requests:
            self.ban(ip, reason="flood")
            return False
        return True

    def auth_failed(self, ip: str) -> None:
        """Count a failed authentication (wrong password, unknown user or domain)."""
        if ip in self.allow_list:
            return
        c = self.config
        if self._hit(self._failures, ip, c.failure_window) >= c.max_failures:
            self.ban(ip, reason="auth")

    def unknown_source(self, ip: str) -> None:
        """Count an INVITE from an address that is no trunk, for a domain that is no tenant's
        (toll-fraud probing): it counts as a failed authentication, towards a ban."""
        self.strangers += 1
        self.auth_failed(ip)

    @staticmethod
    def _hit(table: dict[str, _Window], ip: str, window: float) -> int:
        now = time.monotonic()
        w = table.get(ip)
        if w is None or now - w.start > window:
            w = table[ip] = _Window(now)
        w.count += 1
        return w.count

    # --- bans ----------------------------------------------------------------------------
    def ban(self, ip: str, *, reason: str, seconds: float | None = None) -> None:
        """Ban locally now and, in the background, in Redis for the other engines and the API."""
        seconds = self.config.ban_seconds if seconds is None else seconds
        self.bans[ip] = time.monotonic() + seconds
        self._requests.pop(ip, None)
        self._failures.pop(ip, None)
        log.warning("banned %s for %ss (%s)", ip, seconds, reason)
        if self.redis is not None:
            self._spawn(self._store_ban(ip, reason, seconds))

    def unban(self, ip: str) -> None:
        """Lift a ban locally (the API deletes the Redis key and announces it)."""
        self.bans.pop(ip, None)
        self._failures.pop(ip, None)
        self._requests.pop(ip, None)

    async def _store_ban(self, ip: str, reason: str, seconds: float) -> None:
        assert self.redis is not None
        until = time.time() + seconds
        value = json.dumps({"ip": ip, "reason": reason, "banned_at": time.time(), "until": until})
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.set(self.ban_key(ip), value, px=int(seconds * 1000))
            pipe.publish(self.channel, f"ban {ip} {until}")
            await pipe.execute()
        except Exception as exc:
            log.warning("could not store the ban of %s in Redis: %s", ip, exc)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Load current bans from Redis and follow ban/unban announcements."""
        if self.redis is None:
            return
        ready = asyncio.Event()
        self._listener = asyncio.create_task(self._run(ready), name="guard")
        waiter = asyncio.create_task(ready.wait())
        done, _ = await asyncio.wait({waiter, self._listener}, return_when=asyncio.FIRST_COMPLETED)
        if self._listener in done:
            waiter.cancel()
            self._listener.result()

    async def stop(self) -> None:
        tasks = [t for t in (self._listener, *self._tasks) if t is not None]
        for t in tasks:
            if t is not self._listener:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(t), 1)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener

    async def load_bans(self) -> None:
        assert self.redis is not None
        prefix = self.ban_key("")
        keys = [k async for k in self.redis.scan_iter(match=prefix + "*", count=1000)]
        if not keys:
            self.bans = {}
            return
        pipe = self.redis.pipeline(transaction=False)
        for k in keys:
            pipe.pttl(k)
        ttls = await pipe.execute()
        now = time.monotonic()
        fresh: dict[str, float] = {}
        for k, ttl in zip(keys, ttls, strict=True):
            if ttl is not None and ttl > 0:
                ip = (k.decode() if isinstance(k, bytes) else str(k))[len(prefix) :]
                fresh[ip] = now + ttl / 1000
        self.bans = fresh

    def _on_announcement(self, text: str) -> None:
        parts = text.split()
        if len(parts) >= 2 and parts[0] == "unban":
            self.unban(parts[1])
        elif len(parts) == 3 and parts[0] == "ban":
            with contextlib.suppress(ValueError):
                remaining = float(parts[2]) - time.time()
                if remaining > 0:
                    self.bans[parts[1]] = time.monotonic() + remaining

    async def _run(self, ready: asyncio.Event) -> None:
        assert self.redis is not None
        backoff = 0.1
        last_sweep = time.monotonic()
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                await self.load_bans()
                ready.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        self._on_announcement(
                            data.decode() if isinstance(data, bytes) else str(data)
                        )
                    now = time.monotonic()
                    if now - last_sweep > self.config.sweep_interval:
                        last_sweep = now
                        self.sweep(now)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("guard listener lost Redis (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def sweep(self, now: float | None = None) -> None:
        """Forget finished windows and bans so the tables stay small under a spray of sources."""
        now = time.monotonic() if now is None else now
        c = self.config
        windows = ((self._requests, c.request_window), (self._failures, c.failure_window))
        for table, window in windows:
            for ip in [ip for ip, w in table.items() if now - w.start > window]:
                del table[ip]
        for ip in [ip for ip, until in self.bans.items() if until <= now]:
            del self.bans[ip]
