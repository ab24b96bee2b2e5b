"""Money between the database (``Decimal``, four places) and the engine's whole units
(``contract.MONEY_SCALE`` per currency unit)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from telephony.sip.contract import MONEY_SCALE

PLACES = Decimal(1) / MONEY_SCALE


def to_units(amount: Decimal | int | str) -> int:
    """``amount`` in whole units (a fraction of a unit, which four places cannot hold, is
    rounded up: a price is never cut below what was set)."""
    return int((Decimal(amount) * MONEY_SCALE).to_integral_value(rounding=ROUND_CEILING))


def from_units(units: int) -> Decimal:
    return (Decimal(units) / MONEY_SCALE).quantize(PLACES)
