"""Background jobs of billing: the low-balance warning and the monthly postpaid invoices."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from pbx.celery import every

log = logging.getLogger(__name__)

# Invoices of last month are issued by a run early each month; the task is idempotent per
# period, so it runs every few hours and the first run of a month does the work (a worker down
# on the 1st issues them when it is back).
INVOICE_EVERY_SECONDS = 6 * 3600


@shared_task(name="billing.send_low_balance", ignore_result=True)
def send_low_balance(account_id: int) -> bool:
    """Mail the tenant (its account's address, else its admins) that its prepaid balance is
    below the warning level: once, until a top-up lifts it above again."""
    from django.template.loader import render_to_string

    from branding.mail import send_mail
    from tenants.access import tenant_users
    from tenants.choices import BillingMode, Role

    from .models import BillingAccount

    with transaction.atomic():
        account = (
            BillingAccount.objects.select_for_update()
            .select_related("tenant")
            .filter(pk=account_id)
            .first()
        )
        if (
            account is None
            or account.mode != BillingMode.PREPAID
            or account.low_balance <= 0
            or account.balance >= account.low_balance
            or account.low_balance_sent_at is not None
        ):
            return False
        if account.low_balance_email:
            recipients = [account.low_balance_email]
        else:
            recipients = sorted(
                tenant_users(account.tenant)
                .filter(role=Role.TENANT_ADMIN, is_active=True)
                .values_list("email", flat=True)
            )
        if not recipients:
            log.warning("no address for the low-balance mail of tenant %s", account.tenant_id)
            return False
        # Marked and committed before the mail goes: the account row (charged by every call)
        # is not held locked while the mail server answers.
        sent_at = timezone.now()
        account.low_balance_sent_at = sent_at
        account.save(update_fields=["low_balance_sent_at"])
    # Plain text (no HTML): the tenant's name is written as it is, never interpreted.
    body = render_to_string(
        "mail/low_balance.txt",
        {
            "company": " ".join(account.tenant.name.split()),
            "balance": f"{account.balance:.2f}",
            "threshold": f"{account.low_balance:.2f}",
            "currency": account.currency,
        },
    )
    try:
        send_mail("Your call credit is running low", body, recipients, tenant=account.tenant)
    except Exception:
        # Not sent: unmark it (unless a top-up reset it meanwhile), so the next charge retries.
        BillingAccount.objects.filter(pk=account_id, low_balance_sent_at=sent_at).update(
            low_balance_sent_at=None
        )
        raise
    return True


@shared_task(name="billing.issue_invoices", ignore_result=True)
def issue_invoices() -> int:
    """Last month's invoices of every postpaid account (those issued before stay)."""
    from .invoices import issue_month, previous_month

    return len(issue_month(previous_month(timezone.now().date())))


@shared_task(name="billing.publish_tenants", ignore_result=True)
def publish_tenants(tenant_ids: list[int]) -> int:
    """Republish these tenants' snapshots (their rates changed)."""
    from telephony.engine.snapshots import publish_tenant

    for tenant_id in tenant_ids:
        publish_tenant(int(tenant_id))
    return len(tenant_ids)


every(INVOICE_EVERY_SECONDS, "billing.issue_invoices")
