"""One reader of the engine's call-events stream in a Redis consumer group.

The CDR consumer (``telephony.engine.cdr``) and the live fan-out (``events.fanout``) each read
the whole stream in a group of their own: entries are acknowledged by each group as it handles
them, a dead consumer's pending entries are claimed by a live one after ``CLAIM_IDLE_MS``, and
the stream is trimmed only up to what every group has acknowledged.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from telephony.sip.contract import EVENTS
from telephony.sip.events import trim_acknowledged

from .store import redis_key

log = logging.getLogger(__name__)

CLAIM_IDLE_MS = 30_000  # a consumer silent this long is taken as dead: its entries move on

Entry = tuple[str, dict[str, str]]


def text(v: bytes | str) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


class EventsReader:
    """Reads ``stream`` (the prefixed events stream by default) as ``<kind>-<host>`` in
    ``group`` (the subclass's ``kind`` by default), ``batch`` entries at a time. ``redis`` is a
    synchronous ``redis.Redis``."""

    kind = "events"
    default_batch = 200

    def __init__(
        self,
        redis: Any,
        *,
        stream: str | None = None,
        group: str | None = None,
        consumer: str | None = None,
        batch: int | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream or redis_key(EVENTS)
        self.group = group or self.kind
        self.consumer = consumer or f"{self.kind}-{socket.gethostname()}"
        self.batch = batch or self.default_batch
        self.claim_idle_ms = CLAIM_IDLE_MS

    def ensure_group(self) -> None:
        try:
            # From the stream's start: events written before the first run are not lost.
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _decode(self, items: Any) -> list[Entry]:
        out = []
        for entry_id, fields in items or []:
            if fields:
                out.append((text(entry_id), {text(k): text(v) for k, v in fields.items()}))
            else:  # a pending entry trimmed from the stream meanwhile: nothing to do
                self.redis.xack(self.stream, self.group, entry_id)
        return out

    def read(self, start: str, block_ms: int | None = None) -> list[Entry]:
        """New entries (``start=">"``) or this consumer's own pending ones (``"0"``)."""
        resp = self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=self.batch, block=block_ms
        )
        return [e for _stream, items in resp or [] for e in self._decode(items)]

    def claim(self) -> list[Entry]:
        """Entries a dead consumer left behind (idle longer than ``claim_idle_ms``)."""
        try:
            resp = self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
            )
        except Exception as exc:  # old Redis without XAUTOCLAIM: only our own pending count
            log.debug("xautoclaim failed: %s", exc)
            return []
        return self._decode(resp[1])

    def trim(self) -> int:
        """Drop the entries every consumer group has acknowledged (the engine adds without
        trimming, so that a lagging or stopped consumer loses nothing)."""
        try:
            return trim_acknowledged(self.redis, self.stream)
        except Exception:
            log.exception("could not trim %s", self.stream)
            return 0
