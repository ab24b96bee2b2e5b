"""Business writes for a tenant's call routing (run inside the tenant's schema). Each kind of
row has one validator, used by the API, the portal and the Django admin alike; every write
is audited and republishes the tenant's snapshot once its transaction commits."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed
from pbx.tenancy import require_tenant
from pbx.text import single_line_errors
from telephony.engine.snapshots import publish_on_commit
from telephony.sip.contract import compile_pattern
from trunks.access import usable_trunks
from trunks.numbers import COUNTRIES, NOT_A_RANGE, country_problem, range_size, to_e164

from .destinations import clean_target
from .models import (
    BlacklistEntry,
    BlockAction,
    EmergencyNumber,
    Holiday,
    InboundRule,
    MatchKind,
    OutboundRule,
    RoutingSettings,
)

__all__ = [
    "ROWS",
    "do_create",
    "do_delete",
    "do_update",
    "do_update_settings",
]

MAX_RANGE = 100_000
PRIVACY_CODE_HELP = "* or # and 1 to 4 digits, like *67"


class _Errors(dict):
    def add(self, name: str, text: str) -> None:
        self.setdefault(name, [text])


def _phone(errors: _Errors, fields: dict, name: str, country: str) -> None:
    value = fields.get(name)
    if value and name not in errors:
        try:
            fields[name] = to_e164(value, country)
        except ValueError as exc:
            errors.add(name, str(exc))


def _pattern(errors: _Errors, fields: dict, name: str) -> None:
    value = fields.get(name)
    if value and name not in errors:
        try:
            compile_pattern(value)
        except ValueError as exc:
            errors.add(name, f"{exc} (digits, X Z N, [1-5], . or ! at the end)")


def _trunk_ids(errors: _Errors, fields: dict, tenant, *, required: bool) -> None:
    if "trunks" not in fields:
        return
    ids = fields["trunks"]
    if not isinstance(ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in ids
    ):
        errors.add("trunks", "a list of trunk ids, in the order they are tried")
        return
    if required and not ids:
        errors.add("trunks", "at least one trunk")
    if len(set(ids)) != len(ids):
        errors.add("trunks", "each trunk once")
    usable = set(usable_trunks(tenant).filter(pk__in=ids).values_list("pk", flat=True))
    unknown = [i for i in ids if i not in usable]
    if unknown:
        errors.add("trunks", f"not trunks of this tenant: {', '.join(map(str, unknown))}")


def _pk(obj) -> int:
    """The row's id, or 0 (no row has it) for a new one."""
    return obj.pk if obj is not None else 0


def _length(errors: _Errors, fields: dict, name: str, lo: int, hi: int) -> None:
    value = fields.get(name)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        errors.add(name, f"{lo} to {hi}")


def _required(errors: _Errors, fields: dict, obj, names) -> None:
    for name in names:
        value = fields[name] if name in fields else getattr(obj, name, None)
        if value in (None, "", []):
            errors.add(name, "required")


# --------------------------------------------------------------------------- validators


def _check_inbound(tenant, fields: dict, obj: InboundRule | None) -> _Errors:
    errors = _Errors(single_line_errors(fields, {"name": 120, "number": 64, "caller": 64}))
    _required(errors, fields, obj, ("name", "number", "in_hours"))
    match = fields.get("match", getattr(obj, "match", MatchKind.EXACT))
    if match not in MatchKind.values:
        errors.add("match", f"one of {', '.join(MatchKind.values)}")
    country = tenant.country or ""
    if match in (MatchKind.EXACT, MatchKind.RANGE):
        _phone(errors, fields, "number", country)
        if match == MatchKind.RANGE:
            if not (fields.get("number_end") or getattr(obj, "number_end", "")):
                errors.add("number_end", "a range needs its last number")
            _phone(errors, fields, "number_end", country)
        else:
            fields["number_end"] = ""
    elif "number" in fields:
        _pattern(errors, fields, "number")
    _pattern(errors, fields, "caller")
    _length(errors, fields, "priority", 0, 100_000)
    for name in ("in_hours", "out_of_hours", "holiday"):
        value = fields.get(name)
        if value is None or name in errors:
            continue
        try:
            fields[name] = clean_target(tenant, value)
        except ValueError as exc:
            errors.add(name, str(exc))
    if errors or match == MatchKind.PATTERN:
        return errors
    number = fields.get("number", getattr(obj, "number", ""))
    end = (
        fields.get("number_end", getattr(obj, "number_end", "")) if match == MatchKind.RANGE else ""
    )
    _own_numbers(errors, tenant, number, end)
    if errors:
        return errors
    others = InboundRule.objects.exclude(pk=_pk(obj)).exclude(match=MatchKind.PATTERN)
    caller = fields.get("caller", getattr(obj, "caller", ""))
    lo, hi = int(number[1:]), int((end or number)[1:])
    for other in others.filter(caller=caller):
        o_lo = int(other.number[1:])
        o_hi = int((other.number_end or other.number)[1:])
        if len(other.number) == len(number) and o_lo <= hi and lo <= o_hi:
            raise Conflict(
                f"The numbers overlap rule '{other.name}'.",
                fields={"number": [f"overlaps rule '{other.name}' ({other.number})"]},
            )
    return errors


