"""Scheduled reports by e-mail: each enabled schedule of an active tenant is mailed once per
period (the day, week or month before, in the tenant's time zone), with the figures in the body
and the CSV attached, to its recipients only, with the tenant's own calls only; a failed send
is tried again by the next sweep."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from django.core import mail
from django.db import connection
from django_tenants.utils import tenant_context

from billing.models import ReportSchedule
from billing.report_schedules import (
    do_create_report_schedule,
    do_delete_report_schedule,
    last_period,
)
from billing.report_tasks import send_due, send_due_reports
from pbx.audit import SYSTEM
from tests.billing.report_data import at, cdr, crafted_week, make_trunk, ny_tenant
from tests.conftest import closed_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def january(world):
    tenant = ny_tenant(world.tenant_a)
    crafted_week(tenant, make_trunk(world.tenant_a).pk)
    with tenant_context(world.tenant_b):
        cdr("outbound", "101", "+12125550100", at(6, 12), billsec=99, cost="9.0000")
    connection.set_schema_to_public()
    return tenant


def schedule(tenant, **fields):
    values = {"name": "Monthly calls", "recipients": "boss@acme.test, ops@acme.test", **fields}
    return do_create_report_schedule(tenant, actor=SYSTEM, fields=values)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def attachment_rows(message) -> list[list[str]]:
    [(name, content, mimetype)] = message.attachments
    assert mimetype == "text/csv"
    assert name.endswith(".csv")
    return list(csv.reader(io.StringIO(content)))


def test_a_monthly_report_is_mailed_once_for_its_month(january, world):
    mine = schedule(january)
    assert send_due(utc(2026, 2, 1, 6)) == 1
    [message] = mail.outbox
    assert message.to == ["boss@acme.test", "ops@acme.test"]
    assert message.subject == "Call report Monthly calls: 2026-01-01 to 2026-01-31"
    assert "Calls: 8" in message.body  # the whole of January, B's call not among them
    [(html, kind)] = message.alternatives
    assert kind == "text/html"
    assert "<caption>Calls by extension</caption>" in html
    rows = attachment_rows(message)
    assert rows[0][:2] == ["Extension", "Calls"]
    assert [r[0] for r in rows[1:]] == ["101 Acme 101", "102 Acme 102", "Total"]
    assert rows[-1][1] == "8"
    assert rows[-1][-2:] == ["12.2550", "USD"]
    mine.refresh_from_db()
    assert str(mine.last_period_start) == "2026-01-01"
    assert mine.last_sent_at is not None

    # Later sweeps in February find January sent.
    assert send_due(utc(2026, 2, 1, 6, 15)) == 0
    assert send_due(utc(2026, 2, 27, 12)) == 0
    assert len(mail.outbox) == 1
    # March's first sweep mails February (no calls).
    assert send_due(utc(2026, 3, 1, 6)) == 1
    assert mail.outbox[1].subject.endswith("2026-02-01 to 2026-02-28")
    assert "No calls in this period." in mail.outbox[1].body


def test_the_period_is_the_tenants(january):
    schedule(january, frequency="daily", group_by="did")
    # 04:30 UTC on the 8th is still the 7th in New York: the day before is the 6th.
    assert send_due(utc(2026, 1, 8, 4, 30)) == 1
    assert mail.outbox[0].subject.endswith(": 2026-01-06")
    # 05:30 UTC is the 8th in New York: the 7th is due now.
    assert send_due(utc(2026, 1, 8, 5, 30)) == 1
    assert mail.outbox[1].subject.endswith(": 2026-01-07")
    assert "Calls: 2" in mail.outbox[1].body


def test_weekly(january):
    schedule(january, frequency="weekly", group_by="day")
    assert send_due(utc(2026, 1, 14, 12)) == 1
    rows = attachment_rows(mail.outbox[0])
    assert rows[0][0] == "Day"
    assert [r[1] for r in rows[1:8]] == ["1", "1", "2", "0", "0", "1", "1"]


def test_each_tenant_gets_its_own_figures(january, world):
    schedule(january)
    schedule(world.tenant_b, recipients="b@beta.test")
    assert send_due(utc(2026, 2, 1, 6)) == 2
    by_recipient = {m.to[0]: m for m in mail.outbox}
    b = by_recipient["b@beta.test"]
    assert "Calls: 1" in b.body
    assert attachment_rows(b)[-1][-2:] == ["9.0000", "USD"]
    assert "Beta" in b.body
    assert "Acme" not in b.body


def test_disabled_schedules_and_suspended_tenants_get_nothing(january, world):
    from tenants.models import Tenant

    schedule(january, enabled=False)
    schedule(world.tenant_b, recipients="b@beta.test")
    Tenant.objects.filter(pk=world.tenant_b.pk).update(status="suspended")
    assert send_due(utc(2026, 2, 1, 6)) == 0
    assert mail.outbox == []


def test_a_failed_send_is_tried_again(january, settings):
    mine = schedule(january)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 2
    assert send_due(utc(2026, 2, 1, 6)) == 0
    mine.refresh_from_db()
    assert mine.last_period_start is None
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_due(utc(2026, 2, 1, 7)) == 1
    assert len(mail.outbox) == 1


def test_the_beat_task_is_registered_and_runs():
    from pbx.celery import app

    assert "billing.send_due_reports" in app.tasks
    assert "billing.send_due_reports" in app.conf.beat_schedule
    assert send_due_reports.apply().get() == 0  # nothing scheduled


@pytest.mark.parametrize(
    ("frequency", "today", "period"),
    [
        ("daily", "2026-03-01", ("2026-02-28", "2026-02-28")),
        ("weekly", "2026-03-02", ("2026-02-23", "2026-03-01")),  # a Monday
        ("weekly", "2026-03-08", ("2026-02-23", "2026-03-01")),  # a Sunday
        ("monthly", "2026-03-31", ("2026-02-01", "2026-02-28")),
        ("monthly", "2026-01-01", ("2025-12-01", "2025-12-31")),
    ],
)
def test_last_period(frequency, today, period):
    from datetime import date

    start, end = last_period(frequency, date.fromisoformat(today))
    assert (start.isoformat(), end.isoformat()) == period


def test_a_deleted_schedule_is_not_sent(january):
    mine = schedule(january)
    do_delete_report_schedule(mine, actor=SYSTEM)
    assert not ReportSchedule.objects.filter(pk=mine.pk).exists()
    assert send_due(utc(2026, 2, 1, 6)) == 0
