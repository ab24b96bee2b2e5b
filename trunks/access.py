"""Who may see and use which trunks and numbers (deny by default)."""

from django.db.models import Q, QuerySet

from tenants.access import dealer_subtree_q
from tenants.choices import Role

from .models import DidNumber, Trunk


def usable_trunks(tenant) -> QuerySet[Trunk]:
    """The trunks a tenant's calls may use: its own and those shared with it."""
    return Trunk.objects.filter(Q(tenant=tenant) | Q(shared_with=tenant)).distinct()


def trunks_managed_by(user) -> QuerySet[Trunk]:
    """Trunks an administrator manages: every one for a system admin; for a dealer admin
    those its dealer subtree owns and those of its tenants."""
    if not getattr(user, "is_authenticated", False):
        return Trunk.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return Trunk.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return Trunk.objects.filter(
            dealer_subtree_q(user) | dealer_subtree_q(user, "tenant__dealer")
        )
    return Trunk.objects.none()


def numbers_managed_by(user) -> QuerySet[DidNumber]:
    """The DID pool an administrator manages: all of it for a system admin; a dealer admin
    the numbers its subtree holds."""
    if not getattr(user, "is_authenticated", False):
        return DidNumber.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return DidNumber.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return DidNumber.objects.filter(dealer_subtree_q(user))
    return DidNumber.objects.none()
