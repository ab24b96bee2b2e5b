"""A rate table's rates as CSV: imported all-or-nothing (with a dry run) and exported.

The file is read by :class:`pbx.imports.Importer` (size, encoding, header, field counts: the
same rules and messages as every other CSV import), with the columns of :data:`COLUMNS`, all
of them required. Each row is judged by the rate rules of ``billing.rate_tables``; a prefix
given twice in the file is an error. A file with any bad row imports nothing.

Modes: ``merge`` creates the new prefixes and updates the known ones; ``replace`` also deletes
the table's prefixes the file does not name. A dry run reports what would be created, updated,
unchanged and deleted, and writes nothing. The run itself writes in one transaction, the table
locked, and judges the file again against the table as it then is.

Rate tables live in the public schema and a file of rates holds no secret, so the run is done
in the request (up to :data:`MAX_ROWS` rows) rather than as a stored job of a tenant's schema.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from pbx import audit
from pbx.audit import Actor
from pbx.errors import ValidationFailed
from pbx.imports import Importer, RowError
from pbx.text import safe_cell

from .accounts import rate_tables_changed
from .models import Rate, RateTable
from .rate_tables import RATE_DEFAULTS, RATE_FIELDS, rate_problems

COLUMNS = RATE_FIELDS
MAX_BYTES = 8 * 1024 * 1024
MAX_ROWS = 100_000
MERGE, REPLACE = "merge", "replace"
MODES = (MERGE, REPLACE)


class RateImporter(Importer):
    """The file reader for rates. Not registered with ``pbx.imports``: that registry serves the
    tenant's own imports, and rates belong to the public schema."""

    kind = "rates"
    label = "Rates"
    columns = COLUMNS
    required = COLUMNS
    max_bytes = MAX_BYTES
    max_rows = MAX_ROWS


class RateImportRejected(ValidationFailed):
    """Rows of the file are bad; nothing was (or would be) imported."""

    def __init__(self, errors: list[RowError]):
        self.errors = sorted(errors, key=lambda e: (e.row, e.column))
        count = len({e.row for e in self.errors})
        super().__init__(
            f"{count} row(s) of the file have errors; nothing was imported.",
            fields={"rows": [e.as_dict() for e in self.errors[:500]]},
        )


@dataclass
class ImportReport:
    mode: str
    dry_run: bool
    rows: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)

    def as_dict(self, *, sample: int = 50) -> dict:
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "rows": self.rows,
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": self.unchanged,
            "deleted": len(self.deleted),
            "examples": {
                "created": self.created[:sample],
                "updated": self.updated[:sample],
                "deleted": self.deleted[:sample],
            },
        }


def read_rates(data: bytes) -> dict[str, dict]:
    """The file's rates by prefix, judged; any problem raises (whole-file problems as
    :class:`pbx.imports.ImportFileError`, bad rows as :class:`RateImportRejected`)."""
    parsed = RateImporter().parse(data)
    errors = list(parsed.errors)
    rates: dict[str, dict] = {}
    first_row: dict[str, int] = {}
    for index, row in parsed.rows:
        clean, bad = rate_problems(row)
        prefix = clean.get("prefix")
        if prefix is not None:
            if prefix in first_row:
                bad["prefix"] = f"prefix {prefix} is also on row {first_row[prefix]}"
            first_row.setdefault(prefix, index)
        errors.extend(RowError(index, column, message) for column, message in bad.items())
        if not bad and prefix is not None:
            rates[prefix] = {**RATE_DEFAULTS, **clean}
    if errors:
        raise RateImportRejected(errors)
    return rates


def _plan(table: RateTable, rates: dict[str, dict], report: ImportReport):
    existing = {r.prefix: r for r in Rate.objects.filter(table=table)}
    create, update = [], []
    for prefix, values in rates.items():
        row = existing.get(prefix)
        if row is None:
            create.append(Rate(table=table, **values))
            report.created.append(prefix)
        elif any(getattr(row, k) != v for k, v in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            update.append(row)
            report.updated.append(prefix)
        else:
            report.unchanged += 1
    if report.mode == REPLACE:
        report.deleted = sorted(p for p in existing if p not in rates)
    return create, update


def import_rates(
    table: RateTable, data: bytes, *, mode: str, dry_run: bool, actor: Actor
) -> ImportReport:
    """Import a CSV file of rates into ``table`` (see the module's docstring)."""
    if mode not in MODES:
        raise ValidationFailed(
            "Unknown import mode.", fields={"mode": [f"one of: {', '.join(MODES)}"]}
        )
    rates = read_rates(data)
    report = ImportReport(mode=mode, dry_run=dry_run, rows=len(rates))
    if dry_run:
        _plan(table, rates, report)
        return report
    with transaction.atomic():
        table = RateTable.objects.select_for_update().get(pk=table.pk)
        create, update = _plan(table, rates, report)
        if report.deleted:
            Rate.objects.filter(table=table, prefix__in=report.deleted).delete()
        Rate.objects.bulk_create(create, batch_size=2000)
        fields = [f for f in RATE_FIELDS if f != "prefix"]
        Rate.objects.bulk_update(update, fields, batch_size=2000)
        RateTable.objects.filter(pk=table.pk).update(updated_at=timezone.now())
        rate_tables_changed(table.pk)
        summary = report.as_dict(sample=0)
        del summary["examples"]
        audit.record(actor, "rate_table.import", table, dealer=table.dealer, changes=summary)
    return report


# ------------------------------------------------------------------------------ export


def export_rows(table: RateTable) -> Iterator[list[str]]:
    """The header, then the table's own rates in prefix order, as cells safe for a spreadsheet
    (text that would be read as a formula gets a leading quote)."""
    yield list(COLUMNS)
    for rate in Rate.objects.filter(table=table).order_by("prefix").iterator(chunk_size=2000):
        yield [safe_cell(getattr(rate, name)) for name in COLUMNS]


def export_csv(table: RateTable) -> Iterator[str]:
    """The CSV text of :func:`export_rows`, a chunk of lines at a time (for streaming)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for n, row in enumerate(export_rows(table), start=1):
        writer.writerow(row)
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
