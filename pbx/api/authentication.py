"""Bearer tokens (JWT) and portal sessions, both bound to the host they are used on.

A tenant user's credentials are valid only on its own tenant's host name; a suspended tenant's
users are refused; a signed-out access token is refused until it would have expired anyway.
"""

from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from pbx.errors import ErrorCode
from tenants.choices import Role, TenantStatus

REVOKED_KEY = "jwt:revoked:{jti}"


def check_user_scope(user, tenant) -> None:
    """Raise unless ``user`` may use the API on ``tenant``'s host at all."""
    if user.role in (Role.TENANT_ADMIN, Role.TENANT_USER):
        if tenant is None or user.tenant_id != tenant.id:
            raise exceptions.AuthenticationFailed(
                {
                    "code": ErrorCode.AUTHENTICATION_FAILED,
                    "message": "These credentials are not valid on this host.",
                }
            )
        if tenant.status != TenantStatus.ACTIVE:  # the host's tenant is the user's own
            raise exceptions.PermissionDenied(
                {
                    "code": ErrorCode.TENANT_SUSPENDED,
                    "message": "This tenant is suspended. Contact your service provider.",
                }
            )
    elif user.role == Role.DEALER_ADMIN and (user.dealer is None or not user.dealer.is_active):
        raise exceptions.AuthenticationFailed("The dealer account is disabled.")


class TenantJWTAuthentication(JWTAuthentication):
    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if cache.get(REVOKED_KEY.format(jti=token.get("jti"))):
            raise exceptions.AuthenticationFailed(
                {"code": ErrorCode.AUTHENTICATION_FAILED, "message": "The token was revoked."}
            )
        check_user_scope(user, getattr(request._request, "tenant", None))
        return user, token


class PortalSessionAuthentication(SessionAuthentication):
    """The portal's own pages call the API with their session cookie (CSRF enforced)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        check_user_scope(result[0], getattr(request._request, "tenant", None))
        return result
