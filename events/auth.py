"""Who is on the other end of an events WebSocket, decided once, before the consumer runs.

The tenant comes from the Host header (the same domain table the HTTP middleware uses); the
caller from a bearer token (``?token=``, an ``Authorization`` header, or the subprotocol pair
``["bearer", <token>]`` that browsers can send) or else from the portal's session cookie. The
same rules as the REST API apply (``pbx.credentials``): a token only on the host family it was
issued for and not once its sign-in was signed out (on any host); a tenant's credentials on its
own host only; a session of a provider-side admin only through the portal's "Manage" link. A
session is also refused when the Origin is another host (cross-site WebSocket hijacking).
Refusals are not raised here: the consumer accepts, sends an error frame and closes with the
code, so clients can tell why.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.conf import settings
from django.utils.crypto import constant_time_compare

from pbx.credentials import (
    SESSION_CLAIM,
    CredentialsRefused,
    TenantSuspended,
    check_token,
    check_user_scope,
)
from pbx.errors import ErrorCode

# Close codes (4000-4999 are the application's): like HTTP, plus 4000.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404

SUBPROTOCOL = "bearer"


@dataclass
class WsAuth:
    tenant: Any = None
    user: Any = None
    token_exp: float | None = None
    token_session: str | None = None  # the bearer token's sign-in session, checked while open
    subprotocol: str | None = None
    close_code: int | None = None
    error_code: str = ""
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.close_code is None

    def refuse(self, close_code: int, error_code: str, message: str) -> WsAuth:
        self.close_code, self.error_code, self.message = close_code, str(error_code), message
        self.user = None
        return self


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _host(headers: dict[str, str]) -> str:
    from django_tenants.utils import remove_www

    return remove_www(headers.get("host", "").rsplit(":", 1)[0].strip("[]").lower())


def _token(scope, headers: dict[str, str], auth: WsAuth) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if query.get("token"):
        return query["token"][0]
    header = headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    protocols = list(scope.get("subprotocols") or [])
    if SUBPROTOCOL in protocols:
        # Browsers cannot set headers on a WebSocket; they offer ["bearer", <token>] and we
        # answer "bearer" (never echo the token).
        auth.subprotocol = SUBPROTOCOL
        i = protocols.index(SUBPROTOCOL)
        if i + 1 < len(protocols):
            return protocols[i + 1]
    return None


def _token_user(raw: str, tenant, auth: WsAuth):
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    jwt = JWTAuthentication()
    try:
        token = jwt.get_validated_token(raw.encode())
        user = jwt.get_user(token)
        # The REST API's rules: the token's host family, and its sign-in session not revoked.
        check_token(token, tenant)
    except (InvalidToken, TokenError):
        auth.refuse(
            CLOSE_UNAUTHENTICATED, ErrorCode.AUTHENTICATION_FAILED, "The token is not valid."
        )
        return None
    except CredentialsRefused as exc:
        auth.refuse(CLOSE_UNAUTHENTICATED, exc.code, exc.message)
        return None
    auth.token_exp = float(token["exp"]) if token.get("exp") else None
    auth.token_session = token.get(SESSION_CLAIM)
    return user


def _session_user(headers: dict[str, str], host: str, tenant, auth: WsAuth):
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
        load_backend,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from tenants.access import can_administer
    from tenants.middleware import MANAGED_TENANT_SESSION_KEY

    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    if morsel is None or not morsel.value:
        return None
    session = SessionStore(session_key=morsel.value)
    try:
        user_id = get_user_model()._meta.pk.to_python(session[SESSION_KEY])
        backend_path = session[BACKEND_SESSION_KEY]
    except (KeyError, ValueError):
        return None
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = load_backend(backend_path).get_user(user_id)
    if user is None or not constant_time_compare(
        session.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash()
    ):
        return None
    origin = headers.get("origin")
    if origin is not None and (urlsplit(origin).hostname or "").lower() != host:
        auth.refuse(
            CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED, "Cross-origin sessions are refused."
        )
        return None
    # The portal's rule (tenants.middleware.TenantAccessMiddleware): a tenant user on its own
    # host; a provider-side admin only on the tenant it opened with "Manage".
    if user.tenant_id is None and (
        session.get(MANAGED_TENANT_SESSION_KEY) != tenant.id or not can_administer(user, tenant)
    ):
        return None
    return user


def authenticate(scope, *, live_events: bool = True) -> WsAuth:
    """Resolve the tenant and the caller of a WebSocket handshake (synchronous, ORM);
    ``live_events``: the caller must also hold ``extensions.view`` (the events socket; the
    wallboard decides its own access)."""
    from django_tenants.utils import get_tenant_domain_model

    from tenants.access import tenant_permissions
    from tenants.choices import Permission, TenantStatus

    auth = WsAuth()
    headers = _headers(scope)
    host = _host(headers)
    domain = get_tenant_domain_model().objects.select_related("tenant").filter(domain=host).first()
    tenant = domain.tenant if domain is not None else None
    if tenant is None or tenant.is_public or tenant.status == TenantStatus.DELETED:
        return auth.refuse(CLOSE_NOT_FOUND, ErrorCode.NOT_FOUND, "No PBX is served on this host.")
    auth.tenant = tenant
    raw = _token(scope, headers, auth)
    user = _token_user(raw, tenant, auth) if raw else _session_user(headers, host, tenant, auth)
    if not auth.ok:
        return auth
    if user is None or not user.is_active:
        return auth.refuse(
            CLOSE_UNAUTHENTICATED,
            ErrorCode.NOT_AUTHENTICATED,
            "Sign in: a bearer token (?token= or the 'bearer' subprotocol) or a portal session.",
        )
    try:
        check_user_scope(user, tenant)
    except TenantSuspended as exc:
        return auth.refuse(CLOSE_FORBIDDEN, exc.code, exc.message)
    except CredentialsRefused as exc:
        return auth.refuse(CLOSE_UNAUTHENTICATED, exc.code, exc.message)
    if tenant.status != TenantStatus.ACTIVE:
        return auth.refuse(CLOSE_FORBIDDEN, ErrorCode.TENANT_SUSPENDED, "The tenant is suspended.")
    if live_events and Permission.EXTENSIONS_VIEW not in (tenant_permissions(user, tenant) or ()):
        return auth.refuse(
            CLOSE_FORBIDDEN, ErrorCode.PERMISSION_DENIED, "Live events need extensions.view."
        )
    auth.user = user
    return auth


class EventsAuthMiddleware(BaseMiddleware):
    """Puts a :class:`WsAuth` in ``scope["pbx_auth"]`` for the events consumer."""

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        scope["pbx_auth"] = await database_sync_to_async(authenticate)(scope)
        return await super().__call__(scope, receive, send)
