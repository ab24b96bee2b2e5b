"""A tenant admin's call recording settings page, and the recording field of extensions and
trunks in the portal.

User story: a tenant admin opens "Call recording" for the first time, sees the provider's
default storage, chooses to record every call after an announcement and to keep recordings
for 90 days in the company's own S3 bucket; a typo in the bucket or a control character is
refused with a field error; the secret key is stored encrypted, never shown again, and kept
when the form is saved with the secret box empty. The engine gets the policy in the tenant's
snapshot, and a tenant whose plan has no recording gets "never" and is told so."""

from __future__ import annotations

import json
import re

import pytest

from audio.models import Prompt, RecordingSettings, StorageKind
from pbx.crypto import decrypt
from pbx.models import AuditEntry
from tests.audio.media import tone, upload
from tests.portal.pages import field_errors

pytestmark = pytest.mark.django_db

PAGE = "/portal/recordings/settings/"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # noqa: S105 - a test credential


@pytest.fixture
def media(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = root
    return root


@pytest.fixture
def prompt(world, in_tenant, media, tmp_path):
    from audio import actions
    from pbx.audit import SYSTEM

    with in_tenant(world.tenant_a):
        return actions.do_upload_prompt(
            actor=SYSTEM, name="recording-notice", upload=upload(tone(tmp_path / "n.wav"))
        )


def _form(**changes) -> dict:
    data = {
        "policy": "never",
        "announcement": "",
        "retention_days": "0",
        "storage": "platform",
        "bucket": "",
        "region": "",
        "endpoint_url": "",
        "access_key": "",
        "account_name": "",
        "secret": "",
        "prefix": "",
        "save": "1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def _s3(**changes) -> dict:
    s3 = {
        "storage": "s3",
        "bucket": "acme-call-recordings",
        "region": "eu-west-1",
        "access_key": "AKIAIOSFODNN7EXAMPLE",
        "secret": SECRET,
    }
    return _form(**{**s3, **changes})


def _published(rds, domain="acme.test") -> dict:
    raw = rds.get(f"sip:snapshot:{domain}")
    assert raw is not None
    return json.loads(raw)


def test_first_visit_shows_the_defaults_and_who_may_open_it(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        assert not RecordingSettings.objects.exists()
    r = portal(world.a_admin, world.tenant_a).get(PAGE)
    assert r.status_code == 200
    html = r.content.decode()
    assert "<h1>Call recording</h1>" in html
    assert 'data-testid="platform-default"' in html
    assert "This server&#x27;s disk" in html or "This server's disk" in html
    assert 'data-testid="recording-not-allowed"' not in html
    assert re.search(r'<option value="never" selected>', html)
    assert 'href="/portal/recordings/settings/"' in html  # in the admin's menu
    assert "portal/recording.js" in html
    # A plain user, another tenant's admin and the provider's host: no such page.
    assert portal(world.a_user, world.tenant_a).get(PAGE).status_code == 404
    assert portal(world.b_admin, world.tenant_a).get(PAGE).status_code == 302
    assert portal(world.sysadmin).get(PAGE).status_code == 404
    assert (
        portal(world.a_user, world.tenant_a).post(PAGE, _form(policy="always")).status_code == 404
    )
    with in_tenant(world.tenant_a):
        assert RecordingSettings.load().policy == "never"


def test_save_encrypts_the_secret_audits_and_republishes(
    portal, world, in_tenant, prompt, rds, committed
):
    p = portal(world.a_admin, world.tenant_a)
    data = _s3(policy="always", announce="on", announcement=str(prompt.pk), retention_days="90")
    with committed():
        r = p.post(PAGE, data)
    assert r.status_code == 302, field_errors(r.content.decode(), "bucket")
    with in_tenant(world.tenant_a):
        saved = RecordingSettings.load()
    assert (saved.policy, saved.announce, saved.announcement_id) == ("always", True, prompt.pk)
    assert saved.retention_days == 90
    assert (saved.storage, saved.bucket, saved.region) == (
        "s3",
        "acme-call-recordings",
        "eu-west-1",
    )
    assert SECRET not in saved.secret_encrypted
    assert decrypt(saved.secret_encrypted) == SECRET
    entry = AuditEntry.objects.get(action="recording_settings.update", tenant=world.tenant_a)
    assert entry.changes["secret"] == "changed"
    assert SECRET not in json.dumps(entry.changes)
    assert entry.changes["policy"] == ["never", "always"]
    # The engine's snapshot: the policy and the announcement's file.
    recording = _published(rds)["recording"]
    assert recording["policy"] == "always"
    assert recording["announcement"] == prompt.path

    # The page never shows the secret, says one is stored, and keeps it when left empty.
    html = p.get(PAGE).content.decode()
    assert SECRET not in html
    assert "A secret is stored" in html
    assert re.search(r'<input type="password" name="secret"[^>]*>', html)
    assert 'value="' + SECRET not in html
    with committed():
        r = p.post(PAGE, _s3(policy="on_demand", secret="", announcement=str(prompt.pk)))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        again = RecordingSettings.load()
    assert again.policy == "on_demand"
    assert decrypt(again.secret_encrypted) == SECRET
    assert _published(rds)["recording"]["policy"] == "on_demand"
    # No announcement wanted: none played.
    assert _published(rds)["recording"]["announcement"] == ""


@pytest.mark.parametrize(
    ("changes", "field", "needle"),
    [
        ({"bucket": "Acme_Recordings"}, "bucket", "lower-case"),
        ({"bucket": "ab"}, "bucket", "3 to 63"),
        ({"bucket": "192.168.1.10"}, "bucket", "IP address"),
        ({"bucket": "acme..calls"}, "bucket", "lower-case"),
        ({"bucket": ""}, "bucket", "bucket is needed"),
        ({"endpoint_url": "ftp://s3.example.net"}, "endpoint_url", "http"),
        ({"endpoint_url": "javascript:alert(1)"}, "endpoint_url", "http"),
        ({"endpoint_url": "https://user:pw@s3.example.net"}, "endpoint_url", "no user name"),
        ({"access_key": "AKIA\r\nX-Evil: 1"}, "access_key", "control characters"),
        ({"region": "EU West"}, "region", "lower-case"),
        ({"prefix": "../escape"}, "prefix", "no '..'"),
        ({"access_key": ""}, "access_key", "access key ID is needed"),
        ({"secret": ""}, "secret", "secret access key is needed"),
        ({"retention_days": "-1"}, "retention_days", "greater than or equal to 0"),
        ({"retention_days": "99999"}, "retention_days", "less than or equal to 3650"),
        ({"announce": "on"}, "announcement", "choose the prompt"),
        ({"policy": "sometimes"}, "policy", "valid choice"),
    ],
)
def test_bad_input_gets_field_errors_and_changes_nothing(
    portal, world, in_tenant, changes, field, needle
):
    r = portal(world.a_admin, world.tenant_a).post(PAGE, _s3(**changes))
    assert r.status_code == 200
    errors = field_errors(r.content.decode(), field)
    assert needle in " ".join(errors), errors
    with in_tenant(world.tenant_a):
        assert RecordingSettings.load().storage == StorageKind.PLATFORM
    assert not AuditEntry.objects.filter(action="recording_settings.update").exists()


def test_azure_rules(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    azure = {"storage": "azure", "bucket": "recordings", "account_name": "acmestore"}
    r = p.post(PAGE, _form(**azure, bucket_x=None, secret=""))
    assert "account key or a connection string" in " ".join(
        field_errors(r.content.decode(), "secret")
    )
    r = p.post(PAGE, _form(**{**azure, "bucket": "re--cordings"}, secret="a2V5"))
    assert field_errors(r.content.decode(), "bucket")
    r = p.post(PAGE, _form(**{**azure, "account_name": "Acme-Store"}, secret="a2V5"))
    assert field_errors(r.content.decode(), "account_name")
    # A connection string needs no account name.
    conn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    r = p.post(PAGE, _form(**{**azure, "account_name": ""}, secret=conn))
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        saved = RecordingSettings.load()
    assert (saved.storage, saved.bucket, saved.account_name) == ("azure", "recordings", "")
    assert decrypt(saved.secret_encrypted) == conn
    # Saved again with the secret box empty: the stored connection string still counts.
    assert p.post(PAGE, _form(**{**azure, "account_name": ""}, policy="always")).status_code == 302


def test_prompts_of_another_tenant_cannot_be_chosen(portal, world, in_tenant, prompt, tmp_path):
    from audio import actions
    from pbx.audit import SYSTEM

    with in_tenant(world.tenant_b):
        theirs = actions.do_upload_prompt(
            actor=SYSTEM, name="beta-notice", upload=upload(tone(tmp_path / "b.wav"))
        )
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(PAGE).content.decode()
    assert "recording-notice" in html
    assert "beta-notice" not in html
    # B's prompt id is not one of A's choices (ids may coincide: make sure it is not A's).
    with in_tenant(world.tenant_a):
        a_ids = set(Prompt.objects.values_list("pk", flat=True))
    bad = max(a_ids | {theirs.pk}) + 1
    r = p.post(PAGE, _form(announce="on", announcement=str(bad)))
    assert field_errors(r.content.decode(), "announcement")


def test_a_plan_without_recording_records_nothing(portal, world, in_tenant, rds, committed):
    from pbx.audit import SYSTEM
    from tenants.actions import do_update_tenant
    from tenants.models import Tenant

    p = portal(world.a_admin, world.tenant_a)
    with committed():
        assert p.post(PAGE, _form(policy="always")).status_code == 302
    assert _published(rds)["recording"]["policy"] == "always"
    # The provider takes recording out of the tenant's plan: republished as "never".
    try:
        with committed():
            do_update_tenant(
                Tenant.objects.get(pk=world.tenant_a.pk), actor=SYSTEM, feature_recording=False
            )
        assert _published(rds)["recording"]["policy"] == "never"
        html = p.get(PAGE).content.decode()
        assert 'data-testid="recording-not-allowed"' in html
        with in_tenant(world.tenant_a):
            assert RecordingSettings.load().policy == "always"  # kept for when it comes back
    finally:
        with committed():
            do_update_tenant(
                Tenant.objects.get(pk=world.tenant_a.pk), actor=SYSTEM, feature_recording=True
            )
    assert _published(rds)["recording"]["policy"] == "always"


# --- an extension's and a trunk's own policy -------------------------------------------------


def test_extension_form_sets_its_recording_policy(portal, world, in_tenant, rds, committed):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"/portal/extensions/{ext.pk}/").content.decode()
    assert 'name="recording"' in html
    data = {
        "display_name": ext.display_name,
        "enabled": "on",
        "no_answer_timeout": "20",
        "call_scope": ext.call_scope,
        "recording": "always",
    }
    with committed():
        r = p.post(f"/portal/extensions/{ext.pk}/", data)
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(pk=ext.pk).recording == "always"
    assert _published(rds)["extensions"]["101"]["recording"] == "always"
    r = p.post(f"/portal/extensions/{ext.pk}/", {**data, "recording": "loud"})
    assert r.status_code == 200
    assert field_errors(r.content.decode(), "recording")
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(pk=ext.pk).recording == "always"
    # Back to the tenant's policy.
    assert p.post(f"/portal/extensions/{ext.pk}/", {**data, "recording": ""}).status_code == 302
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(pk=ext.pk).recording == ""


def test_trunk_form_sets_its_recording_policy(portal, world, rds, committed):
    from pbx.audit import SYSTEM
    from telephony.engine.store import redis_key
    from telephony.sip.contract import CARRIERS
    from trunks import actions
    from trunks.models import Trunk

    trunk = actions.do_create_trunk(
        actor=SYSTEM,
        fields={"name": "Carrier One", "host": "sip.carrier.example", "addresses": ["192.0.2.1"]},
    )
    p = portal(world.sysadmin)
    html = p.get(f"/portal/trunks/{trunk.pk}/").content.decode()
    assert 'name="recording"' in html
    data = {
        "name": "Carrier One",
        "kind": "ip",
        "enabled": "on",
        "host": "sip.carrier.example",
        "port": "0",
        "transport": "udp",
        "addresses": "192.0.2.1",
        "register_expires": "3600",
        "source_port": "0",
        "dtmf_mode": trunk.dtmf_mode,
        "max_channels": "0",
        "caller_id_header": trunk.caller_id_header,
        "options_interval": "60",
        "recording": "always",
    }
    with committed():
        r = p.post(f"/portal/trunks/{trunk.pk}/", data)
    assert r.status_code == 302, r.content.decode()[:2000]
    trunk = Trunk.objects.get(pk=trunk.pk)
    assert trunk.recording == "always"
    carriers = json.loads(rds.get(redis_key(CARRIERS)))
    published = [t for t in carriers["trunks"] if t["id"] == trunk.pk]
    assert [t["recording"] for t in published] == ["always"]
    r = p.post(f"/portal/trunks/{trunk.pk}/", {**data, "recording": "loud"})
    assert r.status_code == 200
    assert field_errors(r.content.decode(), "recording")


# --- the live page ---------------------------------------------------------------------------


def test_active_calls_show_a_recording_call(portal, world, live):
    from tests.portal.calls_helpers import call

    a = world.tenant_a.schema_name
    live.add("call.started", **call(a, "r-1", "101", "102"))
    live.add("call.answered", **call(a, "r-1", "101", "102", legs=["101", "102"]))
    live.add("call.started", **call(a, "r-2", "102", "101"))
    live.add("call.recording", schema=a, call_id="r-1", state="recording", by="101")
    live.drain()
    p = portal(world.a_admin, world.tenant_a)

    def row(call_id: str) -> str:
        html = p.get("/portal/calls/").content.decode()
        match = re.search(rf'<tr data-call="{call_id}".*?</tr>', html, re.S)
        assert match, call_id
        return match.group(0)

    assert 'data-testid="call-recording">recording<' in row("r-1")
    assert "call-recording" not in row("r-2")
    live.add("call.recording", schema=a, call_id="r-1", state="paused", by="101")
    live.drain()
    assert 'data-testid="call-recording">recording paused<' in row("r-1")
    live.add("call.recording", schema=a, call_id="r-1", state="stopped", by="api")
    live.drain()
    assert "call-recording" not in row("r-1")
    assert 'data-hangup="r-1"' in row("r-1")  # still the same call, still live
