"""Bulk CSV import of extensions and users: a dry run that reports every bad row and writes
nothing, then an all-or-nothing run in the Celery task, with its progress shown in the portal."""

import re

from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import tenant_context

from pbx import imports
from pbx.imports import run_import_job
from telephony.imports import ExtensionImporter
from telephony.models import Extension, ImportJob
from tenants.models import User

HEADER = "number,display_name,email,mobile,sip_password,web_password,voicemail_pin,enabled\n"


def _upload(p, text: str | bytes, name="people.csv"):
    data = text.encode() if isinstance(text, str) else text
    return p.post("/portal/extensions/import/", {"file": SimpleUploadedFile(name, data)})


def _job(tenant, response) -> ImportJob:
    assert response.status_code == 302, response.content.decode()[:2000]
    job_id = re.search(r"/portal/imports/([0-9a-f-]{36})/", response["Location"]).group(1)
    with tenant_context(tenant):
        return ImportJob.objects.get(pk=job_id)


def _state(tenant):
    with tenant_context(tenant):
        numbers = set(Extension.objects.values_list("number", flat=True))
    return numbers, set(User.objects.filter(tenant=tenant).values_list("email", flat=True))


def test_dry_run_reports_every_bad_row_and_imports_nothing(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    before = _state(world.tenant_a)
    csv_text = HEADER + (
        "301,Good One,good@acme.test,,,,,yes\n"  # row 2: fine
        "30x,Bad Number,,,,,,\n"  # row 3
        "301,Twin,,,,,,\n"  # row 4: 301 is also on row 2
        "101,Taken,,,,,,\n"  # row 5: exists
        "302,Mail,not-an-email,,,,,\n"  # row 6
        "303,Weak,,,short,,,\n"  # row 7: SIP password policy
        "304,Web,,,,Secret-Desk-2024x,,\n"  # row 8: web password without e-mail
        "305,Pin,,,,,12,maybe\n"  # row 9: PIN and enabled
        "306,Admin,admin@acme.test,,,Secret-Desk-2024x,,\n"  # row 10: that user exists
        "307,Short\n"  # row 11: too few fields
    )
    job = _job(world.tenant_a, _upload(p, csv_text))
    assert job.status == ImportJob.Status.INVALID
    assert job.payload == ""
    found = {(e["row"], e["column"]) for e in job.errors}
    assert {
        (3, "number"),
        (4, "number"),
        (5, "number"),
        (6, "email"),
        (7, "sip_password"),
        (8, "email"),
        (9, "voicemail_pin"),
        (9, "enabled"),
        (10, "email"),
        (11, ""),
    } <= found
    assert not any(e["row"] == 2 for e in job.errors)
    assert _state(world.tenant_a) == before
    page = p.get(f"/portal/imports/{job.pk}/").content.decode()
    assert 'data-testid="import-errors"' in page
    assert "also on row 2" in page
    # A job with errors cannot be started.
    assert p.post(f"/portal/imports/{job.pk}/start/").status_code == 302
    with tenant_context(world.tenant_a):
        assert ImportJob.objects.get(pk=job.pk).status == ImportJob.Status.INVALID


def test_quota_is_checked_for_the_whole_batch(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    rows = "".join(f"{400 + i},Person {i},,,,,,\n" for i in range(world.tenant_a.max_extensions))
    job = _job(world.tenant_a, _upload(p, HEADER + rows))
    assert job.status == ImportJob.Status.INVALID
    assert [e for e in job.errors if e["row"] == 0 and "quota" in e["message"]]


def test_successful_import_runs_in_the_task(portal, world, django_capture_on_commit_callbacks):
    p = portal(world.a_admin, world.tenant_a)
    csv_text = (
        "\ufeff"  # Excel's "CSV UTF-8" starts with a BOM
        + HEADER
        + "501,Zoë Ünal,zoe@acme.test,+44 20 7946 0000,,Secret-Desk-2024x,2468,yes\n"
        + "502,Desk Phone,,,Given-Sip-Secret-99,,,no\n"
        + "\n"
    )
    job = _job(world.tenant_a, _upload(p, csv_text))
    assert job.status == ImportJob.Status.VALIDATED, job.errors
    assert job.total == 2
    assert _state(world.tenant_a)[0].isdisjoint({"501", "502"})
    assert b"Import 2 rows" in p.get(f"/portal/imports/{job.pk}/").content

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert p.post(f"/portal/imports/{job.pk}/start/").status_code == 302
    assert len(callbacks) == 1  # the task is queued on commit, not inside the transaction
    fragment = p.get(f"/portal/imports/{job.pk}/progress/").content.decode()
    assert "hx-get" in fragment
    assert "Queued" in fragment

    # What the worker does with the queued message (run here, in this process).
    run_import_job.apply(args=(world.tenant_a.schema_name, str(job.pk))).get()
    run_import_job.apply(args=(world.tenant_a.schema_name, str(job.pk))).get()  # idempotent

    with tenant_context(world.tenant_a):
        job = ImportJob.objects.get(pk=job.pk)
        zoe = Extension.objects.get(number="501")
        desk = Extension.objects.get(number="502")
        assert Extension.objects.filter(number__in=["501", "502"]).count() == 2
    assert job.status == ImportJob.Status.DONE
    assert job.done == 2
    assert job.payload == ""
    assert zoe.display_name == "Zoë Ünal"
    assert zoe.voicemail_pin == "2468"
    assert zoe.user_id
    assert len(zoe.sip_password) >= 16  # generated
    assert desk.sip_password == "Given-Sip-Secret-99"
    assert desk.enabled is False
    assert User.objects.get(pk=zoe.user_id).check_password("Secret-Desk-2024x")
    fragment = p.get(f"/portal/imports/{job.pk}/progress/", HTTP_HX_REQUEST="true")
    assert fragment["HX-Refresh"] == "true"
    assert "hx-get" not in fragment.content.decode()
    assert b'data-testid="import-created"' in p.get(f"/portal/imports/{job.pk}/").content


def test_run_is_all_or_nothing(portal, world, django_capture_on_commit_callbacks):
    """The database moved on between the dry run and the run: nothing of the file is written."""
    p = portal(world.a_admin, world.tenant_a)
    job = _job(world.tenant_a, _upload(p, HEADER + "601,First,,,,,,\n602,Second,,,,,,\n"))
    assert job.status == ImportJob.Status.VALIDATED
    with django_capture_on_commit_callbacks(execute=False):
        p.post(f"/portal/imports/{job.pk}/start/")
    p.post("/portal/extensions/add/", {"number": "602", "display_name": "Came first"})
    run_import_job.apply(args=(world.tenant_a.schema_name, str(job.pk))).get()
    with tenant_context(world.tenant_a):
        job = ImportJob.objects.get(pk=job.pk)
        assert not Extension.objects.filter(number="601").exists()
        assert Extension.objects.get(number="602").display_name == "Came first"
    assert job.status == ImportJob.Status.FAILED
    assert job.done == 0
    assert {(e["row"], e["column"]) for e in job.errors} == {(3, "number")}


def test_unreadable_files_are_refused_clearly(portal, world):
    p = portal(world.a_admin, world.tenant_a)
    before = _state(world.tenant_a)
    cases = {
        "larger than": b"a" * (imports.MAX_BYTES + 1),
        "binary data": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        "not UTF-8": HEADER.encode() + "101,Caf\xe9,,,,,,\n".encode("latin-1"),
        "Unknown column": b"number,display_name,shoe_size\n1,a,42\n",
        "Missing required": b"number,email\n301,a@b.test\n",
        "empty": b"\n\n",
        "first line must be the header": b"\n301,Someone\n",
        "no rows": HEADER.encode(),
        "not a valid CSV": HEADER.encode() + b'301,"unclosed\n',
    }
    for expected, data in cases.items():
        r = _upload(p, data)
        assert r.status_code == 200, expected
        assert expected in r.content.decode(), (expected, r.content.decode()[-1500:])
    too_many = HEADER + "".join(f"{1000 + i},P{i},,,,,,\n" for i in range(imports.MAX_ROWS + 1))
    r = _upload(p, too_many)
    assert "more than" in r.content.decode()
    assert _state(world.tenant_a) == before
    with tenant_context(world.tenant_a):
        assert not ImportJob.objects.exists()


def test_import_needs_extensions_manage(portal, world):
    p = portal(world.a_user, world.tenant_a)
    assert p.get("/portal/extensions/import/").status_code == 404
    assert _upload(p, HEADER + "701,X,,,,,,\n").status_code == 404


def test_registry_is_keyed_by_kind():
    assert isinstance(imports.get_importer("extensions"), ExtensionImporter)
    assert imports.REGISTRY["extensions"].columns[0] == "number"


def test_job_pages_follow_the_importers_permission(portal, world):
    """A phones-only role opens its phones import report, not an extensions import's."""
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_role, do_update_user

    admin = portal(world.a_admin, world.tenant_a)
    ext_job = _job(world.tenant_a, _upload(admin, HEADER + "701,X,,,,,,\n"))
    phones_job = _job(
        world.tenant_a,
        admin.post(
            "/portal/phones/import/",
            {"file": SimpleUploadedFile("p.csv", b"mac,model,extension\n001565a1b2c3,bogus,101\n")},
        ),
    )
    role = do_create_role(
        world.tenant_a, name="Phones", permissions=["devices.manage", "devices.view"], actor=SYSTEM
    )
    do_update_user(world.a_user, custom_role=role, actor=SYSTEM)
    staff = portal(world.a_user, world.tenant_a)
    assert staff.get(f"/portal/imports/{phones_job.pk}/").status_code == 200
    assert staff.get(f"/portal/imports/{ext_job.pk}/").status_code == 404
    assert staff.post(f"/portal/imports/{ext_job.pk}/start/").status_code == 404


def test_one_snapshot_publish_per_import(world, django_capture_on_commit_callbacks):
    """A batch of extension writes in one transaction rebuilds the routing snapshot once."""
    from django.db import transaction

    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with (
        tenant_context(world.tenant_a),
        django_capture_on_commit_callbacks() as callbacks,
        transaction.atomic(),
    ):
        for n in ("801", "802", "803"):
            do_create_extension(number=n, display_name=f"Batch {n}", actor=SYSTEM)
    publishes = [cb for cb in callbacks if getattr(cb, "publishes_tenant", None)]
    assert [cb.publishes_tenant for cb in publishes] == [world.tenant_a.pk]
