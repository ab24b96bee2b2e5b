"""Calls from the carriers' trunks: the decisions, pure (no I/O, no clock of its own).

- **Which trunk** (:class:`TrunkIndex`): the source address of an INVITE (and its port, when the
  trunk names a ``source_port``) against every enabled trunk's addresses (IP trunks: addresses
  and CIDRs; registration trunks: the resolved addresses of the host and the outbound proxy),
  or, for a registration trunk, the request URI's user being the Contact user we registered
  with (:func:`contact_user`) from one of its addresses. Checked before the From domain, which
  a carrier (or anyone) can write freely: only the source counts.
- **Which number** (:func:`e164`): the request URI's user (the To user when the request URI is
  our registered Contact) in E.164, read with the trunk's country (``numbers.py``).
- **Which tenant**: the DID pool's owner of that number (``CarrierSnapshot.numbers``), and the
  trunk must be one that tenant may use; anything else is as if the number did not exist.
- **Where to** (:func:`decide`): the tenant's blacklist, then its inbound rules in order (exact,
  range, pattern, each optionally with a caller pattern), then office hours in the tenant's
  time zone (:func:`time_slot`) choose the rule's in-hours / out-of-hours / holiday target.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from telephony.sip.contract import (
    BLOCK_CODES,
    BlockAction,
    Blocked,
    CarrierSnapshot,
    Holiday,
    InboundRule,
    MatchKind,
    RouteTarget,
    RoutingSnapshot,
    TrunkKind,
    TrunkSnapshot,
    pattern_matches,
)

from .numbers import e164

__all__ = [
    "Decision",
    "TrunkIndex",
    "blocked",
    "contact_user",
    "decide",
    "e164",
    "holiday_on",
    "match_rule",
    "target_for",
    "time_slot",
    "trunk_hosts",
]

IN_HOURS = "in_hours"
OUT_OF_HOURS = "out_of_hours"
HOLIDAY = "holiday"


def contact_user(trunk: TrunkSnapshot) -> str:
    """The user of the Contact we register for a registration trunk: the carrier sends its
    calls to it (the DID then in To). The same on every engine, unique per trunk."""
    return f"trunk-{trunk.id}"


def trunk_hosts(trunk: TrunkSnapshot) -> tuple[str, ...]:
    """The host names (or IPs) a registration trunk's calls come from: host and proxy."""
    hosts = [trunk.host]
    if trunk.outbound_proxy.strip():
        hosts.append(trunk.next_hop()[0])
    return tuple(h.lower() for h in hosts if h)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class _Entry:
    trunk: TrunkSnapshot
    port: int  # 0: any source port


@dataclass(slots=True)
class TrunkIndex:
    """The enabled trunks by where their calls come from; rebuilt (whole) when the carriers
    change or a trunk's host name resolves to new addresses. :meth:`identify` is the hot path:
    dict lookups, and a scan of the CIDRs only (few)."""

    exact: dict[str, list[_Entry]] = field(default_factory=dict)
    networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, _Entry]] = field(
        default_factory=list
    )
    contacts: dict[str, TrunkSnapshot] = field(default_factory=dict)  # contact user -> trunk
    trusted: frozenset[str] = frozenset()  # single carrier IPs, whatever the port

    @classmethod
    def build(
        cls, carriers: CarrierSnapshot, resolved: Mapping[str, Iterable[str]] | None = None
    ) -> TrunkIndex:
        """``resolved``: host name -> its addresses (looked up beforehand, never here)."""
        resolved = resolved or {}
        index = cls()
        trusted: set[str] = set()
        for trunk in sorted(carriers.trunks.values(), key=lambda t: t.id):
            if not trunk.enabled:
                continue
            entry = _Entry(trunk, trunk.source_port)
            sources: list[str] = list(trunk.addresses)
            if trunk.kind == TrunkKind.REGISTER:
                index.contacts[contact_user(trunk)] = trunk
                for host in trunk_hosts(trunk):
                    sources += [host] if _ip(host) is not None else list(resolved.get(host, ()))
            for source in sources:
                source = source.strip()
                ip = _ip(source)
                if ip is not None:
                    index.exact.setdefault(str(ip), []).append(entry)
                    if not entry.port:
                        trusted.add(str(ip))
                    continue
                try:
                    net = ipaddress.ip_network(source, strict=False)
                except ValueError:
                    continue  # a host name an IP trunk should not have: nothing matches it
                index.networks.append((net, entry))
        index.trusted = frozenset(trusted)
        return index

    def identify(self, ip: str, port: int, ruri_user: str | None = None) -> TrunkSnapshot | None:
        """The trunk an INVITE from ``ip``:``port`` to ``ruri_user`` comes in on, or None."""
        candidates = self.exact.get(ip)
        if candidates is None and self.networks:
            addr = _ip(ip)
            if addr is not None:
                candidates = [e for net, e in self.networks if addr in net]
        if not candidates:
            return None
        for entry in candidates:
            if not entry.port or entry.port == port:
                return entry.trunk
        # A registration trunk's own Contact user from one of its addresses, whatever port
        # the carrier sends from.
        if ruri_user:
            trunk = self.contacts.get(ruri_user)
            if trunk is not None and any(e.trunk is trunk for e in candidates):
                return trunk
        return None


