"""Call reports: a tenant's calls and their cost over a period of whole days, grouped by
extension, trunk, DID or period (day, week, month), as the portal's Reports page, the API's
``/reports/calls/`` and the scheduled e-mails show them.

Figures are added up in SQL (one ``values().annotate()`` per query); Python only merges the
grouped rows. A call counts for each extension that made it (``caller_number``) or took it
(``callee_number``), so an internal call between two extensions shows on both lines, and the
totals are counted once over the period, not summed from the lines. Periods and days are in the
tenant's time zone. The caller is in the tenant's schema.
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import schema_context

from pbx.errors import ValidationFailed
from pbx.middleware import page_time_zone as time_zone  # the tenant's, as its pages show
from pbx.tenancy import current_schema
from pbx.text import safe_cell
from telephony.models import CallDirection, Cdr, Extension
from telephony.stats import MISSED
from trunks.models import Trunk

GROUPS = {
    "extension": "Extension",
    "trunk": "Trunk",
    "did": "DID",
    "day": "Day",
    "week": "Week",
    "month": "Month",
}
PERIOD_GROUPS = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
#: The longest period a report covers (a year, leap day included).
MAX_DAYS = 366
DIRECTIONS = tuple(CallDirection.values)
ZERO = Decimal("0.0000")

#: The figures of one line (and of the totals), added up in SQL.
FIGURES = {
    "calls": Count("id"),
    "answered": Count("id", filter=Q(status="answered")),
    "missed": Count("id", filter=Q(status__in=MISSED)),
    "talk_seconds": Sum("billsec"),
    # Not named "cost": an annotation of a field's name would shadow the field in filters.
    "cost_sum": Sum("cost"),
    "rated": Count("id", filter=Q(cost__isnull=False)),
    **{d: Count("id", filter=Q(direction=d)) for d in DIRECTIONS},
}


def tenant_today(tenant) -> date:
    return timezone.now().astimezone(time_zone(tenant)).date()


@dataclass
class Report:
    """A report's lines (``rows``, each with ``key``, ``label`` and the figures) and totals."""

    group_by: str
    start: date
    end: date  # the last day, included
    time_zone: str
    direction: str
    rows: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    currencies: list[str] = field(default_factory=list)

    @property
    def currency(self) -> str:
        return ", ".join(self.currencies)

    def as_dict(self) -> dict:
        return {
            "group_by": self.group_by,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "time_zone": self.time_zone,
            "direction": self.direction,
            "currency": self.currency,
            "rows": [_jsonable(r) for r in self.rows],
            "totals": _jsonable(self.totals),
        }


def _jsonable(row: dict) -> dict:
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in row.items()}


def parse_period(
    group_by: str | None,
    start: str | date | None,
    end: str | date | None,
    *,
    today: date | None = None,
) -> tuple[str, date, date]:
    """``group_by`` and the first and last day, checked; a bad one is a ``ValidationFailed``
    naming the field (the API's 400 body, the portal form's errors). Without ``start`` and
    ``end``: the month so far (up to ``today``)."""
    errors: dict[str, list[str]] = {}
    if not start and not end and today is not None:
        start, end = today.replace(day=1), today
    group_by = group_by or "extension"
    if group_by not in GROUPS:
        errors["group_by"] = [f"must be one of: {', '.join(GROUPS)}"]
    days = {}
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, date):
            days[name] = value
        elif not value:
            errors[name] = ["required (a date, YYYY-MM-DD)"]
        else:
            try:
                days[name] = date.fromisoformat(str(value))
            except ValueError:
                errors[name] = ["not a date (YYYY-MM-DD)"]
    if len(days) == 2 and not errors:
        if days["end"] < days["start"]:
            errors["end"] = ["must not be before start"]
        elif (days["end"] - days["start"]).days + 1 > MAX_DAYS:
            errors["end"] = [f"a report covers at most {MAX_DAYS} days"]
    if errors:
        raise ValidationFailed("The report's period or grouping is not valid.", fields=errors)
    return group_by, days["start"], days["end"]


def bounds(tz: zoneinfo.ZoneInfo, start: date, end: date) -> tuple[datetime, datetime]:
    """The instants the days ``start``..``end`` (included) begin and end in ``tz``."""
    return (
        datetime.combine(start, time(), tzinfo=tz),
        datetime.combine(end + timedelta(days=1), time(), tzinfo=tz),
    )


