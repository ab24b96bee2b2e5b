"""The Redis the engines share, as the Django side reaches it."""

import redis
from django.conf import settings

from telephony.sip import contract


def redis_key(template: str, **parts: str) -> str:
    """A Redis name (a ``telephony.sip.contract`` template) with this PBX's prefix."""
    return contract.key(settings.SIP_REDIS_PREFIX, template, **parts)


def client(*, decode: bool = False, timeout: float = 2.0) -> redis.Redis:
    """A client of the shared Redis; short timeouts, so an outage fails a request quickly
    instead of hanging it."""
    return redis.Redis.from_url(
        settings.REDIS_URL,
        decode_responses=decode,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )
