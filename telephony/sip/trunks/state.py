"""A trunk's live state, as the API and the portal show it: the ``TRUNK_STATE`` hash of each
trunk (``contract.TRUNK_STATE_FIELDS``), written by the engine that holds the trunks'
leadership. One trunk's state combines its registration (registration trunks) and its
OPTIONS health check: a refused registration is ``failed`` whatever OPTIONS say, a trunk that
stops answering OPTIONS is ``down``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from telephony.sip import contract
from telephony.sip.contract import TrunkKind, TrunkState

__all__ = ["StateWriter", "TrunkStatus"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TrunkStatus:
    """What the engine knows of one trunk now."""

    kind: str = TrunkKind.IP
    enabled: bool = True
    registration: str = ""  # "", "registered", "failed"
    registration_error: str = ""
    expires: float = 0.0  # epoch seconds the registration runs out
    ping: str = ""  # "", "up", "down"
    ping_error: str = ""
    checked: float = 0.0

    def state(self) -> tuple[str, str]:
        """(state, error) as ``TRUNK_STATE`` shows them."""
        if not self.enabled:
            return TrunkState.DISABLED, ""
        if self.kind == TrunkKind.REGISTER and self.registration == "failed":
            return TrunkState.FAILED, self.registration_error
        if self.ping == "down":
            return TrunkState.DOWN, self.ping_error
        if self.kind == TrunkKind.REGISTER:
            if self.registration == "registered":
                return TrunkState.REGISTERED, ""
            return TrunkState.UNKNOWN, ""
        if self.ping == "up":
            return TrunkState.UP, ""
        return TrunkState.UNKNOWN, ""


class StateWriter:
    """Writes each trunk's state hash when it changes (and its ``checked`` time on every
    check), in order, from one task; Redis being away costs a log line, never the loop."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.last: dict[int, tuple[str, str, float]] = {}
        self.changed_at: dict[int, float] = {}
        self._queue: asyncio.Queue[tuple[int, dict[str, str] | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def key(self, trunk: int) -> str:
        return contract.key(self.prefix, contract.TRUNK_STATE, trunk=str(trunk))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="trunk-state")

    async def stop(self) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None

    def write(self, trunk: int, status: TrunkStatus) -> None:
        state, error = status.state()
        expires = status.expires if state == TrunkState.REGISTERED else 0.0
        now = time.time()
        if self.last.get(trunk, ("", "", -1.0))[:2] != (state, error):
            self.changed_at[trunk] = now
        self.last[trunk] = (state, error, expires)
        fields = {
            "state": str(state),
            "error": error,
            "at": f"{self.changed_at.get(trunk, now):.3f}",
            "checked": f"{status.checked or now:.3f}",
            "expires": f"{expires:.0f}",
        }
        self._queue.put_nowait((trunk, fields))

    def forget(self, trunk: int) -> None:
        """A trunk that is gone: its state goes too."""
        self.last.pop(trunk, None)
        self.changed_at.pop(trunk, None)
        self._queue.put_nowait((trunk, None))

    async def _run(self) -> None:
        while True:
            trunk, fields = await self._queue.get()
            try:
                if fields is None:
                    await self.redis.delete(self.key(trunk))
                else:
                    await self.redis.hset(self.key(trunk), mapping=fields)  # type: ignore[arg-type]
            except Exception as exc:
                log.warning("could not write the state of trunk %s: %s", trunk, exc)
            finally:
                self._queue.task_done()
