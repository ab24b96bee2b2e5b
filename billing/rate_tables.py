"""Rate tables and their rates: the rules every value is judged by, and the audited actions that
write them (the API, the portal, the CSV import and the Django admin all go through here, so a
bad value gets the same message everywhere).

Who may act on which table is the caller's business (``billing.access``); these actions take
the objects already found within the caller's scope, and the base and trunks already checked
against it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import Conflict, ValidationFailed

from .accounts import rate_tables_changed
from .models import Rate, RateKind, RateTable
from .rates import chain_of

PREFIX_MAX = 16
PRICE_MAX = Decimal("99999999.9999")  # the columns' 12 digits, 4 after the point
INTERVAL_MAX = 3600
SECONDS_MAX = 86400
MARKUP_MIN, MARKUP_MAX = Decimal(-100), Decimal(1000)
_CURRENCY = re.compile(r"[A-Z]{3}")

RATE_FIELDS = (
    "prefix",
    "description",
    "per_minute",
    "connection_fee",
    "first_interval",
    "next_interval",
    "free_seconds",
    "grace_seconds",
)
RATE_DEFAULTS = {
    "description": "",
    "per_minute": Decimal(0),
    "connection_fee": Decimal(0),
    "first_interval": 60,
    "next_interval": 60,
    "free_seconds": 0,
    "grace_seconds": 0,
}
TABLE_FIELDS = ("name", "kind", "currency", "base", "markup_percent", "description")


# ------------------------------------------------------------------------------ single values


def clean_prefix(value) -> str:
    """E.164 digits without the "+": 1 to 16 of them."""
    text = str(value if value is not None else "").strip()
    if text.startswith("+"):
        text = text[1:]
    if not text:
        raise ValueError("required: the destination's leading digits")
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"'{text[:20]}' is not digits only")
    if len(text) > PREFIX_MAX:
        raise ValueError(f"at most {PREFIX_MAX} digits")
    return text


def clean_price(value) -> Decimal:
    """A price: zero or more, at most four decimal places."""
    if isinstance(value, Decimal):
        amount = value
    else:
        text = str(value if value is not None else "").strip()
        if not text:
            return Decimal(0)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"'{text[:20]}' is not a number") from None
    if not amount.is_finite():
        raise ValueError("not a number")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount > PRICE_MAX:
        raise ValueError(f"at most {PRICE_MAX}")
    if amount != amount.quantize(Decimal("0.0001")):
        raise ValueError("at most 4 decimal places")
    return amount.quantize(Decimal("0.0001"))


def _whole(value, default: int) -> int:
    if isinstance(value, bool):
        raise ValueError("a whole number")
    if isinstance(value, int):
        return value
    text = str(value if value is not None else "").strip()
    if not text:
        return default
    if not (text.isascii() and text.lstrip("-").isdigit()):
        raise ValueError(f"'{text[:20]}' is not a whole number")
    return int(text)


def clean_interval(value, default: int = 60) -> int:
    number = _whole(value, default)
    if not 1 <= number <= INTERVAL_MAX:
        raise ValueError(f"between 1 and {INTERVAL_MAX} seconds")
    return number


def clean_seconds(value, default: int = 0) -> int:
    number = _whole(value, default)
    if not 0 <= number <= SECONDS_MAX:
        raise ValueError(f"between 0 and {SECONDS_MAX} seconds")
    return number


def clean_description(value) -> str:
    text = str(value if value is not None else "").strip()
    # An exported cell that looked like a formula carries a leading quote: take it off again.
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@"):
        text = text[1:]
    if len(text) > 120:
        raise ValueError("at most 120 characters")
    if not text.isprintable():
        raise ValueError("must not contain control characters")
    return text


_CLEANERS = {
    "prefix": clean_prefix,
    "description": clean_description,
    "per_minute": clean_price,
    "connection_fee": clean_price,
    "first_interval": clean_interval,
    "next_interval": clean_interval,
    "free_seconds": clean_seconds,
    "grace_seconds": clean_seconds,
}


def rate_problems(fields: dict) -> tuple[dict, dict[str, str]]:
    """``fields`` (any of :data:`RATE_FIELDS`, as text or typed) judged: the clean values and
    a message per bad field."""
    clean: dict = {}
    bad: dict[str, str] = {}
    for name, value in fields.items():
        if name not in _CLEANERS:
            continue
        try:
            clean[name] = _CLEANERS[name](value)
        except ValueError as exc:
            bad[name] = str(exc)
    return clean, bad


def validate_rate(fields: dict) -> dict:
    clean, bad = rate_problems(fields)
    if bad:
        raise ValidationFailed(
            "Invalid rate.", fields={name: [message] for name, message in bad.items()}
        )
    return clean


# ------------------------------------------------------------------------------ tables


def _loops(table: RateTable | None, base: RateTable | None) -> bool:
    """Whether basing ``table`` on ``base`` closes a loop (the base's chain reaches it)."""
    if table is None or table.pk is None:
        return False
    return any(node.pk == table.pk for node in chain_of(base))


def validate_rate_table(fields: dict, *, table: RateTable | None = None, dealer=None) -> dict:
    """The table's fields judged (``dealer``: the owner of a new table)."""
    bad: dict[str, str] = {}
    clean = dict(fields)
    if "name" in fields or table is None:
        name = str(fields.get("name") or "").strip()
        owner = table.dealer_id if table is not None else getattr(dealer, "pk", None)
        if not name:
            bad["name"] = "required"
        elif len(name) > 120 or not name.isprintable():
            bad["name"] = "at most 120 printable characters"
        else:
            same_owner = Q(dealer_id=owner) if owner is not None else Q(dealer__isnull=True)
            others = RateTable.objects.filter(same_owner, name__iexact=name)
            if table is not None:
                others = others.exclude(pk=table.pk)
            if others.exists():
                bad["name"] = f"a rate table named '{name}' already exists"
        clean["name"] = name
    if "kind" in fields and fields["kind"] not in RateKind.values:
        bad["kind"] = f"one of: {', '.join(RateKind.values)}"
    if "currency" in fields:
        currency = str(fields["currency"] or "").strip().upper()
        if not _CURRENCY.fullmatch(currency):
            bad["currency"] = "three letters (ISO 4217), for example USD"
        clean["currency"] = currency
    if "markup_percent" in fields:
        try:
            markup = Decimal(str(fields["markup_percent"] if fields["markup_percent"] != "" else 0))
        except InvalidOperation:
            markup = None
        if markup is None or not markup.is_finite():
            bad["markup_percent"] = "a number"
        elif not MARKUP_MIN < markup <= MARKUP_MAX:
            bad["markup_percent"] = "more than -100 and at most 1000 (percent)"
        elif markup != markup.quantize(Decimal("0.001")):
            bad["markup_percent"] = "at most 3 decimal places"
        else:
            clean["markup_percent"] = markup
    if "description" in fields:
        description = str(fields["description"] or "").strip()
        if len(description) > 255 or not description.isprintable():
            bad["description"] = "at most 255 printable characters"
        clean["description"] = description
    base = fields.get("base")
    if base is not None:
        if table is not None and base.pk == table.pk:
            bad["base"] = "a table cannot be based on itself"
        elif _loops(table, base):
            bad["base"] = f"'{base.name}' is already based on this table (a loop)"
    if base is not None and "base" not in bad:
        currency = clean.get("currency") or (table.currency if table is not None else "USD")
        if base.currency != currency:
            # A markup of dollars is not a price in euros.
            bad["base"] = f"'{base.name}' is in {base.currency}; this table is in {currency}"
    kind = fields.get("kind", table.kind if table is not None else RateKind.SELL)
    trunks = fields.get("trunks")
    if trunks and kind != RateKind.BUY:
        bad["trunks"] = "only buy rate tables apply to trunks"
    if bad:
        raise ValidationFailed(
            "Invalid rate table.", fields={name: [message] for name, message in bad.items()}
        )
    return clean


def do_create_rate_table(*, actor: Actor, fields: dict, dealer=None) -> RateTable:
    """A new table of ``dealer`` (None: the provider's). ``fields`` may hold ``trunks``."""
    trunks = fields.get("trunks") or []
    clean = validate_rate_table(fields, dealer=dealer)
    table = RateTable(dealer=dealer, **{k: v for k, v in clean.items() if k in TABLE_FIELDS})
    with transaction.atomic():
        table.save()
        if trunks:
            table.trunks.set(trunks)
        changes = {k: v for k, v in clean.items() if k in TABLE_FIELDS}
        changes["base"] = table.base_id
        changes["trunks"] = [t.pk for t in trunks]
        audit.record(actor, "rate_table.create", table, dealer=dealer, changes=changes)
    return table


def do_update_rate_table(table: RateTable, *, actor: Actor, fields: dict) -> RateTable:
    trunks = fields.get("trunks")
    clean = validate_rate_table(fields, table=table)
    with transaction.atomic():
        table = RateTable.objects.select_for_update().get(pk=table.pk)
        own = {k: v for k, v in clean.items() if k in TABLE_FIELDS}
        if "kind" in own and own["kind"] != RateKind.BUY and trunks is None:
            trunks = []  # a table that stops being a buy table stops applying to trunks
        # The base chain may have moved since the check above: judge the loop again under lock.
        if "base" in own and _loops(table, own["base"]):
            raise ValidationFailed("Invalid rate table.", fields={"base": ["a loop"]})
        changes = audit.diff(table, {k: v for k, v in own.items() if k != "base"})
        if "base" in own and table.base_id != getattr(own["base"], "pk", None):
            changes["base"] = [table.base_id, getattr(own["base"], "pk", None)]
        for name, value in own.items():
            setattr(table, name, value)
        table.updated_at = timezone.now()
        table.save()
        if trunks is not None:
            audit.set_many(table, "trunks", trunks, changes)
        audit.record(actor, "rate_table.update", table, dealer=table.dealer, changes=changes)
        rate_tables_changed(table.pk)  # a markup or a base moves every price under it
    return table


def do_delete_rate_table(table: RateTable, *, actor: Actor) -> None:
    """Delete a table and its rates; refused while a billing account charges by it or another
    table is based on it."""
    with transaction.atomic():
        table = RateTable.objects.select_for_update().get(pk=table.pk)
        accounts = list(table.accounts.select_related("tenant").order_by("tenant__name")[:6])
        if accounts:
            names = ", ".join(a.tenant.name for a in accounts[:5])
            more = " and more" if len(accounts) > 5 else ""
            raise Conflict(
                f"Rate table '{table.name}' is in use: the billing account of {names}{more} "
                "charges by it. Give those accounts another table first.",
                fields={"accounts": [a.tenant.name for a in accounts[:5]]},
            )
        derived = list(table.derived.order_by("name").values_list("name", flat=True)[:6])
        if derived:
            raise Conflict(
                f"Rate table '{table.name}' is the base of {', '.join(derived[:5])}. "
                "Change or delete those tables first.",
                fields={"derived": derived[:5]},
            )
        audit.record(
            actor,
            "rate_table.delete",
            table,
            dealer=table.dealer,
            changes={"rates": table.rates.count()},
        )
        table.delete()


# ------------------------------------------------------------------------------ rates


def _touch(table: RateTable) -> None:
    """A rate of ``table`` changed: its time, and the tenants it prices republished."""
    RateTable.objects.filter(pk=table.pk).update(updated_at=timezone.now())
    rate_tables_changed(table.pk)


def do_create_rate(table: RateTable, *, actor: Actor, fields: dict) -> Rate:
    clean = {**RATE_DEFAULTS, **validate_rate({"prefix": fields.get("prefix"), **fields})}
    with transaction.atomic():
        if Rate.objects.filter(table=table, prefix=clean["prefix"]).exists():
            raise ValidationFailed(
                "Invalid rate.",
                fields={"prefix": [f"prefix {clean['prefix']} already has a rate in this table"]},
            )
        rate = Rate.objects.create(table=table, **clean)
        _touch(table)
        audit.record(actor, "rate.create", rate, dealer=table.dealer, changes=clean)
    return rate


def do_update_rate(rate: Rate, *, actor: Actor, fields: dict) -> Rate:
    clean = validate_rate(fields)
    with transaction.atomic():
        rate = Rate.objects.select_for_update().select_related("table").get(pk=rate.pk)
        if (
            "prefix" in clean
            and clean["prefix"] != rate.prefix
            and Rate.objects.filter(table_id=rate.table_id, prefix=clean["prefix"]).exists()
        ):
            raise ValidationFailed(
                "Invalid rate.",
                fields={"prefix": [f"prefix {clean['prefix']} already has a rate in this table"]},
            )
        changes = audit.diff(rate, clean)
        for name, value in clean.items():
            setattr(rate, name, value)
        rate.save()
        _touch(rate.table)
        audit.record(actor, "rate.update", rate, dealer=rate.table.dealer, changes=changes)
    return rate


def do_delete_rate(rate: Rate, *, actor: Actor) -> None:
    with transaction.atomic():
        table = rate.table
        audit.record(
            actor, "rate.delete", rate, dealer=table.dealer, changes={"prefix": rate.prefix}
        )
        rate.delete()
        _touch(table)
