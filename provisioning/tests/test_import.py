"""Bulk import of phones from CSV through the shared import registry.

User story: an admin uploads a CSV of phones (MAC in any notation, model, extension, label);
the dry run lists every bad row with its column, a clean file imports all phones at once, and
a file that turns bad between the dry run and the run imports nothing.
"""

from __future__ import annotations

import pytest

from pbx import imports
from pbx.audit import SYSTEM
from provisioning.models import Device
from telephony.models import ImportJob
from tenants.models import DeviceIndex

pytestmark = pytest.mark.django_db

GOOD = (
    "mac,model,extension,label\n"
    "00:15:65:A1:B2:01,yealink-t54w,301,Reception\n"
    "0c38.3ea1.b201,Fanvil X6U,302,Kitchen\n"
    "001565a1b203,auto,303,\n"
)


def dry_run(data: str):
    return imports.do_dry_run_import(
        kind="phones", data=data.encode(), filename="phones.csv", actor=SYSTEM
    )


def run(job, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        imports.do_start_import(job, actor=SYSTEM)
    imports.run_import(job.pk, actor=SYSTEM)
    return ImportJob.objects.get(pk=job.pk)


def test_phones_importer_is_registered():
    assert imports.get_importer("phones").columns == ("mac", "model", "extension", "label")


def test_clean_file_imports_every_phone(pw, in_tenant, django_capture_on_commit_callbacks):
    with in_tenant(pw.tenant_a):
        job = dry_run(GOOD)
        assert job.status == ImportJob.Status.VALIDATED, job.report
        assert Device.objects.count() == 0  # a dry run writes nothing
        job = run(job, django_capture_on_commit_callbacks)
        assert job.status == ImportJob.Status.DONE, job.report
        phones = {d.mac: d for d in Device.objects.all()}
    assert set(phones) == {"001565a1b201", "0c383ea1b201", "001565a1b203"}
    assert phones["0c383ea1b201"].model_id == "fanvil-x6u"
    assert phones["001565a1b203"].model_id == "auto"
    assert phones["001565a1b201"].label == "Reception"
    assert DeviceIndex.objects.filter(tenant=pw.tenant_a).count() == 3


def test_dry_run_reports_every_bad_row(pw, in_tenant, add_device):
    add_device("001565a1b2ff", "yealink-t54w", tenant=pw.tenant_b, lines=("401",))
    data = (
        "mac,model,extension,label\n"
        "00:15:65:A1:B2,yealink-t54w,301,\n"  # row 2: bad MAC
        "001565a1b201,nokia-3310,301,\n"  # row 3: unknown model
        "001565a1b202,yealink-t54w,999,\n"  # row 4: unknown extension
        "001565a1b201,yealink-t54w,302,\n"  # row 5: MAC again (row 3)
        "001565a1b2ff,yealink-t54w,302,\n"  # row 6: on another tenant
        '001565a1b207,yealink-t54w,302,"Desk\r\naccount.1.enable = 0"\n'  # row 7: two lines
    )
    with in_tenant(pw.tenant_a):
        job = dry_run(data)
        assert Device.objects.count() == 0
    assert job.status == ImportJob.Status.INVALID
    found = {(e["row"], e["column"]) for e in job.errors}
    assert found == {
        (2, "mac"),
        (3, "model"),
        (4, "extension"),
        (5, "mac"),
        (6, "mac"),
        (7, "label"),
    }
    assert any("also on row 3" in e["message"] for e in job.errors)
    assert any("already registered" in e["message"] for e in job.errors)


def test_a_file_that_went_bad_imports_nothing(
    pw, in_tenant, add_device, django_capture_on_commit_callbacks
):
    with in_tenant(pw.tenant_a):
        job = dry_run(GOOD)
    assert job.status == ImportJob.Status.VALIDATED
    # Between the dry run and the run, the third phone is registered on another tenant.
    add_device("001565a1b203", "yealink-t54w", tenant=pw.tenant_b, lines=("401",))
    with in_tenant(pw.tenant_a):
        job = run(job, django_capture_on_commit_callbacks)
        assert job.status == ImportJob.Status.FAILED
        assert job.report["rolled_back"] is True
        assert Device.objects.count() == 0
    assert not DeviceIndex.objects.filter(tenant=pw.tenant_a).exists()


def test_missing_column_is_a_file_error(pw, in_tenant):
    with in_tenant(pw.tenant_a), pytest.raises(imports.ImportFileError, match="extension"):
        dry_run("mac,model\n001565a1b201,auto\n")
