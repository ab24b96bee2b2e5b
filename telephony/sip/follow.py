"""Following a Redis announcement channel: the one loop behind every engine copy of shared data
(tenant snapshots, carriers, TLS certificates) that is loaded whole and then kept current."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

__all__ = ["follow"]

log = logging.getLogger(__name__)


async def follow(
    redis: aioredis.Redis,
    channels: tuple[str, ...],
    *,
    load: Callable[[], Awaitable[None]],
    on_message: Callable[[str, str], Awaitable[None]],
    ready: asyncio.Event,
    name: str,
) -> None:
    """Subscribe to ``channels``, then ``load()`` everything and set ``ready``; then
    ``on_message(channel, data)`` for each announcement. Subscribing first means a change
    published during the load is not lost. A lost Redis connection is retried (backoff up to
    5 s) with a full load again; runs until cancelled."""
    backoff = 0.1
    while True:
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(*channels)
            await load()
            ready.set()
            backoff = 0.1
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                channel, data = message.get("channel"), message["data"]
                await on_message(
                    channel.decode() if isinstance(channel, bytes) else str(channel),
                    data.decode() if isinstance(data, bytes) else str(data),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s listener lost Redis (%s); retrying", name, exc)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
