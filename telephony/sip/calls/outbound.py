"""Outside calls, decided without I/O: a number dialled by an extension (or where a forward
leads) to the trunks that carry it, the number each is sent and the caller ID it presents.

In order:

1. the tenant's privacy code in front of the number (``*67`` by default) withholds the
   caller ID and is taken off;
2. an emergency number goes out before anything else and is always allowed (the dispatcher
   lets it past a suspended tenant and the call limit too), through its own trunks or every
   trunk the tenant may use, presenting the emergency caller ID; it is never withheld;
3. the outbound rules, in order: the first that matches the number (prefix, dial pattern,
   length) and the caller's extension gives the trunks (failover in order), the digits to
   strip and prepend, and a caller ID; later matching rules are used only when none of the
   trunks of the earlier ones may be used at all. No rule: no route (None: the router
   answers 404, or 480 for a forward);
4. before it goes out: the extension's call barring (``call_scope``: internal, national,
   international), the tenant's blocked destinations (E.164 prefixes) and allowed countries.
   Numbers are read with ``phonenumbers`` in the tenant's country: national is the tenant's
   own country code; a number that cannot be read is neither national nor of any country;
5. the caller ID presented: the rule's, else the extension's first outbound caller ID, else
   the trunk's, else the tenant's (:func:`attempts` resolves the per-trunk part).

:func:`decide` gives a ``trunk`` :class:`~.routing.Destination` (its ``data["plan"]`` is a
:class:`Plan`) or a ``reject`` (403 with the reason); :func:`attempts` turns a plan and the
carrier snapshot into the trunk attempts in failover order (only enabled trunks that are
shared with the tenant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from telephony.sip.contract import (
    CallScope,
    CarrierSnapshot,
    ExtensionSnapshot,
    OutboundRule,
    TenantSnapshot,
    TrunkSnapshot,
    pattern_matches,
)

from . import routing
from .forwarding import Path
from .numbers import Number, classify
from .routing import Destination

__all__ = [
    "ANONYMOUS",
    "Attempt",
    "Number",
    "Plan",
    "Route",
    "attempts",
    "classify",
    "decide",
    "is_emergency",
]

ANONYMOUS = "anonymous"  # the CDR's "presented" of a withheld caller ID
_DIALLABLE = re.compile(r"\+?[0-9*#]+")


@dataclass(frozen=True, slots=True)
class Route:
    """One rule's (or an emergency number's) way out: ``trunks`` in failover order (empty for
    an emergency number without trunks: every trunk the tenant may use), the number they are
    sent, the caller ID it sets ("" = the next in line) and the rule's id (0: emergency)."""

    trunks: tuple[int, ...]
    number: str
    caller_id: str = ""
    rule: int = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """An outside call decided: ``dialled`` as the user dialled it, ``e164`` its normalised
    form for the CDR ("" when it cannot be read), ``routes`` in order, whether the caller ID
    is ``withheld``, the tenant's fallback caller ID, whether it is an ``emergency`` call and
    whether a forward led here."""

    dialled: str
    e164: str
    routes: tuple[Route, ...]
    withheld: bool = False
    default_caller_id: str = ""
    emergency: bool = False
    forwarded: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """One trunk to try: the number sent, the caller ID to present (the real one: the trunk
    puts it in P-Asserted-Identity even when withheld) and what the CDR shows as presented."""

    trunk: TrunkSnapshot
    number: str
    caller_id: str
    presented: str


def _privacy(tenant: TenantSnapshot, number: str) -> tuple[bool, str]:
    code = tenant.routing.privacy_code
    if code and number.startswith(code) and len(number) > len(code):
        return True, number[len(code) :]
    return False, number


def is_emergency(tenant: TenantSnapshot, number: str) -> bool:
    """Whether ``number`` (privacy code or not) is one of the tenant's emergency numbers."""
    _, number = _privacy(tenant, number)
    return any(e.number == number for e in tenant.routing.emergency)


