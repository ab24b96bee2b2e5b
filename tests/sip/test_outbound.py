"""Outside calls decided without I/O (``telephony.sip.calls.outbound``): a tenant's snapshot, the
calling extension and the dialled number in; the trunk destination (plan) or the refusal out;
then the trunks tried in order for the carrier snapshot. The end-to-end behaviour (SIPp as the
carrier) is in ``test_trunk_calls.py``; these pin the decision table."""

from __future__ import annotations

from typing import Any

import pytest

from telephony.sip.calls import outbound, routing
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.outbound import Plan, attempts, classify, decide, is_emergency
from telephony.sip.calls.routing import Destination
from telephony.sip.contract import (
    CarrierSnapshot,
    EmergencyNumber,
    ExtensionSnapshot,
    OutboundRule,
    RoutingSnapshot,
    TenantSnapshot,
    TrunkSnapshot,
)

SCHEMA = "t_acme"


def ext(number: str = "101", **kw: Any) -> ExtensionSnapshot:
    return ExtensionSnapshot(number=number, caller_id_number=number, **kw)


def tenant(*extensions: ExtensionSnapshot, **routing_: Any) -> TenantSnapshot:
    defaults: dict[str, Any] = {
        "country": "DE",
        "caller_id": "+493000000",
        "emergency_caller_id": "+493000112",
        "outbound": (
            OutboundRule(id=1, trunks=(1, 2), prefix="0", strip=1, prepend="+49"),
            OutboundRule(id=2, trunks=(2,), prefix="+"),
        ),
        "emergency": (
            EmergencyNumber("112"), EmergencyNumber("110", trunks=(3,), caller_id="+4930110"),
        ),
    }  # fmt: skip
    return TenantSnapshot(
        tenant_id=1, schema=SCHEMA, domain="acme.test",
        extensions={e.number: e for e in (ext(), *extensions)},
        routing=RoutingSnapshot(**{**defaults, **routing_}),
    )  # fmt: skip


def trunk(id: int, **kw: Any) -> TrunkSnapshot:
    return TrunkSnapshot(id=id, host=f"carrier{id}.test", tenants=frozenset({SCHEMA}), **kw)


CARRIERS = CarrierSnapshot(trunks={i: trunk(i) for i in (1, 2, 3)})


def plan_of(d: Destination | None) -> Plan:
    assert d is not None
    assert d.kind == "trunk", d
    plan = d.data["plan"]
    assert isinstance(plan, Plan)
    return plan


def refused(d: Destination | None) -> tuple[int, str]:
    assert d is not None
    assert d.kind == "reject", d
    return int(d.data["code"]), str(d.data["reason"])


@pytest.mark.parametrize(
    ("number", "country", "e164", "region", "national"),
    [
        ("030 1234567".replace(" ", ""), "DE", "+49301234567", "DE", True),
        ("+49301234567", "DE", "+49301234567", "DE", True),
        ("0049301234567", "DE", "+49301234567", "DE", True),  # the German IDD prefix
        ("00442071838750", "DE", "+442071838750", "GB", False),
        ("+442071838750", "", "+442071838750", "GB", False),  # no country: E.164 only
        ("02071838750", "", "", "", False),
        ("02071838750", "GB", "+442071838750", "GB", True),
        ("2125551234", "US", "+12125551234", "US", True),
        ("011442071838750", "US", "+442071838750", "GB", False),  # the US IDD prefix
        ("*67123", "DE", "", "", False),
        ("123", "US", "", "", False),  # too short to be a number there
        ("alice", "DE", "", "", False),
    ],
)
def test_numbers_are_read_in_the_tenants_country(number, country, e164, region, national):
    assert classify(number, country) == outbound.Number(e164, region, national)


