"""Writes of a tenant's scheduled call reports (:class:`billing.models.ReportSchedule`), and the
period each one is due to mail.

Each ``do_*`` checks the fields, runs in one transaction and writes an audit entry. The API,
the portal and the tests call these; nothing else writes the rows (the mailing task only marks
a period sent).
"""

from __future__ import annotations

from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction

from pbx import audit
from pbx.audit import Actor
from pbx.errors import ValidationFailed

from .models import ReportFrequency, ReportSchedule

#: What a scheduled report may be grouped by (the report's groups).
SCHEDULE_GROUPS = ("extension", "trunk", "did", "day", "week", "month")
MAX_RECIPIENTS = 20
FIELDS = ("name", "frequency", "group_by", "recipients", "enabled")


def split_recipients(value) -> list[str]:
    """Addresses from a list or a text separated by commas, semicolons, spaces or lines."""
    if isinstance(value, list | tuple):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").replace(";", ",").replace("\n", ",").replace(" ", ",").split(",")
    seen: list[str] = []
    for part in (p.strip() for p in parts):
        if part and part.lower() not in (s.lower() for s in seen):
            seen.append(part)
    return seen


def clean_fields(fields: dict, *, partial: bool = False) -> dict:
    """The fields as stored, or ``ValidationFailed`` naming each bad one."""
    errors: dict[str, list[str]] = {}
    out: dict = {}
    if "name" in fields or not partial:
        name = str(fields.get("name") or "").strip()
        if not name:
            errors["name"] = ["required"]
        elif len(name) > 120 or not name.isprintable():
            errors["name"] = ["one line of at most 120 characters"]
        out["name"] = name
    if "frequency" in fields or not partial:
        frequency = fields.get("frequency") or ReportFrequency.MONTHLY
        if frequency not in ReportFrequency.values:
            errors["frequency"] = [f"must be one of: {', '.join(ReportFrequency.values)}"]
        out["frequency"] = frequency
    if "group_by" in fields or not partial:
        group_by = fields.get("group_by") or "extension"
        if group_by not in SCHEDULE_GROUPS:
            errors["group_by"] = [f"must be one of: {', '.join(SCHEDULE_GROUPS)}"]
        out["group_by"] = group_by
    if "recipients" in fields or not partial:
        addresses = split_recipients(fields.get("recipients"))
        bad = []
        for address in addresses:
            try:
                validate_email(address)
            except ValidationError:
                bad.append(address)
        if not addresses:
            errors["recipients"] = ["at least one e-mail address"]
        elif bad:
            errors["recipients"] = [f"not an e-mail address: {', '.join(bad[:5])}"[:300]]
        elif len(addresses) > MAX_RECIPIENTS:
            errors["recipients"] = [f"at most {MAX_RECIPIENTS} addresses"]
        out["recipients"] = ", ".join(addresses)
        if len(out["recipients"]) > 1000:
            errors["recipients"] = ["at most 1000 characters"]
    if "enabled" in fields:
        out["enabled"] = bool(fields["enabled"])
    if errors:
        raise ValidationFailed("The report schedule is not valid.", fields=errors)
    return out


def do_create_report_schedule(tenant, *, actor: Actor, fields: dict) -> ReportSchedule:
    values = clean_fields(fields)
    with transaction.atomic():
        schedule = ReportSchedule.objects.create(tenant=tenant, **values)
        audit.record(actor, "report_schedule.create", schedule, tenant=tenant, changes=values)
    return schedule


def do_update_report_schedule(schedule: ReportSchedule, *, actor: Actor, fields: dict):
    values = clean_fields(fields, partial=True)
    with transaction.atomic():
        changes = audit.diff(schedule, values)
        for name, value in values.items():
            setattr(schedule, name, value)
        if changes:
            schedule.save(update_fields=list(values))
            audit.record(
                actor, "report_schedule.update", schedule, tenant=schedule.tenant, changes=changes
            )
    return schedule


def do_delete_report_schedule(schedule: ReportSchedule, *, actor: Actor) -> None:
    with transaction.atomic():
        audit.record(actor, "report_schedule.delete", schedule, tenant=schedule.tenant)
        schedule.delete()


def last_period(frequency: str, today: date) -> tuple[date, date]:
    """The last whole day, week (Monday to Sunday) or month before ``today``."""
    if frequency == ReportFrequency.DAILY:
        day = today - timedelta(days=1)
        return day, day
    if frequency == ReportFrequency.WEEKLY:
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
