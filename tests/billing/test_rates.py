"""A table's effective rates (``billing.rates``): its own rows, over its base chain marked up.

Tables and rates are made through the actions and read back as the engine is given them
(money in ``contract.MONEY_SCALE`` units).
"""

from decimal import Decimal

import pytest

from billing import rate_tables as actions
from billing.models import RateTable
from billing.rates import effective_items, effective_rates
from pbx.audit import SYSTEM
from telephony.sip.contract import MONEY_SCALE

pytestmark = pytest.mark.django_db


def table(name, *, base=None, markup="0", kind="sell", dealer=None):
    return actions.do_create_rate_table(
        actor=SYSTEM,
        fields={"name": name, "kind": kind, "base": base, "markup_percent": Decimal(markup)},
        dealer=dealer,
    )


def rate(tbl, prefix, per_minute, fee="0", **kw):
    return actions.do_create_rate(
        tbl,
        actor=SYSTEM,
        fields={"prefix": prefix, "per_minute": per_minute, "connection_fee": fee, **kw},
    )


def units(amount: str) -> int:
    return int(Decimal(amount) * MONEY_SCALE)


def test_no_table_charges_nothing():
    assert effective_rates(None) == {}
    assert effective_items(None) == []


def test_a_table_of_its_own_rows_charges_them_as_set():
    t = table("Own")
    rate(t, "44", "0.0120", "0.0500", first_interval=30, next_interval=6, free_seconds=5)
    rate(t, "1", "0.0100", grace_seconds=3)
    got = effective_rates(t)
    assert set(got) == {"44", "1"}
    uk = got["44"]
    assert (uk.per_minute, uk.connection_fee) == (units("0.012"), units("0.05"))
    assert (uk.first_interval, uk.next_interval, uk.free_seconds) == (30, 6, 5)
    assert got["1"].grace_seconds == 3


def test_a_derived_table_marks_up_its_base_and_keeps_the_terms():
    base = table("Provider sell")
    rate(base, "44", "0.0100", "0.0200", first_interval=30, next_interval=6, free_seconds=4)
    dealer = table("Dealer sell", base=base, markup="10")
    got = effective_rates(dealer)["44"]
    assert got.per_minute == units("0.011")
    assert got.connection_fee == units("0.022")
    # Only money is marked up: the billing terms are the base's.
    assert (got.first_interval, got.next_interval, got.free_seconds) == (30, 6, 4)


def test_a_markup_never_rounds_a_price_down():
    base = table("Base")
    rate(base, "49", "0.0123")  # 123 units * 1.1 = 135.3
    got = effective_rates(table("Up", base=base, markup="10"))["49"]
    assert got.per_minute == 136


def test_a_negative_markup_is_a_discount():
    base = table("Base")
    rate(base, "33", "0.0100")
    assert effective_rates(table("Cheaper", base=base, markup="-10"))["33"].per_minute == 90


def test_own_rows_override_the_base_and_are_not_marked_up():
    base = table("Base")
    rate(base, "44", "0.0100")
    rate(base, "447", "0.0500")
    derived = table("Derived", base=base, markup="50")
    rate(derived, "447", "0.0300", first_interval=1, next_interval=1)
    got = effective_rates(derived)
    assert got["44"].per_minute == units("0.015")  # from the base, marked up
    assert got["447"].per_minute == units("0.03")  # its own, as set
    assert got["447"].first_interval == 1
    # The base itself is untouched.
    assert effective_rates(base)["447"].per_minute == units("0.05")


def test_each_level_of_a_chain_marks_up_what_is_below_it():
    provider = table("Provider")
    rate(provider, "1", "0.0100")
    dealer = table("Dealer", base=provider, markup="10")
    rate(dealer, "44", "0.0200")
    sub = table("Sub-dealer", base=dealer, markup="20")
    got = effective_rates(sub)
    assert got["1"].per_minute == units("0.0132")  # 100 * 1.1 * 1.2
    assert got["44"].per_minute == units("0.024")  # the dealer's own row, marked up once


def test_a_loop_in_the_chain_is_cut_and_does_not_hang():
    a = table("A")
    rate(a, "1", "0.0100")
    b = table("B", base=a, markup="10")
    rate(b, "2", "0.0200")
    # The actions refuse a loop; one made behind their back must still not hang the rating.
    RateTable.objects.filter(pk=a.pk).update(base=b)
    a.refresh_from_db()
    got = effective_rates(a)
    assert set(got) == {"1", "2"}


def test_items_are_in_prefix_order_as_decimals_and_searchable():
    t = table("Listed")
    for prefix in ("49", "1", "44", "441"):
        rate(t, prefix, "0.0105")
    items = effective_items(t)
    assert [i["prefix"] for i in items] == ["1", "44", "441", "49"]
    assert items[0]["per_minute"] == Decimal("0.0105")
    assert [i["prefix"] for i in effective_items(t, "44")] == ["44", "441"]
