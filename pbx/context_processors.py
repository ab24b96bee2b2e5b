import logging

from django.conf import settings

from tenants.choices import Role

log = logging.getLogger(__name__)


def _brand(tenant, user, role) -> dict:
    """The host's effective brand; a dealer admin on the provider's host sees its dealer's."""
    from branding.effective import brand_for_dealer, brand_for_tenant, public_fields

    try:
        if (tenant is None or tenant.is_public) and role == Role.DEALER_ADMIN:
            return public_fields(brand_for_dealer(user.dealer))
        return public_fields(brand_for_tenant(tenant))
    except Exception:
        # A page must render even if the database or cache hiccups: fall back to the default.
        log.exception("could not resolve the brand")
        name = settings.PBX_PRODUCT_NAME
        return {"name": name, "product_name": name, "logo_url": "", "favicon_url": ""}


def portal(request):
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    role = getattr(user, "role", None) if user is not None and user.is_authenticated else None
    brand = _brand(tenant, user, role)
    return {
        "brand": brand,
        # Kept for templates written before white label: the brand's product name.
        "product_name": brand["product_name"],
        "host_tenant": tenant if tenant is not None and not tenant.is_public else None,
        "is_platform_admin": role in (Role.SYSTEM_ADMIN, Role.DEALER_ADMIN),
    }
