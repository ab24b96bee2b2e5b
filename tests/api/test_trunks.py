"""Trunks in the REST API: the provider's and dealers' trunks on the provider's host, the
trunks a tenant may use on its host. The carrier password goes in and never comes out; a
tenant sees a shared trunk without any account detail and never another tenant's trunk; the
engine's live state is in every trunk's body and in a list of its own."""

import json

import pytest
import redis
from django.conf import settings

from pbx.audit import SYSTEM
from pbx.models import AuditEntry
from telephony.engine.store import redis_key
from telephony.sip.contract import ENGINE_ALIVE, TRUNK_CALLS, TRUNK_STATE
from trunks import actions
from trunks.models import Trunk

pytestmark = pytest.mark.django_db

SECRET = "carrier-s3cret-77"
REG = {"name": "Carrier Reg", "kind": "register", "host": "sip.carrier.test",
       "username": "acct77", "realm": "carrier.test", "password": SECRET}  # fmt: skip
IP = {"name": "Carrier IP", "kind": "ip", "host": "sip.ip-carrier.test",
      "addresses": ["192.0.2.0/28"], "country": "US"}  # fmt: skip
ACCOUNT = ("host", "realm", "username", "auth_username", "password", "has_password",
           "outbound_proxy", "addresses", "from_user", "from_domain", "source_port")  # fmt: skip


@pytest.fixture
def r():
    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    keys: list[str] = []
    client.test_keys = keys  # type: ignore[attr-defined]
    yield client
    if keys:
        client.delete(*keys)
    client.close()


def _state(r, trunk_id: int, **fields) -> None:
    key = redis_key(TRUNK_STATE, trunk=str(trunk_id))
    r.test_keys.append(key)
    r.hset(key, mapping=fields)


def test_the_password_goes_in_and_never_comes_out(api, world):
    sysadmin = api(world.sysadmin)
    r = sysadmin.post("/api/v1/trunks/", REG)
    assert r.status_code == 201, r.content
    body = r.json()
    assert "password" not in body
    assert body["has_password"] is True
    assert (body["owner"], body["tenant"], body["dealer"]) == ("provider", None, None)
    assert body["state"] == {
        "state": "unknown", "error": "", "at": "", "checked": "", "expires": "", "channels": 0
    }  # fmt: skip
    trunk = Trunk.objects.get(pk=body["id"])
    assert trunk.password == SECRET
    for response in (
        r,
        sysadmin.get("/api/v1/trunks/"),
        sysadmin.get(f"/api/v1/trunks/{trunk.pk}/"),
        sysadmin.patch(f"/api/v1/trunks/{trunk.pk}/", {"register_expires": 600}),
        sysadmin.get("/api/v1/trunks/states/"),
    ):
        assert response.status_code in (200, 201), response.content
        assert SECRET not in response.content.decode()
    trunk.refresh_from_db()
    assert (trunk.register_expires, trunk.password) == (600, SECRET)  # kept when not sent
    r = sysadmin.patch(f"/api/v1/trunks/{trunk.pk}/", {"password": "new-pass-99"})
    assert r.status_code == 200
    trunk.refresh_from_db()
    assert trunk.password == "new-pass-99"
    entries = AuditEntry.objects.filter(object_type="trunk", object_id=str(trunk.pk))
    assert {"trunk.create", "trunk.update"} <= set(entries.values_list("action", flat=True))
    assert SECRET not in json.dumps(list(entries.values_list("changes", flat=True)))
    assert AuditEntry.objects.filter(action="trunk.create", actor=world.sysadmin).exists()


def test_bad_input_is_a_field_error_never_a_500(api, world):
    sysadmin = api(world.sysadmin)
    before = Trunk.objects.count()
    cases = [
        ({**IP, "host": "bad host"}, "host"),
        ({**IP, "realm": "x\r\nVia: evil"}, "realm"),
        ({**IP, "name": "a\nb"}, "name"),
        ({**IP, "port": "many"}, "port"),
        ({**IP, "port": 70000}, "port"),
        ({**IP, "addresses": "192.0.2.1"}, "addresses"),
        ({**IP, "addresses": ["300.1.1.1"]}, "addresses"),
        ({**IP, "addresses": [{"a": [1]}]}, "addresses"),
        ({**IP, "codecs": ["PCMU", "speex"]}, "codecs"),
        ({**IP, "kind": "carrier-pigeon"}, "kind"),
        ({**IP, "tenant_id": 2**40}, "tenant_id"),
        ({**IP, "tenant_id": 999_999}, "tenant_id"),
        ({**IP, "shared_with": [2**40]}, "shared_with"),
        ({**IP, "shared_with": "all"}, "shared_with"),
        ({**IP, "shared_with": [999_999]}, "shared_with"),
        ({**IP, "tenant_id": world.tenant_a.pk, "dealer_id": world.north.pk}, "dealer_id"),
        ({**REG, "password": ""}, "password"),
        ({**IP, "caller_id": "call me"}, "caller_id"),
    ]
    for body, field in cases:
        r = sysadmin.post("/api/v1/trunks/", body)
        assert r.status_code == 400, (body, r.content)
        assert set(r.json()) == {"code", "message", "fields"}
        assert field in r.json()["fields"], (field, r.json())
    deep = '{"name": ' + "[" * 100 + "]" * 100 + "}"
    r = sysadmin.client.generic("POST", "/api/v1/trunks/", deep, content_type="application/json")
    assert (r.status_code, r.json()["code"]) == (400, "PARSE_ERROR")
    assert Trunk.objects.count() == before


