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


# --- tokens: one host family, revoked everywhere by sign-out --------------------------------


def _bearer(host, access):
    client = APIClient(HTTP_HOST=host)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_sign_out_without_the_refresh_token_revokes_the_whole_sign_in(world):
    """README: sign-out revokes the access and the refresh token — also when the body does not
    carry the refresh token, and for every token rotated from that sign-in."""
    client, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    first = r.json()
    rotated = client.post("/api/v1/auth/refresh/", {"refresh": first["refresh"]}, format="json")
    assert rotated.status_code == 200
    rotated = rotated.json()
    # Sign out with the first access token and an empty body.
    assert _bearer("acme.test", first["access"]).post("/api/v1/auth/signout/").status_code == 204
    for access in (first["access"], rotated["access"]):
        assert _bearer("acme.test", access).get("/api/v1/auth/me/").status_code == 401
    r = client.post("/api/v1/auth/refresh/", {"refresh": rotated["refresh"]}, format="json")
    assert r.status_code == 401
    # Another sign-in of the same user is a session of its own, untouched.
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    assert _bearer("acme.test", r.json()["access"]).get("/api/v1/auth/me/").status_code == 200


def test_tokens_are_valid_only_on_the_host_family_they_were_issued_for(world):
    """A provider-side admin's token does not open a tenant's host, nor a tenant's another's."""
    for email in ("root@provider.test", "north@dealers.test"):
        _, r = _signin("localhost", email, PASSWORD)
        tokens = r.json()
        assert _bearer("localhost", tokens["access"]).get("/api/v1/auth/me/").status_code == 200
        for path in ("/api/v1/auth/me/", "/api/v1/extensions/"):
            r = _bearer("acme.test", tokens["access"]).get(path)
            assert r.status_code == 401, (email, path)
            assert r.json()["code"] == "AUTHENTICATION_FAILED"
        refresh = APIClient(HTTP_HOST="acme.test").post(
            "/api/v1/auth/refresh/", {"refresh": tokens["refresh"]}, format="json"
        )
        assert refresh.status_code == 401
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    access = r.json()["access"]
    for host in ("beta.test", "localhost"):
        assert _bearer(host, access).get("/api/v1/auth/me/").status_code == 401


def test_revoked_on_the_provider_host_means_revoked_on_every_host(world):
    """The finding: sign-out on the provider's host left the token working on a tenant's."""
    _, r = _signin("localhost", "root@provider.test", PASSWORD)
    access = r.json()["access"]
    assert _bearer("localhost", access).post("/api/v1/auth/signout/").status_code == 204
    for host in ("localhost", "acme.test", "beta.test"):
        assert _bearer(host, access).get("/api/v1/extensions/").status_code == 401
        assert _bearer(host, access).get("/api/v1/auth/me/").status_code == 401


def test_provider_admin_takes_a_tenant_token_explicitly(world):
    """The API's "Manage": a dealer admin asks the provider's host for a token for one of its
    tenants; that token works on that tenant's host only, and is audited."""
    from pbx.models import AuditEntry

    _, r = _signin("localhost", "north@dealers.test", PASSWORD)
    provider = _bearer("localhost", r.json()["access"])
    r = provider.post(f"/api/v1/tenants/{world.tenant_a.pk}/token/")
    assert r.status_code == 200, r.content
    tenant_tokens = r.json()
    assert AuditEntry.objects.filter(
        action="tenant.api_token", tenant=world.tenant_a, actor=world.north_admin
    ).exists()
    assert _bearer("acme.test", tenant_tokens["access"]).get("/api/v1/extensions/").status_code == (
        200
    )
    for host in ("localhost", "beta.test"):
        assert _bearer(host, tenant_tokens["access"]).get("/api/v1/auth/me/").status_code == 401
    # Refresh works on the tenant's host, not elsewhere.
    r = APIClient(HTTP_HOST="localhost").post(
        "/api/v1/auth/refresh/", {"refresh": tenant_tokens["refresh"]}, format="json"
    )
    assert r.status_code == 401
    r = APIClient(HTTP_HOST="acme.test").post(
        "/api/v1/auth/refresh/", {"refresh": tenant_tokens["refresh"]}, format="json"
    )
    assert r.status_code == 200
    # Not for a tenant outside the dealer's subtree.
    assert provider.post(f"/api/v1/tenants/{world.tenant_b.pk}/token/").status_code == 404
    # A tenant admin has no such door.
    _, r = _signin("acme.test", "admin@acme.test", PASSWORD)
    r = _bearer("acme.test", r.json()["access"]).post(f"/api/v1/tenants/{world.tenant_a.pk}/token/")
    assert r.status_code == 404


@pytest.mark.parametrize("scope", ["signin", "address"])
def test_sign_in_limit_is_one_budget_per_address_across_host_names(world, settings, scope):
    """Hammering sign-in over many tenants' host names counts against one budget, for the
    sign-in limit and for the general per-address limit alike."""
    import uuid

    rates = {"token": "1000/min", "address": "1000/min", "signin": "1000/min", scope: "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    address = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    codes = []
    for host in ("acme.test", "beta.test", "localhost", "acme.test"):
        client = APIClient(HTTP_HOST=host, REMOTE_ADDR=address)
        r = client.post(
            "/api/v1/auth/signin/", {"email": "x@y.test", "password": "wrong-1"}, format="json"
        )
        codes.append(r.status_code)
    assert codes == [401, 401, 401, 429]


def test_token_limit_is_one_budget_across_host_names(api, world, settings):
    """A system admin working on two tenants' hosts has one per-user budget, not one per host."""
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_user
    from tenants.choices import Role

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "3/min", "address": "1000/min", "signin": "1000/min"},
    }
    admin = do_create_user(
        email="ops@provider.test",
        password=PASSWORD,
        role=Role.SYSTEM_ADMIN,
        actor=SYSTEM,
    )
    codes = [
        api(admin, tenant).get("/api/v1/extensions/").status_code
        for tenant in (world.tenant_a, world.tenant_b, world.tenant_a, world.tenant_b)
    ]
    assert codes == [200, 200, 200, 429]