def _matches(rule: OutboundRule, caller: ExtensionSnapshot, number: str) -> bool:
    if rule.extensions and caller.number not in rule.extensions:
        return False
    if rule.prefix and not number.startswith(rule.prefix):
        return False
    if rule.pattern and not pattern_matches(rule.pattern, number):
        return False
    if rule.min_length and len(number) < rule.min_length:
        return False
    return not (rule.max_length and len(number) > rule.max_length)


def _barred(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, dialled: Number, sent: Number, number: str
) -> str:
    """Why the call may not go out ("" when it may)."""
    known = dialled if dialled.e164 else sent
    scope = caller.call_scope
    if scope == CallScope.INTERNAL:
        return f"extension {caller.number} may not call outside numbers"
    if scope == CallScope.NATIONAL and not known.national:
        return f"extension {caller.number} may not call {number}: not a national number"
    routing_ = tenant.routing
    numbers = {n.e164 for n in (dialled, sent) if n.e164}
    for prefix in routing_.blocked_prefixes:
        wanted = prefix if prefix.startswith("+") else "+" + prefix
        if any(n.startswith(wanted) for n in numbers):
            return f"{number} is a blocked destination ({prefix})"
    if routing_.allowed_countries and known.region not in routing_.allowed_countries:
        where = known.region or "an unknown country"
        return f"{number} is in {where}, not an allowed country"
    return ""


def decide(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, dialled: str, *, forwarded: bool = False
) -> Destination | None:
    """Where an outside number goes: a ``trunk`` destination (``data["plan"]``), a 403
    ``reject`` (barred, blocked, not an allowed country), or None when no rule routes it (or
    it is no number at all)."""
    withheld, number = _privacy(tenant, dialled)
    if not _DIALLABLE.fullmatch(number):
        return None
    r = tenant.routing
    for entry in r.emergency:
        if entry.number == number:
            route = Route(entry.trunks, number, entry.caller_id or r.emergency_caller_id)
            e164 = classify(number, r.country).e164
            plan = Plan(dialled, e164, (route,), False, r.caller_id, emergency=True,
                        forwarded=forwarded)  # fmt: skip
            return Destination("trunk", number, {"plan": plan})
    routes: list[Route] = []
    for rule in r.outbound:
        if not rule.trunks or not _matches(rule, caller, number):
            continue
        sent = rule.prepend + number[rule.strip :]
        caller_id = rule.caller_id or next(iter(caller.outbound_caller_ids), "")
        routes.append(Route(rule.trunks, sent, caller_id, rule.id))
    if not routes:
        return None
    known = classify(number, r.country)
    sent_number = classify(routes[0].number, r.country)
    why = _barred(tenant, caller, known, sent_number, number)
    if why:
        return routing.reject(403, status="failed", reason=why, warning=why)
    e164 = known.e164 or sent_number.e164
    plan = Plan(dialled, e164, tuple(routes), withheld, r.caller_id, forwarded=forwarded)
    return Destination("trunk", routes[0].number, {"plan": plan})


def _usable(trunk: TrunkSnapshot | None, schema: str) -> bool:
    return trunk is not None and trunk.enabled and schema in trunk.tenants


def attempts(
    plan: Plan, carriers: CarrierSnapshot, schema: str, caller: ExtensionSnapshot
) -> list[Attempt]:
    """The trunks to try in order for ``plan`` (tenant ``schema``): those of the first route
    with any enabled trunk shared with the tenant; empty when there is none."""
    for route in plan.routes:
        if route.trunks:
            trunks = [carriers.trunks.get(t) for t in route.trunks]
        else:  # an emergency number without trunks: every trunk the tenant may use
            trunks = [carriers.trunks[t] for t in sorted(carriers.trunks)]
        usable = [t for t in trunks if t is not None and _usable(t, schema)]
        if not usable:
            continue
        out = []
        for trunk in usable:
            caller_id = (
                route.caller_id
                or trunk.caller_id
                or plan.default_caller_id
                or caller.caller_id_number
            )
            presented = ANONYMOUS if plan.withheld else caller_id
            out.append(Attempt(trunk, route.number, caller_id, presented))
        return out
    return []


def _outside(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    if number in tenant.extensions:
        return None
    return decide(tenant, caller, number, forwarded=bool(path.hops))


routing.outside(_outside)
