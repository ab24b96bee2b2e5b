"""Host-name routing to a tenant's schema, and refusal of suspended tenants' sessions."""

from django.contrib.auth import logout
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from pbx.middleware import UNAVAILABLE, unavailable

from .access import can_administer
from .choices import TenantStatus

# Set by the portal's one-time "Manage" link (pbx.portal.switch): the id of the one tenant whose
# host a provider-side admin's session is valid on.
MANAGED_TENANT_SESSION_KEY = "pbx_managed_tenant"


class TenantMiddleware(TenantMainMiddleware):
    """django-tenants' routing; an unknown host answers 404 without a stack trace."""

    def process_request(self, request):
        try:
            return super().process_request(request)
        except UNAVAILABLE as exc:
            return unavailable(exc)

    def no_tenant_found(self, request, hostname):
        from django.http import Http404

        raise Http404(f"No PBX is served on {hostname}.")


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
