"""The trunks' registrations and health checks, run by one engine at a time.

:class:`TrunkService` follows the carrier snapshot (``Directory.on_carriers``): a registration
client per enabled registration trunk, an OPTIONS health check per enabled trunk with an
``options_interval``; a trunk that changed is started afresh (the old registration removed
first), one removed or disabled is un-registered. Only the engine holding ``TRUNK_LEADER``
does any of it (:class:`~.leader.Leadership`); the states it sees go to ``TRUNK_STATE``
(:class:`~.state.StateWriter`). At shutdown it un-registers and hands leadership on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from telephony.sip.context import EngineContext
from telephony.sip.contract import CarrierSnapshot, TrunkKind, TrunkSnapshot

from .health import HealthCheck
from .leader import Leadership
from .registration import RegistrationClient, RegistrationTiming
from .state import StateWriter, TrunkStatus

__all__ = ["TrunkConfig", "TrunkService"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TrunkConfig:
    """``leader_ttl``: seconds the leadership key lives without a refresh (refreshed every
    third of it); ``registration``: refresh and back-off timing."""

    enabled: bool = True
    leader_ttl: float = 15.0
    registration: RegistrationTiming = field(default_factory=RegistrationTiming)


@dataclass(slots=True, eq=False)
class _Worker:
    trunk: TrunkSnapshot
    status: TrunkStatus
    registration: RegistrationClient | None = None
    health: HealthCheck | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class TrunkService:
    """Registers and pings the trunks while this engine leads."""

    def __init__(self, ctx: EngineContext, config: TrunkConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or TrunkConfig()
        self.workers: dict[int, _Worker] = {}
        self.writer = StateWriter(ctx.redis, ctx.config.redis_prefix)
        self.leadership: Leadership | None = None
        self.leading = False
        self._loop: asyncio.Task[None] | None = None
        self._sync: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if not self.config.enabled:
            return
        self.leadership = Leadership(
            self.ctx.redis, self.ctx.config.redis_prefix, self.ctx.engine_id, self.config.leader_ttl
        )
        self.writer.start()
        self.ctx.directory.on_carriers.append(self.carriers_changed)
        self._loop = asyncio.create_task(self._lead(), name="trunk-leader")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.ctx.directory.on_carriers.remove(self.carriers_changed)
        for task in (self._loop, self._sync):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        try:
            async with self._lock:
                await asyncio.gather(
                    *(self._stop_worker(w, unregister=True) for w in self.workers.values())
                )
                self.workers = {}
            if self.leading and self.leadership is not None:
                await self.leadership.release()
        finally:
            # Whatever went wrong above, the writer's task must not outlive the engine's loop.
            self.leading = False
            await self.writer.stop()

    # --- leadership ----------------------------------------------------------------------
    async def _lead(self) -> None:
        assert self.leadership is not None
        while True:
            held = await self.leadership.hold()
            if held != self.leading:
                self.leading = held
                log.info("trunks: this engine %s", "leads" if held else "no longer leads")
                await self.sync(self.ctx.directory.carriers if held else CarrierSnapshot())
            await asyncio.sleep(self.config.leader_ttl / 3)

    # --- following the carriers ----------------------------------------------------------
    def carriers_changed(self, carriers: CarrierSnapshot) -> None:
        if not self.leading:
            return
        previous = self._sync
        self._sync = asyncio.ensure_future(self._after(previous, carriers))

    async def _after(
        self, previous: asyncio.Future[None] | None, carriers: CarrierSnapshot
    ) -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await previous
        await self.sync(carriers)

    async def sync(self, carriers: CarrierSnapshot) -> None:
        """Make the workers match ``carriers`` (an empty snapshot: stop them all, keeping
        the registrations: the next leader refreshes them)."""
        async with self._lock:
            leading = self.leading
            for trunk_id, worker in list(self.workers.items()):
                fresh = carriers.trunks.get(trunk_id)
                if fresh == worker.trunk:
                    continue
                del self.workers[trunk_id]
                # Removed or disabled (or changed: it starts again below): un-register only
                # while leading, not when handing the trunks to another engine.
                await self._stop_worker(worker, unregister=leading)
                if leading and fresh is None:
                    self.writer.forget(trunk_id)
            if not leading:
                return
            for trunk in carriers.trunks.values():
                if trunk.id not in self.workers:
                    self.workers[trunk.id] = self._start_worker(trunk)

    def _start_worker(self, trunk: TrunkSnapshot) -> _Worker:
        worker = _Worker(trunk, TrunkStatus(kind=trunk.kind, enabled=trunk.enabled))
        if not trunk.enabled:
            self.writer.write(trunk.id, worker.status)
            return worker
        engine = self.ctx.engine
        if trunk.kind == TrunkKind.REGISTER and trunk.host:
            worker.registration = RegistrationClient(
                engine,
                trunk,
                self.config.registration,
                lambda reg, error, expires: self._registered(worker, reg, error, expires),
            )
            worker.tasks.append(asyncio.create_task(worker.registration.run()))
        if trunk.options_interval > 0 and (trunk.host or trunk.outbound_proxy):
            worker.health = HealthCheck(
                engine, trunk, lambda up, error, at: self._pinged(worker, up, error, at)
            )
            worker.tasks.append(asyncio.create_task(worker.health.run()))
        self.writer.write(trunk.id, worker.status)
        return worker

    async def _stop_worker(self, worker: _Worker, *, unregister: bool) -> None:
        for task in worker.tasks:
            task.cancel()
        for task in worker.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if unregister and worker.registration is not None:
            await worker.registration.unregister()

    # --- outcomes ------------------------------------------------------------------------
    def _current(self, worker: _Worker) -> bool:
        return self.workers.get(worker.trunk.id) is worker

    def _registered(self, worker: _Worker, reg: str, error: str, expires: float) -> None:
        if not self._current(worker):
            return
        s = worker.status
        s.registration, s.registration_error, s.expires = reg, error, expires
        s.checked = time.time()
        self.writer.write(worker.trunk.id, s)

    def _pinged(self, worker: _Worker, up: bool, error: str, at: float) -> None:
        if not self._current(worker):
            return
        s = worker.status
        s.ping, s.ping_error, s.checked = ("up" if up else "down"), error, at
        self.writer.write(worker.trunk.id, s)
