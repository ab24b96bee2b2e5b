"""Who may see and change which rate tables (deny by default).

A system admin manages every table: the provider's (``dealer`` None, buy and sell) and every
dealer's. A dealer admin manages the tables of its dealer subtree, as it manages its tenants
and trunks, and may base a table on any of the provider's sell tables (what the provider sells
to it) or on a table it manages. Tenants never see tables; their own effective rates are read
through their billing account (``billing.api.rates.TenantRatesView``).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tenants.access import dealer_subtree_q
from tenants.choices import Role

from .models import RateKind, RateTable


def rate_tables_managed_by(user) -> QuerySet[RateTable]:
    if not getattr(user, "is_authenticated", False):
        return RateTable.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return RateTable.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return RateTable.objects.filter(dealer_subtree_q(user))
    return RateTable.objects.none()


def base_tables_for(user) -> QuerySet[RateTable]:
    """The tables ``user`` may base a table on: those it manages and the provider's sell
    tables."""
    if not getattr(user, "is_authenticated", False):
        return RateTable.objects.none()
    if user.role == Role.SYSTEM_ADMIN:
        return RateTable.objects.all()
    if user.role == Role.DEALER_ADMIN and user.dealer_id:
        return RateTable.objects.filter(
            dealer_subtree_q(user) | Q(dealer__isnull=True, kind=RateKind.SELL)
        )
    return RateTable.objects.none()
