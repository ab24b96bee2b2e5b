"""Tenant isolation as a security property: tenant B (dealer South) is seeded with one row of
every resource the OpenAPI schema has a detail path for; tenant A's admin and A's dealer then
try each of B's ids on every detail path with every method the schema lists (read, change,
delete and the custom actions) and get exactly 404 with the API's error body, find none of
B's ids in any list, and leave B's rows as they were. A detail path with no seeded row fails
the walk: a new resource needs a seeder in ``tests/api/resources.py``."""

import functools
import json
import re

import pytest
import yaml
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context
from drf_spectacular.generators import SchemaGenerator

from tests.api.resources import CHANGES, SEEDERS, Owner, delete_body

pytestmark = pytest.mark.django_db

PREFIX = "/api/v1/"
METHODS = ("get", "put", "patch", "delete", "post")
B_MARKERS = ("beta.test", "admin@beta.test", "Beta 201", "Beta 202", "South", "t_beta")

# Detail paths that name no tenant's or dealer's object, so there is nothing of B's to try.
NOT_OWNED = {
    f"{PREFIX}phone-models/{{id}}/": "the shipped phone catalogue, the same for every tenant",
    f"{PREFIX}sip-bans/{{ip}}/": "the engines' bans, of no tenant or dealer (system admin only)",
    f"{PREFIX}brand/{{kind}}/": "the host's own logo or favicon, not an object id",
    f"{PREFIX}feature-codes/{{feature}}/": "a feature's name: every tenant has its own code",
}
# Lists that live on the provider's host only (404 on a tenant's).
PROVIDER_ONLY = {
    "tenants",
    "dealers",
    "platform-users",
    "brands",
    "sip-bans",
    "rate-tables",
    "rates",
    "billing-accounts",
}
# What a dealer admin lists on the provider's host; the SIP bans are the system admin's (403
# whatever the id), the tenant lists are on tenants' hosts (404).
DEALER_LISTS = {
    *("tenants", "dealers", "platform-users", "brands", "audit", "trunks", "numbers"),
    *("rate-tables", "rates"),
    "billing-accounts",
}
SYSTEM_ONLY = {"sip-bans"}


@functools.cache
def _schema_paths() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)["paths"]


def _resource(path: str) -> str:
    return path.removeprefix(PREFIX).split("/")[0]


def _detail_paths() -> dict[str, list[str]]:
    """Every path that names an object, with its methods."""
    return {
        path: [m for m in METHODS if m in ops]
        for path, ops in _schema_paths().items()
        if "{" in path and path not in NOT_OWNED
    }


def _list_paths() -> dict[str, str]:
    """Every list the router serves, with the field that carries its items' ids."""
    from pbx.api.urls import router

    lists = {
        f"{PREFIX}{prefix}/": "id" if viewset.lookup_field == "pk" else viewset.lookup_field
        for prefix, viewset, _ in router.registry
        if hasattr(viewset, "list")
    }
    assert set(lists) <= set(_schema_paths())
    return lists


def _other_reads() -> list[str]:
    """The GET paths that are neither a list nor an object: the caller's own account, company,
    brand, live state and call statistics."""
    return [
        path
        for path, ops in _schema_paths().items()
        if "get" in ops and "{" not in path and path not in _list_paths()
    ]


def _tenant_side_models():
    from audio.models import Mailbox, MusicClass, Prompt, Recording, VoicemailMessage
    from callcenter.models import Queue
    from events.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
    from provisioning.models import CustomTemplate, Device
    from routing.models import (
        BlacklistEntry,
        Disa,
        EmergencyNumber,
        Holiday,
        InboundRule,
        IvrMenu,
        OutboundRule,
    )
    from telephony.models import Cdr, Extension, PagingGroup, PickupGroup, RingGroup, UserGroup

    return (
        *(Extension, Device, CustomTemplate, WebhookEndpoint, OutboxEvent, WebhookDelivery, Cdr),
        *(RingGroup, PagingGroup, PickupGroup),
        *(InboundRule, OutboundRule, EmergencyNumber, BlacklistEntry, Holiday, IvrMenu, Disa),
        *(Prompt, MusicClass, Mailbox, VoicemailMessage, Recording),
        UserGroup,
        Queue,
    )


