"""Which brands a user may see and change (deny by default)."""

from django.db.models import QuerySet

from tenants.choices import Role

from .models import Brand


def brands_visible_to(user) -> QuerySet[Brand]:
    """The provider's brands (the ``brands`` API on the provider's host): the system admin sees
    the platform's and every dealer's; a dealer admin only its own dealer's (not its
    sub-dealers': a sub-dealer's white label is that dealer's own business). Tenants' own brands
    are not among them: each is edited on its tenant's host (``company/brand/``)."""
    if not getattr(user, "is_authenticated", False):
        return Brand.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return Brand.objects.filter(tenant__isnull=True)
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return Brand.objects.filter(dealer_id=user.dealer_id, tenant__isnull=True)
    return Brand.objects.none()


def own_brand_of(*, tenant=None, dealer=None) -> Brand | None:
    """The brand an owner set itself (None: it has none, it shows what it inherits). The
    caller has already decided that the user may act for this owner."""
    if tenant is not None:
        return Brand.objects.filter(tenant=tenant).first()
    return Brand.objects.filter(dealer=dealer, tenant__isnull=True).first()