def test_the_live_state_is_shown_in_each_trunk_and_as_a_list(api, world, r):
    account = {k: v for k, v in REG.items() if k != "password"}
    reg = actions.do_create_trunk(actor=SYSTEM, fields=account, password=SECRET)
    ip = actions.do_create_trunk(actor=SYSTEM, fields=IP)
    _state(r, reg.pk, state="failed", error="403 Forbidden", at="1700000000.5",
           checked="1700000001", expires="")  # fmt: skip
    _state(r, ip.pk, state="up", error="", at="1700000002", checked="1700000003", expires="")
    calls = redis_key(TRUNK_CALLS, trunk=str(ip.pk))
    r.test_keys.append(calls)
    # Engines 1 and 2 are alive (their heartbeats); engine 3 died with a call on its books:
    # not counted, as the engines' own channel limit does not count it.
    r.hset(calls, mapping={"engine-1": "3", "engine-2": "2", "engine-3": "4"})
    for engine in ("engine-1", "engine-2"):
        beat = redis_key(ENGINE_ALIVE, engine=engine)
        r.test_keys.append(beat)
        r.set(beat, "1", ex=60)
    sysadmin = api(world.sysadmin)
    body = sysadmin.get(f"/api/v1/trunks/{reg.pk}/").json()
    assert (body["state"]["state"], body["state"]["error"]) == ("failed", "403 Forbidden")
    assert sysadmin.get(f"/api/v1/trunks/{ip.pk}/").json()["state"]["channels"] == 5
    states = {row["id"]: row for row in sysadmin.get("/api/v1/trunks/states/").json()["items"]}
    assert states[reg.pk] == {"id": reg.pk, "name": "Carrier Reg", "state": "failed",
                              "error": "403 Forbidden", "at": "1700000000.5",
                              "checked": "1700000001", "expires": "", "channels": 0}  # fmt: skip
    assert (states[ip.pk]["state"], states[ip.pk]["channels"]) == ("up", 5)
    listed = sysadmin.get("/api/v1/trunks/", {"kind": "ip"}).json()["items"]
    assert [(t["id"], t["state"]["state"]) for t in listed] == [(ip.pk, "up")]


def test_a_dealer_manages_its_subtree_only(api, world):
    north, south = api(world.north_admin), api(world.south_admin)
    r = north.post("/api/v1/trunks/", {**IP, "shared_with": [world.tenant_a.pk]})
    assert r.status_code == 201, r.content
    mine = r.json()
    assert (mine["owner"], mine["dealer"], mine["shared_with"]) == (
        "dealer", world.north.pk, [world.tenant_a.pk]
    )  # fmt: skip
    # A dealer cannot share with, or make a trunk for, a tenant outside its subtree.
    for body in (
        {**IP, "shared_with": [world.tenant_b.pk]},
        {**IP, "tenant_id": world.tenant_b.pk},
    ):
        r = north.post("/api/v1/trunks/", body)
        assert r.status_code == 400, r.content
    provider = actions.do_create_trunk(actor=SYSTEM, fields={**IP, "name": "Provider's"})
    theirs = south.post("/api/v1/trunks/", {**REG, "name": "South's"}).json()
    # Neither the provider's nor South's trunk answers North, in any way.
    for trunk_id in (provider.pk, theirs["id"]):
        assert north.get(f"/api/v1/trunks/{trunk_id}/").status_code == 404
        assert north.patch(f"/api/v1/trunks/{trunk_id}/", {"name": "Hacked"}).status_code == 404
        assert north.delete(f"/api/v1/trunks/{trunk_id}/").status_code == 404
    assert Trunk.objects.get(pk=theirs["id"]).name == "South's"
    names = {t["name"] for t in north.get("/api/v1/trunks/", {"limit": 500}).json()["items"]}
    assert names == {"Carrier IP"}
    states = north.get("/api/v1/trunks/states/").json()["items"]
    assert [s["id"] for s in states] == [mine["id"]]
    assert south.get(f"/api/v1/trunks/{mine['id']}/").status_code == 404
    # The sysadmin sees all three; the trunk endpoints do not exist for tenant users here.
    assert api(world.sysadmin).get("/api/v1/trunks/").json()["total"] == 3
    assert api(world.a_admin).get("/api/v1/trunks/").status_code == 401
    r = north.delete(f"/api/v1/trunks/{mine['id']}/")
    assert r.status_code == 204
    assert AuditEntry.objects.filter(action="trunk.delete", object_id=str(mine["id"])).exists()