def _b_ids_beyond_a(world) -> None:
    """Tenant schemas number their rows independently, so B's row 7 may well be A's row 7 (and
    A's host rightly shows it). Move B's numbering past A's so that any of B's ids that A's
    host answers can only be B's row."""

    def last_id(cursor, schema, table) -> tuple[str, int]:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f'"{schema}".{table}'])
        sequence = cursor.fetchone()[0]
        cursor.execute(
            "SELECT COALESCE(last_value, 0) FROM pg_sequences"
            " WHERE schemaname = %s AND sequencename = %s",
            [schema, sequence.rsplit(".", 1)[1].strip('"')],
        )
        return sequence, cursor.fetchone()[0]

    with connection.cursor() as cursor:
        for model in _tenant_side_models():
            table = model._meta.db_table
            _, a_last = last_id(cursor, world.tenant_a.schema_name, table)
            b_sequence, b_last = last_id(cursor, world.tenant_b.schema_name, table)
            cursor.execute("SELECT setval(%s, %s)", [b_sequence, max(a_last, b_last) + 1000])


def _seed_b(world, seeds, resources: set[str]) -> dict:
    _b_ids_beyond_a(world)
    rows = {resource: seeds(resource, Owner(world.tenant_b, world.south)) for resource in resources}
    # Every tenant-side row had its numbering moved, and none of its ids is a row of A's.
    with tenant_context(world.tenant_a):
        for resource, row in rows.items():
            if row.tenant is not None:
                assert row.model in _tenant_side_models(), resource
                assert not row.model.objects.filter(pk=row.id).exists(), resource
    return rows


def _body(resource: str, action: str, method: str, rows: dict) -> dict | None:
    """A body that a permitted caller's request would act on: a bug then shows as a change."""
    if method in ("put", "patch"):
        return CHANGES[resource]
    if method == "delete":
        return delete_body(resource, rows[resource])
    return {
        "replay": {"from_event_id": int(rows["events"].id)},
        "preview": {"device": int(rows["devices"].id)},
    }.get(action)


def _all_items(client, path: str, status: int) -> list[dict]:
    """Every item of a list (every page); none when the caller is refused it (``status``)."""
    r = client.get(path, {"limit": 500})
    assert r.status_code == status, (path, r.status_code)
    if status != 200:
        assert set(r.json()) == {"code", "message", "fields"}, (path, r.content)
        return []
    assert not _leaks(r.content), (path, _leaks(r.content))
    body = r.json()
    items = list(body["items"])
    while body.get("next") or len(items) < body.get("total", 0):
        r = (
            client.get(body["next"])
            if body.get("next")
            else client.get(path, {"limit": 500, "offset": len(items)})
        )
        body = r.json()
        assert body["items"], path
        items += body["items"]
    return items


def _leaks(body: bytes) -> list[str]:
    text = body.decode()
    return [m for m in B_MARKERS if m in text]


@pytest.mark.parametrize(
    ("who", "host"),
    [("a_admin", "tenant_a"), ("north_admin", None)],
    ids=["tenant-admin", "dealer"],
)
def test_no_id_of_tenant_b_answers_on_any_path(api, world, seeds, who, host):
    detail_paths = _detail_paths()
    unseeded = sorted(p for p in detail_paths if _resource(p) not in SEEDERS)
    assert not unseeded, f"no seeder in tests/api/resources.py for {unseeded}"
    assert set(NOT_OWNED) <= set(_schema_paths()), "an exemption names a path that is gone"
    rows = _seed_b(world, seeds, {_resource(p) for p in detail_paths})
    before = {resource: row.state() for resource, row in rows.items()}
    client = api(getattr(world, who), getattr(world, host) if host else None)

    tried = 0
    for path, methods in detail_paths.items():
        resource = _resource(path)
        url = re.sub(r"\{\w+\}", rows[resource].id, path)
        action = "" if path.endswith("}/") else path.rstrip("/").rsplit("/", 1)[1]
        for method in methods:
            r = getattr(client, method)(url, _body(resource, action, method, rows))
            tried += 1
            assert r.status_code == 404, (method, url, r.status_code, r.content)
            body = r.json()
            assert body["code"] == "NOT_FOUND", (method, url, body)
            assert set(body) == {"code", "message", "fields"}, (method, url, body)
    assert tried == sum(len(m) for m in detail_paths.values()) > 50

    lists = {_resource(p) for p in _list_paths()}
    listed = DEALER_LISTS if host is None else lists - PROVIDER_ONLY
    assert lists >= PROVIDER_ONLY | DEALER_LISTS | SYSTEM_ONLY  # no stale name
    assert listed
    for path, id_field in _list_paths().items():
        resource = _resource(path)
        refused = 403 if host is None and resource in SYSTEM_ONLY else 404
        items = _all_items(client, path, 200 if resource in listed else refused)
        if resource in rows:
            ids = {str(item[id_field]) for item in items}
            assert rows[resource].id not in ids, (path, rows[resource].id)
    others = _other_reads()
    assert len(others) >= 5, others
    for path in others:
        r = client.get(path)
        assert r.status_code in (200, 404), (path, r.status_code)
        assert not _leaks(r.content), (path, _leaks(r.content))

    assert {resource: row.state() for resource, row in rows.items()} == before


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
