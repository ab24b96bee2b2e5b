"""Rate limits per token (user) and per client address, set from the environment.

The counters live in the global security cache: one budget per user or address across every
host name (the default cache's keys are per tenant schema).
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from pbx.net import client_address
from pbx.security import security_cache


class _SettingsRate(SimpleRateThrottle):
    """Reads its rate from the current settings (DRF binds them at import otherwise)."""

    def __init__(self):
        self.cache = security_cache()
        super().__init__()

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


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
