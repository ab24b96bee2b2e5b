""" "Manage" a tenant: a provider-side admin crosses to the tenant's host with a one-time link.

Sessions are per host name, so the admin's provider session does not reach the tenant's host,
and the sign-in form there only knows the tenant's own users. The link carries a signed token
(60 s, single use: its nonce lives in the cache until it is spent) that signs the admin in on
the tenant's host and binds that session to the tenant (``tenants.middleware``
``MANAGED_TENANT_SESSION_KEY``).
"""

import secrets

from django.core import signing
from django.core.cache import cache
from django_tenants.utils import schema_context

SALT = "pbx.portal.switch"
MAX_AGE = 60
NONCE_KEY = "portal:switch:{nonce}"


def make_token(user, tenant) -> str:
    nonce = secrets.token_urlsafe(16)
    # The cache key function prefixes the current schema; store it under the tenant's schema,
    # where the tenant's host will look for it.
    with schema_context(tenant.schema_name):
        cache.set(NONCE_KEY.format(nonce=nonce), user.pk, MAX_AGE + 5)
    return signing.TimestampSigner(salt=SALT).sign_object(
        {"u": user.pk, "t": tenant.pk, "n": nonce}
    )


def read_token(token: str, tenant) -> dict | None:
    """The token's claims if it is genuine, fresh and for ``tenant``; it is not spent here."""
    try:
        claims = signing.TimestampSigner(salt=SALT).unsign_object(token, max_age=MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature too
        return None
    if not isinstance(claims, dict) or claims.get("t") != tenant.pk:
        return None
    return claims


def spend_token(token: str, tenant) -> int | None:
    """The user id the token signs in, if it is valid and was not used before (then spent)."""
    claims = read_token(token, tenant)
    if claims is None:
        return None
    # DELETE is atomic in Redis: of two concurrent uses exactly one sees the key removed.
    if not cache.delete(NONCE_KEY.format(nonce=claims["n"])):
        return None
    return claims["u"]
