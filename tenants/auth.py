"""Sign-in scoped to the host: a tenant user authenticates only on its tenant's host name;
system and dealer admins only on the service provider's host."""

import logging

from allauth.account.adapter import DefaultAccountAdapter
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import connection

from .choices import TenantStatus
from .models import User, login_key

log = logging.getLogger("pbx.auth")


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
        if user is None:
            User().set_password(password)  # same work for unknown users: no timing oracle
            log.info("sign-in failed for unknown user on %s", getattr(tenant, "schema_name", "-"))
            raise PermissionDenied
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        log.info("sign-in failed for %s", user.login_key)
        # PermissionDenied, not None: it ends ``authenticate()`` here, so allauth's e-mail
        # backend (next in AUTHENTICATION_BACKENDS, blind to hosts) cannot sign a user in on a
        # host that is not theirs, e.g. a system admin on a tenant's host.
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
    """No self sign-up: accounts are made by administrators."""

    def is_open_for_signup(self, request):
        return False
