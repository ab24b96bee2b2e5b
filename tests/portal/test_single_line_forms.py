"""Texts that reach SIP headers, provisioning files or mail are refused with a field error on
every way in besides the API (see tests/api/test_single_line_texts.py): the CSV import's row
report, the portal's extension form, and the user's own page."""

from __future__ import annotations

import pytest

from tests.api.test_single_line_texts import INJECTION

pytestmark = pytest.mark.django_db


def _ext(in_tenant, tenant, number):
    from telephony.models import Extension

    with in_tenant(tenant):
        return Extension.objects.get(number=number)


def test_csv_import_reports_the_row(portal, world, in_tenant):
    import re

    from django.core.files.uploadedfile import SimpleUploadedFile

    from telephony.models import ImportJob

    p = portal(world.a_admin, world.tenant_a)
    quoted = INJECTION.replace('"', '""')
    text = (
        "number,display_name,email,mobile,sip_password\n"
        "361,Good Name,,,\n"
        f'362,"{quoted}",,,\n'
        '363,Mobile,,"+4930\n1",\n'
        '364,Sip,,,"Good-Sip-Secret-1\u2028x"\n'
    )
    upload = SimpleUploadedFile("people.csv", text.encode())
    response = p.post("/portal/extensions/import/", {"file": upload})
    job_id = re.search(r"/portal/imports/([0-9a-f-]{36})/", response["Location"]).group(1)
    with in_tenant(world.tenant_a):
        job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJob.Status.INVALID
    found = {(e["row"], e["column"]) for e in job.errors}
    assert {(3, "display_name"), (4, "mobile"), (5, "sip_password")} <= found
    assert not any(e["row"] == 2 for e in job.errors)
    assert job.payload == ""


def test_portal_extension_form_shows_the_field_error(portal, world, in_tenant):
    ext = _ext(in_tenant, world.tenant_a, "101")
    response = portal(world.a_admin, world.tenant_a).post(
        f"/portal/extensions/{ext.pk}/",
        {"display_name": INJECTION, "no_answer_timeout": "20", "enabled": "on"},
    )
    assert 'data-field="display_name">one line of text' in response.content.decode()
    assert _ext(in_tenant, world.tenant_a, "101").display_name == ext.display_name


def test_end_user_self_service_refuses_it(portal, world, in_tenant):
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        ext, _ = do_create_extension(
            number="103",
            display_name="Dana Desk",
            email="dana@acme.test",
            web_password="Correct-Horse-42x",
            sip_password="Sip-Secret-Pass-77",
            actor=SYSTEM,
        )
        user = type(ext.user).objects.get(pk=ext.user_id)
    p = portal(user, world.tenant_a)
    new = "Sip-Secret-Pass-88\u2028Call-Info: x"
    r = p.post(
        "/portal/me/",
        {"form": "sip_password", "new_sip_password": new, "confirm_sip_password": new},
    )
    assert r.status_code == 400
    assert "control characters" in r.content.decode()
    assert _ext(in_tenant, world.tenant_a, "103").sip_password == "Sip-Secret-Pass-77"
    r = p.post(
        "/portal/me/", {"form": "settings", "forward_busy": INJECTION, "no_answer_timeout": "20"}
    )
    assert r.status_code == 400
    assert _ext(in_tenant, world.tenant_a, "103").forward_busy == ""
