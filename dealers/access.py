"""Which dealers a user may see and manage."""

from django.db.models import QuerySet

from tenants.choices import Role

from .models import Dealer


def dealers_visible_to(user) -> QuerySet[Dealer]:
    """A system admin sees every dealer; a dealer admin its own dealer and its subtree."""
    if not getattr(user, "is_authenticated", False):
        return Dealer.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return Dealer.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return Dealer.objects.filter(path__startswith=user.dealer.path)
    return Dealer.objects.none()


def can_manage_dealer(user, dealer: Dealer) -> bool:
    """Dealers are managed from above: a dealer admin manages its sub-dealers, not itself."""
    if user.role == Role.SYSTEM_ADMIN:
        return True
    return (
        user.role == Role.DEALER_ADMIN
        and dealer.pk != user.dealer_id
        and dealer.path.startswith(user.dealer.path)
    )
