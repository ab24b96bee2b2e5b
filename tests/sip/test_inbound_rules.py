"""The pure decisions of trunk calls (``telephony.sip.calls.inbound``): which trunk, which
number, blacklist, rules (exact, range, pattern, caller), office hours in the tenant's zone
(across midnight and DST), holidays (dates, ranges, yearly over New Year)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from telephony.sip.calls.inbound import (
    HOLIDAY,
    IN_HOURS,
    OUT_OF_HOURS,
    TrunkIndex,
    contact_user,
    decide,
    e164,
    match_rule,
    target_for,
    time_slot,
)
from telephony.sip.contract import (
    Blocked,
    CarrierSnapshot,
    Holiday,
    InboundRule,
    RouteTarget,
    RoutingSnapshot,
    TrunkSnapshot,
)

EXT = RouteTarget("extension", "101")
VM = RouteTarget("voicemail", "101")
HOL = RouteTarget("extension", "102")


def carriers(*trunks: TrunkSnapshot) -> CarrierSnapshot:
    return CarrierSnapshot(trunks={t.id: t for t in trunks})


def test_trunk_identified_by_source_address_port_and_cidr() -> None:
    ip_trunk = TrunkSnapshot(id=1, addresses=("203.0.113.10",), source_port=5070)
    cidr = TrunkSnapshot(id=2, addresses=("198.51.100.0/24",))
    off = TrunkSnapshot(id=3, addresses=("192.0.2.1",), enabled=False)
    index = TrunkIndex.build(carriers(ip_trunk, cidr, off))
    assert index.identify("203.0.113.10", 5070) is ip_trunk
    assert index.identify("203.0.113.10", 5071) is None  # the phone next door, not the carrier
    assert index.identify("198.51.100.77", 40000) is cidr
    assert index.identify("192.0.2.1", 5060) is None  # disabled trunks take no calls
    assert index.identify("10.0.0.1", 5060) is None
    # Only a carrier without a port restriction is trusted past the flood counter.
    assert index.trusted == frozenset()


def test_registration_trunk_by_resolved_host_proxy_and_contact_user() -> None:
    reg = TrunkSnapshot(
        id=7,
        kind="register",
        host="sip.carrier.example",
        outbound_proxy="192.0.2.50:5080",
        source_port=5060,
    )
    index = TrunkIndex.build(carriers(reg), {"sip.carrier.example": ["192.0.2.40"]})
    assert index.identify("192.0.2.40", 5060) is reg
    assert index.identify("192.0.2.50", 5060) is reg
    assert index.identify("192.0.2.40", 6000) is None
    # The carrier calls our registered Contact from another port: still that trunk.
    assert index.identify("192.0.2.40", 6000, contact_user(reg)) is reg
    # The contact user from an address that is not the carrier's: nothing.
    assert index.identify("10.9.9.9", 5060, contact_user(reg)) is None


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("+4930123456", "", "+4930123456"),
        ("4930123456", "", "+4930123456"),
        ("004930123456", "", "+4930123456"),
        ("030123456", "DE", "+4930123456"),
        ("+1 (212) 555-0100", "US", "+12125550100"),
        ("2125550100", "US", "+12125550100"),
        ("1", "DE", None),
        ("abc", "", None),
        ("", "DE", None),
    ],
)
def test_e164(raw: str, country: str, expected: str | None) -> None:
    assert e164(raw, country) == expected


def test_rules_in_order_exact_range_pattern_and_caller() -> None:
    vip = InboundRule(id=1, number="+4930100", caller="+49151X.", in_hours=HOL)
    exact = InboundRule(id=2, number="+4930100", in_hours=EXT)
    rng = InboundRule(id=3, match="range", number="+4930200", number_end="+4930299", in_hours=VM)
    pat = InboundRule(id=4, match="pattern", number="+49304XX", in_hours=EXT)
    rules = (vip, exact, rng, pat)
    assert match_rule(rules, "+4930100", "+4915112345") is vip
    assert match_rule(rules, "+4930100", "+4917000000") is exact
    assert match_rule(rules, "+4930250", "") is rng
    assert match_rule(rules, "+4930300", "") is None  # outside the range
    assert match_rule(rules, "+49302999", "") is None  # longer than the range's numbers
    assert match_rule(rules, "+4930412", "") is pat
    assert match_rule(rules, "+49304123", "") is None


def test_blacklist_exact_and_prefix_answer_with_their_codes() -> None:
    routing = RoutingSnapshot(
        inbound=(InboundRule(id=1, number="+4930100", in_hours=EXT),),
        blacklist=(
            Blocked(number="+4915199999"),
            Blocked(number="+4990", prefix=True, action="reject"),
            Blocked(number="+4980", action="hangup"),
        ),
    )
    now = datetime.now(UTC)
    assert decide(routing, "+4930100", ["+4915199999"], now).code == 486
    assert decide(routing, "+4930100", ["+499001234"], now).code == 603
    # An exact entry is no prefix.
    assert decide(routing, "+4930100", ["+498012"], now).target == EXT
    assert decide(routing, "+4930100", ["+4980"], now).code == 480
    assert decide(routing, "+4930999", ["+4917000000"], now).code == 404  # no rule


def weekly(**days: list[tuple[int, int]]) -> tuple[tuple[tuple[int, int], ...], ...]:
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return tuple(tuple(days.get(n, [])) for n in names)


def at(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone)).astimezone(UTC)  # type: ignore[misc]


def test_office_hours_in_the_tenant_zone_and_across_midnight() -> None:
    # Night shift: Monday 22:00 to Tuesday 06:00 is two periods.
    routing = RoutingSnapshot(
        time_zone="Europe/Berlin",
        hours=True,
        weekly=weekly(mon=[(9 * 60, 17 * 60), (22 * 60, 1440)], tue=[(0, 6 * 60)]),
    )
    # 2026-03-02 is a Monday.
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 2, 9, 0)) == IN_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 2, 8, 59)) == OUT_OF_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 2, 17, 0)) == OUT_OF_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 2, 23, 30)) == IN_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 3, 5, 59)) == IN_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2026, 3, 3, 6, 0)) == OUT_OF_HOURS
    # 08:30 UTC is 09:30 in Berlin (in hours) and 03:30 in New York (out).
    utc = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    assert time_slot(routing, utc) == IN_HOURS
    ny = RoutingSnapshot(time_zone="America/New_York", hours=True, weekly=routing.weekly)
    assert time_slot(ny, utc) == OUT_OF_HOURS
    # Office hours off: always in hours.
    assert time_slot(RoutingSnapshot(hours=False), utc) == IN_HOURS


def test_office_hours_follow_daylight_saving_time() -> None:
    routing = RoutingSnapshot(time_zone="Europe/Berlin", hours=True, weekly=weekly(
        sun=[(9 * 60, 10 * 60)], sat=[(9 * 60, 10 * 60)]))  # fmt: skip
    # 2026-03-29 (Sunday): clocks go from 02:00 to 03:00 in Berlin. 09:30 local is 07:30 UTC
    # that day, but 08:30 UTC the day before.
    assert time_slot(routing, datetime(2026, 3, 29, 7, 30, tzinfo=UTC)) == IN_HOURS
    assert time_slot(routing, datetime(2026, 3, 28, 7, 30, tzinfo=UTC)) == OUT_OF_HOURS
    assert time_slot(routing, datetime(2026, 3, 28, 8, 30, tzinfo=UTC)) == IN_HOURS
    # A bad zone name is UTC, not a crash.
    bad = RoutingSnapshot(time_zone="Mars/Olympus", hours=True, weekly=routing.weekly)
    assert time_slot(bad, datetime(2026, 3, 29, 9, 30, tzinfo=UTC)) == IN_HOURS


def test_holidays_dates_ranges_and_yearly_over_new_year() -> None:
    routing = RoutingSnapshot(
        time_zone="Europe/Berlin",
        hours=False,
        holidays=(
            Holiday(start="2026-05-01", end="2026-05-01"),
            Holiday(start="2026-08-10", end="2026-08-14"),
            Holiday(start="2020-12-24", end="2021-01-01", yearly=True),
        ),
    )
    assert time_slot(routing, at("Europe/Berlin", 2026, 5, 1, 12, 0)) == HOLIDAY
    assert time_slot(routing, at("Europe/Berlin", 2027, 5, 1, 12, 0)) == IN_HOURS  # not yearly
    assert time_slot(routing, at("Europe/Berlin", 2026, 8, 12, 12, 0)) == HOLIDAY
    assert time_slot(routing, at("Europe/Berlin", 2026, 8, 15, 0, 0)) == IN_HOURS
    assert time_slot(routing, at("Europe/Berlin", 2031, 12, 31, 12, 0)) == HOLIDAY
    assert time_slot(routing, at("Europe/Berlin", 2032, 1, 1, 23, 59)) == HOLIDAY
    assert time_slot(routing, at("Europe/Berlin", 2032, 1, 2, 0, 0)) == IN_HOURS
    # The tenant's date, not UTC's: 23:30 UTC on 30 April is 1 May in Berlin.
    assert time_slot(routing, datetime(2026, 4, 30, 23, 30, tzinfo=UTC)) == HOLIDAY


def test_targets_and_their_fallbacks() -> None:
    full = InboundRule(id=1, number="+1", in_hours=EXT, out_of_hours=VM, holiday=HOL)
    bare = InboundRule(id=2, number="+1", in_hours=EXT)
    no_hol = InboundRule(id=3, number="+1", in_hours=EXT, out_of_hours=VM)
    always = InboundRule(id=4, number="+1", in_hours=EXT, out_of_hours=VM, use_hours=False)
    assert [target_for(full, s) for s in (IN_HOURS, OUT_OF_HOURS, HOLIDAY)] == [EXT, VM, HOL]
    assert [target_for(bare, s) for s in (IN_HOURS, OUT_OF_HOURS, HOLIDAY)] == [EXT, EXT, EXT]
    assert target_for(no_hol, HOLIDAY) == VM
    assert target_for(always, HOLIDAY) == EXT
    assert target_for(always, OUT_OF_HOURS) == EXT