def period_cdrs(tenant, start: date, end: date, direction: str = ""):
    """The tenant's CDRs started on the days ``start``..``end`` in its time zone."""
    since, until = bounds(time_zone(tenant), start, end)
    cdrs = Cdr.objects.filter(started_at__gte=since, started_at__lt=until)
    if direction:
        cdrs = cdrs.filter(direction=direction)
    return cdrs


def _figures(row: dict) -> dict:
    out = {name: row.get(name) or 0 for name in FIGURES if name != "cost_sum"}
    out["cost"] = row.get("cost_sum") or ZERO
    return out


def _finish(figures: dict) -> dict:
    answered = figures["answered"]
    figures["average_talk_seconds"] = round(figures["talk_seconds"] / answered) if answered else 0
    return figures


def _add(into: dict, row: dict) -> None:
    for name, value in _figures(row).items():
        into[name] = into.get(name, 0) + value


def report(tenant, group_by: str, start: date, end: date, filters: dict | None = None) -> Report:
    """The report of ``tenant``'s calls on the days ``start``..``end`` (checked by
    :func:`parse_period`). ``filters``: ``direction`` (inbound, outbound, internal)."""
    direction = (filters or {}).get("direction") or ""
    if direction and direction not in DIRECTIONS:
        raise ValidationFailed(
            "Unknown direction.", fields={"direction": [f"must be one of: {', '.join(DIRECTIONS)}"]}
        )
    tz = time_zone(tenant)
    cdrs = period_cdrs(tenant, start, end, direction)
    result = Report(group_by, start, end, tz.key, direction)
    if group_by == "extension":
        result.rows = _by_extension(cdrs)
    elif group_by == "trunk":
        result.rows = _by_trunk(cdrs)
    elif group_by == "did":
        rows = cdrs.exclude(did="").values("did").annotate(**FIGURES).order_by("did")
        result.rows = [{"key": r["did"], "label": r["did"], **_finish(_figures(r))} for r in rows]
    else:
        result.rows = _by_period(cdrs, group_by, tz, start, end)
    result.totals = _finish(_figures(cdrs.aggregate(**FIGURES)))
    result.currencies = list(
        cdrs.filter(cost__isnull=False)
        .exclude(currency="")
        .order_by("currency")
        .values_list("currency", flat=True)
        .distinct()
    )
    return result


def _by_extension(cdrs) -> list[dict]:
    numbers = Extension.objects.values("number")
    lines: dict[str, dict] = {}
    for side in ("caller_number", "callee_number"):
        grouped = cdrs.filter(**{f"{side}__in": numbers}).values(side).annotate(**FIGURES)
        for row in grouped.order_by():
            _add(lines.setdefault(row[side], {}), row)
    names = dict(
        Extension.objects.filter(number__in=list(lines)).values_list("number", "display_name")
    )
    return [
        {"key": number, "label": _label(number, names.get(number, "")), **_finish(lines[number])}
        for number in sorted(lines, key=lambda n: (len(n), n))
    ]


def _label(number: str, name: str) -> str:
    return f"{number} {name}" if name else number


def _by_trunk(cdrs) -> list[dict]:
    grouped = list(cdrs.exclude(trunk=None).values("trunk").annotate(**FIGURES).order_by("trunk"))
    # Trunks live in the public schema; a deleted trunk keeps its id in old CDRs.
    names = dict(
        Trunk.objects.filter(pk__in=[r["trunk"] for r in grouped]).values_list("pk", "name")
    )
    rows = [
        {
            "key": str(r["trunk"]),
            "label": names.get(r["trunk"], f"Trunk {r['trunk']} (deleted)"),
            **_finish(_figures(r)),
        }
        for r in grouped
    ]
    return sorted(rows, key=lambda r: (r["label"].lower(), r["key"]))


