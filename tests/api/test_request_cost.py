"""What an API request costs, and the per-process caches that keep it cheap staying correct.

A list page is two SQL queries (the count and the page) plus the search path: the user behind
the token comes from a per-process cache, the host's tenant from the host table. Pinned here
so that it cannot creep back. The cached user must never outlive a change: a deactivation,
a role change or a sign-out is refused or seen on the very next request.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pbx.audit import SYSTEM
from tests.conftest import Api, host_of

pytestmark = pytest.mark.django_db


def _sql(api, path):
    with CaptureQueriesContext(connection) as ctx:
        response = api.get(path)
    assert response.status_code == 200, response.content
    return [q["sql"] for q in ctx.captured_queries]


def test_list_and_detail_query_counts(world, settings, in_tenant):
    from telephony.models import Extension

    settings.PBX_HOST_CACHE_SECONDS = 60  # as served: the host table cached in the process
    api = Api(host_of(world.tenant_a), world.a_admin)
    with in_tenant(world.tenant_a):
        ext = Extension.objects.order_by("id").first()
    api.get("/api/v1/extensions/")  # warm: host table, user
    listing = _sql(api, "/api/v1/extensions/")
    detail = _sql(api, f"/api/v1/extensions/{ext.pk}/")
    real = [q for q in listing if not q.startswith("SET search_path")]
    assert len(real) == 2, listing  # COUNT(*) and the page
    assert real[0].startswith("SELECT COUNT(*)")
    assert len(listing) <= 3
    assert len([q for q in detail if not q.startswith("SET search_path")]) == 1, detail
    assert not any("tenants_user" in q for q in listing + detail)


def test_a_deactivated_user_is_refused_at_once(world):
    from tenants.actions import do_update_user

    api = Api(host_of(world.tenant_a), world.a_admin)
    assert api.get("/api/v1/extensions/").status_code == 200  # cached now
    do_update_user(world.a_admin, is_active=False, actor=SYSTEM)
    assert api.get("/api/v1/extensions/").status_code == 401
    do_update_user(world.a_admin, is_active=True, actor=SYSTEM)
    assert api.get("/api/v1/extensions/").status_code == 200


def test_a_role_change_is_seen_at_once(world):
    from tenants.actions import do_update_user
    from tenants.choices import Role

    api = Api(host_of(world.tenant_a), world.a_user)
    assert api.get("/api/v1/extensions/").status_code in (200, 403)
    before = api.post("/api/v1/extensions/", {"number": "177", "display_name": "X"}).status_code
    assert before == 403
    do_update_user(world.a_user, role=Role.TENANT_ADMIN, actor=SYSTEM)
    after = api.post("/api/v1/extensions/", {"number": "177", "display_name": "X"})
    assert after.status_code == 201, after.content


def test_a_deleted_user_is_refused_at_once(world):
    from tenants.actions import do_delete_user

    api = Api(host_of(world.tenant_a), world.a_user)
    assert api.get("/api/v1/extensions/").status_code in (200, 403)
    do_delete_user(world.a_user, actor=SYSTEM)
    assert api.get("/api/v1/extensions/").status_code == 401


def test_each_request_gets_its_own_user_and_fields(world):
    from telephony.api.serializers import ExtensionSerializer
    from tenants.user_cache import get_user

    first, second = get_user(world.a_admin.pk), get_user(world.a_admin.pk)
    assert first == second
    assert first is not second
    assert first._state is not second._state  # no related object carried between requests
    # The field set is built once per class, copied per serializer: a change to one
    # serializer's field (the detail makes "number" read-only) stays there.
    detail = ExtensionSerializer(instance=object())
    assert detail.fields["number"].read_only
    fresh = ExtensionSerializer()
    assert not fresh.fields["number"].read_only
    assert fresh.fields["number"] is not detail.fields["number"]
    assert fresh.fields["allowed_transports"].child is not detail.fields["allowed_transports"].child


def test_filters_still_filter_with_the_cached_filterset_class(world, in_tenant):
    from pbx.api.filters import FilterBackend
    from telephony.api.views import ExtensionViewSet
    from telephony.models import Extension

    api = Api(host_of(world.tenant_a), world.a_admin)
    with in_tenant(world.tenant_a):
        numbers = sorted(Extension.objects.values_list("number", flat=True))
        first = FilterBackend().get_filterset_class(ExtensionViewSet(), Extension.objects.all())
        again = FilterBackend().get_filterset_class(ExtensionViewSet(), Extension.objects.all())
    assert first is again
    for _ in range(2):
        body = api.get("/api/v1/extensions/", {"number": numbers[0]}).json()
        assert [e["number"] for e in body["items"]] == [numbers[0]]
        assert body["total"] == 1
    with in_tenant(world.tenant_a):
        from pbx.audit import SYSTEM
        from telephony.actions import do_update_extension

        do_update_extension(Extension.objects.get(number=numbers[-1]), enabled=False, actor=SYSTEM)
    disabled = api.get("/api/v1/extensions/", {"enabled": "false"}).json()
    assert [(e["number"], e["enabled"]) for e in disabled["items"]] == [(numbers[-1], False)]