def _own_numbers(errors: _Errors, tenant, number: str, end: str) -> None:
    """A DID rule's numbers must be the tenant's own (a range: at least one of them)."""
    from trunks.models import DidNumber

    held = DidNumber.objects.filter(tenant=tenant)
    if end:
        count = range_size(number, end)
        if count is None:
            errors.add("number_end", NOT_A_RANGE)
        elif count > MAX_RANGE:
            errors.add("number_end", f"at most {MAX_RANGE} numbers")
        elif not any(
            len(n) == len(number) and number <= n <= end
            for n in held.values_list("number", flat=True)
        ):
            errors.add("number", "none of these numbers is assigned to this tenant")
    elif not held.filter(number=number).exists():
        errors.add("number", f"{number} is not one of this tenant's numbers")


def _check_outbound(tenant, fields: dict, obj: OutboundRule | None) -> _Errors:
    errors = _Errors(
        single_line_errors(
            fields, {"name": 120, "prefix": 32, "pattern": 64, "prepend": 16, "caller_id": 32}
        )
    )
    _required(errors, fields, obj, ("name", "trunks"))
    for name in ("prefix", "prepend"):
        value = fields.get(name)
        if value and name not in errors and not all(c in "0123456789*#+" for c in value):
            errors.add(name, "digits, * # and + only")
    _pattern(errors, fields, "pattern")
    _length(errors, fields, "min_length", 0, 32)
    _length(errors, fields, "max_length", 0, 32)
    _length(errors, fields, "strip", 0, 20)
    _length(errors, fields, "priority", 0, 100_000)
    lo = fields.get("min_length", getattr(obj, "min_length", 0)) or 0
    hi = fields.get("max_length", getattr(obj, "max_length", 0)) or 0
    if hi and lo > hi and "max_length" not in errors:
        errors.add("max_length", "not below the minimum length")
    _phone(errors, fields, "caller_id", tenant.country or "")
    _trunk_ids(errors, fields, tenant, required=True)
    exts = fields.get("extensions")
    if exts is not None:
        from telephony.models import Extension

        if not isinstance(exts, list) or not all(isinstance(e, str) for e in exts):
            errors.add("extensions", "a list of extension numbers ([] = every extension)")
        else:
            known = set(Extension.objects.filter(number__in=exts).values_list("number", flat=True))
            missing = [e for e in exts if e not in known]
            if missing:
                errors.add("extensions", f"no extension {', '.join(missing[:5])}")
    return errors


def _check_emergency(tenant, fields: dict, obj: EmergencyNumber | None) -> _Errors:
    errors = _Errors(single_line_errors(fields, {"number": 16, "caller_id": 32}))
    _required(errors, fields, obj, ("number",))
    number = fields.get("number")
    if number and "number" not in errors and not (number.isdigit() and 2 <= len(number) <= 6):
        errors.add("number", "2 to 6 digits, like 911, 112 or 999")
    _phone(errors, fields, "caller_id", tenant.country or "")
    _trunk_ids(errors, fields, tenant, required=False)
    if number and not errors:
        from telephony.models import Extension

        if Extension.objects.filter(number=number).exists():
            errors.add("number", f"extension {number} has this number")
        clash = EmergencyNumber.objects.filter(number=number).exclude(pk=_pk(obj))
        if clash.exists():
            raise Conflict(
                f"{number} is an emergency number already.", fields={"number": ["exists"]}
            )
    return errors


