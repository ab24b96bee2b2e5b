"""Changing billing accounts: top-ups, adjustments and the account's settings.

Each change locks the account row, writes a ledger row for any money it moves, and after the
commit writes the tenant's credit to Redis (``billing.credit``); a change of what the engine
reads (mode, currency, rate table, credit limit) republishes the tenant's snapshot. Rate-table
changes republish every tenant whose table's chain holds the changed table: the rate-table
actions (and the CSV import) call :func:`rate_tables_changed`, which does it in one step after
the commit.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.validators import validate_email
from django.db import transaction

from pbx.audit import Actor, record
from pbx.errors import ValidationFailed
from telephony.engine.snapshots import publish_tenant
from tenants.choices import BillingMode

from . import credit
from .charging import low_balance_on_commit
from .models import BillingAccount, LedgerEntry, LedgerKind, RateKind, RateTable
from .money import PLACES
from .tasks import publish_tenants

MAX_AMOUNT = Decimal("1000000000")
# Snapshots republished in the committing process; more go to the workers in chunks.
INLINE_PUBLISHES = 10
PUBLISH_CHUNK = 100  # ten digits before the point: the field holds 14 with 4


def parse_amount(value: Any, field: str = "amount", *, positive: bool = True) -> Decimal:
    """``value`` as money with at most four places, or a clear error naming ``field``."""
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationFailed("Not an amount.", fields={field: ["enter a number"]}) from None
    if not amount.is_finite():
        raise ValidationFailed("Not an amount.", fields={field: ["enter a number"]})
    if amount.copy_abs() >= MAX_AMOUNT:
        raise ValidationFailed("The amount is too large.", fields={field: ["too large"]})
    if amount != amount.quantize(PLACES, rounding="ROUND_DOWN"):
        raise ValidationFailed(
            "Too many decimal places.", fields={field: ["at most 4 decimal places"]}
        )
    if positive and amount <= 0:
        raise ValidationFailed("The amount must be positive.", fields={field: ["must be > 0"]})
    return amount.quantize(PLACES)


def account_for(tenant) -> BillingAccount:
    """The tenant's account (created, billing off, on first use)."""
    account, _ = BillingAccount.objects.get_or_create(tenant=tenant)
    return account


def _locked(account: BillingAccount) -> BillingAccount:
    return BillingAccount.objects.select_for_update().select_related("tenant").get(pk=account.pk)


def _move(
    account: BillingAccount, amount: Decimal, kind: str, by: Actor | None, note: str
) -> LedgerEntry:
    locked = _locked(account)
    if (locked.balance + amount).copy_abs() >= MAX_AMOUNT:
        raise ValidationFailed("The balance would be too large.", fields={"amount": ["too large"]})
    locked.balance += amount
    if locked.balance >= locked.low_balance:
        locked.low_balance_sent_at = None  # the next fall below warns again
    credit.touch(locked)
    locked.save(update_fields=["balance", "low_balance_sent_at", "updated_at"])
    entry = LedgerEntry.objects.create(
        account=locked,
        kind=kind,
        amount=amount,
        balance_after=locked.balance,
        description=clean_note(note),
        created_by=by.user if by else None,
    )
    if by is not None:
        record(by, f"billing.{kind}", entry, tenant=locked.tenant, changes={"amount": amount})
    credit.sync_on_commit(locked)
    if amount < 0 and locked.mode == BillingMode.PREPAID:
        low_balance_on_commit(locked)  # an adjustment down may cross the warning level too
    account.balance, account.updated_at = locked.balance, locked.updated_at
    account.low_balance_sent_at = locked.low_balance_sent_at
    return entry


def clean_note(note: str) -> str:
    """A ledger note on one line, printable, at most 255 characters (it reaches PDFs and
    CSV files)."""
    text = " ".join(str(note or "").split())
    return "".join(c for c in text if c.isprintable())[:255]


@transaction.atomic
def top_up(
    account: BillingAccount, amount: Any, by: Actor | None = None, note: str = ""
) -> LedgerEntry:
    """Credit ``amount`` (positive, four places at most) to the account."""
    return _move(account, parse_amount(amount), LedgerKind.TOPUP, by, note or "Top-up")


@transaction.atomic
def adjust(
    account: BillingAccount, amount: Any, by: Actor | None = None, note: str = ""
) -> LedgerEntry:
    """Move the balance by ``amount`` (either sign, not zero): a correction or refund."""
    value = parse_amount(amount, positive=False)
    if value == 0:
        raise ValidationFailed("The amount must not be zero.", fields={"amount": ["must not be 0"]})
    if not clean_note(note):
        raise ValidationFailed("Say why.", fields={"note": ["required for an adjustment"]})
    return _move(account, value, LedgerKind.ADJUSTMENT, by, note)


