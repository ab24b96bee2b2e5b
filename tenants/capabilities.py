"""Capability inheritance: nobody gives away more than it was given."""

from pbx.errors import CapabilityExceeded

from .choices import BillingMode
from .models import CAPABILITY_FEATURES, CAPABILITY_LIMITS


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