def test_a_national_number_goes_out_normalised_with_the_extensions_caller_id():
    t = tenant(ext("102", outbound_caller_ids=("+4930555", "+4930556")))
    d = decide(t, t.extensions["102"], "0301234567")
    plan = plan_of(d)
    assert d is not None
    assert d.target == "+49301234567"
    assert (plan.dialled, plan.e164, plan.withheld, plan.emergency) == (
        "0301234567", "+49301234567", False, False,
    )  # fmt: skip
    assert [(r.trunks, r.number, r.caller_id, r.rule) for r in plan.routes] == [
        ((1, 2), "+49301234567", "+4930555", 1)
    ]


@pytest.mark.parametrize(
    ("rule_cid", "ext_cids", "trunk_cid", "tenant_cid", "presented"),
    [
        ("+49301", ("+49302",), "+49303", "+49304", "+49301"),  # the rule's first
        ("", ("+49302",), "+49303", "+49304", "+49302"),  # then the extension's
        ("", (), "+49303", "+49304", "+49303"),  # then the trunk's
        ("", (), "", "+49304", "+49304"),  # then the tenant's
        ("", (), "", "", "101"),  # nothing set: the extension's own number
    ],
)
def test_the_presented_caller_id_in_order(rule_cid, ext_cids, trunk_cid, tenant_cid, presented):
    rule = OutboundRule(id=1, trunks=(1,), prefix="0", caller_id=rule_cid)
    t = tenant(outbound=(rule,), caller_id=tenant_cid)
    caller = ext("101", outbound_caller_ids=ext_cids)
    carriers = CarrierSnapshot(trunks={1: trunk(1, caller_id=trunk_cid)})
    [a] = attempts(plan_of(decide(t, caller, "0301234567")), carriers, SCHEMA, caller)
    assert (a.caller_id, a.presented) == (presented, presented)


@pytest.mark.parametrize(
    ("rule", "caller", "number", "matches"),
    [
        (OutboundRule(id=1, trunks=(1,), prefix="9"), "101", "90301", True),
        (OutboundRule(id=1, trunks=(1,), prefix="9"), "101", "80301", False),
        (OutboundRule(id=1, trunks=(1,), pattern="0[1-9]XXXXX."), "101", "0301234567", True),
        (OutboundRule(id=1, trunks=(1,), pattern="0[1-9]XXXXX."), "101", "0012345", False),
        (OutboundRule(id=1, trunks=(1,), prefix="0", min_length=8), "101", "0301234", False),
        (OutboundRule(id=1, trunks=(1,), prefix="0", min_length=8), "101", "03012345", True),
        (OutboundRule(id=1, trunks=(1,), prefix="0", max_length=8), "101", "030123456", False),
        (OutboundRule(id=1, trunks=(1,), extensions=frozenset({"102"})), "101", "0301234", False),
        (OutboundRule(id=1, trunks=(1,), extensions=frozenset({"102"})), "102", "0301234", True),
        (OutboundRule(id=1, trunks=(), prefix="0"), "101", "0301234", False),  # no trunks
        (OutboundRule(id=1, trunks=(1,), pattern="[bad"), "101", "0301234", False),
    ],
)
def test_rule_matching(rule, caller, number, matches):
    t = tenant(ext("102"), outbound=(rule,))
    d = decide(t, t.extensions[caller], number)
    assert (d is not None) is matches


@pytest.mark.parametrize(
    ("strip", "prepend", "sent"),
    [(0, "", "0301234567"), (1, "+49", "+49301234567"), (1, "0049", "0049301234567"),
     (3, "", "1234567"), (20, "x", "x")],
)  # fmt: skip
def test_strip_and_prepend(strip, prepend, sent):
    rule = OutboundRule(id=1, trunks=(1,), prefix="0", strip=strip, prepend=prepend)
    d = decide(tenant(outbound=(rule,)), ext(), "0301234567")
    assert d is not None
    assert d.target == sent
    assert plan_of(d).e164 == "+49301234567"  # the CDR's number as dialled, normalised


