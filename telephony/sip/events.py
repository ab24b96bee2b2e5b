"""Engine events to a Redis stream (``sip:events``), without blocking the SIP path.

:meth:`EventSink.emit` puts a dict on a bounded queue and returns; one background task writes
whatever has accumulated in a single pipelined batch of ``XADD ... MAXLEN ~ <maxlen>``. Celery
consumers read the stream (CDRs, billing, webhooks, live status). If Redis is away the writer
retries the batch; if the queue is full, new events are dropped and counted rather than let the
engine's memory grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import redis.asyncio as aioredis

__all__ = ["EventSink"]

log = logging.getLogger(__name__)


_XADD_LUA = """
local es = cjson.decode(ARGV[3])
for _, e in ipairs(es) do
  redis.call('XADD', ARGV[1], 'MAXLEN', '~', ARGV[2], '*', unpack(e))
end
return #es
"""


class EventSink:
    """Non-blocking emitter of stream entries: ``emit("registration", domain=..., ...)``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str = "sip:events",
        *,
        maxlen: int = 100_000,
        queue_size: int = 100_000,
        batch: int = 500,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.batch = batch
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(queue_size)
        self.dropped = 0
        self.written = 0
        self._task: asyncio.Task[None] | None = None
        self._script = redis.register_script(_XADD_LUA)
        self._idle = asyncio.Event()  # set when everything queued has been written
        self._idle.set()

    def emit(self, type: str, **fields: object) -> None:  # noqa: A002 -- the stream's field name
        """Queue one entry; every value is written as text (None as "")."""
        entry = {"type": type, "ts": f"{time.time():.3f}"}
        for k, v in fields.items():
            entry[k] = "" if v is None else str(v)
        try:
            self.queue.put_nowait(entry)
            self._idle.clear()
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("event queue full: %d events dropped", self.dropped)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._writer(), name="event-sink")

    async def flush(self) -> None:
        """Wait until every queued event has been written (tests, shutdown)."""
        await self._idle.wait()

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _writer(self) -> None:
        queue = self.queue
        while True:
            entries = [await queue.get()]
            while len(entries) < self.batch and not queue.empty():
                entries.append(queue.get_nowait())
            backoff = 0.05
            while True:
                try:
                    # One EVALSHA per batch: cheaper on our side than a pipeline of XADDs.
                    flat = [[x for kv in e.items() for x in kv] for e in entries]
                    await self._script(
                        args=[self.stream, self.maxlen, json.dumps(flat, separators=(",", ":"))]
                    )
                    self.written += len(entries)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not write %d events: %s", len(entries), exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
            if queue.empty():
                self._idle.set()
