"""The registrar (RFC 3261 10, RFC 5626 outbound bindings) and the location store.

Decisions, so that callers know what to expect:

- **Tenant** comes from the To domain (the address of record), else the Request-URI domain.
- **Unknown domains and unknown users** get the same 401 challenge as everybody (realm = the
  domain asked for), and their authenticated retry gets another 401, exactly like a wrong
  password: neither domains nor extensions can be enumerated. Each such retry counts as a failed
  authentication for the source address.
- **403 only after a correct password**: suspended tenant, disabled extension, a transport the
  extension may not use, or credentials of another extension than the To user.
- **Too many contacts**: the least recently registered binding is dropped to make room (and an
  ``unregistered`` event says so). Refusing (PortSIP's way) locks out a phone whose NAT mapping or
  instance changed until its old binding expires; dropping the oldest lets it in at once.
- **Expiry**: per-contact ``expires`` parameter, else the Expires header, else the default;
  below ``min_expires`` is 423 with Min-Expires; above ``max_expires`` is capped.
- A Contact with ``+sip.instance`` (and ``reg-id``, RFC 5626) is one binding however its URI
  changes; otherwise the Contact URI identifies the binding.
- **NAT**: each binding keeps the observed source (transport, IP, port) and, for TCP/TLS/WS, the
  flow key, besides the Contact as sent (echoed unchanged in the 200, which phones compare).
  Requests to the phone go where its packets came from (see :meth:`LocationStore.target_for`).

Locations live in Redis, shared by every engine, with their expiry:

- ``sip:loc:<domain>:<user>``: hash, binding key -> binding JSON (the key expires a minute after
  its last binding would);
- ``sip:loc:expiry``: sorted set of ``domain\\nuser\\nbinding key`` by expiry time, which a reaper
  on every engine empties atomically (Lua), so exactly one engine reports an expiry;
- channel ``sip:loc:changed``: ``<engine id>`` then ``domain user`` lines; other engines drop their
  cached copy of those AORs.

Each engine keeps a hot copy in memory; writes update it at once and reach Redis in pipelined
batches that the 200 waits for, so a restarted engine keeps every registration it acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from . import contract
from .auth import DigestAuth
from .contract import EventType, RegistrationAction, TenantSnapshot
from .directory import Directory
from .events import EventSink
from .message import Address, SipURI, unquote_string
from .security import Guard
from .transaction import ServerTransaction
from .transport import BROWSER, RELIABLE, Source, Target, TransportLayer

__all__ = ["Binding", "LocationStore", "Registrar", "RegistrarConfig"]

log = logging.getLogger(__name__)

_GONE = frozenset({RegistrationAction.UNREGISTERED, RegistrationAction.EXPIRED})

_REAP_LUA = """
local out = {}
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(members) do
  redis.call('ZREM', KEYS[1], m)
  local d, u, k = string.match(m, '^([^\\n]*)\\n([^\\n]*)\\n(.*)$')
  if d then
    local key = ARGV[3] .. d .. ':' .. u
    local v = redis.call('HGET', key, k)
    if v then
      redis.call('HDEL', key, k)
      table.insert(out, m)
      table.insert(out, v)
    end
  end
end
return out
"""


# Keys are built inside the scripts (not declared in KEYS): fine on one Redis, not on a cluster.
_WRITE_LUA = """
local b = cjson.decode(ARGV[1])
for _, op in ipairs(b.ops) do
  local key = b.p .. op[1] .. ':' .. op[2]
  local member = op[1] .. '\\n' .. op[2] .. '\\n'
  for _, r in ipairs(op[4]) do
    redis.call('HDEL', key, r)
    redis.call('ZREM', b.x, member .. r)
  end
  for _, u in ipairs(op[3]) do
    redis.call('HSET', key, u[1], u[2])
    redis.call('ZADD', b.x, u[3], member .. u[1])
  end
  if op[5] ~= '0' then redis.call('PEXPIREAT', key, op[5]) end
