"""Rate tables, balances, charges and invoices (public schema).

Money is ``Decimal`` with four places in the database and whole ten-thousandths
(``contract.MONEY_SCALE``) wherever the engine counts it; ``billing.money`` converts.

- :class:`RateTable` / :class:`Rate`: prices by destination prefix (longest match). A table
  belongs to the provider (``dealer`` None) or to a dealer; a table with a ``base`` is the
  base's rates marked up by ``markup_percent`` (a dealer's sell table over what it buys), its
  own rows overriding single prefixes. ``kind`` buy: what a carrier charges the provider,
  assigned to trunks (``trunks``); sell: what a tenant pays, assigned by its account.
- :class:`BillingAccount`: one per billed tenant: prepaid (a balance that calls draw down;
  credit stop at zero) or postpaid (invoiced monthly; calls stop at ``credit_limit`` owed).
- :class:`LedgerEntry`: every movement of a balance (top-up, charge, adjustment), with the
  balance it left; a call is charged once (unique ``call_id`` per account for charges).
- :class:`Invoice`: a postpaid tenant's month, its totals frozen when issued.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from tenants.choices import BillingMode

ZERO = Decimal("0")


def money_field(**kwargs):
    return models.DecimalField(max_digits=14, decimal_places=4, default=ZERO, **kwargs)


class RateKind(models.TextChoices):
    SELL = "sell", "Sell rates (what tenants pay)"
    BUY = "buy", "Buy rates (what a carrier charges)"


class RateTable(models.Model):
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=8, choices=RateKind.choices, default=RateKind.SELL)
    dealer = models.ForeignKey(
        "dealers.Dealer",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="rate_tables",
    )
    currency = models.CharField(max_length=3, default="USD")
    base = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived"
    )
    markup_percent = models.DecimalField(max_digits=7, decimal_places=3, default=ZERO)
    description = models.CharField(max_length=255, blank=True)
    trunks = models.ManyToManyField("trunks.Trunk", blank=True, related_name="buy_rate_tables")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dealer", "name"], name="rate_table_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Rate(models.Model):
    """The price of calls to one prefix (``contract.Rate`` says how it is applied)."""

    table = models.ForeignKey(RateTable, on_delete=models.CASCADE, related_name="rates")
    prefix = models.CharField(max_length=16)  # E.164 digits, no "+"
    description = models.CharField(max_length=120, blank=True)
    per_minute = models.DecimalField(max_digits=12, decimal_places=4, default=ZERO)
    connection_fee = models.DecimalField(max_digits=12, decimal_places=4, default=ZERO)
    first_interval = models.PositiveIntegerField(default=60)
    next_interval = models.PositiveIntegerField(default=60)
    free_seconds = models.PositiveIntegerField(default=0)
    grace_seconds = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["table_id", "prefix"]
        constraints = [
            models.UniqueConstraint(fields=["table", "prefix"], name="rate_prefix_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} {self.per_minute}/min"


class BillingAccount(models.Model):
    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="billing_account"
    )
    mode = models.CharField(max_length=16, choices=BillingMode.choices, default=BillingMode.NONE)
    currency = models.CharField(max_length=3, default="USD")
    rate_table = models.ForeignKey(
        RateTable, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    balance = money_field()
    credit_limit = money_field()  # postpaid: how much may be owed before calls stop
    low_balance = money_field()  # prepaid: warn by e-mail when the balance falls below it
    low_balance_email = models.EmailField(blank=True)  # "" = the tenant admins' addresses
    low_balance_sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id"]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.mode} {self.balance} {self.currency}"


class LedgerKind(models.TextChoices):
    TOPUP = "topup", "Top-up"
    CHARGE = "charge", "Call charge"
    ADJUSTMENT = "adjustment", "Adjustment"


class LedgerEntry(models.Model):
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="ledger")
    kind = models.CharField(max_length=16, choices=LedgerKind.choices)
    amount = money_field()  # signed: + credits the account, - debits it
    balance_after = money_field()
    call_id = models.CharField(max_length=128, blank=True)
    cdr_id = models.PositiveBigIntegerField(null=True, blank=True)  # in the tenant's schema
    description = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "call_id"],
                condition=models.Q(kind="charge"),
                name="ledger_charge_once",
            ),
        ]
        indexes = [models.Index(fields=["account", "-created_at"], name="ledger_account_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount}"


class Invoice(models.Model):
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="invoices")
    number = models.CharField(max_length=32, unique=True)
    period_start = models.DateField()
    period_end = models.DateField()  # exclusive: the first day after the period
    currency = models.CharField(max_length=3, default="USD")
    calls = models.PositiveIntegerField(default=0)
    seconds = models.PositiveBigIntegerField(default=0)
    total = money_field()
    issued_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "period_start"], name="invoice_period_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class ReportFrequency(models.TextChoices):
    DAILY = "daily", "Every day (the day before)"
    WEEKLY = "weekly", "Every Monday (the week before)"
    MONTHLY = "monthly", "On the 1st (the month before)"


class ReportSchedule(models.Model):
    """A call report mailed to ``recipients`` (comma-separated) every day, week or month: the
    tenant's calls and cost of the period before, grouped by ``group_by`` (extension, trunk,
    DID), with its CSV attached."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="report_schedules"
    )
    name = models.CharField(max_length=120)
    frequency = models.CharField(
        max_length=16, choices=ReportFrequency.choices, default=ReportFrequency.MONTHLY
    )
    group_by = models.CharField(max_length=16, default="extension")
    recipients = models.CharField(max_length=1000)
    enabled = models.BooleanField(default=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    last_period_start = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["tenant_id", "name"]

    def __str__(self) -> str:
        return self.name
