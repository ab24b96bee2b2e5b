"""Feature access codes in the REST API on the tenant's host: every feature listed with its
default and current code; one changed, several changed together, all reset; a clash is a
field error that says with what; the codes are the tenant's own."""

import pytest

from pbx.models import AuditEntry
from telephony.sip.contract import FEATURE_DEFAULTS

pytestmark = pytest.mark.django_db


def _codes(client) -> dict:
    body = client.get("/api/v1/feature-codes/").json()
    assert body["total"] == len(body["items"]) == len(FEATURE_DEFAULTS)
    return {row["feature"]: row for row in body["items"]}


def test_codes_are_listed_changed_and_reset(api, world):
    admin = api(world.a_admin, world.tenant_a)
    rows = _codes(admin)
    assert rows["forward_always_on"] == {
        "feature": "forward_always_on",
        "label": "Forward always on (+ number)",
        "default_code": "*72",
        "code": "*72",
        "enabled": True,
        "takes_number": True,
    }
    r = admin.patch("/api/v1/feature-codes/dnd_on/", {"code": "*11"})
    assert r.status_code == 200, r.content
    assert (r.json()["code"], r.json()["default_code"]) == ("*11", "*78")
    r = admin.patch("/api/v1/feature-codes/dnd_off/", {"enabled": False})
    assert (r.status_code, r.json()["enabled"]) == (200, False)
    assert admin.get("/api/v1/feature-codes/dnd_on/").json()["code"] == "*11"
    # Two features swap codes in one request.
    r = admin.patch(
        "/api/v1/feature-codes/",
        {"forward_busy_on": {"code": "*91"}, "forward_busy_off": {"code": "*90"}},
    )
    assert r.status_code == 200, r.content
    rows = {row["feature"]: row for row in r.json()["items"]}
    assert (rows["forward_busy_on"]["code"], rows["forward_busy_off"]["code"]) == ("*91", "*90")
    # Beta's codes are its own.
    assert _codes(api(world.b_admin, world.tenant_b))["dnd_on"]["code"] == "*78"
    r = admin.post("/api/v1/feature-codes/reset/")
    assert r.status_code == 200
    assert {row["feature"]: row["code"] for row in r.json()["items"]} == FEATURE_DEFAULTS
    done = AuditEntry.objects.filter(tenant=world.tenant_a, actor=world.a_admin)
    assert {"feature_codes.update", "feature_codes.reset"} <= set(
        done.values_list("action", flat=True)
    )


def test_clashes_and_bad_input_are_field_errors(api, world):
    admin = api(world.a_admin, world.tenant_a)
    r = admin.patch("/api/v1/feature-codes/dnd_on/", {"code": "*721"})
    assert r.status_code == 400
    body = r.json()
    assert set(body) == {"code", "message", "fields"}
    assert "*72 takes a number" in body["fields"]["code"][0]
    for bad in ({"code": "78"}, {"code": "*67"}, {"code": ["*1"]}, {"enabled": "maybe"}):
        r = admin.patch("/api/v1/feature-codes/dnd_on/", bad)
        assert r.status_code == 400, (bad, r.content)
        assert set(r.json()) == {"code", "message", "fields"}
    r = admin.patch("/api/v1/feature-codes/", {"dnd_on": {"code": "*79"}, "nope": {}})
    assert r.status_code == 400
    assert set(r.json()["fields"]) == {"nope"}
    for body in ([1, 2], "text", {"dnd_on": "*11"}):
        r = admin.patch("/api/v1/feature-codes/", body)
        assert r.status_code == 400, (body, r.content)
    assert admin.patch("/api/v1/feature-codes/teleport/", {"code": "*1"}).status_code == 404
    assert admin.get("/api/v1/feature-codes/teleport/").status_code == 404
    assert _codes(admin)["dnd_on"]["code"] == "*78"


def test_who_may_read_and_change_them(api, world):
    user = api(world.a_user, world.tenant_a)
    assert user.get("/api/v1/feature-codes/").status_code == 403
    assert user.post("/api/v1/feature-codes/reset/").status_code == 403
    other = api(world.b_admin, world.tenant_a)  # Beta's admin on Acme's host
    assert other.get("/api/v1/feature-codes/").status_code == 401
    assert api(None, world.tenant_a).get("/api/v1/feature-codes/").status_code == 401
