"""Rating and charging an outside call when its CDR ends (called by the CDR consumer,
``telephony.engine.cdr.apply_events``, inside its transaction and the tenant's schema).

An outbound call that went out a trunk to a number is rated with the tenant's sell rate (its
account's table, longest prefix) into ``Cdr.cost``/``currency``/``rate_prefix``, and with the
trunk's buy rate (the buy table the trunk is assigned to) into ``Cdr.buy_cost``. A billed
account (prepaid or postpaid) is debited by the cost in the same transaction, with a ledger
row per call: the account row is locked while it changes, so concurrent charges of one tenant
add up exactly, and a call already charged (a re-delivered event) is not charged again, by the
CDR's ``cost`` being set and, behind it, the ledger's one-charge-per-call constraint. After the
commit the tenant's credit is written to Redis with the call's hold gone (``billing.credit``)
and a prepaid balance that fell below its warning level is mailed about (``billing.tasks``).
"""

from __future__ import annotations

from decimal import Decimal

from django.db import connection, transaction

from telephony.sip.contract import BillingMode, Rate

from . import credit
from .models import BillingAccount, LedgerEntry, LedgerKind, RateKind, RateTable
from .models import Rate as RateRow
from .money import from_units
from .rates import as_contract, chain_of, marked_up

MAX_PREFIX = 16


def rate_for(table: RateTable | None, number: str) -> Rate | None:
    """The rate ``table`` charges calls to ``number``: the same as
    ``effective_rates(table)`` then ``BillingSnapshot.rate_for`` (what the engine held the call
    with), in one query of the chain's rows for the number's prefixes."""
    return rates_for([table], number)[0]


def rates_for(tables: list[RateTable | None], number: str) -> list[Rate | None]:
    """:func:`rate_for` of each of ``tables`` (a call's buy and sell table), in one query of
    their chains' rows for the number's prefixes."""
    digits = number.lstrip("+")
    chains = [chain_of(table) for table in tables]
    if not digits.isdigit() or not any(chains):
        return [None] * len(tables)
    prefixes = [digits[:end] for end in range(1, min(len(digits), MAX_PREFIX) + 1)]
    ids = {t.pk for chain in chains for t in chain}
    rows = list(RateRow.objects.filter(table__in=ids, prefix__in=prefixes))
    return [_best(chain, rows) for chain in chains]


def _best(chain: list[RateTable], rows: list[RateRow]) -> Rate | None:
    """The longest prefix of ``rows`` in ``chain``, from its nearest table, marked up."""
    level = {t.pk: i for i, t in enumerate(chain)}
    rows = [r for r in rows if r.table_id in level]
    if not rows:
        return None
    longest = max(len(r.prefix) for r in rows)
    row = min((r for r in rows if len(r.prefix) == longest), key=lambda r: level[r.table_id])
    rate = as_contract(row)
    # Marked up by each table above the row's, from the nearest down to ``table``.
    for above in reversed(chain[: level[row.table_id]]):
        rate = marked_up(rate, Decimal(1) + above.markup_percent / 100)
    return rate


def buy_table(trunk_id: int) -> RateTable | None:
    return (
        RateTable.objects.filter(kind=RateKind.BUY, trunks__id=trunk_id)
        .select_related("base")
        .order_by("id")
        .first()
    )


def chargeable(cdr) -> bool:
    from telephony.models import CallDirection

    return (
        cdr.ended_at is not None
        and cdr.cost is None
        and cdr.direction == CallDirection.OUTBOUND
        and bool(cdr.trunk)
        and bool(cdr.number)
    )


def rate_call(cdr) -> BillingAccount | None:
    """Rate ``cdr`` (ended, in the current schema, before it is written: the costs are written
    with it); returns its tenant's billed account, locked, to :func:`charge_call` once the CDR is
    saved (None: nothing to charge). Must run inside the transaction that ended the CDR."""
    if not chargeable(cdr):
        return None
    schema = getattr(connection, "schema_name", "public")
    account = (
        BillingAccount.objects.select_for_update(of=("self",))
        .select_related("tenant", "rate_table__base")
        .filter(tenant__schema_name=schema)
        .first()
    )
    buy = buy_table(cdr.trunk)
    buy_rate, sell = rates_for([buy, account.rate_table if account else None], cdr.number)
    if buy_rate is not None:
        cdr.buy_cost = from_units(buy_rate.cost(cdr.billsec))
    if account is not None and sell is not None:
        cost = from_units(sell.cost(cdr.billsec))
        cdr.cost, cdr.currency, cdr.rate_prefix = cost, account.currency, sell.prefix
    elif buy is not None and cdr.buy_cost is not None:
        cdr.currency = buy.currency
    if account is None or account.mode == BillingMode.NONE:
        return None
    return account


def charge_call(cdr, account: BillingAccount) -> None:
    """Charge the saved ``cdr``'s cost (:func:`rate_call`) to the locked ``account``, in the
    transaction that rated it."""
    cost = cdr.cost
    if (
        cost
        and not LedgerEntry.objects.filter(
            account=account, kind=LedgerKind.CHARGE, call_id=cdr.call_id
        ).exists()
    ):
        debit(account, cost, cdr)
    # The engine's hold on the call goes even when it cost nothing (unanswered, free).
    credit.sync_on_commit(account, [cdr.call_id])
    if account.mode == BillingMode.PREPAID:
        low_balance_on_commit(account)


def debit(account: BillingAccount, cost: Decimal, cdr) -> LedgerEntry:
    """Take ``cost`` off the locked ``account`` for ``cdr``'s call (prepaid and postpaid
    alike: the engine stopped the call at the credit the account had)."""
    account.balance -= cost
    credit.touch(account)
    account.save(update_fields=["balance", "updated_at"])
    return LedgerEntry.objects.create(
        account=account,
        kind=LedgerKind.CHARGE,
        amount=-cost,
        balance_after=account.balance,
        call_id=cdr.call_id,
        cdr_id=cdr.pk,
        description=f"Call to +{cdr.number.lstrip('+')} ({cdr.billsec} s)"[:255],
    )


def low_balance_on_commit(account: BillingAccount) -> None:
    """Queue the low-balance mail once the charge commits, if the balance fell below the
    warning level and it was not sent yet (the task checks again under the row lock)."""
    if (
        account.low_balance > 0
        and account.balance < account.low_balance
        and account.low_balance_sent_at is None
    ):
        from .tasks import send_low_balance

        account_id = account.pk
        transaction.on_commit(lambda: send_low_balance.delay(account_id))