def _check_blacklist(tenant, fields: dict, obj: BlacklistEntry | None) -> _Errors:
    errors = _Errors(single_line_errors(fields, {"number": 32, "note": 120}))
    _required(errors, fields, obj, ("number",))
    number = fields.get("number")
    prefix = fields.get("prefix", getattr(obj, "prefix", False))
    if number and "number" not in errors:
        if prefix:
            if not (number.lstrip("+").isdigit() and number.count("+") <= 1 and len(number) <= 16):
                errors.add("number", "a number prefix: digits, optional leading +")
        else:
            _phone(errors, fields, "number", tenant.country or "")
    if "action" in fields and fields["action"] not in BlockAction.values:
        errors.add("action", f"one of {', '.join(BlockAction.values)}")
    if not errors and number:
        clash = BlacklistEntry.objects.filter(number=fields["number"], prefix=bool(prefix))
        if clash.exclude(pk=_pk(obj)).exists():
            raise Conflict(
                f"{fields['number']} is blacklisted already.", fields={"number": ["exists"]}
            )
    return errors


def _check_holiday(tenant, fields: dict, obj: Holiday | None) -> _Errors:
    errors = _Errors(single_line_errors(fields, {"name": 120}))
    _required(errors, fields, obj, ("name", "start"))
    for name in ("start", "end"):
        value = fields.get(name)
        if isinstance(value, str) and value:
            try:
                fields[name] = date.fromisoformat(value)
            except ValueError:
                errors.add(name, "a date, YYYY-MM-DD")
        elif value is not None and value != "" and not isinstance(value, date):
            errors.add(name, "a date, YYYY-MM-DD")
    if errors:
        return errors
    start = fields.get("start", getattr(obj, "start", None))
    if not fields.get("end", getattr(obj, "end", None)):
        fields["end"] = start
    end = fields.get("end", getattr(obj, "end", None))
    if start and end and end < start:
        errors.add("end", "not before the first day")
    return errors


@dataclass(frozen=True)
class RowKind:
    """One kind of routing row: its model, audit name and validator."""

    model: Any
    name: str
    check: Callable[..., _Errors]
    fields: tuple[str, ...]


ROWS = {
    "inbound": RowKind(
        InboundRule, "inbound_rule", _check_inbound,
        ("name", "priority", "match", "number", "number_end", "caller", "use_hours",
         "in_hours", "out_of_hours", "holiday", "enabled"),
    ),
    "outbound": RowKind(
        OutboundRule, "outbound_rule", _check_outbound,
        ("name", "priority", "prefix", "pattern", "min_length", "max_length", "extensions",
         "trunks", "strip", "prepend", "caller_id", "enabled"),
    ),
    "emergency": RowKind(
        EmergencyNumber, "emergency_number", _check_emergency, ("number", "trunks", "caller_id")
    ),
    "blacklist": RowKind(
        BlacklistEntry, "blacklist", _check_blacklist, ("number", "prefix", "action", "note")
    ),
    "holiday": RowKind(Holiday, "holiday", _check_holiday, ("name", "start", "end", "yearly")),
}  # fmt: skip


def _kind_of(obj) -> RowKind:
    return next(k for k in ROWS.values() if isinstance(obj, k.model))


def _validated(kind: RowKind, tenant, fields: dict, obj) -> dict:
    fields = {k: v for k, v in fields.items() if k in kind.fields}
    errors = kind.check(tenant, fields, obj)
    if errors:
        raise ValidationFailed(
            f"The {kind.name.replace('_', ' ')} has invalid fields.", fields=dict(errors)
        )
    return fields


def do_create(kind_name: str, *, actor: Actor, fields: dict):
    kind = ROWS[kind_name]
    tenant = require_tenant("routing actions")
    fields = _validated(kind, tenant, dict(fields), None)
    with transaction.atomic():
        obj = kind.model.objects.create(**fields)
        audit.record(actor, f"{kind.name}.create", obj, tenant=tenant, changes=fields)
        publish_on_commit(tenant)
    return obj