def test_a_tenant_sees_the_trunks_it_may_use_and_never_their_credentials(api, world):
    a, b = world.tenant_a, world.tenant_b
    shared = actions.do_create_trunk(
        actor=SYSTEM, fields={k: v for k, v in REG.items() if k != "password"},
        password=SECRET, shared_with=[a],
    )  # fmt: skip
    unshared = actions.do_create_trunk(actor=SYSTEM, fields={**IP, "name": "Not for Acme"})
    b_own = actions.do_create_trunk(actor=SYSTEM, fields={**IP, "name": "Beta's own"}, tenant=b)
    admin = api(world.a_admin, a)
    own_account = {**REG, "name": "Acme's own", "username": "acme5", "realm": "acme.example",
                   "host": "sip.acme-carrier.example", "password": "acme-pass-5"}  # fmt: skip
    r = admin.post("/api/v1/trunks/", own_account)
    assert r.status_code == 201, r.content
    own = r.json()
    assert "password" not in own
    assert own["has_password"] is True
    assert own["owner"] == "tenant"
    assert Trunk.objects.get(pk=own["id"]).tenant_id == a.pk

    listed = admin.get("/api/v1/trunks/")
    assert listed.status_code == 200
    text = listed.content.decode()
    for secret in (SECRET, "acct77", "carrier.test", "Beta's own", "Not for Acme"):
        assert secret not in text, secret
    items = {t["id"]: t for t in listed.json()["items"]}
    assert set(items) == {shared.pk, own["id"]}
    assert not set(ACCOUNT) & set(items[shared.pk])
    assert items[shared.pk]["owner"] == "provider"
    assert items[shared.pk]["state"]["state"] == "unknown"
    assert items[own["id"]]["username"] == "acme5"  # its own account it sees (not the password)
    detail = admin.get(f"/api/v1/trunks/{shared.pk}/").json()
    assert not set(ACCOUNT) & set(detail)
    # A search cannot probe the shared trunk's host.
    assert admin.get("/api/v1/trunks/", {"q": "sip.carrier"}).json()["items"] == []
    # The shared trunk is its provider's to change; the others are not there at all.
    before = Trunk.objects.filter(pk=shared.pk).values().first()
    assert admin.patch(f"/api/v1/trunks/{shared.pk}/", {"name": "Mine"}).status_code == 403
    assert admin.delete(f"/api/v1/trunks/{shared.pk}/").status_code == 403
    assert Trunk.objects.filter(pk=shared.pk).values().first() == before
    for other in (unshared.pk, b_own.pk):
        assert admin.get(f"/api/v1/trunks/{other}/").status_code == 404
        assert admin.patch(f"/api/v1/trunks/{other}/", {"name": "Mine"}).status_code == 404
    assert Trunk.objects.get(pk=b_own.pk).name == "Beta's own"
    # Its own trunk it changes (a tenant's trunk is not shared) and deletes.
    r = admin.patch(f"/api/v1/trunks/{own['id']}/", {"max_channels": 4, "shared_with": [b.pk]})
    assert r.status_code == 200, r.content
    assert Trunk.objects.get(pk=own["id"]).max_channels == 4
    assert not Trunk.objects.get(pk=own["id"]).shared_with.exists()
    # Tenant B's admin sees neither of Acme's; Acme's plain user none at all.
    b_ids = {t["id"] for t in api(world.b_admin, b).get("/api/v1/trunks/").json()["items"]}
    assert b_ids == {b_own.pk}
    assert api(world.a_user, a).get("/api/v1/trunks/").status_code == 403
    assert admin.delete(f"/api/v1/trunks/{own['id']}/").status_code == 204
    assert not Trunk.objects.filter(pk=own["id"]).exists()
