"""What the engine needs of a tenant's billing (``contract.BillingSnapshot``): the mode of its
account, its currency and the effective rates of its sell table. A tenant without an account
(or with mode ``none``) is not billed and its calls are not limited."""

from __future__ import annotations

from telephony.sip.contract import BillingMode, BillingSnapshot

from .models import BillingAccount
from .rates import effective_rates


def billing_snapshot(tenant) -> BillingSnapshot:
    account = (
        BillingAccount.objects.select_related("rate_table").filter(tenant_id=tenant.pk).first()
    )
    if account is None or account.mode == BillingMode.NONE:
        return BillingSnapshot()
    return BillingSnapshot(
        mode=BillingMode(account.mode),
        currency=account.currency,
        rates=effective_rates(account.rate_table),
    )
