"""Bearer tokens (JWT) and portal sessions, both bound to the host they are used on.

A tenant user's credentials are valid only on its own tenant's host name; a suspended tenant's
users are refused; a token is valid only on the host family it was issued for
(:mod:`pbx.credentials`) and not after its sign-in session was signed out.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework_simplejwt.authentication import JWTAuthentication

from pbx import credentials
from pbx.credentials import CredentialsRefused, TenantSuspended


@contextmanager
def _api_errors() -> Iterator[None]:
    """A refusal of :mod:`pbx.credentials` as DRF's own: 401 (with WWW-Authenticate) or 403."""
    try:
        yield
    except TenantSuspended as exc:
        raise exceptions.PermissionDenied({"code": exc.code, "message": exc.message}) from exc
    except CredentialsRefused as exc:
        raise exceptions.AuthenticationFailed({"code": exc.code, "message": exc.message}) from exc


def check_token(token, tenant) -> None:
    """:func:`pbx.credentials.check_token`, refusing with the API's exceptions."""
    with _api_errors():
        credentials.check_token(token, tenant)


def check_user_scope(user, tenant) -> None:
    """:func:`pbx.credentials.check_user_scope`, refusing with the API's exceptions."""
    with _api_errors():
        credentials.check_user_scope(user, tenant)


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
