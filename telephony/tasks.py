"""Celery tasks of the telephony app. Tasks take a schema name and ids, never model instances."""

from celery import shared_task
from celery.schedules import schedule
from django_tenants.utils import schema_context, tenant_context

from pbx.celery import app


@shared_task(name="telephony.run_import_job", acks_late=True)
def run_import_job(schema_name: str, job_id: str) -> None:
    """Run a queued bulk import (see ``telephony.imports``). Safe to deliver twice.

    It runs in the tenant's schema with the real Tenant row as ``connection.tenant``
    (``tenant_context`` rather than a bare ``schema_context``): the actions read the tenant's
    rules (number lengths, quotas, password policy, SIP domain) from it.
    """
    from pbx.audit import Actor
    from tenants.choices import TenantStatus
    from tenants.models import Tenant, User

    from .imports import run_import
    from .models import ImportJob

    tenant = Tenant.objects.filter(schema_name=schema_name).first()
    if tenant is None or tenant.status == TenantStatus.DELETED:
        return
    with tenant_context(tenant):
        job = ImportJob.objects.filter(pk=job_id).first()
        if job is None:
            return
        user = User.objects.filter(pk=job.created_by_id).first() if job.created_by_id else None
        run_import(job.pk, actor=Actor(user=user))


PURGE_EVERY_SECONDS = 300.0


@shared_task(name="telephony.purge_import_payloads", acks_late=True, ignore_result=True)
def purge_import_payloads() -> int:
    """Drop the stored files of imports never started (or lost) in every tenant's schema.

    A checked file may hold clear-text SIP and web passwords; it is kept only until the admin
    starts the run, at most ``PBX_IMPORT_PAYLOAD_TTL_MINUTES``. Returns the jobs changed.
    """
    from tenants.access import live_tenants

    from .imports import purge_stale_payloads

    changed = 0
    for schema in live_tenants().order_by("id").values_list("schema_name", flat=True):
        with schema_context(schema):
            changed += purge_stale_payloads()
    return changed


# Registered on import, like the CDR drain (``CELERY_IMPORTS`` names this module).
app.conf.beat_schedule.setdefault(
    "telephony.purge_import_payloads",
    {
        "task": "telephony.purge_import_payloads",
        "schedule": schedule(PURGE_EVERY_SECONDS),
        "options": {"expires": PURGE_EVERY_SECONDS},
    },
)