def test_rules_are_tried_in_order_the_first_with_a_usable_trunk_wins():
    rules = (
        OutboundRule(id=1, trunks=(9,), prefix="0"),  # trunk 9: not shared with the tenant
        OutboundRule(id=2, trunks=(7, 2, 1), prefix="0", strip=1, prepend="+49"),
        OutboundRule(id=3, trunks=(3,), prefix="0"),
    )
    carriers = CarrierSnapshot(
        trunks={
            1: trunk(1),
            2: trunk(2),
            3: trunk(3),
            7: trunk(7, enabled=False),
            9: TrunkSnapshot(id=9, host="other.test", tenants=frozenset({"t_beta"})),
        }
    )
    plan = plan_of(decide(tenant(outbound=rules), ext(), "0301234567"))
    assert [r.rule for r in plan.routes] == [1, 2, 3]
    tried = attempts(plan, carriers, SCHEMA, ext())
    assert [(a.trunk.id, a.number) for a in tried] == [(2, "+49301234567"), (1, "+49301234567")]
    # Nothing usable at all: no attempt.
    only_other = CarrierSnapshot(trunks={9: carriers.trunks[9]})
    assert attempts(plan, only_other, SCHEMA, ext()) == []


def test_no_rule_is_no_route_and_a_forward_there_is_480():
    t = tenant(outbound=())
    assert decide(t, ext(), "0301234567") is None
    caller = t.extensions["101"]
    d = routing.route(t, caller, "0301234567", Path(("0301234567",), 0, 5))
    assert refused(d) == (404, "")
    d = routing.route(t, caller, "0301234567", Path(("102", "0301234567"), 1, 5))
    assert refused(d) == (480, "forward target 0301234567 not found")


def test_extensions_and_their_forwards_still_ring_and_outside_forwards_take_the_rules():
    t = tenant(ext("102", forward_always="0301234567"))
    caller = t.extensions["101"]
    d = routing.route(t, caller, "102", Path(("102",), 0, 5))
    assert (d.kind, d.target) == ("forward", "0301234567")
    d = routing.route(t, caller, "0301234567", Path(("102", "0301234567"), 1, 5))
    plan = plan_of(d)
    assert (d.target, plan.forwarded) == ("+49301234567", True)


@pytest.mark.parametrize(
    ("dialled", "code"),
    [("*670301234567", "*67"), ("#310301234567", "#31")],
)
def test_the_privacy_code_withholds_the_caller_id(dialled, code):
    t = tenant(privacy_code=code)
    plan = plan_of(decide(t, ext(), dialled))
    assert (plan.dialled, plan.e164, plan.withheld) == (dialled, "+49301234567", True)
    [a, b] = attempts(plan, CARRIERS, SCHEMA, ext())
    assert (a.presented, a.caller_id) == ("anonymous", "+493000000")  # the real one for PAI
    assert b.presented == "anonymous"
    assert decide(t, ext(), code) is None  # the code alone is no number


@pytest.mark.parametrize(
    ("scope", "number", "code"),
    [
        ("internal", "0301234567", 403),
        ("internal", "+442071838750", 403),
        ("national", "0301234567", None),
        ("national", "+49301234567", None),
        ("national", "0049301234567", None),
        ("national", "+442071838750", 403),
        ("national", "0044207183875", 403),
        ("international", "+442071838750", None),
        ("international", "0301234567", None),
    ],
)
def test_call_barring_by_the_extensions_scope(scope, number, code):
    t = tenant(ext("102", call_scope=scope), outbound=(
        OutboundRule(id=1, trunks=(1,), prefix="00", strip=2, prepend="+"),
        OutboundRule(id=2, trunks=(1,), prefix="0", strip=1, prepend="+49"),
        OutboundRule(id=3, trunks=(1,), prefix="+"),
    ))  # fmt: skip
    d = decide(t, t.extensions["102"], number)
    if code is None:
        plan_of(d)
    else:
        got, reason = refused(d)
        assert got == code
        assert "102" in reason


