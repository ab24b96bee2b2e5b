"""Host-name routing to a tenant's schema, and refusal of suspended tenants' sessions."""

from django.contrib.auth import logout
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from pbx.middleware import UNAVAILABLE, unavailable

from .choices import TenantStatus


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
    """A session user whose tenant is not this host's, or is suspended, is signed out."""

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
        return self.get_response(request)
