"""CSV export of a portal list: the rows the list page shows (its search, sort and filters),
every page of them, as a streamed CSV download.

A list view builds its queryset (or list) as it always does and, when ``?export=csv`` is in
the query string, hands it to :func:`csv_response` with a column spec instead of rendering the
page — so an export has exactly the list page's rows and its permissions (the same view, the
same decorator: where the list is 404, so is its export). Columns are ``(header, accessor)``;
an accessor is an attribute path (``"dealer.name"``) or a callable. Secrets are simply never
named in a spec.

Cells: times in the tenant's time zone with their offset (ISO 8601), yes/no for booleans,
lists joined with ", ". A cell that a spreadsheet would read as a formula (starting with
``= + - @``, a tab or a carriage return) gets a leading ``'`` (OWASP's CSV injection advice).
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from django_tenants.utils import schema_context

from pbx.middleware import page_time_zone
from pbx.portal.access import host_tenant
from pbx.tenancy import current_schema
from pbx.text import safe_cell

Accessor = str | Callable[[Any], Any]
Column = tuple[str, Accessor]

EXPORT_PARAM = "export"
#: Rows per chunk written to the response.
CHUNK_ROWS = 500


def wants_csv(request) -> bool:
    return request.GET.get(EXPORT_PARAM) == "csv"


def _resolve(obj: Any, accessor: Accessor) -> Any:
    if callable(accessor):
        return accessor(obj)
    value = obj
    for part in accessor.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part)
    return value() if callable(value) else value


def cell(value: Any, tz: zoneinfo.ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return str(value)  # a number is not a formula, even a negative one
    if isinstance(value, datetime):
        aware = value if timezone.is_aware(value) else value.replace(tzinfo=UTC)
        return aware.astimezone(tz).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return safe_cell(str(value))


def filename(request, name: str, tz: zoneinfo.ZoneInfo) -> str:
    tenant = host_tenant(request)
    scope = tenant.slug if tenant is not None else "platform"
    return f"{scope}-{name}-{timezone.now().astimezone(tz).date().isoformat()}.csv"


def _chunks(rows: Iterable[Any], columns: list[Column], tz, schema: str) -> Iterator[str]:
    """The CSV text in chunks. The rows are read inside the host's schema: the response is
    consumed after the view returned, when the connection may be on another schema."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([safe_cell(header) for header, _ in columns])
    with schema_context(schema):
        if isinstance(rows, QuerySet):
            # Prefetches need a chunk size to work with iterator().
            rows = rows.iterator(chunk_size=CHUNK_ROWS)
        for n, obj in enumerate(rows, 1):
            writer.writerow([cell(_resolve(obj, acc), tz) for _, acc in columns])
            if n % CHUNK_ROWS == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def csv_response(request, rows: Iterable[Any], columns: list[Column], *, name: str):
    """Stream ``rows`` (a queryset, ordered, or a list of objects or dicts) as a CSV file."""
    # The page's zone, passed along: the rows are written after the request's zone is gone.
    tz = page_time_zone(host_tenant(request))
    # A sync iterator: the web server's handler (pbx/asgi_http.py) iterates it on the request's
    # thread, as a WSGI server would, and hands each chunk to the event loop.
    chunks = _chunks(rows, columns, tz, current_schema())
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename(request, name, tz)}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
