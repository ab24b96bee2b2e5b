"""Idempotent POSTs, password policy, the audit trail and validation of bad input."""

import threading

import pytest
from django.db import connection, connections

from pbx.models import AuditEntry, IdempotencyRecord
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def _ext_count(in_tenant, tenant, **filters):
    from telephony.models import Extension

    with in_tenant(tenant):
        return Extension.objects.filter(**filters).count()


def test_retried_create_returns_first_result(api, world, in_tenant):
    client = api(world.a_admin, world.tenant_a)
    body = {"number": "301", "display_name": "Retry"}
    first = client.post("/api/v1/extensions/", body, HTTP_IDEMPOTENCY_KEY="key-301")
    second = client.post("/api/v1/extensions/", body, HTTP_IDEMPOTENCY_KEY="key-301")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert _ext_count(in_tenant, world.tenant_a, number="301") == 1
    # The stored answer carries the once-shown SIP password, so it is kept encrypted.
    record = IdempotencyRecord.objects.get(key="key-301")
    assert first.json()["sip_password"] not in str(record.body)
    # Same key, different request: refused, nothing created.
    other = client.post(
        "/api/v1/extensions/",
        {"number": "302", "display_name": "X"},
        HTTP_IDEMPOTENCY_KEY="key-301",
    )
    assert other.status_code == 422
    assert other.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _ext_count(in_tenant, world.tenant_a, number="302") == 0
    # Keys are per user: another admin's identical key is a different request.
    sysadmin = api(world.sysadmin, world.tenant_a)
    r = sysadmin.post(
        "/api/v1/extensions/",
        {"number": "303", "display_name": "Y"},
        HTTP_IDEMPOTENCY_KEY="key-301",
    )
    assert r.status_code == 201


def test_failed_create_is_replayed_not_retried_into_a_duplicate(api, world):
    client = api(world.a_admin, world.tenant_a)
    bad = {"number": "1", "display_name": "Too short"}
    a = client.post("/api/v1/extensions/", bad, HTTP_IDEMPOTENCY_KEY="bad-1")
    b = client.post("/api/v1/extensions/", bad, HTTP_IDEMPOTENCY_KEY="bad-1")
    assert a.status_code == b.status_code == 400
    assert a.json() == b.json()


@pytest.mark.django_db(transaction=False)
def test_concurrent_retries_make_one_extension(world, in_tenant):
    """Two clients race with one key: both get the same answer, one row exists."""
    results = []
    barrier = threading.Barrier(2)

    def post():
        try:
            barrier.wait()
            client = Api("acme.test", world.a_admin)
            results.append(
                client.post(
                    "/api/v1/extensions/",
                    {"number": "399", "display_name": "Race"},
                    HTTP_IDEMPOTENCY_KEY="race-399",
                )
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    try:
        assert [r.status_code for r in results] == [201, 201]
        assert results[0].json()["id"] == results[1].json()["id"]
        assert _count_committed(world.tenant_a, "399") == 1
    finally:
        _cleanup_committed(world.tenant_a, "399", "race-399")


def _count_committed(tenant, number):
    def run():
        from telephony.models import Extension

        connection.set_tenant(tenant)
        out.append(Extension.objects.filter(number=number).count())
        connections.close_all()

    out = []
    t = threading.Thread(target=run)
    t.start()
    t.join()
    return out[0]


def _cleanup_committed(tenant, number, key):
    def run():
        from pbx.audit import SYSTEM
        from telephony.actions import do_delete_extension
        from telephony.models import Extension

        connection.set_tenant(tenant)
        for ext in Extension.objects.filter(number=number):
            do_delete_extension(ext, actor=SYSTEM)
        connection.set_schema_to_public()
        IdempotencyRecord.objects.filter(key=key).delete()
        AuditEntry.objects.filter(object_repr__startswith=number).delete()
        connections.close_all()

    t = threading.Thread(target=run)
    t.start()
    t.join()


def test_weak_sip_password_refused_generated_one_is_strong(api, world, in_tenant):
    client = api(world.a_admin, world.tenant_a)
    r = client.post(
        "/api/v1/extensions/", {"number": "310", "display_name": "Weak", "sip_password": "1234"}
    )
    assert r.status_code == 400
    assert r.json()["code"] == "WEAK_PASSWORD"
    assert "at least 12 characters" in " ".join(r.json()["fields"]["sip_password"])
    r = client.post(
        "/api/v1/extensions/",
        {"number": "311", "display_name": "Own", "sip_password": "Abcdefgh311xyz"},
    )
    assert r.status_code == 400  # contains its own number
    assert _ext_count(in_tenant, world.tenant_a, number__in=["310", "311"]) == 0

    r = client.post("/api/v1/extensions/", {"number": "312", "display_name": "Gen"})
    assert r.status_code == 201
    generated = r.json()["sip_password"]
    assert len(generated) >= 16
    from telephony.models import Extension
    from telephony.sip.contract import ha1
    from tenants.passwords import policy_problems

    assert policy_problems(world.tenant_a, generated, kind="sip") == []
    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="312")
    assert generated not in ext.sip_password_encrypted  # encrypted at rest
    assert ext.sip_password == generated
    assert ext.ha1_md5 == ha1("MD5", "312", "acme.test", generated)
    assert ext.ha1_sha256 == ha1("SHA-256", "312", "acme.test", generated)
    # Changing it keeps the HA1s in step.
    r = client.patch(f"/api/v1/extensions/{ext.pk}/", {"sip_password": "Fresh-Secret-99x"})
    assert r.status_code == 200
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
    assert ext.ha1_sha256 == ha1("SHA-256", "312", "acme.test", "Fresh-Secret-99x")


