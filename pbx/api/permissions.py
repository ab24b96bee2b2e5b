"""Deny by default. Platform endpoints live on the provider's host; tenant endpoints on the
tenant's host, where another tenant's (or an unrelated dealer's) caller gets 404, not 403."""

from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS, BasePermission

from tenants.access import tenant_permissions
from tenants.choices import Role


class DenyAll(BasePermission):
    def has_permission(self, request, view):
        return False


def _host_tenant(request):
    return getattr(request._request, "tenant", None)


class PlatformAdmin(BasePermission):
    """System admins and dealer admins, on the service provider's host."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        # On a tenant's host these endpoints do not exist for anyone: another tenant's or
        # dealer's id named there answers as an unknown one does (404), whatever the role.
        tenant = _host_tenant(request)
        if tenant is not None and not tenant.is_public:
            raise exceptions.NotFound()
        roles = getattr(view, "platform_roles", (Role.SYSTEM_ADMIN, Role.DEALER_ADMIN))
        return user.role in roles


class TenantPermission(BasePermission):
    """Permission codes within the host's tenant: ``view.permission_codes = (read, write)``."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        held = host_permissions(request)
        read, write = view.permission_codes
        needed = read if request.method in SAFE_METHODS else write
        return needed in held


def host_permissions(request) -> set[str]:
    """The signed-in caller's permission codes in the host's tenant (401 when not signed in);
    404 on the provider's host and for a user of another tenant: nothing here exists."""
    user = request.user
    if not user or not user.is_authenticated:
        raise exceptions.NotAuthenticated()
    tenant = _host_tenant(request)
    if tenant is None or tenant.is_public:
        raise exceptions.NotFound()
    held = tenant_permissions(user, tenant)
    if held is None:
        raise exceptions.NotFound()
    return set(held)


class TenantMember(BasePermission):
    """Any user of the host's tenant; the view checks the rest with ``view.held``, the
    caller's permission codes there."""

    def has_permission(self, request, view):
        view.held = host_permissions(request)
        return True


class Authenticated(BasePermission):
    def has_permission(self, request, view):
        return bool(request.user and request.user.is_authenticated)
