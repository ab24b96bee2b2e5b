"""The engine's :class:`~telephony.sip.calls.inbound.TrunkIndex`, kept current: rebuilt when
the carriers change (``Directory.on_carriers``), with the host names of registration trunks
resolved in the background first (never per message), and again every ``refresh`` seconds
so a carrier that moves its servers is followed. The single carrier IPs go to the guard's
trusted set (no flood counting for a carrier's call bursts)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telephony.sip.calls.inbound import TrunkIndex, trunk_hosts
from telephony.sip.contract import CarrierSnapshot, TrunkKind
from telephony.sip.directory import Directory
from telephony.sip.security import Guard

from .client import resolve

__all__ = ["TrunkDirectory"]

log = logging.getLogger(__name__)


class TrunkDirectory:
    """Where trunk calls come from: :attr:`index` (the hot path reads it, a plain attribute)."""

    def __init__(self, directory: Directory, guard: Guard, *, refresh: float = 300.0) -> None:
        self.directory = directory
        self.guard = guard
        self.refresh = refresh
        self.index = TrunkIndex()
        self.resolved: dict[str, list[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None
        self.builds = 0

    async def start(self) -> None:
        self.directory.on_carriers.append(self.carriers_changed)
        await self.rebuild(self.directory.carriers)
        self._timer = asyncio.create_task(self._refresh(), name="trunk-hosts")

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.directory.on_carriers.remove(self.carriers_changed)
        for task in (self._task, self._timer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def carriers_changed(self, carriers: CarrierSnapshot) -> None:
        # The index without the names first (an IP trunk's change takes effect at once),
        # then again once the names are looked up.
        self._install(TrunkIndex.build(carriers, self.resolved))
        if self._task is not None:
            self._task.cancel()
        self._task = asyncio.ensure_future(self.rebuild(carriers))

    async def rebuild(self, carriers: CarrierSnapshot) -> None:
        names = sorted(
            {
                host
                for trunk in carriers.trunks.values()
                if trunk.enabled and trunk.kind == TrunkKind.REGISTER
                for host in trunk_hosts(trunk)
            }
        )
        found = await asyncio.gather(*(resolve(n) for n in names))
        resolved = dict(zip(names, found, strict=True))
        # A name that failed this time keeps its last known addresses.
        for name, addrs in resolved.items():
            if not addrs and self.resolved.get(name):
                resolved[name] = self.resolved[name]
        self.resolved = resolved
        self._install(TrunkIndex.build(carriers, resolved))

    def _install(self, index: TrunkIndex) -> None:
        self.index = index
        self.guard.trusted = index.trusted
        self.builds += 1

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            try:
                await self.rebuild(self.directory.carriers)
            except Exception:
                log.exception("trunk host refresh failed")
