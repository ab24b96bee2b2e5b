"""Tenant isolation as a security property: walk every list and detail path of the OpenAPI
schema as tenant A's admin (and as A's dealer) and prove no row of tenant B ever shows."""

import json
import re

import pytest
import yaml
from django.test import Client

pytestmark = pytest.mark.django_db

B_MARKERS = ("beta.test", "admin@beta.test", "Beta 201", "Beta 202", "South", "t_beta")


def _schema_paths():
    body = Client(HTTP_HOST="localhost").get("/api/v1/schema/").content
    return yaml.safe_load(body)["paths"]


def _b_ids(world, in_tenant):
    """Every primary key that exists on tenant B's side, to try against A's detail paths."""
    from pbx.models import AuditEntry
    from telephony.models import Extension
    from tenants.models import TenantRole

    with in_tenant(world.tenant_b):
        ext_ids = set(Extension.objects.values_list("pk", flat=True))
    return {
        "extensions": ext_ids,
        "users": {world.b_admin.pk},
        "roles": set(TenantRole.objects.filter(tenant=world.tenant_b).values_list("pk", flat=True)),
        "audit": set(
            AuditEntry.objects.filter(tenant=world.tenant_b).values_list("pk", flat=True)[:20]
        ),
        "tenants": {world.tenant_b.pk},
        "dealers": {world.south.pk},
    }


def _leaks(body: bytes) -> list[str]:
    text = body.decode()
    return [m for m in B_MARKERS if m in text]


@pytest.mark.parametrize(("who", "tenant_attr"), [("a_admin", "tenant_a"), ("north_admin", None)])
def test_openapi_walk_never_shows_tenant_b(api, world, in_tenant, who, tenant_attr):
    from pbx.audit import SYSTEM
    from tenants.actions import do_create_role

    do_create_role(world.tenant_b, name="B role", permissions=["extensions.view"], actor=SYSTEM)
    # Give B more rows than A so that some of B's ids do not exist in A at all.
    with in_tenant(world.tenant_b):
        from telephony.actions import do_create_extension

        for n in ("203", "204", "205"):
            do_create_extension(number=n, display_name=f"Beta {n}", actor=SYSTEM)
    b_ids = _b_ids(world, in_tenant)
    tenant = getattr(world, tenant_attr) if tenant_attr else None
    client = api(getattr(world, who), tenant)
    a_ext_ids = set()
    if tenant is not None:
        with in_tenant(world.tenant_a):
            from telephony.models import Extension

            a_ext_ids = set(Extension.objects.values_list("pk", flat=True))

    walked = 0
    for path, ops in _schema_paths().items():
        if "get" not in ops or path.startswith("/api/v1/auth/") or "schema" in path:
            continue
        resource = path.split("/")[3]
        if "{id}" not in path:
            r = client.get(path)
            walked += 1
            assert r.status_code in (200, 403, 404), (path, r.status_code)
            assert not _leaks(r.content), (path, _leaks(r.content))
            continue
        for pk in b_ids.get(resource, ()):
            r = client.get(path.replace("{id}", str(pk)))
            walked += 1
            assert not _leaks(r.content), (path, pk, _leaks(r.content))
            if resource == "extensions" and pk not in a_ext_ids or resource not in ("extensions",):
                assert r.status_code in (403, 404), (path, pk, r.status_code)
    assert walked >= 10


def test_search_filters_cannot_reach_other_tenant(api, world):
    client = api(world.a_admin, world.tenant_a)
    for query in ("?q=Beta", "?number=201", "?q=beta.test", "?search=Beta"):
        r = client.get("/api/v1/extensions/" + query)
        assert r.status_code == 200
        assert r.json()["items"] == [] or not _leaks(json.dumps(r.json()).encode())
    assert client.get("/api/v1/extensions/?number=201").json()["total"] == 0


def test_schema_and_docs_are_served(client):
    r = Client(HTTP_HOST="localhost").get("/api/v1/schema/")
    assert r.status_code == 200
    paths = yaml.safe_load(r.content)["paths"]
    assert {"/api/v1/extensions/", "/api/v1/tenants/", "/api/v1/auth/signin/"} <= set(paths)
    docs = Client(HTTP_HOST="localhost").get("/api/v1/docs/")
    assert docs.status_code == 200
    assert re.search(rb"swagger", docs.content, re.I)
