"""Sign-in scoped to the host: a tenant user authenticates only on its tenant's host name;
system and dealer admins only on the service provider's host."""

import logging
from typing import NoReturn

from allauth.account.adapter import DefaultAccountAdapter
from django import forms
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection

from pbx.net import client_address

from . import lockout
from .choices import TenantStatus
from .models import User, login_key

log = logging.getLogger("pbx.auth")

# Set on the request when the sign-in name is locked out: the seconds the lock still holds.
# The backend answers every locked sign-in like a wrong password (so Django's admin and any
# other caller of ``authenticate()`` honour it); the API and the portal read this to say why.
LOCKED_ATTR = "pbx_sign_in_locked_for"


def _mark_locked(request, seconds: int) -> None:
    if request is not None:
        setattr(request, LOCKED_ATTR, seconds)


def locked_for(request) -> int:
    """Seconds the account just tried stays locked (0 when it is not)."""
    return int(getattr(request, LOCKED_ATTR, 0) or 0)


def host_tenant(request):
    tenant = getattr(request, "tenant", None) if request is not None else None
    if tenant is None:
        tenant = getattr(connection, "tenant", None)
    return tenant


class HostScopedBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, email=None, **kwargs):
        identifier = (email or username or kwargs.get("login") or "").strip().lower()
        if not identifier or password is None:
            return None
        tenant = host_tenant(request)
        tenant_id = None if tenant is None or tenant.is_public else tenant.id
        if tenant_id is not None and tenant.status != TenantStatus.ACTIVE:
            log.info("sign-in refused: tenant %s is %s", tenant.schema_name, tenant.status)
            raise PermissionDenied
        user = User.objects.filter(login_key=login_key(identifier, tenant_id)).first()
        if user is None and tenant_id is not None and "@" in identifier:
            user = self._by_extension(identifier, tenant)
        account = lockout.account_key(user, identifier, tenant_id)
        remaining = lockout.locked_for(account)
        if remaining:
            # Known or unknown, right password or wrong: refused alike while locked.
            _mark_locked(request, remaining)
            log.info("sign-in refused: %s is locked for %ss", account, remaining)
            raise PermissionDenied
        if user is None:
            User().set_password(password)  # same work for unknown users: no timing oracle
            log.info("sign-in failed for unknown user on %s", getattr(tenant, "schema_name", "-"))
            self._failed(request, account, None, identifier, tenant)
        if user.check_password(password) and self.user_can_authenticate(user):
            lockout.clear_failures(account)
            return user
        log.info("sign-in failed for %s", user.login_key)
        self._failed(request, account, user, identifier, tenant)

    @staticmethod
    def _failed(request, account: str, user, identifier: str, tenant) -> NoReturn:
        """Count the wrong password; lock (and audit) at the threshold. Always raises:
        PermissionDenied, not None, ends ``authenticate()`` here, so allauth's e-mail backend
        (blind to hosts) cannot sign a user in on a host that is not theirs, e.g. a system admin
        on a tenant's host."""
        seconds, newly = lockout.record_failure(account)
        if seconds:
            _mark_locked(request, seconds)
        if newly:
            from pbx.audit import Actor

            from .actions import do_lock_sign_in

            do_lock_sign_in(
                user=user,
                identifier=identifier,
                tenant=None if tenant is None or tenant.is_public else tenant,
                seconds=seconds,
                actor=Actor(address=client_address(request) if request is not None else None),
            )
        raise PermissionDenied

    @staticmethod
    def _by_extension(identifier: str, tenant):
        """``1001@acme.example.com`` signs in the extension's user."""
        number, _, domain = identifier.partition("@")
        if domain != (tenant.sip_domain or "") or not number.isdigit():
            return None
        from telephony.models import Extension

        ext = Extension.objects.filter(number=number).only("user_id").first()
        if ext is None or ext.user_id is None:
            return None
        return User.objects.filter(pk=ext.user_id, tenant=tenant).first()


class AccountAdapter(DefaultAccountAdapter):
    """No self sign-up: accounts are made by administrators. allauth's e-mails (password reset)
    go out in the host's brand: its sender, and its product name where allauth puts the site's."""

    def _brand(self):
        from branding.effective import brand_for_tenant

        return brand_for_tenant(host_tenant(self.request))

    def get_from_email(self) -> str:
        from branding.mail import sender_for

        tenant = host_tenant(self.request)
        return sender_for(tenant=None if tenant is None or tenant.is_public else tenant)

    def format_email_subject(self, subject: str) -> str:
        return f"[{self._brand().product_name}] {subject}"

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        from types import SimpleNamespace

        brand = self._brand()
        site = SimpleNamespace(name=brand.product_name, domain=self.request.get_host())
        super().send_mail(template_prefix, email, {"current_site": site, **context})

    def is_open_for_signup(self, request):
        return False

    def pre_authenticate(self, request, **credentials):
        super().pre_authenticate(request, **credentials)
        # The API's sign-in budget per address (global, every host name) covers the portal too:
        # an address cannot get more guesses by switching between the API, the portal and hosts.
        from pbx.api.throttling import SignInRateThrottle

        throttle = SignInRateThrottle()
        if not throttle.allow_request(request, None):
            raise forms.ValidationError(
                "Too many sign-in attempts from your address. "
                f"Try again in {int(throttle.wait() or 0) + 1} seconds.",
                code="too_many_login_attempts",
            )

    def authenticate(self, request, **credentials):
        user = super().authenticate(request, **credentials)
        seconds = locked_for(request) if user is None else 0
        if seconds:
            raise forms.ValidationError(lockout.message(seconds), code="account_locked")
        return user
