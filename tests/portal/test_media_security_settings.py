"""An extension's media encryption (SRTP towards its TLS phones) and web softphone switch: set
in the portal and over the API, checked by the action, and published to the engine."""

from __future__ import annotations

import json

import pytest

from telephony.models import Extension
from tests.portal.pages import field_errors

pytestmark = pytest.mark.django_db


def _published(rds, domain="acme.test") -> dict:
    raw = rds.get(f"sip:snapshot:{domain}")
    assert raw is not None
    return json.loads(raw)


def test_the_portal_sets_srtp_and_the_web_softphone(portal, world, in_tenant, rds, committed):
    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    assert (ext.srtp, ext.web_softphone) == ("", True)  # the tenant's; allowed
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    assert 'name="srtp"' in html
    assert 'name="web_softphone"' in html
    assert '<option value="True" selected>Allowed</option>' in html
    data = {
        "display_name": ext.display_name,
        "enabled": "on",
        "no_answer_timeout": "20",
        "call_scope": ext.call_scope,
        "srtp": "required",
        "web_softphone": "False",
    }
    with committed():
        assert p.post(f"/portal/extensions/{ext.pk}/", data).status_code == 302
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
    assert (ext.srtp, ext.web_softphone) == ("required", False)
    published = _published(rds)["extensions"]["101"]
    assert (published["srtp"], published["web_softphone"]) == ("required", False)
    html = p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    assert '<option value="False" selected>Not allowed</option>' in html
    # A form that does not post them (an older page) leaves them as they are.
    rest = {k: v for k, v in data.items() if k not in ("srtp", "web_softphone")}
    assert p.post(f"/portal/extensions/{ext.pk}/", rest).status_code == 302
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
    assert (ext.srtp, ext.web_softphone) == ("required", False)
    bad = p.post(f"/portal/extensions/{ext.pk}/", {**data, "srtp": "strong"})
    assert bad.status_code == 200
    assert field_errors(bad.content.decode(), "srtp")


def test_the_api_sets_srtp_and_the_web_softphone(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post(
        "/api/v1/extensions/",
        {"number": "150", "display_name": "Secure", "srtp": "optional", "web_softphone": False},
    )
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["srtp"], body["web_softphone"]) == ("optional", False)
    pk = body["id"]
    r = admin.patch(f"/api/v1/extensions/{pk}/", {"srtp": "always"})
    assert r.status_code == 400
    assert "srtp" in r.json()["fields"]
    r = admin.patch(f"/api/v1/extensions/{pk}/", {"srtp": "", "web_softphone": True})
    assert r.status_code == 200, r.content
    assert (r.json()["srtp"], r.json()["web_softphone"]) == ("", True)
    # Another tenant's admin does not reach it.
    assert (
        api(world.b_admin, world.tenant_b)
        .patch(f"/api/v1/extensions/{pk}/", {"srtp": "off"})
        .status_code
        == 404
    )


def test_the_tenant_srtp_default_over_the_api(api, world):
    sysadmin = api(world.sysadmin)
    url = f"/api/v1/tenants/{world.tenant_a.pk}/"
    r = sysadmin.patch(url, {"srtp": "optional"})
    assert r.status_code == 200, r.content
    assert r.json()["srtp"] == "optional"
    for bad in ("", "maybe"):
        r = sysadmin.patch(url, {"srtp": bad})
        assert r.status_code == 400, bad
        assert "srtp" in r.json()["fields"]
