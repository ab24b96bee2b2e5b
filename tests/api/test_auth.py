"""Sign-in, refresh and sign-out over the API; credentials bound to their host; TOTP."""

import pytest
from rest_framework.test import APIClient

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _signin(host, email, password, **extra):
    client = APIClient(HTTP_HOST=host)
    return client, client.post(
        "/api/v1/auth/signin/", {"email": email, "password": password, **extra}, format="json"
    )


def test_sign_in_refresh_sign_out(world):
    client, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    assert r.status_code == 200, r.content
    tokens = r.json()
    assert tokens["token_type"] == "Bearer"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    me = client.get("/api/v1/auth/me/").json()
    assert me["email"] == "admin@acme.test"
    assert "extensions.manage" in me["permissions"]

    refreshed = client.post("/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed.status_code == 200
    # Rotation: the old refresh token is spent.
    again = client.post("/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert again.status_code == 401

    new = refreshed.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {new['access']}")
    out = client.post("/api/v1/auth/signout/", {"refresh": new["refresh"]}, format="json")
    assert out.status_code == 204
    assert client.get("/api/v1/auth/me/").status_code == 401  # access token revoked at once
    r = client.post("/api/v1/auth/refresh/", {"refresh": new["refresh"]}, format="json")
    assert r.status_code == 401


def test_wrong_password_and_unknown_user_answer_alike(world):
    _, wrong = _signin("acme.test", "admin@acme.test", "Not-The-Password-1")
    _, unknown = _signin("acme.test", "nobody@acme.test", "Not-The-Password-1")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_tenant_user_signs_in_only_on_its_own_host(world):
    _, r = _signin("beta.test", "admin@acme.test", PASSWORD)
    assert r.status_code == 401
    _, r = _signin("localhost", "admin@acme.test", PASSWORD)
    assert r.status_code == 401
    _, r = _signin("acme.test", "root@provider.test", PASSWORD)  # platform admin, tenant host
    assert r.status_code == 401
    _, r = _signin("localhost", "root@provider.test", PASSWORD)
    assert r.status_code == 200


def test_token_from_one_tenant_is_refused_on_another(world):
    client, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    other = APIClient(HTTP_HOST="beta.test")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {r.json()['access']}")
    assert other.get("/api/v1/extensions/").status_code == 401


def test_extension_at_domain_sign_in(world, in_tenant):
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        do_create_extension(
            number="150",
            display_name="Web User",
            email="web@acme.test",
            web_password="Blue-Sky-Lamp-9",
            actor=SYSTEM,
        )
    _, r = _signin("acme.test", "150@acme.test", "Blue-Sky-Lamp-9")
    assert r.status_code == 200, r.content
    _, r = _signin("acme.test", "web@acme.test", "Blue-Sky-Lamp-9")
    assert r.status_code == 200
    _, r = _signin("beta.test", "150@acme.test", "Blue-Sky-Lamp-9")
    assert r.status_code == 401


def test_totp_second_factor(world):
    import time

    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret, hotp_value

    secret = generate_totp_secret()
    TOTP.activate(world.a_admin, secret)
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    assert r.status_code == 401
    assert r.json()["code"] == "MFA_REQUIRED"
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD, otp="000000")
    assert r.status_code == 401
    code = f"{hotp_value(secret, int(time.time()) // 30):06d}"
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD, otp=code)
    assert r.status_code == 200, r.content


def test_sign_in_bad_payloads(world):
    client = APIClient(HTTP_HOST="acme.test")
    r = client.post("/api/v1/auth/signin/", {"email": "x"}, format="json")
    assert r.status_code == 400
    assert r.json()["fields"]["password"]
    r = client.post("/api/v1/auth/signin/", "not json", content_type="application/json")
    assert r.status_code == 400
    assert r.json()["code"] == "PARSE_ERROR"
