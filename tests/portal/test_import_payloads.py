"""A checked CSV file holds clear-text SIP and web passwords: it is stored only until its run
starts, and a file checked but never started is dropped after PBX_IMPORT_PAYLOAD_TTL_MINUTES
(Celery beat runs the purge in every tenant)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_tenants.utils import tenant_context

from pbx.celery import app
from pbx.imports import purge_import_payloads
from telephony.models import ImportJob

pytestmark = pytest.mark.django_db

SECRET = "Given-Sip-Secret-99"
CSV = f"number,display_name,sip_password\n801,Desk,{SECRET}\n"


def _checked(portal, world) -> ImportJob:
    p = portal(world.a_admin, world.tenant_a)
    r = p.post("/portal/extensions/import/", {"file": SimpleUploadedFile("x.csv", CSV.encode())})
    job_id = re.search(r"/portal/imports/([0-9a-f-]{36})/", r["Location"]).group(1)
    with tenant_context(world.tenant_a):
        job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJob.Status.VALIDATED
    assert SECRET in job.payload  # kept for the run the admin may start
    return job


def _age(world, job, minutes: int) -> None:
    with tenant_context(world.tenant_a):
        ImportJob.objects.filter(pk=job.pk).update(
            created_at=timezone.now() - timedelta(minutes=minutes)
        )


def _reload(world, job) -> ImportJob:
    with tenant_context(world.tenant_a):
        return ImportJob.objects.get(pk=job.pk)


def test_a_job_never_started_loses_its_file(portal, world, settings):
    settings.PBX_IMPORT_PAYLOAD_TTL_MINUTES = 60
    job = _checked(portal, world)
    _age(world, job, 59)
    purge_import_payloads.apply().get()
    assert SECRET in _reload(world, job).payload  # still within its hour
    _age(world, job, 61)
    assert purge_import_payloads.apply().get() >= 1
    job = _reload(world, job)
    assert job.payload == ""
    assert job.status == ImportJob.Status.EXPIRED
    assert job.finished_at is not None
    # It cannot be started any more, and its page says why.
    p = portal(world.a_admin, world.tenant_a)
    p.post(f"/portal/imports/{job.pk}/start/")
    assert _reload(world, job).status == ImportJob.Status.EXPIRED
    assert b"Expired" in p.get(f"/portal/imports/{job.pk}/").content
    # Beat runs the purge.
    entry = app.conf.beat_schedule["telephony.purge_import_payloads"]
    assert entry["task"] == purge_import_payloads.name


def test_a_lost_run_is_failed_and_emptied(portal, world, settings):
    settings.PBX_IMPORT_STALE_HOURS = 24
    job = _checked(portal, world)
    with tenant_context(world.tenant_a):
        ImportJob.objects.filter(pk=job.pk).update(
            status=ImportJob.Status.PENDING,
            created_at=timezone.now() - timedelta(hours=25),
        )
    purge_import_payloads.apply().get()
    job = _reload(world, job)
    assert (job.status, job.payload) == (ImportJob.Status.FAILED, "")
