"""Texts that reach SIP headers, provisioning files or mail are one line each.

User story: a tenant user writes a caller ID name with a line break and a ``Call-Info`` header
into it, hoping the next INVITE to a colleague's phone makes it answer by itself. Every way in
(REST API, portal, CSV import, the user's own page) answers with a field error and stores
nothing; so do the other texts that leave as protocol lines (phone labels and settings, brand
names, tenant and user names).
"""

from __future__ import annotations

import pytest

from pbx.models import AuditEntry
from pbx.text import has_control_characters, single_line_errors, single_line_problem

pytestmark = pytest.mark.django_db

INJECTION = "Inj\r\nX-Injected: yes\r\nCall-Info: <sip:x>;answer-after=0"


def _ext(in_tenant, tenant, number):
    from telephony.models import Extension

    with in_tenant(tenant):
        return Extension.objects.get(number=number)


def _patch(api, world, body, number="101", in_tenant=None):
    ext = _ext(in_tenant, world.tenant_a, number)
    return api(world.a_admin, world.tenant_a).patch(f"/api/v1/extensions/{ext.pk}/", body)


def test_the_reported_caller_id_name_is_refused_and_nothing_changes(api, world, in_tenant):
    before = _ext(in_tenant, world.tenant_a, "101")
    audits = AuditEntry.objects.filter(action="extension.update").count()
    response = _patch(api, world, {"caller_id_name": INJECTION}, in_tenant=in_tenant)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert "caller_id_name" in body["fields"]
    after = _ext(in_tenant, world.tenant_a, "101")
    assert after.caller_id_name == before.caller_id_name
    assert after.updated_at == before.updated_at
    assert AuditEntry.objects.filter(action="extension.update").count() == audits


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", "Alice\nBob"),
        ("display_name", "Tab\there"),
        ("display_name", "Next\x85Line"),  # C1 "next line"
        ("caller_id_name", "Line\u2028Separator"),
        ("caller_id_name", "Para\u2029graph"),
        ("caller_id_name", "evil\u202egnp.exe"),  # right-to-left override
        ("caller_id_name", "Del\x7fete"),
        ("caller_id_number", "100\r\nX: y"),
        ("caller_id_number", "100>;x=y"),  # not a phone number
        ("mobile", "+49 30\r\n1"),
        ("forward_busy", "10\r\n2"),
        ("email", "a@acme.test\r\nBcc: all@acme.test"),
    ],
)
def test_every_extension_text_is_one_line(api, world, in_tenant, field, value):
    response = _patch(api, world, {field: value}, in_tenant=in_tenant)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    assert getattr(_ext(in_tenant, world.tenant_a, "101"), field) != value


def test_outbound_caller_ids_are_checked_item_by_item(api, world, in_tenant):
    response = _patch(
        api, world, {"outbound_caller_ids": ["+4930123", "+4930\r\n999"]}, in_tenant=in_tenant
    )
    assert response.status_code == 400
    assert "outbound_caller_ids" in response.json()["fields"]
    assert _ext(in_tenant, world.tenant_a, "101").outbound_caller_ids == []


def test_create_refuses_too_and_creates_nothing(api, world, in_tenant):
    from telephony.models import Extension

    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/extensions/", {"number": "350", "display_name": INJECTION}
    )
    assert response.status_code == 400
    assert "display_name" in response.json()["fields"]
    with in_tenant(world.tenant_a):
        assert not Extension.objects.filter(number="350").exists()


def test_ordinary_names_pass(api, world, in_tenant):
    body = {"caller_id_name": "Zoë Ünal – Sales (ﺍﻟﻤﺒﻴﻌﺎﺕ)", "caller_id_number": "+4930123"}
    response = _patch(api, world, body, in_tenant=in_tenant)
    assert response.status_code == 200, response.content
    assert _ext(in_tenant, world.tenant_a, "101").caller_id_name == body["caller_id_name"]


def test_the_rule_itself():
    for bad in ("\r", "\n", "\t", "\x00", "\x1b", "\x7f", "\x9b", "\u2028", "\u2029", "\u202d"):
        assert has_control_characters(f"a{bad}b"), repr(bad)
    assert not has_control_characters("Zoë – 日本 ☎")
    assert single_line_problem("x" * 5, max_length=4) == "at most 4 characters"
    assert single_line_problem(None) is None
    assert single_line_errors({"a": ["ok", "b\nad"], "b": "fine"}, ["a", "b", "c"]) == {
        "a": [single_line_problem("\n")]
    }


# --- phones: labels, BLF labels and settings values go into provisioning files ---------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "Desk\r\naccount.1.password = x"}, "label"),
        ({"lines": [{"index": 1, "extension": "101", "label": "L1\nx"}]}, "lines"),
        ({"blf_keys": [{"extension": "102", "label": "Boss\r\nlinekey.9.value=1"}]}, "blf_keys"),
        ({"settings": {"ntp_server": "pool.ntp.org\nstatic.network.ip=1"}}, "settings"),
    ],
)
def test_phone_texts_are_one_line(api, world, in_tenant, body, field):
    from provisioning.models import Device

    response = api(world.a_admin, world.tenant_a).post(
        "/api/v1/devices/", {"mac": "001565aabbcc", "model_id": "yealink-t54w", **body}
    )
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]
    with in_tenant(world.tenant_a):
        assert not Device.objects.filter(mac="001565aabbcc").exists()


# --- names that go into mail and SIP headers -------------------------------------------------


def test_brand_names_are_one_line(api, world):
    from branding.models import Brand

    for field in ("product_name", "email_from_name", "company_name", "login_footer"):
        response = api(world.sysadmin, world.public).post(
            "/api/v1/brands/", {"product_name": "Acme Voice", field: "Acme\r\nBcc: x@evil.test"}
        )
        assert response.status_code == 400, (field, response.content)
        assert field in response.json()["fields"]
    assert not Brand.objects.exists()


def test_tenant_and_user_names_are_one_line(api, world):
    from tenants.models import Tenant, User

    sysadmin = api(world.sysadmin, world.public)
    response = sysadmin.patch(f"/api/v1/tenants/{world.tenant_a.pk}/", {"name": INJECTION})
    assert response.status_code == 400, response.content
    assert "name" in response.json()["fields"]
    assert Tenant.objects.get(pk=world.tenant_a.pk).name == "Acme"
    response = api(world.a_admin, world.tenant_a).patch(
        f"/api/v1/users/{world.a_user.pk}/", {"full_name": "Staff\nBcc: x@evil.test"}
    )
    assert response.status_code == 400, response.content
    assert "full_name" in response.json()["fields"]
    assert "\n" not in User.objects.get(pk=world.a_user.pk).full_name
