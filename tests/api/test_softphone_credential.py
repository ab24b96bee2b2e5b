"""``/api/v1/me/softphone/``: the signed-in user's web softphone credential. It is for the
user's own extension only, never holds the SIP password, and is what the engine accepts."""

import time

import pytest
from django.conf import settings
from django_tenants.utils import tenant_context

from telephony.models import Extension
from telephony.sip import contract
from tests.sip.engine_fixtures import SIP_PASSWORD

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/softphone/"


@pytest.fixture
def staff_is_102(world):
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=world.a_user.pk)
    return "102"


def test_a_user_gets_a_short_lived_credential_for_its_own_extension(api, world, staff_is_102):
    me = api(world.a_user, world.tenant_a)
    r = me.post(URL)
    assert r.status_code == 200, r.content
    assert r["Cache-Control"] == "no-store"
    body = r.json()
    assert body["extension"] == "102"
    assert body["uri"] == "sip:102@acme.test"
    assert body["ws_url"] == f"wss://acme.test:{settings.SIP_WSS_PORT}"
    assert SIP_PASSWORD not in r.content.decode()
    assert 0 < body["expires_in"] <= contract.WEB_CREDENTIAL_SECONDS
    assert abs(body["expires"] - time.time() - body["expires_in"]) <= 2
    assert contract.read_web_username(body["authorization_user"]) == ("102", body["expires"])
    with tenant_context(world.tenant_a):
        ha1 = Extension.objects.get(number="102").ha1_md5
    secret = contract.derive_secret(settings.SECRET_KEY, contract.WEB_CREDENTIAL_LABEL)
    assert body["password"] == contract.web_credential_password(
        secret, world.tenant_a.schema_name, "102", body["expires"], ha1
    )
    # Only issued on POST: a GET is not cached by anything in between.
    assert me.get(URL).status_code == 405


def test_the_websocket_address_follows_the_setting(api, world, staff_is_102, settings):
    settings.PBX_SIP_WSS_URL = "wss://pbx.example.com/sip"
    r = api(world.a_user, world.tenant_a).post(URL)
    assert r.json()["ws_url"] == "wss://pbx.example.com/sip"


def test_no_credential_without_an_extension_or_with_the_softphone_off(api, world, staff_is_102):
    me = api(world.a_user, world.tenant_a)
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(web_softphone=False)
    r = me.post(URL)
    assert r.status_code == 403
    assert r.json()["code"] == "PERMISSION_DENIED"
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(web_softphone=True, enabled=False)
    assert me.post(URL).status_code == 403
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(enabled=True, user_id=None)
    r = me.post(URL)
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"


def test_strangers_get_nothing(api, world, staff_is_102):
    assert api(None, world.tenant_a).post(URL).status_code in (401, 403)
    # Tenant A's user on tenant B's host: no credential for anything there.
    foreign = api(world.a_user, world.tenant_b).post(URL)
    assert foreign.status_code in (401, 403, 404)
    assert "password" not in foreign.json()