end
redis.call('PUBLISH', b.c, b.m)
return #b.ops
"""


@dataclass(slots=True)
class Binding:
    """One registered contact of an address of record (``user@domain``)."""

    aor: str
    contact: str
    expires_at: float  # wall clock (time.time()), shared by every engine
    transport: str  # UDP, TCP, TLS, WS, WSS as observed
    source_host: str
    source_port: int
    flow: str | None  # "TCP:ip:port" of the connection it came on (reliable transports)
    user_agent: str
    instance: str | None
    reg_id: int | None
    call_id: str = ""
    cseq: int = 0
    q: float | None = None
    registered_at: float = 0.0
    engine: str = ""  # the engine holding ``flow``

    @property
    def key(self) -> str:
        return binding_key(self.contact, self.instance, self.reg_id)

    def expires_in(self, now: float | None = None) -> int:
        return max(0, int(self.expires_at - (time.time() if now is None else now) + 0.5))

    def to_json(self) -> str:
        # Not dataclasses.asdict: it deep-copies and is ten times slower (hot path).
        return json.dumps({f: getattr(self, f) for f in _FIELD_ORDER}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Binding:
        d: dict[str, Any] = json.loads(raw)
        return cls(**{k: v for k, v in d.items() if k in _BINDING_FIELDS})


_FIELD_ORDER = tuple(Binding.__dataclass_fields__)
_BINDING_FIELDS = frozenset(_FIELD_ORDER)


def binding_key(contact: str, instance: str | None, reg_id: int | None) -> str:
    if instance:
        return f"i:{instance}:{'' if reg_id is None else reg_id}"
    return f"c:{contact}"


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    """Expiry policy (seconds) and store timing."""

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    reap_interval: float = 1.0


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


class LocationStore:
    """Bindings in Redis with a hot in-memory copy (see the module docstring for the layout).

    ``on_expired(domain, user, binding)`` is called for each binding this engine reaps.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        prefix: str = "",
        transport: TransportLayer | None = None,
        engine_id: str | None = None,
        reap_interval: float = 1.0,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.transport = transport
        self.engine_id = engine_id or secrets.token_hex(6)
        self.reap_interval = reap_interval
        self.hot: dict[tuple[str, str], dict[str, Binding]] = {}
        self.on_expired: Callable[[str, str, Binding], None] | None = None
        self._pending: list[tuple[str, str, list[Binding], list[str]]] = []
        self._pending_future: asyncio.Future[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loading: dict[tuple[str, str], asyncio.Future[dict[str, Binding]]] = {}
        self._reap = None  # registered Lua scripts
        self._write_script: AsyncScript | None = None
        # True once every AOR has been loaded; then a miss in ``hot`` means "no bindings",
        # except for AORs another engine changed since (``_dirty``), which are re-read.
        self.complete = False
        self._dirty: set[tuple[str, str]] = set()
        # Told ``(domain, user)`` of every AOR any engine (this one too) changed, once this
        # store's copy of it is current: presence follows registrations through it.
        self.changed: list[Callable[[str, str], None]] = []

    # --- keys ----------------------------------------------------------------------------
    def aor_key(self, domain: str, user: str) -> str:
        return self.prefix + contract.LOCATION.format(domain=domain, user=user)

    @property
    def expiry_key(self) -> str:
        return self.prefix + contract.LOCATION_EXPIRY

    @property
    def channel(self) -> str:
        return self.prefix + contract.LOCATION_CHANGED

    # --- reading -------------------------------------------------------------------------
    async def lookup(self, domain: str, user: str) -> list[Binding]:
        """The live bindings of ``user@domain``, best first (highest q, then newest)."""
        now = time.time()
        live = [b for b in (await self.bindings(domain, user)).values() if b.expires_at > now]
        live.sort(key=lambda b: (-(b.q if b.q is not None else 1.0), -b.registered_at))
        return live

    async def bindings(self, domain: str, user: str) -> dict[str, Binding]:
        """The cached binding dict of an AOR (loaded from Redis on a miss). Mutate it only
        through :meth:`save`."""
        k = (domain, user)
        cached = self.hot.get(k)
        if cached is not None:
            return cached
        if self.complete and k not in self._dirty:
            # The hot copy holds every AOR (loaded at start, kept by writes and announcements):
            # a miss means no bindings, without a Redis round trip.
            return self.hot.setdefault(k, {})
        loading = self._loading.get(k)
        if loading is not None:
            return await asyncio.shield(loading)
        fut: asyncio.Future[dict[str, Binding]] = asyncio.get_running_loop().create_future()
        self._loading[k] = fut
        try:
            raw = await self.redis.hgetall(self.aor_key(domain, user))
            loaded: dict[str, Binding] = {}
            for field, value in raw.items():
                try:
                    loaded[_s(field)] = Binding.from_json(value)
                except (ValueError, TypeError):
                    log.warning("bad binding in %s", self.aor_key(domain, user))
            result = self.hot.setdefault(k, loaded)
            self._dirty.discard(k)
            fut.set_result(result)
            return result
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters get it, nobody logs "never retrieved"
            raise
        finally:
            del self._loading[k]

    def target_for(self, binding: Binding) -> tuple[Target, Source | None]:
        """Where to send a request for ``binding``, and the open flow to send it on, if any.

        UDP: the observed source address (NAT fix-up), from our listening socket. TCP/TLS/WS:
        the connection the phone registered on while it is open on this engine; otherwise the
        Contact's own address (a phone with a public address listens there).
        """
        kind = binding.transport.upper()
        t = self.transport
        if kind == "UDP":
            target = Target("UDP", binding.source_host, binding.source_port)
            if t is not None and t.udp:
                sock = t.udp[0]
                return target, Source("UDP", (target.host, target.port), sock.local, sock)
            return target, None
        if t is not None and binding.flow and binding.engine == self.engine_id:
            conn = t.flows.get((kind, binding.source_host, binding.source_port))
            if conn is not None and not conn.closed and conn.remote is not None:
                target = Target(kind, binding.source_host, binding.source_port)
                return target, Source(kind, conn.remote, conn.local, conn)
        try:
            from .message import parse_uri

            uri = parse_uri(binding.contact)
        except ValueError:
            uri = None
        if isinstance(uri, SipURI):
            default = 5061 if kind in ("TLS",) or uri.scheme == "sips" else 5060
            return Target(kind, uri.host, uri.port or default), None
        return Target(kind, binding.source_host, binding.source_port), None

    # --- writing -------------------------------------------------------------------------
    async def save(
        self, domain: str, user: str, upserts: list[Binding], removes: list[str]
    ) -> None:
        """Apply changes to the hot copy now and to Redis in the next batch; returns when
        Redis has them (raises if it could not write them)."""
        current = self.hot.setdefault((domain, user), {})
        for key in removes:
            current.pop(key, None)
        for b in upserts:
            current[b.key] = b
        self._pending.append((domain, user, upserts, removes))
        if self._pending_future is None:
            self._pending_future = asyncio.get_running_loop().create_future()
        fut = self._pending_future
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        await asyncio.shield(fut)

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, fut = self._pending, self._pending_future
            self._pending, self._pending_future = [], None
            assert fut is not None
            try:
                await self._write(batch)
            except Exception as exc:
                log.error("could not write %d location changes: %s", len(batch), exc)
                if not fut.done():
                    fut.set_exception(exc)
                    fut.exception()
            else:
                if not fut.done():
                    fut.set_result(None)

    async def _write(self, batch: list[tuple[str, str, list[Binding], list[str]]]) -> None:
        # One EVALSHA per batch: a pipeline of HSET/ZADD/PEXPIREAT per binding spends most of
        # its time packing commands in redis-py; the batch as one JSON argument does not.
        ops: dict[tuple[str, str], list[Any]] = {}
        for domain, user, upserts, removes in batch:
            op = ops.get((domain, user))
            if op is None:
                op = ops[(domain, user)] = [domain, user, [], [], "0"]
            op[3].extend(removes)
            op[2].extend([b.key, b.to_json(), f"{b.expires_at:.3f}"] for b in upserts)
        for (domain, user), op in ops.items():
            current = self.hot.get((domain, user))
            if current:
                last = max(b.expires_at for b in current.values())
                op[4] = str(int((last + 60) * 1000))
        payload = {
            "p": f"{self.prefix}sip:loc:",
            "x": self.expiry_key,
            "c": self.channel,
            "m": "\n".join([self.engine_id, *(f"{d} {u}" for d, u in ops)]),
            "ops": list(ops.values()),
        }
        assert self._write_script is not None
        await self._write_script(args=[json.dumps(payload, separators=(",", ":"))])

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._reap = self.redis.register_script(_REAP_LUA)  # type: ignore[assignment]
        self._write_script = self.redis.register_script(_WRITE_LUA)
        ready = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._listen(ready), name="locations-listen"),
            asyncio.create_task(self._reaper(), name="locations-reaper"),
        ]
        await asyncio.wait_for(ready.wait(), 10)

    async def stop(self) -> None:
        if self._flusher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flusher), 2)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _listen(self, ready: asyncio.Event) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                # Anything may have changed while we were not listening: reload everything.
                self.complete = False
                self.hot.clear()
                await self.load_all()
                self._dirty.clear()
                self.complete = True
                ready.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    lines = _s(message["data"]).split("\n")
                    ours = lines[0] == self.engine_id
                    for line in lines[1:]:
                        domain, _, user = line.partition(" ")
                        if not ours:  # another engine changed it: our copy is stale
                            self.hot.pop((domain, user), None)
                            self._dirty.add((domain, user))
                        for listener in self.changed:
                            listener(domain, user)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("location listener lost Redis (%s); retrying", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def load_all(self) -> int:
        """Load every AOR of this prefix from Redis into the hot copy; returns how many."""
        prefix = f"{self.prefix}sip:loc:"
        expiry = self.expiry_key
        keys = [_s(k) async for k in self.redis.scan_iter(match=prefix + "*", count=2000)]
        keys = [k for k in keys if k != expiry and k.count(":", len(prefix)) >= 1]
        for i in range(0, len(keys), 1000):
            chunk = keys[i : i + 1000]
            pipe = self.redis.pipeline(transaction=False)
            for key in chunk:
                pipe.hgetall(key)
            for key, raw in zip(chunk, await pipe.execute(), strict=True):
                domain, _, user = key[len(prefix) :].partition(":")
                loaded: dict[str, Binding] = {}
                for field, value in raw.items():
                    with contextlib.suppress(ValueError, TypeError):
                        loaded[_s(field)] = Binding.from_json(value)
                self.hot.setdefault((domain, user), loaded)
        log.info("location store loaded %d AORs", len(keys))
        return len(keys)

    async def reap(self, now: float | None = None) -> int:
        """Remove expired bindings from Redis (atomically, one engine per binding) and from the
        hot copy; returns how many this engine removed."""
        assert self._reap is not None
        now = time.time() if now is None else now
        total = 0
        while True:
            out = await self._reap(
                keys=[self.expiry_key], args=[now, 500, f"{self.prefix}sip:loc:"]
            )
            if not out:
                return total
            touched: dict[tuple[str, str], None] = {}
            for member, raw in zip(out[::2], out[1::2], strict=True):
                domain, user, key = _s(member).split("\n", 2)
                cached = self.hot.get((domain, user))
                if cached is not None:
                    cached.pop(key, None)
                touched[(domain, user)] = None
                total += 1
                if self.on_expired is not None:
                    try:
                        self.on_expired(domain, user, Binding.from_json(raw))
                    except Exception:
                        log.exception("on_expired failed")
            await self.redis.publish(
                self.channel,
                "\n".join([self.engine_id, *(f"{d} {u}" for d, u in touched)]),
            )
            if len(out) < 1000:
                return total

    async def _reaper(self) -> None:
        while True:
            await asyncio.sleep(self.reap_interval)
            try:
                await self.reap()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("location reaper failed: %s", exc)


# ------------------------------------------------------------------------------ registrar


class Registrar:
    """The REGISTER handler: ``engine.handle("REGISTER", registrar)``."""

    def __init__(
        self,
        directory: Directory,
        auth: DigestAuth,
        guard: Guard,
        locations: LocationStore,
        events: EventSink | None,
        *,
        config: RegistrarConfig | None = None,
        server_header: str = "PBX",
    ) -> None:
        self.directory = directory
        self.auth = auth
        self.guard = guard
        self.locations = locations
        self.events = events
        self.config = config or RegistrarConfig()
        # Told of every new binding (not a refresh): ``fn(tenant, user, binding)``; the MWI
        # notifier sends the phone its mailbox's state.
        self.registered: list[Callable[[TenantSnapshot, str, Binding], None]] = []
        self.server = ("Server", server_header)
        locations.on_expired = self._expired
        # Browsers' bindings by the WebSocket they registered on: a browser cannot be reached
        # once its socket closes (it accepts no connection), so the binding goes with it
        # (RFC 5626 4.4) instead of ringing nothing until it expires.
        self._browser_flows: dict[str, set[tuple[str, str, str]]] = {}

    def server_for(self, tenant: TenantSnapshot | None) -> tuple[str, str]:
        """The Server header for an answer that belongs to ``tenant``: its white-label product,
        else the engine's. Answers given before authentication use the engine's for every
        domain (``tenant=None``), so the header cannot tell a served domain from an unknown
        one."""
        if tenant is not None and tenant.product:
            return ("Server", tenant.product)
        return self.server

    def drop(
        self,
        domain: str,
        user: str,
        binding: Binding,
        action: RegistrationAction = RegistrationAction.EXPIRED,
    ) -> None:
        """Forget one binding (an unreachable NAT binding) and say so on the event stream."""
        task = asyncio.ensure_future(self.locations.save(domain, user, [], [binding.key]))
        task.add_done_callback(_log_failure)
        self._emit(self.directory.tenant(domain), domain, user, binding, action)

    def flow_closed(self, kind: str, host: str, port: int) -> None:
        """A connection closed: the browsers' bindings registered on it (and not moved to
        another flow since, a tab taking over with the same instance) are unregistered."""
        if kind not in BROWSER:
            return
        flow = f"{kind}:{host}:{port}"
        for domain, user, key in self._browser_flows.pop(flow, ()):
            b = self.locations.hot.get((domain, user), {}).get(key)
            if b is not None and b.flow == flow and b.engine == self.locations.engine_id:
                self.drop(domain, user, b, RegistrationAction.UNREGISTERED)

    def _track_flows(
        self, domain: str, user: str, upserts: list[Binding], removes: list[Binding]
    ) -> None:
        for b in removes:
            if b.flow in self._browser_flows:
                self._browser_flows[b.flow].discard((domain, user, b.key))
        flows = self.locations.transport.flows if self.locations.transport else None
        for b in upserts:
            if not b.flow or b.transport not in BROWSER:
                continue
            if flows is not None and (b.transport, b.source_host, b.source_port) not in flows:
                # Its socket closed while the REGISTER was being saved: gone already (unless
                # another flow has taken the binding over since).
                held = self.locations.hot.get((domain, user), {}).get(b.key)
                if held is not None and held.flow == b.flow:
                    self.drop(domain, user, held, RegistrationAction.UNREGISTERED)
                continue
            self._browser_flows.setdefault(b.flow, set()).add((domain, user, b.key))

    # --- events --------------------------------------------------------------------------
    def _emit(
        self,
        tenant: TenantSnapshot | None,
        domain: str,
        user: str,
        b: Binding,
        action: RegistrationAction,
    ) -> None:
        if action == RegistrationAction.REGISTERED and tenant is not None:
            for fn in self.registered:
                fn(tenant, user, b)
        if self.events is None:
            return
        self.events.emit(
            EventType.REGISTRATION,
            schema=tenant.schema if tenant else "",
            domain=domain,
            user=user,
            contact=b.contact,
            source=f"{b.transport.lower()}:{b.source_host}:{b.source_port}",
            user_agent=b.user_agent,
            expires=0 if action in _GONE else b.expires_in(),
            action=action,
        )

    def _expired(self, domain: str, user: str, b: Binding) -> None:
        self._emit(self.directory.tenant(domain), domain, user, b, RegistrationAction.EXPIRED)

    # --- handler -------------------------------------------------------------------------
    async def __call__(self, tx: ServerTransaction) -> None:
        req = tx.request
        src = tx.source
        to_uri = req.to.uri
        if not isinstance(to_uri, SipURI) or not to_uri.user:
            tx.respond(404, headers=[self.server])
            return
        user = to_uri.user
        tenant = self.directory.tenant(to_uri.host)
        if tenant is None and isinstance(req.uri, SipURI):
            tenant = self.directory.tenant(req.uri.host)
        domain = tenant.domain if tenant is not None else to_uri.host.lower()

        result = self.auth.authenticate(
            tx, tenant, domain, proxy=False, server=self.server, failed=self.guard.auth_failed
        )
        if result is None:
            return
        ext = result.extension
        # verify() only succeeds for a known user of a known tenant
        assert tenant is not None
        assert ext is not None
        server = self.server_for(tenant)
        if not tenant.active or not ext.enabled or result.username != user:
            tx.respond(403, headers=[server])
            return
        # A web credential works over WS/WSS whatever the extension's transports (authenticate
        # refused it on any other); its web_softphone switch is the extension's say.
        if not result.web and src.kind.lower() not in ext.allowed_transports:
            tx.respond(403, "Transport Not Allowed", headers=[server])
            return

        try:
            current = await self.locations.bindings(domain, user)
        except Exception:
            log.exception("location store unavailable")
            tx.respond(500, headers=[server, ("Retry-After", "5")])
            return

        if req.get("Contact") is None:
            tx.respond(200, headers=self._ok_headers(current.values(), server))  # a query
            return
        if req.contact_star:
            if req.contacts or req.expires != 0:
                tx.respond(400, "Invalid Contact *", headers=[server])
                return
            removed = list(current.values())
            await self._save(tx, tenant, domain, user, [], removed, [])
            return

        cfg = self.config
        header_expires = req.expires
        now = time.time()
        upserts: list[Binding] = []
        removes: list[Binding] = []
        actions: list[tuple[Binding, RegistrationAction]] = []
        ua = req.get("User-Agent") or ""
        flow = f"{src.kind}:{src.remote[0]}:{src.remote[1]}" if src.kind in RELIABLE else None
        outbound = False
        for c in req.contacts:
            expires = c.expires
            if expires is None:
                expires = header_expires if header_expires is not None else cfg.default_expires
            if 0 < expires < cfg.min_expires:
                tx.respond(423, headers=[server, ("Min-Expires", str(cfg.min_expires))])
                return
            expires = min(expires, cfg.max_expires)
            instance, reg_id = _instance(c)
            outbound = outbound or reg_id is not None
            contact = str(c.uri)
            key = binding_key(contact, instance, reg_id)
            old = current.get(key)
            if old is not None and old.call_id == req.call_id and req.cseq.seq <= old.cseq:
                # RFC 3261 10.3 step 7: an out-of-order REGISTER must not roll a binding back.
                tx.respond(500, "Out of Order", headers=[server, ("Retry-After", "1")])
                return
            if expires == 0:
                if old is not None:
                    removes.append(old)
                    actions.append((old, RegistrationAction.UNREGISTERED))
                continue
            b = Binding(
                aor=f"{user}@{domain}",
                contact=contact,
                expires_at=now + expires,
                transport=src.kind,
                source_host=src.remote[0],
                source_port=src.remote[1],
                flow=flow,
                user_agent=ua,
                instance=instance,
                reg_id=reg_id,
                call_id=req.call_id,
                cseq=req.cseq.seq,
                q=c.q,
                registered_at=now,
                engine=self.locations.engine_id,
            )
            upserts.append(b)
            actions.append(
                (b, RegistrationAction.REGISTERED if old is None else RegistrationAction.REFRESHED)
            )

        # Room for the new bindings: drop the least recently registered ones.
        keep = {b.key for b in upserts}
        gone = {b.key for b in removes}
        others = [
            b for k, b in current.items() if k not in keep and k not in gone and b.expires_at > now
        ]
        excess = len(others) + len(upserts) - ext.max_registrations
        if excess > 0:
            others.sort(key=lambda b: b.registered_at)
            for b in others[:excess]:
                removes.append(b)
                actions.append((b, RegistrationAction.UNREGISTERED))
            if len(upserts) > ext.max_registrations:
                upserts = upserts[-ext.max_registrations :]
        await self._save(tx, tenant, domain, user, upserts, removes, actions, outbound=outbound)

    async def _save(
        self,
        tx: ServerTransaction,
        tenant: TenantSnapshot,
        domain: str,
        user: str,
        upserts: list[Binding],
        removes: list[Binding],
        actions: list[tuple[Binding, RegistrationAction]],
        *,
        outbound: bool = False,
    ) -> None:
        if not actions and removes:
            actions = [(b, RegistrationAction.UNREGISTERED) for b in removes]
        try:
            await self.locations.save(domain, user, upserts, [b.key for b in removes])
        except Exception:
            tx.respond(500, headers=[self.server_for(tenant), ("Retry-After", "5")])
            return
        current = self.locations.hot.get((domain, user), {})
        headers = self._ok_headers(current.values(), self.server_for(tenant))
        if outbound and "outbound" in tx.request.tokens("Supported"):
            headers.append(("Require", "outbound"))
        tx.respond(200, headers=headers)
        for b, action in actions:
            self._emit(tenant, domain, user, b, action)
        self._track_flows(domain, user, upserts, removes)

    def _ok_headers(self, bindings: Any, server: tuple[str, str]) -> list[tuple[str, str]]:
        now = time.time()
        headers = [server]
        for b in bindings:
            left = b.expires_in(now)
            if left <= 0:
                continue
            extra = ""
            if b.instance:
                extra = f';+sip.instance="{b.instance}"'
                if b.reg_id is not None:
                    extra += f";reg-id={b.reg_id}"
            headers.append(("Contact", f"<{b.contact}>;expires={left}{extra}"))
        headers.append(("Date", formatdate(now, usegmt=True)))
        return headers


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not remove a binding: %s", task.exception())


def _instance(c: Address) -> tuple[str | None, int | None]:
    raw = c.params.get("+sip.instance")
    instance = None
    if raw:
        instance = unquote_string(raw) if raw.startswith('"') else raw
    reg = c.params.get("reg-id")
    reg_id = int(reg) if reg is not None and reg.isdigit() and len(reg) < 10 else None
    return instance, (reg_id if instance else None)
