"""Call recording settings in the REST API (``/api/v1/recording-settings/``), and the
recording policy of an extension and of a trunk.

User story: an integrator reads a new tenant's recording settings (recording off, the
provider's storage), points them at the company's S3 bucket with its secret key, which is
never answered back and kept when a later change leaves it out; bad values get the same
field errors as in the portal, and nothing changes. Only the tenant's admins may read or
change them; on another tenant's host the endpoint does not exist for them."""

from __future__ import annotations

import json

import pytest

from audio.models import RecordingSettings
from pbx.crypto import decrypt
from pbx.models import AuditEntry

pytestmark = pytest.mark.django_db

URL = "/api/v1/recording-settings/"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - a test credential
S3 = {
    "storage": "s3",
    "bucket": "acme-call-recordings",
    "region": "eu-west-1",
    "access_key": "AKIAIOSFODNN7EXAMPLE",
    "secret": SECRET,
}


def test_read_the_defaults_then_store_s3_with_a_write_only_secret(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.get(URL)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["policy"] == "never"
    assert body["storage"] == "platform"
    assert body["has_secret"] is False
    assert body["recording_allowed"] is True
    assert "secret" not in body
    assert body["platform_default"]

    r = admin.put(URL, {"policy": "always", "retention_days": 30, **S3})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["policy"], body["retention_days"], body["bucket"]) == (
        "always",
        30,
        "acme-call-recordings",
    )
    assert body["has_secret"] is True
    assert "secret" not in body
    assert SECRET not in r.content.decode()
    with in_tenant(world.tenant_a):
        assert decrypt(RecordingSettings.load().secret_encrypted) == SECRET
    entry = AuditEntry.objects.get(action="recording_settings.update", actor=world.a_admin)
    assert SECRET not in json.dumps(entry.changes)

    # A change without the secret (or with an empty one) keeps it.
    for change in ({"policy": "on_demand"}, {"secret": "", "region": "eu-central-1"}):
        r = admin.patch(URL, change)
        assert r.status_code == 200, r.content
        assert r.json()["has_secret"] is True
    with in_tenant(world.tenant_a):
        saved = RecordingSettings.load()
    assert (saved.policy, saved.region) == ("on_demand", "eu-central-1")
    assert decrypt(saved.secret_encrypted) == SECRET
    assert SECRET not in admin.get(URL).content.decode()


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"policy": ""}, "policy"),
        ({"policy": "sometimes"}, "policy"),
        ({"retention_days": -1}, "retention_days"),
        ({"retention_days": 100000}, "retention_days"),
        ({"retention_days": "many"}, "retention_days"),
        ({"storage": "ftp"}, "storage"),
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"bucket": "a" * 64}, "bucket"),
        ({"endpoint_url": "file:///etc/passwd"}, "endpoint_url"),
        ({"endpoint_url": "https://s3.example.net/\r\nX: y"}, "endpoint_url"),
        ({"access_key": "AKIA\x00"}, "access_key"),
        ({"secret": "line\nbreak"}, "secret"),
        ({"prefix": "a/../b"}, "prefix"),
        ({"announce": True, "announcement": None}, "announcement"),
        ({"announcement": 999999}, "announcement"),
        ({"storage": "azure", "bucket": "recordings", "account_name": ""}, "account_name"),
    ],
)
def test_bad_values_get_field_errors_and_change_nothing(api, world, in_tenant, bad, field):
    admin = api(world.a_admin, world.tenant_a)
    before = admin.get(URL).json()
    r = admin.put(URL, {**S3, **bad})
    assert r.status_code == 400, (bad, r.content)
    body = r.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert field in body["fields"], body
    assert admin.get(URL).json() == before
    assert not AuditEntry.objects.filter(action="recording_settings.update").exists()


def test_only_the_tenants_admins_reach_it(api, world, in_tenant):
    assert api(world.a_user, world.tenant_a).get(URL).status_code == 403
    assert api(world.a_user, world.tenant_a).put(URL, {"policy": "always"}).status_code == 403
    # Another tenant's admin and the provider's host: no such endpoint for them.
    assert api(world.b_admin, world.tenant_a).get(URL).status_code in (401, 404)
    assert api(world.sysadmin).get(URL).status_code == 404
    assert api().get(URL, HTTP_HOST="acme.test").status_code == 401
    with in_tenant(world.tenant_a):
        assert RecordingSettings.load().policy == "never"
    # Each tenant's settings are its own.
    assert api(world.a_admin, world.tenant_a).patch(URL, {"policy": "always"}).status_code == 200
    assert api(world.b_admin, world.tenant_b).get(URL).json()["policy"] == "never"


def test_the_plan_says_whether_recording_is_allowed(api, world):
    world.tenant_a.feature_recording = False
    world.tenant_a.save(update_fields=["feature_recording"])
    try:
        assert api(world.a_admin, world.tenant_a).get(URL).json()["recording_allowed"] is False
    finally:
        world.tenant_a.feature_recording = True
        world.tenant_a.save(update_fields=["feature_recording"])


# --- an extension's and a trunk's own policy -------------------------------------------------


def test_extension_recording_policy(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post(
        "/api/v1/extensions/",
        {"number": "150", "display_name": "Recorded", "recording": "always"},
    )
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert r.json()["recording"] == "always"
    r = admin.patch(f"/api/v1/extensions/{pk}/", {"recording": "sometimes"})
    assert r.status_code == 400
    assert "recording" in r.json()["fields"]
    r = admin.patch(f"/api/v1/extensions/{pk}/", {"recording": ""})
    assert r.status_code == 200, r.content
    assert r.json()["recording"] == ""
    assert admin.get(f"/api/v1/extensions/{pk}/").json()["recording"] == ""


def test_trunk_recording_policy(api, world):
    from trunks.models import Trunk

    sysadmin = api(world.sysadmin)
    r = sysadmin.post(
        "/api/v1/trunks/",
        {"name": "Carrier", "host": "sip.carrier.example", "addresses": ["192.0.2.1"],
         "recording": "on_demand"},
    )  # fmt: skip
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert r.json()["recording"] == "on_demand"
    r = sysadmin.patch(f"/api/v1/trunks/{pk}/", {"recording": "loud"})
    assert r.status_code == 400
    assert "recording" in r.json()["fields"]
    assert Trunk.objects.get(pk=pk).recording == "on_demand"
