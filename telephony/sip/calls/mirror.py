"""The calls in progress mirrored in Redis (hash ``sip:calls:<schema>``, one field per call)
for the API and the portal (``telephony.engine.state``).

Changes are coalesced per call and written by one task in pipelined batches: one Redis round
trip per batch, not per call event, and never more than one connection. The mirror is a view:
when Redis is away, calls go on and the writer retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from telephony.sip import contract
from telephony.sip.config import CallConfig
from telephony.sip.context import EngineContext

from .call import Call

__all__ = ["CallMirror"]

log = logging.getLogger(__name__)


class CallMirror:
    """Observes calls and keeps their Redis mirror current."""

    def __init__(self, ctx: EngineContext, config: CallConfig) -> None:
        self.ctx = ctx
        self.config = config
        self._pending: dict[tuple[str, str], str | None] = {}
        self._task: asyncio.Future[None] | None = None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        # The calls just ended at shutdown leave the mirror if Redis lets us, briefly.
        if self._task is not None and not self._task.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 1.0)
            self._task.cancel()

    def call_changed(self, call: Call) -> None:
        """Queue the call's current state (or its removal, once ended)."""
        if not self.config.mirror_calls:
            return
        key = contract.key(self.ctx.config.redis_prefix, contract.CALLS, schema=call.tenant.schema)
        value: str | None = None
        if call.state != "ended":
            value = json.dumps(
                {
                    "call_id": call.id,
                    "state": call.state,
                    "caller": call.caller.caller_id_number,
                    "caller_name": call.caller.caller_id_name,
                    "callee": call.callee,
                    "target": call.target or call.callee,
                    "started_at": call.started_at,
                    "answered_at": call.answered_at,
                    "legs": [leg.info() for leg in call.legs()],
                    # Which engine carries the call: a restarted engine closes the calls its
                    # previous run left here (telephony.engine.state.close_orphaned_calls).
                    "engine": self.ctx.config.engine_id,
                    "segment": call.segment,
                    "tenant_id": call.tenant.tenant_id,
                }
            )
        self._pending[(key, call.id)] = value
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._writer())

    async def _writer(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, {}
            try:
                pipe = self.ctx.redis.pipeline(transaction=False)
                for (key, call_id), value in batch.items():
                    if value is None:
                        pipe.hdel(key, call_id)
                    else:
                        pipe.hset(key, call_id, value)
                await pipe.execute()
            except Exception as exc:
                # The mirror is a view for the API; calls go on without it.
                log.warning("could not update the active-call mirror: %s", exc)
                for k, v in batch.items():
                    self._pending.setdefault(k, v)
                await asyncio.sleep(0.5)
