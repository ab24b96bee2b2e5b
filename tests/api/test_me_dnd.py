"""``/api/v1/me/dnd/``: the signed-in user's own do-not-disturb (the web softphone's toggle).
It reads and sets the user's own extension only, through the audited action, and refuses bad
input and strangers without changing anything."""

import pytest
from django_tenants.utils import tenant_context

from pbx.models import AuditEntry
from telephony.models import Extension

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/dnd/"


@pytest.fixture
def staff_is_102(world):
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=world.a_user.pk, dnd=False)
    return "102"


def _dnd(tenant, number: str) -> bool:
    with tenant_context(tenant):
        return Extension.objects.get(number=number).dnd


def test_a_user_reads_and_sets_its_own_dnd(api, world, staff_is_102):
    me = api(world.a_user, world.tenant_a)
    assert me.get(URL).json() == {"extension": "102", "dnd": False}
    r = me.put(URL, {"dnd": True})
    assert r.status_code == 200, r.content
    assert r.json() == {"extension": "102", "dnd": True}
    assert _dnd(world.tenant_a, "102") is True
    # Only the user's own extension changed.
    assert _dnd(world.tenant_a, "101") is False
    entry = AuditEntry.objects.filter(action="extension.update").order_by("-id").first()
    assert entry is not None
    assert entry.tenant_id == world.tenant_a.pk
    assert entry.actor_id == world.a_user.pk
    assert entry.changes["dnd"] == [False, True]
    assert me.get(URL).json()["dnd"] is True
    assert me.put(URL, {"dnd": False}).json()["dnd"] is False
    assert _dnd(world.tenant_a, "102") is False


def test_bad_input_is_refused_and_changes_nothing(api, world, staff_is_102):
    me = api(world.a_user, world.tenant_a)
    for body in ({"dnd": "maybe"}, {}, {"dnd": None}):
        r = me.put(URL, body)
        assert r.status_code == 400, (body, r.content)
        assert r.json()["code"] == "VALIDATION_ERROR"
        assert "dnd" in r.json()["fields"]
    assert _dnd(world.tenant_a, "102") is False


def test_no_extension_is_404(api, world, staff_is_102):
    with tenant_context(world.tenant_a):
        Extension.objects.filter(number="102").update(user_id=None)
    r = api(world.a_user, world.tenant_a).put(URL, {"dnd": True})
    assert r.status_code == 404
    assert r.json()["code"] == "NOT_FOUND"


def test_strangers_touch_nothing(api, world, staff_is_102):
    assert api(None, world.tenant_a).put(URL, {"dnd": True}).status_code in (401, 403)
    # Tenant A's user on tenant B's host reads and sets nothing there.
    foreign = api(world.a_user, world.tenant_b)
    assert foreign.get(URL).status_code in (401, 403, 404)
    assert foreign.put(URL, {"dnd": True}).status_code in (401, 403, 404)
    with tenant_context(world.tenant_b):
        assert not Extension.objects.filter(dnd=True).exists()
    assert _dnd(world.tenant_a, "102") is False
