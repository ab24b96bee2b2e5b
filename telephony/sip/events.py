"""Engine events to a Redis stream (``sip:events``), without blocking the SIP path.

:meth:`EventSink.emit` puts a dict on a bounded queue and returns; one background task writes
whatever has accumulated in a single batch of ``XADD``s. Celery consumers read the stream
(CDRs, billing, webhooks, live status).

Nothing is trimmed here: an entry leaves the stream only once every consumer group has
acknowledged it (:func:`trim_acknowledged`, run by the consumers), so a consumer that lags or
stops loses nothing (``XADD ... MAXLEN`` used to trim entries the ``cdr`` group had not read:
lost CDRs). ``cap`` is a hard limit far above any normal backlog: when the stream holds that
many entries the writer stops adding, keeps the events in its queue, logs an alert and retries
until the consumers have caught up and trimmed. If Redis is away the writer retries the batch;
if the queue is full, new events are dropped and counted rather than let the engine's memory
grow without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from . import contract

__all__ = ["EventSink", "trim_acknowledged"]

log = logging.getLogger(__name__)

# Adds as many entries as the cap leaves room for; returns how many it added.
_XADD_LUA = """
local es = cjson.decode(ARGV[2])
local room = tonumber(ARGV[1]) - redis.call('XLEN', KEYS[1])
local n = math.min(room, #es)
for i = 1, n do
  redis.call('XADD', KEYS[1], '*', unpack(es[i]))
end
return math.max(n, 0)
"""


def _parse(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return (int(ms), int(seq or 0))


def _id(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def trim_acknowledged(redis: Any, stream: str) -> int:
    """Remove the entries of ``stream`` that every consumer group has acknowledged (a
    synchronous ``redis.Redis``); returns how many went. Each group still needs its pending
    entries (delivered, not acknowledged) and everything after its last-delivered id, so the
    stream is trimmed (``XTRIM MINID``) below the oldest of those over all groups. A stream
    without groups is left alone (nobody has read it yet)."""
    try:
        groups = redis.xinfo_groups(stream)
    except Exception as exc:  # no such stream yet
        log.debug("xinfo groups %s: %s", stream, exc)
        return 0
    if not groups:
        return 0
    floor: tuple[int, int] | None = None
    for group in groups:
        name = _id(group["name"])
        ms, seq = _parse(_id(group["last-delivered-id"]))
        keep = (ms, seq + 1)  # the first entry this group has not been given yet
        if int(group.get("pending") or 0):
            summary = redis.xpending(stream, name)
            if summary and summary.get("min"):
                keep = min(keep, _parse(_id(summary["min"])))
        floor = keep if floor is None else min(floor, keep)
    assert floor is not None
    return int(redis.xtrim(stream, minid=f"{floor[0]}-{floor[1]}", approximate=False))


class EventSink:
    """Non-blocking emitter of stream entries: ``emit(EventType.REGISTRATION, domain=...)``.

    ``type`` is a :class:`contract.EventType`; the fields of each type are listed where it is
    emitted (registrar, call layer) and read (``telephony.engine.cdr``, ``events.fanout``).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        stream: str = contract.EVENTS,
        *,
        cap: int = 1_000_000,
        queue_size: int = 100_000,
        batch: int = 500,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.cap = cap
        self.at_cap = 0  # batches held back because the stream was full
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

    async def start(self) -> None:
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
            while entries:
                try:
                    # One EVALSHA per batch: cheaper on our side than a pipeline of XADDs.
                    flat = [[x for kv in e.items() for x in kv] for e in entries]
                    added = int(
                        await self._script(
                            keys=[self.stream],
                            args=[self.cap, json.dumps(flat, separators=(",", ":"))],
                        )
                    )
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("could not write %d events: %s", len(entries), exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                self.written += added
                entries = entries[added:]
                if entries:
                    # The stream is at its hard cap: consumers are far behind (or stopped).
                    # Keep the events (the queue bounds our memory) and wait for them to trim.
                    self.at_cap += 1
                    if self.at_cap % 100 == 1:
                        log.error(
                            "event stream %s is at its cap of %d entries: consumers (CDRs, "
                            "fan-out) are not keeping up; %d events waiting in the engine",
                            self.stream,
                            self.cap,
                            len(entries) + queue.qsize(),
                        )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
            if queue.empty():
                self._idle.set()
