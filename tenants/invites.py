"""Invitations: a new account without a password gets an e-mail with a link to set one.

The link carries a token in the manner of Django's password reset: it signs the user's id,
password hash and last sign-in, so it expires (``PBX_INVITE_DAYS``) and works once — setting
the password, or signing in, changes what it signed. It is valid only on the host of the
user's scope: the tenant's web host, or the provider's for platform users.
"""

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode


class InviteTokenGenerator(PasswordResetTokenGenerator):
    """Lifetime: ``PASSWORD_RESET_TIMEOUT``, which the settings derive from PBX_INVITE_DAYS."""

    key_salt = "pbx.tenants.invites.InviteTokenGenerator"


invite_tokens = InviteTokenGenerator()


def invite_path(user) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse("portal:set_password", args=[uid, invite_tokens.make_token(user)])


def invite_host(user) -> str:
    """The host the user signs in on: its tenant's primary web host, or the provider's."""
    if user.tenant_id is not None:
        domain = user.tenant.domains.filter(is_primary=True).first()
        if domain is not None:
            return domain.domain
    return settings.PBX_PUBLIC_HOSTS[0] if settings.PBX_PUBLIC_HOSTS else "localhost"


def invite_url(user, *, scheme: str | None = None, port: str | int | None = None) -> str:
    """The absolute link, on the scheme and port the inviting admin used; without a request,
    ``PBX_PORTAL_URL_SCHEME``/``PORT``, else the web server's own listener (``make run``):
    HTTPS on ``PBX_HTTPS_PORT``, or plain HTTP on ``PBX_HTTP_PORT`` without ``PBX_HTTPS``."""
    if not scheme:
        own_scheme, own_port = (
            ("https", settings.PBX_HTTPS_PORT)
            if settings.PBX_HTTPS
            else ("http", settings.PBX_HTTP_PORT)
        )
        scheme = settings.PBX_PORTAL_URL_SCHEME or own_scheme
        port = settings.PBX_PORTAL_URL_PORT or ("" if settings.PBX_PORTAL_URL_SCHEME else own_port)
    port = str(port or "")
    default = "443" if scheme == "https" else "80"
    host = invite_host(user)
    netloc = host if port in ("", default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{invite_path(user)}"


def user_for_token(uidb64: str, token: str, tenant):
    """The active user the link was made for, if it is still valid on this host's scope."""
    from .models import User

    try:
        pk = int(urlsafe_base64_decode(uidb64).decode())
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    users = User.objects.filter(pk=pk, is_active=True)
    if tenant is None or tenant.is_public:
        user = users.filter(tenant__isnull=True).first()
    else:
        user = users.filter(tenant_id=tenant.id).first()
    if user is None or not invite_tokens.check_token(user, token):
        return None
    return user
