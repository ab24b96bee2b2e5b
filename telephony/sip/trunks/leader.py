"""One engine at a time registers and pings the trunks: the one holding ``TRUNK_LEADER`` (a
key with a TTL, refreshed at a third of it). A crashed leader's key runs out and another
engine takes over; a leader that stops deletes its key so the next one need not wait."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from telephony.sip import contract

__all__ = ["Leadership"]

log = logging.getLogger(__name__)

# KEYS: the leader key. ARGV: our id, TTL ms. 1: we hold it (taken or refreshed).
_HOLD_LUA = """
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership:
    """``await hold()``: True while this engine leads (takes the key when it is free)."""

    def __init__(self, redis: aioredis.Redis, prefix: str, engine_id: str, ttl: float) -> None:
        self.redis = redis
        self.key = contract.key(prefix, contract.TRUNK_LEADER)
        self.engine_id = engine_id
        self.ttl = ttl

    async def hold(self) -> bool:
        try:
            held = await self.redis.eval(
                _HOLD_LUA, 1, self.key, self.engine_id, str(int(self.ttl * 1000))
            )
        except Exception as exc:
            log.warning("trunk leadership: Redis unreachable (%s)", exc)
            return False
        return bool(held)

    async def release(self) -> None:
        try:
            await self.redis.eval(_RELEASE_LUA, 1, self.key, self.engine_id)
        except Exception as exc:
            log.warning("trunk leadership: could not release (%s)", exc)