# ------------------------------------------------------------------------------ decisions


def blocked(blacklist: Iterable[Blocked], *callers: str) -> int | None:
    """The SIP code a blacklisted caller is answered with (any of its forms: E.164 and as
    sent), None when it is not blocked."""
    forms = [c for c in callers if c]
    for entry in blacklist:
        number = entry.number
        if not number:
            continue
        for caller in forms:
            if caller == number or (entry.prefix and caller.startswith(number)):
                return BLOCK_CODES.get(BlockAction(entry.action), 486)
    return None


def _number_matches(rule: InboundRule, did: str) -> bool:
    if rule.match == MatchKind.RANGE:
        start, end = rule.number, rule.number_end or rule.number
        return len(did) == len(start) == len(end) and start <= did <= end
    if rule.match == MatchKind.PATTERN:
        return pattern_matches(rule.number, did) or pattern_matches(rule.number, did.lstrip("+"))
    return did == rule.number


def match_rule(rules: Iterable[InboundRule], did: str, *callers: str) -> InboundRule | None:
    """The first rule for the called number ``did`` (E.164) and the caller (any of its
    forms), or None."""
    for rule in rules:
        if not rule.number or not _number_matches(rule, did):
            continue
        if rule.caller and not any(
            pattern_matches(rule.caller, c) or pattern_matches(rule.caller, c.lstrip("+"))
            for c in callers
            if c
        ):
            continue
        return rule
    return None


def _month_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def holiday_on(holidays: Iterable[Holiday], day: date) -> bool:
    """Whether ``day`` falls in one of the holidays (inclusive; yearly ones on any year, a
    yearly range may run over New Year)."""
    for h in holidays:
        start, end = _month_day(h.start), _month_day(h.end or h.start)
        if start is None or end is None:
            continue
        if not h.yearly:
            if start <= day <= end:
                return True
            continue
        md, s, e = (day.month, day.day), (start.month, start.day), (end.month, end.day)
        if (s <= md <= e) if s <= e else (md >= s or md <= e):
            return True
    return False


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def time_slot(routing: RoutingSnapshot, now: datetime) -> str:
    """``holiday``, ``in_hours`` or ``out_of_hours`` at ``now`` (aware) on the tenant's wall
    clock. Holidays count whether or not office hours are on; with office hours off the rest
    of the time is in hours. A period that runs past midnight is two periods, one each day."""
    local = now.astimezone(_zone(routing.time_zone))
    if holiday_on(routing.holidays, local.date()):
        return HOLIDAY
    if not routing.hours:
        return IN_HOURS
    minute = local.hour * 60 + local.minute
    for start, end in routing.weekly[local.weekday()]:
        if start <= minute < end:
            return IN_HOURS
    return OUT_OF_HOURS


def target_for(rule: InboundRule, slot: str) -> RouteTarget | None:
    """The rule's target in ``slot``: out of hours falls back to in hours, a holiday to out
    of hours (then in hours); a rule that ignores hours always takes its in-hours target."""
    if not rule.use_hours or slot == IN_HOURS:
        return rule.in_hours
    if slot == HOLIDAY:
        return rule.holiday or rule.out_of_hours or rule.in_hours
    return rule.out_of_hours or rule.in_hours


@dataclass(frozen=True, slots=True)
class Decision:
    """Where an inbound call goes: ``target``, or refused with ``code`` (``why`` is logged)."""

    target: RouteTarget | None = None
    code: int = 0
    why: str = ""
    rule: InboundRule | None = None
    slot: str = ""


def decide(routing: RoutingSnapshot, did: str, callers: Iterable[str], now: datetime) -> Decision:
    """The tenant's answer to a call to its ``did`` from ``callers`` (the caller's number in
    its forms) at ``now``: blacklist, rules, office hours."""
    forms = tuple(c for c in callers if c)
    code = blocked(routing.blacklist, *forms)
    if code is not None:
        return Decision(code=code, why="caller blacklisted")
    rule = match_rule(routing.inbound, did, *forms)
    if rule is None:
        return Decision(code=404, why=f"no inbound rule for {did}")
    slot = time_slot(routing, now)
    target = target_for(rule, slot)
    if target is None:
        return Decision(code=404, why=f"inbound rule {rule.id} has no target", rule=rule)
    return Decision(target=target, rule=rule, slot=slot)
