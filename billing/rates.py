"""The rates a table charges: its own rows, over its base's rates marked up.

A derived table (``base`` set) charges its base's effective rates times
``1 + markup_percent / 100`` (money only: the intervals, free seconds and grace stay), and its
own rows override single prefixes. Chains are followed to the root (a sub-dealer over a dealer
over the provider); a loop is cut where it closes.
"""

from __future__ import annotations

from decimal import Decimal

from telephony.sip.contract import Rate

from .models import Rate as RateRow
from .models import RateTable
from .money import from_units, to_units


def as_contract(row: RateRow) -> Rate:
    return Rate(
        prefix=row.prefix,
        per_minute=to_units(row.per_minute),
        connection_fee=to_units(row.connection_fee),
        first_interval=max(1, row.first_interval),
        next_interval=max(1, row.next_interval),
        free_seconds=row.free_seconds,
        grace_seconds=row.grace_seconds,
    )


def chain_of(table: RateTable | None) -> list[RateTable]:
    """``table`` and its bases, the table first (a loop is cut where it closes)."""
    chain: list[RateTable] = []
    seen: set[int] = set()
    node = table
    while node is not None and node.pk not in seen:
        seen.add(node.pk)
        chain.append(node)
        node = node.base
    return chain


def effective_rates(table: RateTable | None) -> dict[str, Rate]:
    """``table``'s rates by prefix, in money units, as calls are charged (``{}`` for None)."""
    chain = chain_of(table)
    rates: dict[str, Rate] = {}
    # From the root down: each level marks up what is below it, then sets its own rows.
    for level in reversed(chain):
        factor = Decimal(1) + level.markup_percent / 100
        if rates:
            rates = {p: marked_up(r, factor) for p, r in rates.items()}
        for row in RateRow.objects.filter(table=level):
            rates[row.prefix] = as_contract(row)
    return rates


def marked_up(rate: Rate, factor: Decimal) -> Rate:
    if factor == 1:
        return rate
    return Rate(
        prefix=rate.prefix,
        per_minute=int((rate.per_minute * factor).to_integral_value(rounding="ROUND_CEILING")),
        connection_fee=int(
            (rate.connection_fee * factor).to_integral_value(rounding="ROUND_CEILING")
        ),
        first_interval=rate.first_interval,
        next_interval=rate.next_interval,
        free_seconds=rate.free_seconds,
        grace_seconds=rate.grace_seconds,
    )


def effective_items(table: RateTable | None, search: str = "") -> list[dict]:
    """``table``'s effective rates in prefix order, money as decimals of the table's currency,
    as people read them (``search``: leading digits of the prefixes wanted)."""
    rates = effective_rates(table)
    return [
        {
            "prefix": prefix,
            "per_minute": from_units(rate.per_minute),
            "connection_fee": from_units(rate.connection_fee),
            "first_interval": rate.first_interval,
            "next_interval": rate.next_interval,
            "free_seconds": rate.free_seconds,
            "grace_seconds": rate.grace_seconds,
        }
        for prefix, rate in sorted(rates.items())
        if prefix.startswith(search)
    ]