SETTINGS = ("mode", "currency", "rate_table", "credit_limit", "low_balance", "low_balance_email")


@transaction.atomic
def configure(
    account: BillingAccount, data: dict, by: Actor | None = None, *, dealer=None
) -> BillingAccount:
    """Change the account's settings (``SETTINGS``; absent keys stay). ``dealer``: the acting
    dealer admin's dealer, whose subtree's (or the provider's) sell tables it may assign."""
    locked = _locked(account)
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    if "mode" in data:
        if data["mode"] not in BillingMode.values:
            errors["mode"] = [f"one of {', '.join(BillingMode.values)}"]
        else:
            changes["mode"] = data["mode"]
    if "currency" in data:
        code = str(data["currency"] or "").strip().upper()
        if len(code) != 3 or not code.isalpha() or not code.isascii():
            errors["currency"] = ["a three-letter ISO 4217 code"]
        else:
            changes["currency"] = code
    for name in ("credit_limit", "low_balance"):
        if name in data:
            try:
                value = parse_amount(data[name], name, positive=False)
            except ValidationFailed as exc:
                errors.update(exc.fields)
                continue
            if value < 0:
                errors[name] = ["must not be negative"]
            else:
                changes[name] = value
    if "low_balance_email" in data:
        email = str(data["low_balance_email"] or "").strip()
        try:
            if email:
                validate_email(email)
            changes["low_balance_email"] = email
        except Exception:
            errors["low_balance_email"] = ["enter a valid e-mail address"]
    if "rate_table" in data:
        table_id = data["rate_table"]
        if table_id in (None, ""):
            changes["rate_table"] = None
        else:
            table = (
                sell_tables_for(dealer).filter(pk=table_id).first()
                if str(table_id).isdigit()
                else None
            )
            if table is None:
                errors["rate_table"] = ["unknown sell rate table"]
            else:
                changes["rate_table"] = table
    if errors:
        raise ValidationFailed("The billing settings are not valid.", fields=errors)
    for name, value in changes.items():
        setattr(locked, name, value)
    credit.touch(locked)
    locked.save(update_fields=[*(n for n in changes), "updated_at"])
    if by is not None:
        record(
            by,
            "billing.configure",
            locked,
            tenant=locked.tenant,
            changes={k: getattr(v, "pk", v) for k, v in changes.items()},
        )
    credit.sync_on_commit(locked)
    publish_tenants_on_commit({locked.tenant_id})
    return locked


def sell_tables_for(dealer) -> Any:
    """The sell tables a dealer admin may assign: its own subtree's (its tenants pay its
    prices); the provider (``dealer`` None) may assign any."""
    tables = RateTable.objects.filter(kind=RateKind.SELL)
    if dealer is None:
        return tables
    return tables.filter(dealer__path__startswith=dealer.path)


# ------------------------------------------------------------------------- republishing


def tables_over(table_ids: set[int]) -> set[int]:
    """``table_ids`` and every table derived from them, at any depth."""
    found = set(table_ids)
    frontier = set(table_ids)
    while frontier:
        frontier = (
            set(RateTable.objects.filter(base_id__in=frontier).values_list("pk", flat=True)) - found
        )
        found |= frontier
    return found


def rate_tables_changed(*table_ids: int) -> None:
    """Republish, after the commit, every tenant whose sell table is one of ``table_ids`` or
    derived from one of them (a provider table used by 1,000 tenants: 1,000 snapshots, once
    per transaction however many rows changed)."""
    tables = tables_over({t for t in table_ids if t})
    tenants = set(
        BillingAccount.objects.filter(rate_table_id__in=tables)
        .exclude(mode=BillingMode.NONE)
        .values_list("tenant_id", flat=True)
    )
    publish_tenants_on_commit(tenants)


def publish_tenants_on_commit(tenant_ids: set[int]) -> None:
    """Publish these tenants' snapshots after the commit, each once per transaction (one
    callback collects every tenant the transaction changed)."""
    if not tenant_ids:
        return
    for entry in transaction.get_connection().run_on_commit:
        pending = getattr(entry[1], "billing_tenants", None)
        if pending is not None and not entry[1].done:
            pending |= tenant_ids
            return
    pending = set(tenant_ids)

    def publish() -> None:
        publish.done = True  # type: ignore[attr-defined]
        if len(pending) > INLINE_PUBLISHES:
            # A table many tenants use: the workers rebuild them, not this request.
            ids = sorted(pending)
            for start in range(0, len(ids), PUBLISH_CHUNK):
                publish_tenants.delay(ids[start : start + PUBLISH_CHUNK])
            return
        for tenant_id in sorted(pending):
            publish_tenant(tenant_id)

    publish.billing_tenants = pending  # type: ignore[attr-defined]
    publish.done = False  # type: ignore[attr-defined]
    transaction.on_commit(publish)