def test_tenant_password_policy_applies_to_web_passwords(api, world):
    sys = api(world.sysadmin)
    sys.patch(
        f"/api/v1/tenants/{world.tenant_a.pk}/", {"pw_min_length": 16, "pw_require_symbol": True}
    )
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post("/api/v1/users/", {"email": "new@acme.test", "password": "Short-Pass-1"})
    assert r.status_code == 400
    assert r.json()["code"] == "WEAK_PASSWORD"
    r = admin.post("/api/v1/users/", {"email": "new@acme.test", "password": "Long-Enough-Pass-1!"})
    assert r.status_code == 201


def test_every_write_is_audited_and_readable_by_its_owners(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.post(
        "/api/v1/extensions/",
        {"number": "320", "display_name": "Audited"},
        REMOTE_ADDR="203.0.113.7",
    )
    assert r.status_code == 201
    admin.patch(
        f"/api/v1/extensions/{r.json()['id']}/",
        {"display_name": "Audited 2", "sip_password": "Another-Secret-88"},
    )
    entries = AuditEntry.objects.filter(
        tenant=world.tenant_a, object_type="extension", object_repr__startswith="320"
    )
    create = entries.get(action="extension.create")
    assert create.actor == world.a_admin
    assert create.address == "203.0.113.7"
    update = entries.get(action="extension.update")
    assert update.changes["display_name"] == ["Audited", "Audited 2"]
    assert update.changes["sip_password"] == "***"  # never the secret itself
    log = admin.get("/api/v1/audit/?action=extension.update").json()
    assert any(e["object_repr"].startswith("320") for e in log["items"])
    # Tenant B's admin and South's dealer never see it; North's dealer does.
    b_log = api(world.b_admin, world.tenant_b).get("/api/v1/audit/").json()["items"]
    assert not any(e["object_repr"].startswith("320 ") for e in b_log)
    south = api(world.south_admin).get("/api/v1/audit/?object_type=extension").json()["items"]
    assert all(e["tenant"] == world.tenant_b.pk for e in south)
    north = api(world.north_admin).get("/api/v1/audit/?action=extension.update").json()["items"]
    assert any(e["object_repr"].startswith("320") for e in north)
    # The log is read-only.
    assert admin.post("/api/v1/audit/", {}).status_code == 405


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "abc", "display_name": "X"}, "number"),
        ({"number": "1234567", "display_name": "X"}, "number"),  # longer than 6 digits
        ({"number": "330"}, "display_name"),
        (
            {"number": "330", "display_name": "X", "allowed_transports": ["carrier-pigeon"]},
            "allowed_transports",
        ),
        ({"number": "330", "display_name": "X", "max_registrations": 0}, "max_registrations"),
        ({"number": "330", "display_name": "X", "voicemail_pin": "12"}, "voicemail_pin"),
        ({"number": "330", "display_name": "X", "email": "not-an-email"}, "email"),
        (
            {"number": "330", "display_name": "X", "outbound_caller_ids": ["call-me"]},
            "outbound_caller_ids",
        ),
        ({"number": "101", "display_name": "Taken"}, "number"),
    ],
)
def test_bad_extension_payloads_answer_400_with_field_errors(api, world, in_tenant, body, field):
    before = _ext_count(in_tenant, world.tenant_a)
    r = api(world.a_admin, world.tenant_a).post("/api/v1/extensions/", body)
    assert r.status_code in (400, 409), r.content
    assert set(r.json()) == {"code", "message", "fields"}
    assert field in r.json()["fields"]
    assert _ext_count(in_tenant, world.tenant_a) == before


