from django.conf import settings

from tenants.choices import Role


def portal(request):
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    role = getattr(user, "role", None) if user is not None and user.is_authenticated else None
    return {
        "product_name": settings.PBX_PRODUCT_NAME,
        "host_tenant": tenant if tenant is not None and not tenant.is_public else None,
        "is_platform_admin": role in (Role.SYSTEM_ADMIN, Role.DEALER_ADMIN),
    }
