"""Business writes for the dealer tree."""

from django.db import transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.text import require_single_line
from tenants.actions import delete_owned_brand, delete_users
from tenants.capabilities import (
    TOTAL_LIMITS,
    check_covers_children,
    check_holds_allocations,
    check_totals,
    check_within,
    with_default_totals,
)
from tenants.choices import TenantStatus

from .models import Dealer

MAX_DEPTH = 8


def do_create_dealer(*, name: str, parent: Dealer | None, actor: Actor, **fields) -> Dealer:
    """Create a dealer under ``parent`` (None: directly under the service provider)."""
    _validate_dealer_fields({"name": name, **fields})
    check_within(parent, fields, parent_label=str(parent) if parent else "")
    with transaction.atomic():
        if parent is not None:
            parent = Dealer.objects.select_for_update().get(pk=parent.pk)
            if parent.depth >= MAX_DEPTH:
                raise ValidationFailed(
                    f"Dealers nest at most {MAX_DEPTH} levels.", fields={"parent": ["too deep"]}
                )
            if "max_tenants" in fields and fields["max_tenants"] > parent.max_tenants:
                raise ValidationFailed(
                    "More tenants than the parent dealer may have.",
                    fields={"max_tenants": [f"at most {parent.max_tenants}"]},
                )
            # Unset limits are the defaults, or what the parent has left if less.
            fields = with_default_totals(parent, Dealer, fields)
            check_totals(parent, {n: fields[n] for n in TOTAL_LIMITS})
        dealer = Dealer.objects.create(name=name, parent=parent, **fields)
        dealer.path = f"{parent.path if parent else '/'}{dealer.pk}/"
        dealer.save(update_fields=["path"])
        audit.record(
            actor, "dealer.create", dealer, dealer=dealer, changes={"name": name, **fields}
        )
    return dealer


def _validate_dealer_fields(fields: dict) -> None:
    # A dealer's name goes into mail (its tenants' invitations, From names): one line, as a
    # tenant's name does.
    require_single_line(fields, {"name": 120}, "Invalid dealer name.")


def do_update_dealer(dealer: Dealer, *, actor: Actor, **fields) -> Dealer:
    """Change a dealer's name, activity or capabilities (within its parent's, above its
    children's and what it has handed out)."""
    _validate_dealer_fields(fields)
    with transaction.atomic():
        # The dealer and its parent, locked in primary-key order: the parent's totals change.
        ids = [dealer.pk, dealer.parent_id] if dealer.parent_id else [dealer.pk]
        locked = {
            d.pk: d for d in Dealer.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        }
        parent = locked.get(dealer.parent_id) if dealer.parent_id else None
        dealer = locked[dealer.pk]
        check_within(parent, fields, parent_label=str(parent or ""))
        if parent is not None:
            if fields.get("max_tenants", 0) > parent.max_tenants:
                raise ValidationFailed(
                    "More tenants than the parent dealer may have.",
                    fields={"max_tenants": [f"at most {parent.max_tenants}"]},
                )
            growing = {
                n: fields[n] for n in TOTAL_LIMITS if n in fields and fields[n] > getattr(dealer, n)
            }
            check_totals(parent, growing, skip_dealer=dealer)
        children = [
            *dealer.children.all(),
            *dealer.tenants.exclude(status=TenantStatus.DELETED),
        ]
        check_covers_children(dealer, fields, children, label=str(dealer))
        check_holds_allocations(dealer, fields)
        changes = audit.diff(dealer, fields)
        for name, value in fields.items():
            setattr(dealer, name, value)
        dealer.save(update_fields=list(fields) or None)
        audit.record(actor, "dealer.update", dealer, dealer=dealer, changes=changes)
    return dealer


def do_delete_dealer(dealer: Dealer, *, actor: Actor) -> None:
    with transaction.atomic():
        dealer = Dealer.objects.select_for_update().get(pk=dealer.pk)
        if dealer.children.exists() or dealer.tenants.exclude(status=TenantStatus.DELETED).exists():
            raise Conflict(
                "The dealer still has sub-dealers or tenants.",
                fields={"dealer": ["move or delete its tenants and sub-dealers first"]},
            )
        audit.record(actor, "dealer.delete", dealer)
        delete_owned_brand(dealer=dealer, actor=actor)
        delete_users(dealer.users.all())
        dealer.tenants.update(dealer=None)
        dealer.delete()
