"""Rate limits per token (user) and per client address, set from the environment."""

from rest_framework.throttling import SimpleRateThrottle

from pbx.net import client_address


class TokenRateThrottle(SimpleRateThrottle):
    scope = "token"

    def get_cache_key(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return None
        return f"throttle:token:{request.user.pk}"


class AddressRateThrottle(SimpleRateThrottle):
    scope = "address"

    def get_cache_key(self, request, view):
        return f"throttle:addr:{client_address(request)}"


class SignInRateThrottle(SimpleRateThrottle):
    scope = "signin"

    def get_cache_key(self, request, view):
        return f"throttle:signin:{client_address(request)}"