def test_malformed_json_and_wrong_types(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.client.post("/api/v1/extensions/", "{broken", content_type="application/json")
    assert r.status_code == 400
    assert r.json()["code"] == "PARSE_ERROR"
    r = admin.client.post("/api/v1/extensions/", "<x/>", content_type="application/xml")
    assert r.status_code == 415
    r = api(world.sysadmin).post(
        "/api/v1/tenants/", {"name": "X", "slug": "Bad Slug!", "sip_domain": "not a domain"}
    )
    assert r.status_code == 400
    assert {"slug", "sip_domain"} <= set(r.json()["fields"])
    r = api(world.sysadmin).patch(
        f"/api/v1/tenants/{world.tenant_a.pk}/", {"time_zone": "Mars/Olympus"}
    )
    assert r.status_code == 400
    assert "time_zone" in r.json()["fields"]


def test_rate_limits_per_token_and_per_address(api, world, settings):
    # Counters live in Redis across runs (ids repeat in a re-created test database): start clean.
    import redis

    from pbx.audit import SYSTEM
    from tenants.actions import do_create_user
    from tenants.choices import Role

    r = redis.Redis.from_url(settings.REDIS_URL)
    for key in r.scan_iter(match="*throttle:*"):
        r.delete(key)
    fresh = do_create_user(
        email="limited@acme.test",
        password="Correct-Horse-42x",
        role=Role.TENANT_ADMIN,
        tenant=world.tenant_a,
        actor=SYSTEM,
    )
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "address": "1000/min", "signin": "2/min"},
    }
    admin = api(fresh, world.tenant_a)
    codes = [admin.get("/api/v1/extensions/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = admin.get("/api/v1/extensions/")
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited["Retry-After"]) > 0
    # Another token is counted apart.
    assert api(world.sysadmin, world.tenant_a).get("/api/v1/extensions/").status_code == 200
    # Sign-in attempts are limited per address.
    from rest_framework.test import APIClient

    anon = APIClient(HTTP_HOST="acme.test", REMOTE_ADDR=f"198.51.100.{fresh.pk % 250 + 1}")
    bad = {"email": "admin@acme.test", "password": "wrong-password-1"}
    codes = [anon.post("/api/v1/auth/signin/", bad, format="json").status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_forwarding_over_the_api(api, world, in_tenant):
    admin = api(world.a_admin, world.tenant_a)
    with in_tenant(world.tenant_a):
        from telephony.models import Extension

        ext = Extension.objects.get(number="101")
    url = f"/api/v1/extensions/{ext.pk}/"
    r = admin.patch(
        url, {"forward_busy": "102", "forward_no_answer": "+15551234567", "no_answer_timeout": 15}
    )
    assert r.status_code == 200, r.content
    assert (r.json()["forward_busy"], r.json()["no_answer_timeout"]) == ("102", 15)
    for bad, field in (
        ({"forward_always": "101"}, "forward_always"),
        ({"forward_busy": "sip:x@y"}, "forward_busy"),
        ({"no_answer_timeout": 1}, "no_answer_timeout"),
    ):
        r = admin.patch(url, bad)
        assert r.status_code == 400
        assert field in r.json()["fields"]
    with in_tenant(world.tenant_a):
        ext.refresh_from_db()
    assert (ext.forward_always, ext.forward_busy, ext.no_answer_timeout) == ("", "102", 15)