def buckets(group_by: str, start: date, end: date) -> list[date]:
    """The first day of every day, week (Monday) or month touching ``start``..``end``."""
    if group_by == "week":
        day, step = start - timedelta(days=start.weekday()), "week"
    elif group_by == "month":
        day, step = start.replace(day=1), "month"
    else:
        day, step = start, "day"
    out = []
    while day <= end:
        out.append(day)
        if step == "day":
            day += timedelta(days=1)
        elif step == "week":
            day += timedelta(days=7)
        else:
            day = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def _by_period(cdrs, group_by: str, tz, start: date, end: date) -> list[dict]:
    trunc = PERIOD_GROUPS[group_by]
    grouped = (
        cdrs.annotate(bucket=trunc("started_at", tzinfo=tz))
        .values("bucket")
        .annotate(**FIGURES)
        .order_by("bucket")
    )
    found = {r["bucket"].astimezone(tz).date(): r for r in grouped}
    # Every bucket of the period, empty ones too: a chart of calls per day has no gaps.
    return [
        {
            "key": day.isoformat(),
            "label": _bucket_label(group_by, day),
            **_finish(_figures(found.get(day, {}))),
        }
        for day in buckets(group_by, start, end)
    ]


def _bucket_label(group_by: str, day: date) -> str:
    if group_by == "month":
        return f"{day:%Y-%m}"
    if group_by == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d} (from {day.isoformat()})"
    return day.isoformat()


# --- CSV -----------------------------------------------------------------------------------------


def cell(value, tz: zoneinfo.ZoneInfo) -> str:
    """One CSV cell: numbers as they are (a negative number is no formula), times in the
    tenant's zone with their offset, text made safe."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat(timespec="seconds")
    return safe_cell(str(value))


REPORT_COLUMNS = [
    ("Calls", "calls"),
    ("Answered", "answered"),
    ("Missed", "missed"),
    ("Inbound", "inbound"),
    ("Outbound", "outbound"),
    ("Internal", "internal"),
    ("Talk seconds", "talk_seconds"),
    ("Average talk seconds", "average_talk_seconds"),
    ("Rated calls", "rated"),
    ("Cost", "cost"),
]

CDR_COLUMNS: list[tuple[str, str]] = [
    ("Started", "started_at"),
    ("Direction", "direction"),
    ("From", "caller_number"),
    ("From name", "caller_name"),
    ("To", "callee_number"),
    ("Trunk", "trunk"),
    ("DID", "did"),
    ("Number", "number"),
    ("Status", "status"),
    ("Duration", "duration"),
    ("Talk seconds", "billsec"),
    ("Cost", "cost"),
    ("Currency", "currency"),
    ("Rate prefix", "rate_prefix"),
    ("Call id", "call_id"),
]
CHUNK_ROWS = 500


def report_table(result: Report) -> Iterator[list[str]]:
    """The report as CSV rows: a header, a line per group, then the totals."""
    tz = zoneinfo.ZoneInfo(result.time_zone)
    yield [safe_cell(h) for h in (GROUPS[result.group_by], *(h for h, _ in REPORT_COLUMNS))] + [
        "Currency"
    ]
    for row in [*result.rows, {"label": "Total", **result.totals}]:
        yield [cell(row["label"], tz), *(cell(row[k], tz) for _, k in REPORT_COLUMNS)] + [
            safe_cell(result.currency)
        ]


def report_csv(result: Report) -> str:
    """The report as one CSV text (the e-mail's attachment)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(report_table(result))
    return buffer.getvalue()


def csv_lines(rows) -> Iterator[str]:
    """CSV rows (lists of text) as chunks of CSV text, for a streamed response."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % CHUNK_ROWS == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def cdr_table(cdrs, tz: zoneinfo.ZoneInfo) -> Iterator[list[str]]:
    """Raw CDRs as CSV rows (a header first), read in chunks, oldest first."""
    yield [safe_cell(h) for h, _ in CDR_COLUMNS]
    fields = [acc for _, acc in CDR_COLUMNS]
    for values in cdrs.order_by("started_at", "id").values(*fields).iterator(CHUNK_ROWS):
        yield [cell(values[f], tz) for f in fields]


def csv_download(rows, name: str, tenant) -> StreamingHttpResponse:
    """Stream CSV rows; they are read inside the tenant's schema, as the response is written
    after the view returned."""
    schema = current_schema()

    def chunks():
        with schema_context(schema):
            yield from csv_lines(rows)

    response = StreamingHttpResponse(chunks(), content_type="text/csv; charset=utf-8")
    today = tenant_today(tenant).isoformat()
    response["Content-Disposition"] = f'attachment; filename="{tenant.slug}-{name}-{today}.csv"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