def test_emergency_numbers_go_first_always_allowed_with_the_emergency_caller_id():
    t = tenant(
        ext("102", call_scope="internal"),
        outbound=(OutboundRule(id=1, trunks=(2,), prefix="1", caller_id="+49301"),),
        blocked_prefixes=("+49",),
        allowed_countries=frozenset({"FR"}),
    )
    caller = t.extensions["102"]
    for dialled in ("112", "*67112"):
        plan = plan_of(decide(t, caller, dialled))
        assert (plan.emergency, plan.withheld) == (True, False)  # never withheld
        tried = attempts(plan, CARRIERS, SCHEMA, caller)
        # No trunks of its own: every trunk the tenant may use, in id order.
        assert [(a.trunk.id, a.number, a.presented) for a in tried] == [
            (1, "112", "+493000112"), (2, "112", "+493000112"), (3, "112", "+493000112"),
        ]  # fmt: skip
    plan = plan_of(decide(t, caller, "110"))
    tried = attempts(plan, CARRIERS, SCHEMA, caller)
    assert [(a.trunk.id, a.presented) for a in tried] == [(3, "+4930110")]  # its own
    assert is_emergency(t, "110")
    assert is_emergency(t, "*67112")
    assert not is_emergency(t, "1100")
    assert not is_emergency(t, "101")
    # Without an emergency caller ID: the usual chain (rule, extension, trunk, tenant).
    t2 = tenant(emergency_caller_id="")
    [first, *_] = attempts(plan_of(decide(t2, ext(), "112")), CARRIERS, SCHEMA, ext())
    assert first.presented == "+493000000"


@pytest.mark.parametrize(
    ("blocked", "allowed", "number", "refused_for"),
    [
        (("+44",), (), "+442071838750", "blocked destination"),
        (("44",), (), "00442071838750", "blocked destination"),  # written without "+"
        (("+4990",), (), "09001234567", "blocked destination"),  # German premium, national
        (("+4990",), (), "0301234567", ""),
        ((), ("DE",), "+442071838750", "not an allowed country"),
        ((), ("DE", "GB"), "+442071838750", ""),
        ((), ("DE",), "0301234567", ""),
        ((), ("DE",), "+999123", "not an allowed country"),  # unreadable: no country
    ],
)
def test_blocked_destinations_and_allowed_countries(blocked, allowed, number, refused_for):
    t = tenant(
        outbound=(
            OutboundRule(id=1, trunks=(1,), prefix="00", strip=2, prepend="+"),
            OutboundRule(id=2, trunks=(1,), prefix="0", strip=1, prepend="+49"),
            OutboundRule(id=3, trunks=(1,), prefix="+"),
        ),
        blocked_prefixes=blocked,
        allowed_countries=frozenset(allowed),
    )
    d = decide(t, ext(), number)
    if refused_for:
        code, reason = refused(d)
        assert code == 403
        assert refused_for in reason
    else:
        plan_of(d)


def test_a_trunk_not_shared_with_the_tenant_or_disabled_is_never_tried():
    carriers = CarrierSnapshot(
        trunks={
            1: TrunkSnapshot(id=1, host="a.test", tenants=frozenset({"t_beta"})),
            2: trunk(2, enabled=False),
            3: trunk(3),
        }
    )
    t = tenant(outbound=(OutboundRule(id=1, trunks=(1, 2, 3), prefix="0"),))
    tried = attempts(plan_of(decide(t, ext(), "0301234567")), carriers, SCHEMA, ext())
    assert [a.trunk.id for a in tried] == [3]
    # An emergency call through "every trunk" still only takes the tenant's.
    tried = attempts(plan_of(decide(t, ext(), "112")), carriers, SCHEMA, ext())
    assert [a.trunk.id for a in tried] == [3]


def test_an_extension_number_is_never_an_outside_number():
    t = tenant(ext("0301"), outbound=(OutboundRule(id=1, trunks=(1,), prefix="0"),))
    d = routing.route(t, t.extensions["101"], "0301", Path(("0301",), 0, 5))
    assert d.kind == "extension"
    # A disabled extension stays 404 (it is not dialled out through the rules).
    t = tenant(ext("0301", enabled=False), outbound=(OutboundRule(id=1, trunks=(1,), prefix="0"),))
    d = routing.route(t, t.extensions["101"], "0301", Path(("0301",), 0, 5))
    assert refused(d)[0] == 404
