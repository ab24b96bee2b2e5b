"""Per-account lock-out: wrong passwords for one account from many addresses lock it on every
sign-in path (API and portal), and an unknown sign-in name behaves exactly the same."""

import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LIMIT = 4


@pytest.fixture
def lockout(settings):
    settings.PBX_AUTH_LOCKOUT_FAILURES = LIMIT
    settings.PBX_AUTH_LOCKOUT_WINDOW_MINUTES = 15
    settings.PBX_AUTH_LOCKOUT_MINUTES = 15


@pytest.fixture
def account(world):
    """A fresh tenant user (the counters live in Redis, outside the test's transaction)."""
    from pbx.audit import SYSTEM
    from tenants import actions
    from tenants.choices import Role

    return actions.do_create_user(
        email=f"lock-{uuid.uuid4().hex[:8]}@acme.test",
        password=PASSWORD,
        role=Role.TENANT_USER,
        tenant=world.tenant_a,
        actor=SYSTEM,
    )


def _api_signin(email, password, address):
    client = APIClient(HTTP_HOST="acme.test", REMOTE_ADDR=address)
    return client.post("/api/v1/auth/signin/", {"email": email, "password": password}, "json")


def _answer(r):
    return r.status_code, r.json(), r.get("Retry-After") is not None


def test_wrong_passwords_from_many_addresses_lock_the_account(world, lockout, account):
    """The finding: 25 wrong passwords from 25 addresses all got a plain 401."""
    from pbx.models import AuditEntry

    answers = [
        _answer(_api_signin(account.email, f"wrong-{i}", f"198.51.100.{i + 1}"))
        for i in range(LIMIT + 1)
    ]
    assert [a[0] for a in answers] == [401] * (LIMIT - 1) + [429, 429]
    status, body, retry_after = answers[-1]
    assert body["code"] == "ACCOUNT_LOCKED"
    assert retry_after
    # The right password is refused too while the lock holds.
    r = _api_signin(account.email, PASSWORD, "192.0.2.77")
    assert r.status_code == 429
    assert r.json()["code"] == "ACCOUNT_LOCKED"
    assert 0 < int(r["Retry-After"]) <= 15 * 60 + 1
    entry = AuditEntry.objects.get(action="user.sign_in_locked", object_id=str(account.pk))
    assert entry.tenant_id == world.tenant_a.id
    assert entry.address == f"198.51.100.{LIMIT}"


def test_unknown_sign_in_name_answers_like_an_account(world, lockout, account):
    """No enumeration: the same answers, in the same order, for a name without an account."""
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@acme.test"
    for name in (account.email, unknown):
        answers = [
            _answer(_api_signin(name, f"wrong-{i}", f"198.51.100.{i + 1}"))
            for i in range(LIMIT + 1)
        ]
        if name == account.email:
            known = answers
        else:
            assert answers == known
    assert _answer(_api_signin(account.email, PASSWORD, "192.0.2.1")) == _answer(
        _api_signin(unknown, PASSWORD, "192.0.2.1")
    )


def test_successful_sign_in_resets_the_count(world, lockout, account):
    for _ in range(LIMIT - 1):
        assert _api_signin(account.email, "wrong", "198.51.100.9").status_code == 401
    assert _api_signin(account.email, PASSWORD, "198.51.100.9").status_code == 200
    for _ in range(LIMIT - 1):
        assert _api_signin(account.email, "wrong", "198.51.100.9").status_code == 401
    assert _api_signin(account.email, PASSWORD, "198.51.100.9").status_code == 200


def _portal_signin(email, password, address):
    client = Client(HTTP_HOST="acme.test", REMOTE_ADDR=address)
    return client, client.post("/accounts/login/", {"login": email, "password": password})


def test_portal_and_api_share_one_lock(world, lockout, account):
    """Wrong passwords in the portal lock the API sign-in, and a lock set through the API keeps
    the portal shut, even with the right password."""
    for i in range(LIMIT):
        _, r = _portal_signin(account.email, f"wrong-{i}", f"198.51.100.{i + 1}")
        assert r.status_code == 200  # the form again
    r = _api_signin(account.email, PASSWORD, "192.0.2.5")
    assert r.status_code == 429
    client, r = _portal_signin(account.email, PASSWORD, "192.0.2.5")
    assert r.status_code == 200
    assert "locked" in r.content.decode()
    assert client.get("/portal/").status_code == 302  # not signed in


def test_api_lock_holds_in_the_portal(world, lockout, account):
    for i in range(LIMIT):
        _api_signin(account.email, f"wrong-{i}", f"198.51.100.{i + 1}")
    client, r = _portal_signin(account.email, PASSWORD, "192.0.2.6")
    assert r.status_code == 200
    assert "locked" in r.content.decode()
    assert "_auth_user_id" not in client.session


def test_new_password_from_an_administrator_lifts_the_lock(
    world, lockout, account, django_capture_on_commit_callbacks
):
    from pbx.audit import SYSTEM
    from tenants.actions import do_update_user

    for i in range(LIMIT):
        _api_signin(account.email, f"wrong-{i}", f"198.51.100.{i + 1}")
    assert _api_signin(account.email, PASSWORD, "192.0.2.7").status_code == 429
    with django_capture_on_commit_callbacks(execute=True):
        do_update_user(account, password="Another-Horse-43y", actor=SYSTEM)
    assert _api_signin(account.email, "Another-Horse-43y", "192.0.2.7").status_code == 200


def test_lock_is_audited_even_when_the_sign_in_carries_an_idempotency_key(world, lockout, account):
    """A client-chosen header must not turn the lock's audit entry into a rolled-back write (nor
    a 500: a sign-in is anonymous and has no idempotency key space)."""
    from pbx.models import AuditEntry

    client = APIClient(HTTP_HOST="acme.test", REMOTE_ADDR="192.0.2.8")
    codes = [
        client.post(
            "/api/v1/auth/signin/",
            {"email": account.email, "password": "wrong"},
            format="json",
            HTTP_IDEMPOTENCY_KEY=f"k-{i}",
        ).status_code
        for i in range(LIMIT)
    ]
    assert codes == [401] * (LIMIT - 1) + [429]
    assert AuditEntry.objects.filter(
        action="user.sign_in_locked", object_id=str(account.pk)
    ).exists()


def test_portal_and_api_share_the_sign_in_budget_per_address(world, settings):
    """Sign-in attempts from one address count against one budget on the portal and the API,
    over every host name."""
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "1000/min", "address": "1000/min", "signin": "3/min"},
    }
    address = f"2001:db8::1:{uuid.uuid4().hex[:4]}"
    for host in ("acme.test", "beta.test"):
        r = Client(HTTP_HOST=host, REMOTE_ADDR=address).post(
            "/accounts/login/", {"login": "nobody@x.test", "password": "wrong"}
        )
        assert r.status_code == 200
        assert "Too many sign-in attempts" not in r.content.decode()
    assert _api_signin("nobody@x.test", "wrong", address).status_code == 401
    r = _api_signin("nobody@x.test", "wrong", address)
    assert r.status_code == 429
    assert r.json()["code"] == "RATE_LIMITED"
    r = Client(HTTP_HOST="beta.test", REMOTE_ADDR=address).post(
        "/accounts/login/", {"login": "admin@beta.test", "password": PASSWORD}
    )
    assert "Too many sign-in attempts" in r.content.decode()
