"""The engine's agent book: each queue agent's state (``contract.AGENTS``), as the queues
offer calls by it.

A tenant's ``AGENTS`` hash is read on first use and again whenever ``AGENTS_CHANGED`` names
the tenant's schema (the Django side, or another engine, changed a state). The engine's own
changes (feature codes, wrap-up) are written to the hash, published on ``AGENTS_CHANGED`` and
told as ``agent.state`` events. A field that is not stored is the queue's default
(``Queue.default_status``).

An agent is *available* in a queue when its effective state there is ready (a wrap-up that
is over counts as ready) and it is neither on a call nor ringing on this engine
(``ExtensionStates.busy``) nor on DND. The book also keeps what the strategies need from this
engine's memory: each agent's answered queue calls today (fewest calls) and the agent offered
last per queue (round robin). Every change is told to ``listeners`` as ``schema``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import Awaitable, Callable

from telephony.sip import contract
from telephony.sip.context import EngineContext
from telephony.sip.contract import AgentState, AgentStatus, EventType, Queue, TenantSnapshot

from .states import ExtensionStates

__all__ = ["AgentBook"]

log = logging.getLogger(__name__)

Listener = Callable[[str], None]


class AgentBook:
    """Per tenant, the agents' states in their queues (a copy of ``AGENTS``)."""

    def __init__(self, ctx: EngineContext, states: ExtensionStates) -> None:
        self.ctx = ctx
        self.states = states
        self.book: dict[str, dict[str, AgentStatus]] = {}  # schema -> field -> status
        self._loading: dict[str, asyncio.Task[None]] = {}
        self.listeners: list[Listener] = []
        # (schema, queue, agent) -> answered queue calls on ``self._day`` (fewest calls).
        self.answered: dict[tuple[str, str, str], int] = {}
        self._day = datetime.date.today()  # noqa: DTZ011 - the engine's local midnight
        # (schema, queue) -> the agent offered last (round robin).
        self.last_offered: dict[tuple[str, str], str] = {}
        # (schema, queue, agent) -> the timer that ends its wrap-up.
        self._wrap: dict[tuple[str, str, str], asyncio.TimerHandle] = {}
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[AgentStatus]] = set()
        # Run when the engine stops, before the book (the queues' live state goes).
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    @property
    def prefix(self) -> str:
        return self.ctx.config.redis_prefix

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._follow(ready), name="agents-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)

    async def stop(self) -> None:
        for hook in self.on_stop:
            try:
                await hook()
            except Exception:
                log.exception("agent book stop hook failed")
        for timer in self._wrap.values():
            timer.cancel()
        self._wrap.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _follow(self, ready: asyncio.Event) -> None:
        channel = contract.key(self.prefix, contract.AGENTS_CHANGED)
        backoff = 0.1
        while True:
            pubsub = self.ctx.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                # Missed changes while unsubscribed: every tenant is read again.
                for schema in list(self.book):
                    self._reload(schema)
                ready.set()
                backoff = 0.1
                async for msg in pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    data = msg.get("data")
                    schema = data.decode() if isinstance(data, bytes) else str(data or "")
                    if schema in self.book:
                        self._reload(schema)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("agents channel lost (%s), resubscribing", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _reload(self, schema: str) -> None:
        task = asyncio.get_running_loop().create_task(self._load(schema, notify=True))
        self._loading[schema] = task

    async def _load(self, schema: str, *, notify: bool = False) -> None:
        key = contract.key(self.prefix, contract.AGENTS, schema=schema)
        try:
            raw = await self.ctx.redis.hgetall(key)
        except Exception as exc:
            log.warning("agents of %s unreadable: %s", schema, exc)
            raw = {}
        book: dict[str, AgentStatus] = {}
        for name, value in raw.items():
            status = AgentStatus.read(value)
            if status is not None:
                book[name.decode() if isinstance(name, bytes) else str(name)] = status
        self.book[schema] = book
        if notify:
            self._tell(schema)

    async def ensure(self, schema: str) -> None:
        """The tenant's hash is read (once: later changes follow ``AGENTS_CHANGED``)."""
        if schema in self.book:
            return
        task = self._loading.get(schema)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._load(schema))
            self._loading[schema] = task
        await asyncio.shield(task)

    def _tell(self, schema: str) -> None:
        for listener in self.listeners:
            try:
                listener(schema)
            except Exception:
                log.exception("agent listener failed")

    # --- reading -------------------------------------------------------------------------
    def status(self, schema: str, queue: Queue, ext: str) -> AgentStatus:
        """``ext``'s stored state in ``queue``, or the queue's default."""
        stored = self.book.get(schema, {}).get(contract.agent_field(queue.number, ext))
        return stored if stored is not None else queue.default_status()

    def state(self, schema: str, queue: Queue, ext: str) -> str:
        """``ext``'s effective state in ``queue`` now (an AgentState)."""
        return self.status(schema, queue, ext).effective(time.time())

    def logged_in(self, schema: str, queue: Queue) -> list[str]:
        """The agents of ``queue`` that are not logged out."""
        return [
            a.number
            for a in queue.agents
            if self.state(schema, queue, a.number) != AgentState.LOGGED_OUT
        ]

    def available(self, tenant: TenantSnapshot, queue: Queue, ext: str) -> bool:
        """Ready in ``queue``, not on a call or ringing, not on DND."""
        snap = tenant.extensions.get(ext)
        if snap is None or not snap.enabled or snap.dnd:
            return False
        if self.state(tenant.schema, queue, ext) != AgentState.READY:
            return False
        return not self.states.busy(tenant.schema, ext)

    def answered_today(self, schema: str, queue: str, ext: str) -> int:
        self._roll()
        return self.answered.get((schema, queue, ext), 0)

    def count_answer(self, schema: str, queue: str, ext: str) -> None:
        self._roll()
        key = (schema, queue, ext)
        self.answered[key] = self.answered.get(key, 0) + 1

    def _roll(self) -> None:
        today = datetime.date.today()  # noqa: DTZ011 - the engine's local midnight
        if today != self._day:
            self._day = today
            self.answered.clear()

    # --- changes -------------------------------------------------------------------------
    async def set(
        self,
        tenant: TenantSnapshot,
        queue: Queue,
        ext: str,
        state: str,
        *,
        reason: str = "",
        by: str = "engine",
        until: float = 0.0,
    ) -> AgentStatus:
        """Store ``ext``'s new state in ``queue``, tell the other engines and the Django side
        (``AGENTS_CHANGED``, ``agent.state``) and this engine's queues."""
        await self.ensure(tenant.schema)
        status = AgentStatus(
            state=state,
            reason=contract.clean_reason(reason) if state == AgentState.NOT_READY else "",
            since=time.time(),
            until=until,
            by=by,
        )
        field = contract.agent_field(queue.number, ext)
        self.book.setdefault(tenant.schema, {})[field] = status
        wrap = self._wrap.pop((tenant.schema, queue.number, ext), None)
        if wrap is not None:
            wrap.cancel()
        key = contract.key(self.prefix, contract.AGENTS, schema=tenant.schema)
        try:
            await self.ctx.redis.hset(key, field, status.to_json())
            await self.ctx.redis.publish(
                contract.key(self.prefix, contract.AGENTS_CHANGED), tenant.schema
            )
        except Exception as exc:
            log.warning("agent %s of %s/%s not stored: %s", ext, tenant.schema, queue.number, exc)
        self.ctx.events.emit(
            EventType.AGENT_STATE,
            schema=tenant.schema,
            tenant_id=tenant.tenant_id,
            queue=queue.number,
            agent=ext,
            state=state,
            reason=status.reason,
            by=by,
        )
        self._tell(tenant.schema)
        return status

    async def wrap_up(self, tenant: TenantSnapshot, queue: Queue, ext: str) -> None:
        """``ext`` answered a call of ``queue`` that has ended: it wraps up for the queue's
        ``wrap_up_seconds`` (none: straight back to ready), then it is ready again."""
        current = self.state(tenant.schema, queue, ext)
        if current in (AgentState.LOGGED_OUT, AgentState.NOT_READY):
            return  # it left the queue or paused during the call: it stays so
        seconds = queue.wrap_up_seconds
        if seconds <= 0:
            return
        until = time.time() + seconds
        await self.set(tenant, queue, ext, AgentState.WRAP_UP, until=until)
        loop = asyncio.get_running_loop()
        key = (tenant.schema, queue.number, ext)
        self._wrap[key] = loop.call_later(seconds, lambda: self._wrapped(tenant, queue, ext, until))

    def _wrapped(self, tenant: TenantSnapshot, queue: Queue, ext: str, until: float) -> None:
        self._wrap.pop((tenant.schema, queue.number, ext), None)
        status = self.status(tenant.schema, queue, ext)
        if status.state != AgentState.WRAP_UP or status.until != until:
            return  # changed meanwhile
        task = asyncio.get_running_loop().create_task(
            self.set(tenant, queue, ext, AgentState.READY)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
