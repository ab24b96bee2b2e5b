"""Which credentials are valid on which host: bearer tokens and the user's scope.

The REST API (``pbx.api.authentication``) and the events WebSocket (``events.auth``) apply the
same rules; a refusal is a :class:`CredentialsRefused` or :class:`TenantSuspended`, which each
layer turns into its own answer (a 401/403 body, a close code).

Bearer tokens are issued for one host family and revoked by sign-in session on every host.

Every sign-in starts a session (``sid``): its refresh token and each access token minted from it
carry the ``sid`` and the host family (``fam``: the tenant's schema, or ``platform`` for the
provider's hosts). Rotating the refresh token keeps both. Signing out revokes the session in the
global security cache, so every access and refresh token of that sign-in is refused at once, on
every host, REST and WebSocket alike, whether or not the refresh token was sent.
"""

import uuid

from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from pbx.errors import ErrorCode, PbxError
from pbx.security import host_family, security_cache
from tenants.choices import Role, TenantStatus

FAMILY_CLAIM = "fam"
SESSION_CLAIM = "sid"
REVOKED_SESSION_KEY = "auth:revoked-session:{sid}"
NOT_HERE = "These credentials are not valid on this host."


class CredentialsRefused(PbxError):
    """The credentials are not (or no longer) valid on this host."""

    status = 401
    code = ErrorCode.AUTHENTICATION_FAILED


class TenantSuspended(PbxError):
    """The host's tenant is the user's own, and it is suspended."""

    status = 403
    code = ErrorCode.TENANT_SUSPENDED


def issue_tokens(user, family: str, *, session: str | None = None) -> dict:
    """A refresh and an access token for ``user`` on the hosts of ``family``; a new sign-in
    session unless ``session`` continues one (refresh-token rotation)."""
    refresh = RefreshToken.for_user(user)
    refresh[FAMILY_CLAIM] = family
    refresh[SESSION_CLAIM] = session or uuid.uuid4().hex
    access = refresh.access_token  # copies fam and sid
    return {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": int(access.lifetime.total_seconds()),
    }


def revoke_session(token) -> None:
    """Refuse every token of ``token``'s sign-in session from now on, on every host."""
    sid = token.get(SESSION_CLAIM)
    if not sid:
        return
    # A session lives as long as its newest refresh token; none can be minted after this.
    ttl = int(jwt_settings.REFRESH_TOKEN_LIFETIME.total_seconds()) + 60
    security_cache().set(REVOKED_SESSION_KEY.format(sid=sid), 1, timeout=ttl)


def session_revoked(token) -> bool:
    return sid_revoked(token.get(SESSION_CLAIM))


def sid_revoked(sid: str | None) -> bool:
    """Whether the sign-in session ``sid`` was signed out (a token without one never counts)."""
    return not sid or bool(security_cache().get(REVOKED_SESSION_KEY.format(sid=sid)))


def check_token(token, tenant) -> None:
    """Raise unless ``token`` (access or refresh) is valid on ``tenant``'s host: issued for its
    host family, and its sign-in session not revoked."""
    if token.get(FAMILY_CLAIM) != host_family(tenant):
        raise CredentialsRefused(NOT_HERE)
    if session_revoked(token):
        raise CredentialsRefused("The token was revoked.")


def check_user_scope(user, tenant) -> None:
    """Raise unless ``user`` may use ``tenant``'s host at all."""
    from tenants.access import can_administer

    if user.role in (Role.TENANT_ADMIN, Role.TENANT_USER):
        if tenant is None or user.tenant_id != tenant.id:
            raise CredentialsRefused(NOT_HERE)
        if tenant.status != TenantStatus.ACTIVE:  # the host's tenant is the user's own
            raise TenantSuspended("This tenant is suspended. Contact your service provider.")
        return
    if user.role == Role.DEALER_ADMIN and (user.dealer is None or not user.dealer.is_active):
        raise CredentialsRefused("The dealer account is disabled.")
    # A provider-side admin reaches a tenant's host only with credentials bound to that tenant
    # (the portal's "Manage" session, or a token from POST /tenants/{id}/token/), and only
    # while the tenant is still in its scope.
    if tenant is not None and not tenant.is_public and not can_administer(user, tenant):
        raise CredentialsRefused(NOT_HERE)
