"""Who may see which tenants and users. Every scoped query starts here (deny by default)."""

from django.db.models import Q, QuerySet

from .choices import Role, TenantStatus
from .models import Tenant, User


def dealer_subtree_q(user, field: str = "dealer") -> Q:
    """Rows whose ``field`` (a Dealer FK) lies in ``user``'s dealer subtree."""
    return Q(**{f"{field}__path__startswith": user.dealer.path})


def live_tenants() -> QuerySet[Tenant]:
    """Every tenant with a schema of its own: not the public schema, not a deleted tombstone."""
    return Tenant.objects.exclude(schema_name="public").exclude(status=TenantStatus.DELETED)


def tenants_visible_to(user) -> QuerySet[Tenant]:
    """Tenants an administrator may list and manage (never the public schema, never tombstones)."""
    qs = live_tenants()
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if user.role == Role.SYSTEM_ADMIN:
        return qs
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return qs.filter(dealer_subtree_q(user))
    return qs.none()


def can_administer(user, tenant: Tenant) -> bool:
    """A system admin, or a dealer admin whose subtree holds the tenant."""
    if not getattr(user, "is_authenticated", False) or tenant is None or tenant.is_public:
        return False
    if user.role == Role.SYSTEM_ADMIN:
        return True
    if user.role == Role.DEALER_ADMIN and user.dealer_id and tenant.dealer is not None:
        return tenant.dealer.path.startswith(user.dealer.path)
    return False


def tenant_permissions(user, tenant: Tenant | None) -> frozenset[str] | None:
    """Permission codes ``user`` holds in ``tenant``; None when the tenant is not theirs at all."""
    from .choices import TENANT_ADMIN_PERMISSIONS

    if tenant is None or tenant.is_public or tenant.status == TenantStatus.DELETED:
        return None
    if can_administer(user, tenant):
        return TENANT_ADMIN_PERMISSIONS
    if getattr(user, "tenant_id", None) == tenant.id:
        return user.tenant_permissions()
    return None


def tenant_users(tenant: Tenant) -> QuerySet[User]:
    return User.objects.filter(tenant=tenant).select_related("custom_role")


#: How close to its end a tenant's TLS certificate is flagged (its page, the dashboard).
CERTIFICATE_WARNING_DAYS = 30


def expiring_certificates(tenant, days: int = CERTIFICATE_WARNING_DAYS):
    """The tenant's certificates that serve a host name and end within ``days`` (or ended),
    soonest first."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import TenantCertificate

    return (
        TenantCertificate.objects.filter(
            tenant=tenant, not_after__lte=timezone.now() + timedelta(days=days)
        )
        .filter(host_rows__isnull=False)
        .distinct()
        .prefetch_related("host_rows")
        .order_by("not_after", "id")
    )
