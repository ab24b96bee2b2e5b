"""Extension numbers: PortSIP's system service numbers are refused everywhere, and a tenant may
allow numbers up to PortSIP's 64 digits (for numbers imported from PortSIP)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from telephony.actions import RESERVED_NUMBERS

pytestmark = pytest.mark.django_db


def _exists(in_tenant, tenant, number) -> bool:
    from telephony.models import Extension

    with in_tenant(tenant):
        return Extension.objects.filter(number=number).exists()


@pytest.mark.parametrize("number", sorted(RESERVED_NUMBERS))
def test_service_numbers_are_refused_over_the_api(api, world, in_tenant, number):
    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/extensions/", {"number": number, "display_name": "Service"}
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "NUMBER_RESERVED"
    assert "reserved" in body["fields"]["number"][0]
    assert not _exists(in_tenant, world.tenant_a, number)


def test_service_numbers_are_refused_in_the_portal_and_the_csv_import(portal, world, in_tenant):
    from telephony.models import ImportJob

    p = portal(world.a_admin, world.tenant_a)
    r = p.post("/portal/extensions/add/", {"number": "777", "display_name": "Voicemail?"})
    assert 'data-field="number">777 is reserved' in r.content.decode()
    assert not _exists(in_tenant, world.tenant_a, "777")

    csv_text = "number,display_name\n778,Fine\n888,Monitor\n"
    r = p.post(
        "/portal/extensions/import/", {"file": SimpleUploadedFile("x.csv", csv_text.encode())}
    )
    job_id = re.search(r"/portal/imports/([0-9a-f-]{36})/", r["Location"]).group(1)
    with in_tenant(world.tenant_a):
        job = ImportJob.objects.get(pk=job_id)
    assert job.status == ImportJob.Status.INVALID
    assert [(e["row"], e["column"]) for e in job.errors] == [(3, "number")]
    assert "reserved" in job.errors[0]["message"]


def test_numbers_follow_the_tenants_rules_up_to_64_digits(api, world, in_tenant):
    from tenants.models import Tenant

    sysadmin = api(world.sysadmin, world.public)
    too_long = sysadmin.patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {"ext_max_length": 65})
    assert too_long.status_code == 400
    assert "ext_max_length" in too_long.json()["fields"]
    ok = sysadmin.patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {"ext_max_length": 64})
    assert ok.status_code == 200, ok.content
    assert Tenant.objects.get(pk=world.tenant_a.pk).ext_max_length == 64

    admin = api(world.a_admin, world.tenant_a)
    number = "1" * 64
    response = admin.post("/api/v1/extensions/", {"number": number, "display_name": "Imported"})
    assert response.status_code == 201, response.content
    assert _exists(in_tenant, world.tenant_a, number)
    response = admin.post("/api/v1/extensions/", {"number": "2" * 65, "display_name": "Long"})
    assert response.status_code == 400
    assert "number" in response.json()["fields"]
