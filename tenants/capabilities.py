"""Capability inheritance: nobody gives away more than it was given."""

from pbx.errors import CapabilityExceeded, QuotaExceeded

from .choices import BillingMode
from .fields import CAPABILITY_FEATURES, CAPABILITY_LIMITS


def check_within(parent, requested: dict, *, parent_label: str) -> None:
    """Raise if ``requested`` capabilities exceed ``parent``'s (a Dealer; None = no bound)."""
    if parent is None:
        return
    problems: dict[str, list[str]] = {}
    for name in CAPABILITY_LIMITS:
        if name in requested and requested[name] > getattr(parent, name):
            problems[name] = [f"at most {getattr(parent, name)} ({parent_label}'s own limit)"]
    for name in CAPABILITY_FEATURES:
        if requested.get(name) and not getattr(parent, name):
            problems[name] = [f"{parent_label} does not have this feature"]
    mode = requested.get("billing_mode")
    if mode and mode != BillingMode.NONE and mode != parent.billing_mode:
        problems["billing_mode"] = [f"{parent_label} may only give '{parent.billing_mode}'"]
    if problems:
        raise CapabilityExceeded(
            f"The requested capabilities exceed what {parent_label} was given.", fields=problems
        )


def check_covers_children(owner, requested: dict, children, *, label: str) -> None:
    """Lowering an owner's limits below what its children already hold is refused."""
    problems: dict[str, list[str]] = {}
    for child in children:
        for name in CAPABILITY_LIMITS:
            if name in requested and requested[name] < getattr(child, name):
                problems.setdefault(name, []).append(f"{child} already has {getattr(child, name)}")
        for name in CAPABILITY_FEATURES:
            if name in requested and not requested[name] and getattr(child, name):
                problems.setdefault(name, []).append(f"{child} uses this feature")
    if problems:
        raise CapabilityExceeded(
            f"{label} cannot be given less than its tenants and sub-dealers hold.", fields=problems
        )


# A dealer's tenant and extension limits are totals for its whole subtree (as in PortSIP): its
# own tenants and their extension quotas, plus what it handed to its sub-dealers, stay within
# them. Each sub-dealer's limits are then its own subtree's total, so one level is checked.
TOTAL_LIMITS = ("max_tenants", "max_extensions")


def allocated(dealer, *, skip_tenant=None, skip_dealer=None) -> dict[str, int]:
    """What ``dealer`` has handed out: its live tenants (count and extension quotas) and its
    sub-dealers' tenant and extension limits. ``skip_*`` leaves out the row being changed."""
    from django.db.models import Count, Sum
    from django.db.models.functions import Coalesce

    from .choices import TenantStatus
    from .models import Tenant

    tenants = Tenant.objects.filter(dealer=dealer).exclude(status=TenantStatus.DELETED)
    if skip_tenant is not None:
        tenants = tenants.exclude(pk=skip_tenant.pk)
    own = tenants.aggregate(n=Count("id"), ext=Coalesce(Sum("max_extensions"), 0))
    children = dealer.children.all()
    if skip_dealer is not None:
        children = children.exclude(pk=skip_dealer.pk)
    sub = children.aggregate(
        n=Coalesce(Sum("max_tenants"), 0), ext=Coalesce(Sum("max_extensions"), 0)
    )
    return {"max_tenants": own["n"] + sub["n"], "max_extensions": own["ext"] + sub["ext"]}


def with_default_totals(dealer, model, requested: dict, names=TOTAL_LIMITS) -> dict:
    """``requested`` with each unset limit of ``names`` at the model's default, but no more
    than ``dealer`` has left (None: no dealer, the default as it is). Call under the lock."""
    left = {}
    if dealer is not None:
        used = allocated(dealer)
        left = {n: max(0, getattr(dealer, n) - used[n]) for n in names}
    out = dict(requested)
    for name in names:
        if name not in out:
            default = model._meta.get_field(name).default
            out[name] = min(default, left[name]) if name in left else default
    return out


def check_totals(
    dealer, adding: dict[str, int], *, skip_tenant=None, skip_dealer=None, fields_as=None
) -> None:
    """Refuse ``adding`` (``{"max_tenants": n, "max_extensions": n}``) when the dealer's
    subtree would then hold more than its limits. Call with the dealer's row locked.
    ``fields_as`` renames the error fields (a new tenant's count is its ``dealer``'s)."""
    if dealer is None:
        return
    used = allocated(dealer, skip_tenant=skip_tenant, skip_dealer=skip_dealer)
    problems = {}
    for name in TOTAL_LIMITS:
        limit = getattr(dealer, name)
        if name in adding and used[name] + adding[name] > limit:
            free = max(0, limit - used[name])
            what = "tenants" if name == "max_tenants" else "extensions"
            problems[(fields_as or {}).get(name, name)] = [
                f"{dealer} has {free} of its {limit} {what} left for its tenants and sub-dealers"
            ]
    if problems:
        raise QuotaExceeded(
            f"{dealer}'s limits are totals for its tenants and sub-dealers: not enough left.",
            fields=problems,
        )


def check_holds_allocations(dealer, requested: dict) -> None:
    """A dealer's limits cannot be cut below what its subtree already holds."""
    used = allocated(dealer)
    problems = {
        name: [f"at least {used[name]} (given to its tenants and sub-dealers)"]
        for name in TOTAL_LIMITS
        if name in requested and requested[name] < used[name]
    }
    if problems:
        raise QuotaExceeded(f"{dealer} has handed out more than that.", fields=problems)
