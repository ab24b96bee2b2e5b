"""Scheduled call reports by e-mail: beat runs :func:`send_due_reports` every
``REPORT_SWEEP_SECONDS``; it sends each enabled schedule whose last period (the day, week or
month before today in the tenant's time zone) ended and is not yet marked sent.

A schedule's row is locked while its report is built and mailed, and the period is marked
(``last_period_start``) in the same transaction: a second sweep, or a second worker, finds the
period sent and does nothing; a failed send rolls the mark back and the next sweep tries again.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django_tenants.utils import tenant_context

from branding.mail import sender_for
from pbx.celery import app, every
from tenants.choices import TenantStatus

from . import reports
from .models import ReportSchedule
from .report_schedules import last_period, split_recipients

log = logging.getLogger(__name__)

REPORT_SWEEP_SECONDS = 900.0


@app.task(name="billing.send_due_reports")
def send_due_reports() -> int:
    """Send every due scheduled report; the number sent by this run."""
    return send_due(timezone.now())


def send_due(now: datetime) -> int:
    """Send every schedule due at ``now``: its last period ended and is not marked sent."""
    sent = 0
    due = (
        ReportSchedule.objects.filter(enabled=True, tenant__status=TenantStatus.ACTIVE)
        .select_related("tenant")
        .order_by("pk")
    )
    for schedule in due:
        start, _ = last_period(schedule.frequency, _today(schedule.tenant, now))
        if _sent(schedule, start):
            continue
        try:
            sent += send_scheduled_report(schedule.pk, now)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("report %s of %s not mailed: %s", schedule.pk, schedule.tenant_id, exc)
        except Exception:
            # One schedule's fault must not keep the other tenants' reports back.
            log.exception("report %s of %s failed", schedule.pk, schedule.tenant_id)
    return sent


def _sent(schedule: ReportSchedule, start) -> bool:
    """Whether the period from ``start`` (or a later one: the clock went back) was sent."""
    return schedule.last_period_start is not None and schedule.last_period_start >= start


def _today(tenant, now: datetime):
    return now.astimezone(reports.time_zone(tenant)).date()


def send_scheduled_report(schedule_pk: int, now: datetime) -> bool:
    """Mail one schedule's last period before ``now`` if it is not marked sent; True when this
    run sent it."""
    with transaction.atomic():
        schedule = (
            ReportSchedule.objects.select_for_update(of=("self",))
            .select_related("tenant")
            .filter(pk=schedule_pk, enabled=True)
            .first()
        )
        if schedule is None:
            return False
        tenant = schedule.tenant
        start, end = last_period(schedule.frequency, _today(tenant, now))
        if _sent(schedule, start):
            return False
        with tenant_context(tenant):
            result = reports.report(tenant, schedule.group_by, start, end)
        compose(schedule, result).send()
        schedule.last_period_start = start
        schedule.last_sent_at = timezone.now()
        schedule.save(update_fields=["last_period_start", "last_sent_at"])
    log.info("report %s of %s mailed for %s..%s", schedule.pk, tenant.schema_name, start, end)
    return True


def compose(schedule: ReportSchedule, result: reports.Report) -> EmailMultiAlternatives:
    """The e-mail of a scheduled report: text and HTML bodies, the CSV attached."""
    tenant = schedule.tenant
    period = (
        result.start.isoformat()
        if result.start == result.end
        else f"{result.start.isoformat()} to {result.end.isoformat()}"
    )
    # The name is one line (the actions check it); a header never carries a line break.
    subject = f"Call report {schedule.name}: {period}".replace("\r", " ").replace("\n", " ")
    ctx = {
        "schedule": schedule,
        "tenant": tenant,
        "report": result,
        "period": period,
        "group_label": reports.GROUPS[result.group_by],
    }
    mail = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("billing/report_email.txt", ctx),
        from_email=sender_for(tenant=tenant),
        to=split_recipients(schedule.recipients),
    )
    mail.attach_alternative(render_to_string("billing/report_email.html", ctx), "text/html")
    name = f"{tenant.slug}-calls-by-{result.group_by}-{result.start.isoformat()}.csv"
    mail.attach(name, reports.report_csv(result), "text/csv")
    return mail


every(REPORT_SWEEP_SECONDS, "billing.send_due_reports")
