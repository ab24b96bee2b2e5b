"""Host-name routing to a tenant's schema, and refusal of suspended tenants' sessions."""

import logging

from django.contrib.auth import logout
from django.core.exceptions import DisallowedHost
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.template import loader
from django_tenants.middleware.main import TenantMainMiddleware

from pbx.middleware import UNAVAILABLE, unavailable

from .access import can_administer
from .choices import TenantStatus
from .hosts import tenant_for_host

# Set by the portal's one-time "Manage" link (pbx.portal.switch): the id of the one tenant whose
# host a provider-side admin's session is valid on.
MANAGED_TENANT_SESSION_KEY = "pbx_managed_tenant"


log = logging.getLogger(__name__)


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' routing, with the host table cached (tenants.hosts).

    Only the provider's hosts and the tenants' domains are served: any other Host header gets a
    plain 400 that is the same for every unknown host (no brand, no host name echoed, no hint of
    which hosts exist), and never reaches the provider's portal.
    """

    def get_tenant(self, domain_model, hostname):
        tenant = tenant_for_host(hostname)
        if tenant is None:
            raise domain_model.DoesNotExist
        return tenant

    def process_request(self, request):
        try:
            request.get_host()
        except DisallowedHost as exc:
            log.info("Invalid HTTP_HOST header refused: %s", exc)
            return unknown_host()  # a malformed Host header: the same answer as an unknown one
        try:
            return super().process_request(request)
        except UNAVAILABLE as exc:
            return unavailable(exc)

    def no_tenant_found(self, request, hostname):
        return unknown_host()


def unknown_host() -> HttpResponseBadRequest:
    """The answer for a host name this PBX does not serve (and for a malformed Host header)."""
    return HttpResponseBadRequest(loader.render_to_string("400.html"))


class TenantAccessMiddleware:
    """A session user whose tenant is not this host's, or is suspended, is signed out.

    A system or dealer admin holds a session on a tenant's host only through the portal's
    "Manage" link, which binds the session to that tenant; any other such session (or one whose
    admin may no longer administer the tenant) is signed out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        tenant = getattr(request, "tenant", None)
        if user is not None and user.is_authenticated and user.tenant_id is not None:
            if tenant is None or tenant.id != user.tenant_id:
                logout(request)
            elif tenant.status != TenantStatus.ACTIVE:
                logout(request)
                return render(request, "portal/suspended.html", {"tenant": tenant}, status=403)
        elif (
            user is not None
            and user.is_authenticated
            and tenant is not None
            and not tenant.is_public
            and (
                request.session.get(MANAGED_TENANT_SESSION_KEY) != tenant.id
                or not can_administer(user, tenant)
            )
        ):
            logout(request)
        return self.get_response(request)
