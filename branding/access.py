"""Which brands a user may see and change (deny by default)."""

from django.db.models import QuerySet

from tenants.choices import Role

from .models import Brand


def brands_visible_to(user) -> QuerySet[Brand]:
    """The system admin sees every brand; a dealer admin only its own dealer's (not its
    sub-dealers': a sub-dealer's white label is that dealer's own business)."""
    if not getattr(user, "is_authenticated", False):
        return Brand.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return Brand.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return Brand.objects.filter(dealer_id=user.dealer_id)
    return Brand.objects.none()
