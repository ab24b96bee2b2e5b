"""Rate limits per token (user) and per client address, set from the environment.

The counters live in the global security cache: one budget per user or address across every
host name (the default cache's keys are per tenant schema).
"""

import time

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from pbx.net import client_address
from pbx.security import security_cache


class _SettingsRate(SimpleRateThrottle):
    """A sliding-window counter in Redis, with its rate from the current settings.

    DRF's own throttle keeps every request's timestamp in one cache entry, read and rewritten
    whole on each request: at 1,200/min that is a 1,200-item pickle both ways per request, and
    with several web worker processes the read-modify-write loses updates, so the limit leaks.
    Here each window (the rate's period) is one Redis counter: ``INCR`` is atomic across
    workers, and one pipelined round trip also reads the previous window, whose count is
    weighted by how much of it still overlaps the sliding period. A refused request is not
    counted (as in DRF).
    """

    def __init__(self):
        self.cache = security_cache()
        super().__init__()

    def get_rate(self):
        # Read at each request: DRF binds the settings at import otherwise.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        from django_redis import get_redis_connection

        conn = get_redis_connection("default")
        now = time.time()
        window = int(now // self.duration)
        current, previous = f"{key}:{window}", f"{key}:{window - 1}"
        pipe = conn.pipeline(transaction=False)
        pipe.incr(current)
        pipe.expire(current, 2 * self.duration)
        pipe.get(previous)
        count, _, before = pipe.execute()
        overlap = 1.0 - (now / self.duration - window)
        estimate = count + int(before or 0) * overlap
        if estimate <= self.num_requests:
            return True
        conn.decr(current)
        self._retry_after = self.duration - (now % self.duration)
        return False

    def wait(self):
        return max(1.0, getattr(self, "_retry_after", self.duration))


class TokenRateThrottle(_SettingsRate):
    scope = "token"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return f"throttle:token:{request.user.pk}"


class AddressRateThrottle(_SettingsRate):
    scope = "address"

    def get_cache_key(self, request, view):
        return f"throttle:addr:{client_address(request)}"


class SignInRateThrottle(_SettingsRate):
    scope = "signin"

    def get_cache_key(self, request, view):
        return f"throttle:signin:{client_address(request)}"
