"""Bearer tokens (JWT) and portal sessions, both bound to the host they are used on.

A tenant user's credentials are valid only on its own tenant's host name; a suspended tenant's
users are refused; a token is valid only on the host family it was issued for
(:mod:`pbx.api.tokens`) and not after its sign-in session was signed out.
"""

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from pbx.api.tokens import check_token
from pbx.errors import ErrorCode
from tenants.choices import Role, TenantStatus


def _not_here() -> exceptions.AuthenticationFailed:
    return exceptions.AuthenticationFailed(
        {
            "code": ErrorCode.AUTHENTICATION_FAILED,
            "message": "These credentials are not valid on this host.",
        }
    )


def check_user_scope(user, tenant) -> None:
    """Raise unless ``user`` may use the API on ``tenant``'s host at all."""
    from tenants.access import can_administer

    if user.role in (Role.TENANT_ADMIN, Role.TENANT_USER):
        if tenant is None or user.tenant_id != tenant.id:
            raise _not_here()
        if tenant.status != TenantStatus.ACTIVE:  # the host's tenant is the user's own
            raise exceptions.PermissionDenied(
                {
                    "code": ErrorCode.TENANT_SUSPENDED,
                    "message": "This tenant is suspended. Contact your service provider.",
                }
            )
        return
    if user.role == Role.DEALER_ADMIN and (user.dealer is None or not user.dealer.is_active):
        raise exceptions.AuthenticationFailed("The dealer account is disabled.")
    # A provider-side admin reaches a tenant's host only with credentials bound to that tenant
    # (the portal's "Manage" session, or a token from POST /tenants/{id}/token/), and only
    # while the tenant is still in its scope.
    if tenant is not None and not tenant.is_public and not can_administer(user, tenant):
        raise _not_here()


class TenantJWTAuthentication(JWTAuthentication):
    def get_user(self, validated_token):
        """simplejwt's checks, with the user from the per-process cache (tenants.user_cache)."""
        from rest_framework_simplejwt.exceptions import InvalidToken
        from rest_framework_simplejwt.settings import api_settings as jwt_settings

        from tenants.user_cache import get_user

        if jwt_settings.USER_ID_FIELD != "id" or jwt_settings.CHECK_REVOKE_TOKEN:
            return super().get_user(validated_token)
        try:
            user_id = validated_token[jwt_settings.USER_ID_CLAIM]
        except KeyError as exc:
            raise InvalidToken("Token contained no recognizable user identification") from exc
        user = get_user(user_id)
        if user is None:
            raise exceptions.AuthenticationFailed("User not found", code="user_not_found")
        if jwt_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive", code="user_inactive")
        return user

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        tenant = getattr(request._request, "tenant", None)
        check_token(token, tenant)
        check_user_scope(user, tenant)
        return user, token


class PortalSessionAuthentication(SessionAuthentication):
    """The portal's own pages call the API with their session cookie (CSRF enforced)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        check_user_scope(result[0], getattr(request._request, "tenant", None))
        return result