def do_update(obj, *, actor: Actor, fields: dict):
    kind = _kind_of(obj)
    tenant = require_tenant("routing actions")
    fields = _validated(kind, tenant, dict(fields), obj)
    with transaction.atomic():
        obj = kind.model.objects.select_for_update().get(pk=obj.pk)
        changes = audit.diff(obj, fields)
        for name, value in fields.items():
            setattr(obj, name, value)
        obj.save()
        audit.record(actor, f"{kind.name}.update", obj, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return obj


def do_delete(obj, *, actor: Actor) -> None:
    kind = _kind_of(obj)
    tenant = require_tenant("routing actions")
    with transaction.atomic():
        audit.record(actor, f"{kind.name}.delete", obj, tenant=tenant)
        obj.delete()
        publish_on_commit(tenant)


# ------------------------------------------------------------------------------ settings

SETTINGS_FIELDS = (
    "hours_enabled", "weekly", "privacy_code", "blocked_prefixes", "allowed_countries",
    "caller_id", "emergency_caller_id",
)  # fmt: skip


def _weekly_problem(weekly) -> str | None:
    if not isinstance(weekly, list) or len(weekly) != 7:
        return "seven days (Monday first), each a list of [start, end] minutes"
    for day in weekly:
        if not isinstance(day, list) or len(day) > 8:
            return "each day: up to 8 [start, end] periods"
        spans = []
        for span in day:
            if (
                not isinstance(span, list)
                or len(span) != 2
                or not all(isinstance(m, int) and not isinstance(m, bool) for m in span)
                or not 0 <= span[0] < span[1] <= 1440
            ):
                return "a period is [start, end] in minutes after midnight, start before end"
            spans.append(span)
        spans.sort()
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:], strict=False)):
            return "periods of one day must not overlap"
    return None


def do_update_settings(
    *, actor: Actor, fields: dict, country: str | None = None
) -> RoutingSettings:
    """The tenant's routing settings and (``country``) its country for national numbers."""
    from telephony.features import privacy_code_problem

    tenant = require_tenant("routing actions")
    fields = {k: v for k, v in fields.items() if k in SETTINGS_FIELDS}
    errors = _Errors(
        single_line_errors(fields, {"privacy_code": 8, "caller_id": 32, "emergency_caller_id": 32})
    )
    if country is not None and (problem := country_problem(country)):
        errors.add("country", problem)
    code = fields.get("privacy_code")
    if (
        code is not None
        and "privacy_code" not in errors
        and not (2 <= len(code) <= 5 and code[0] in "*#" and code[1:].isdigit())
    ):
        errors.add("privacy_code", PRIVACY_CODE_HELP)
    clash = privacy_code_problem(code) if code and "privacy_code" not in errors else None
    if clash:
        errors.add("privacy_code", clash)
    if "weekly" in fields and (problem := _weekly_problem(fields["weekly"])):
        errors.add("weekly", problem)
    prefixes = fields.get("blocked_prefixes")
    if prefixes is not None and not (
        isinstance(prefixes, list)
        and len(prefixes) <= 200
        and all(
            isinstance(p, str) and p.startswith("+") and p[1:].isdigit() and 1 < len(p) <= 16
            for p in prefixes
        )
    ):
        errors.add("blocked_prefixes", "a list of E.164 prefixes like +1900")
    countries = fields.get("allowed_countries")
    if countries is not None:
        if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
            errors.add("allowed_countries", "a list of ISO 3166 codes ([] = every country)")
        else:
            fields["allowed_countries"] = sorted({c.upper() for c in countries})
            unknown = [c for c in fields["allowed_countries"] if c not in COUNTRIES]
            if unknown:
                errors.add("allowed_countries", f"unknown: {', '.join(unknown[:5])}")
    region = (country if country is not None else tenant.country) or ""
    for name in ("caller_id", "emergency_caller_id"):
        _phone(errors, fields, name, region)
    if errors:
        raise ValidationFailed("The routing settings have invalid fields.", fields=dict(errors))
    with transaction.atomic():
        locked = RoutingSettings.objects.select_for_update().order_by("pk").first()
        settings = locked if locked is not None else RoutingSettings()
        changes = audit.diff(settings, fields)
        for name, value in fields.items():
            setattr(settings, name, value)
        settings.updated_at = timezone.now()
        settings.save()
        if country is not None and country.upper() != tenant.country:
            changes["country"] = [tenant.country, country.upper()]
            type(tenant).objects.filter(pk=tenant.pk).update(country=country.upper())
            tenant.country = country.upper()
        audit.record(actor, "routing_settings.update", settings, tenant=tenant, changes=changes)
        publish_on_commit(tenant)
    return settings
