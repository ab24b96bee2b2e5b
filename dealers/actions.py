"""Business writes for the dealer tree."""

from django.db import transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from tenants.actions import _delete_sessions, delete_users
from tenants.capabilities import check_covers_children, check_within
from tenants.choices import TenantStatus

from .models import Dealer

MAX_DEPTH = 8


def do_create_dealer(*, name: str, parent: Dealer | None, actor: Actor, **fields) -> Dealer:
    """Create a dealer under ``parent`` (None: directly under the service provider)."""
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
        dealer = Dealer.objects.create(name=name, parent=parent, **fields)
        dealer.path = f"{parent.path if parent else '/'}{dealer.pk}/"
        dealer.save(update_fields=["path"])
        audit.record(
            actor, "dealer.create", dealer, dealer=dealer, changes={"name": name, **fields}
        )
    return dealer


def do_update_dealer(dealer: Dealer, *, actor: Actor, **fields) -> Dealer:
    with transaction.atomic():
        dealer = Dealer.objects.select_for_update().get(pk=dealer.pk)
        check_within(dealer.parent, fields, parent_label=str(dealer.parent or ""))
        children = [
            *dealer.children.all(),
            *dealer.tenants.exclude(status=TenantStatus.DELETED),
        ]
        check_covers_children(dealer, fields, children, label=str(dealer))
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
        user_ids = list(dealer.users.values_list("pk", flat=True))
        _delete_sessions(user_ids)
        delete_users(dealer.users.all())
        dealer.tenants.update(dealer=None)
        dealer.delete()
