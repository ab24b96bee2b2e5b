"""Celery tasks of the telephony app. Tasks take a schema name and ids, never model instances."""

from celery import shared_task
from django_tenants.utils import tenant_context


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
