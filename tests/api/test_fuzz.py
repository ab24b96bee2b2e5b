"""Every operation of the API's OpenAPI schema, fuzzed as each role: no answer is ever a 5xx.

Schemathesis generates requests from the schema (valid ones and ones that break it: wrong types,
missing fields, odd strings) and sends each of them, in process, to the real Django WSGI
application on the test database, as five callers: the system admin and a dealer admin on the
provider's host, Acme's tenant admin and plain user on ``acme.test``, and an anonymous caller.
Each request is sent twice where the path names an object: with the generated id, and with the
id of a real object of that caller's host (a generated id is nearly always a 404 that stops
before any validation). A 500 from any of them fails the test with the request that caused it,
and so does a 4xx without the ``{"code", "message", "fields"}`` body.
Two fixed sweeps add what generation from a schema rarely produces: bodies of the wrong shape
(array, null, scalar, 40 levels deep) and query values at the edges (huge numbers, moments
outside UTC, junk cursors).

One pytest test per operation: each runs in its own rolled-back transaction with fresh tokens,
so a destructive call (a delete, a suspension, a sign-out revoking the caller's token) cannot
spoil the operations that follow; it only limits what later examples of the same operation reach.
Nothing is excluded. Examples are few and derandomized, so the run is short and repeatable.
"""

import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from pbx.models import AuditEntry
from tests.conftest import access_token

# A deeper run: PBX_FUZZ_EXAMPLES=200 make test (or pytest tests/api/test_fuzz.py).
MAX_EXAMPLES = int(os.environ.get("PBX_FUZZ_EXAMPLES", "5"))


def _schema():
    document = SchemaGenerator().get_schema(request=None, public=True)
    # The coverage phase (every boundary value of every field, built while collecting) makes
    # ten thousand cases here; the fuzzing phase's few examples per operation are the budget.
    config = schemathesis.Config.from_dict(
        {"phases": {"coverage": {"enabled": False}}, "generation": {"mode": "all"}}
    )
    return schemathesis.openapi.from_dict(document, config=config)


schema = _schema()
app = WSGIHandler()


def _acme_objects(world) -> dict[str, str]:
    """One object of each tenant resource in Acme, so generated requests also reach real rows
    (a generated id is nearly always a 404 that stops before any validation)."""
    from events.actions import do_create_webhook
    from events.models import OutboxEvent
    from pbx.audit import SYSTEM
    from provisioning.actions import do_add_device, do_save_custom_template
    from telephony.models import Cdr, Extension
    from tenants.actions import do_create_role

    connection.set_tenant(world.tenant_a)
    try:
        device = do_add_device(mac="00:15:65:0f:0f:0f", model_id="yealink-t54w", actor=SYSTEM)
        template = do_save_custom_template(
            model_id="yealink-t54w", file_pattern="{mac}.cfg", actor=SYSTEM
        )
        webhook, _ = do_create_webhook(
            url="https://93.184.215.14/hook", event_types=["calls"], actor=SYSTEM
        )
        cdr = Cdr.objects.create(
            call_id="fuzz-1",
            started_at=timezone.now(),
            status="answered",
            caller_number="101",
            callee_number="102",
        )
        event = OutboxEvent.objects.order_by("id").first()
        ids = {
            "extensions": Extension.objects.get(number="101").pk,
            "devices": device.pk,
            "phone-templates": template.pk,
            "phone-models": "yealink-t54w",
            "webhooks": webhook.pk,
            "cdrs": cdr.pk,
            "events": event.pk if event else None,
            "users": world.a_user.pk,
        }
        ids.update(_acme_routing(world))
    finally:
        connection.set_schema_to_public()
    ids["roles"] = do_create_role(
        world.tenant_a, name="Fuzzed", permissions=["extensions.view"], actor=SYSTEM
    ).pk
    ids["audit"] = AuditEntry.objects.filter(tenant=world.tenant_a).order_by("id").first().pk
    return {name: str(pk) for name, pk in ids.items() if pk is not None}


def _acme_routing(world) -> dict[str, int]:
    """Acme's trunk (shared with it), DID and one row of each routing kind (in its schema)."""
    import datetime

    from pbx.audit import SYSTEM
    from routing.actions import do_create
    from trunks.actions import do_add_numbers, do_create_trunk

    trunk = do_create_trunk(
        actor=SYSTEM,
        fields={"name": "Fuzz", "kind": "ip", "host": "sip.fuzz.test", "addresses": ["192.0.2.5"]},
        shared_with=[world.tenant_a],
    )
    (did,) = do_add_numbers(actor=SYSTEM, number="+12125550142", tenant=world.tenant_a)
    rows = {
        "inbound-rules": ("inbound", {"name": "Fuzz", "number": did.number,
                                      "in_hours": {"kind": "extension", "target": "101"}}),
        "outbound-rules": ("outbound", {"name": "Fuzz", "prefix": "9", "trunks": [trunk.pk]}),
        "emergency-numbers": ("emergency", {"number": "911"}),
        "blacklist": ("blacklist", {"number": "+12025550100"}),
        "holidays": ("holiday", {"name": "Fuzz", "start": datetime.date(2027, 1, 1)}),
    }  # fmt: skip
    ids = {name: do_create(kind, actor=SYSTEM, fields=f).pk for name, (kind, f) in rows.items()}
    from routing.ivr import do_create_ivr

    menu = do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Fuzz", "options": [
        {"digit": "1", "target": {"kind": "extension", "target": "101"}}]})  # fmt: skip
    from routing.disa import do_create_disa

    entry = do_create_disa(actor=SYSTEM, fields={"name": "Fuzz", "pin": "4826", "extension": "101"})
    return {**ids, "trunks": trunk.pk, "numbers": did.pk, "ivrs": menu.pk, "disa": entry.pk,
            "feature-codes": "dnd_on"}  # fmt: skip


def _provider_objects(world) -> dict[str, str]:
    from branding.actions import do_create_brand
    from pbx.audit import SYSTEM
    from trunks.actions import do_add_numbers

    brand = do_create_brand(dealer=world.north, actor=SYSTEM, product_name="North Phones")
    ids = {
        "tenants": world.tenant_a.pk,
        "dealers": world.north.pk,
        "brands": brand.pk,
        "brand": "logo",
        "audit": AuditEntry.objects.order_by("id").first().pk,
        "trunks": _provider_trunk().pk,
        "numbers": do_add_numbers(actor=SYSTEM, number="+12125550143")[0].pk,
    }
    return {name: str(pk) for name, pk in ids.items()}


def _provider_trunk():
    from pbx.audit import SYSTEM
    from trunks.actions import do_create_trunk

    fields = {"name": "Fuzz Reg", "kind": "register", "host": "sip.fuzz-reg.test",
              "username": "fuzz1"}  # fmt: skip
    return do_create_trunk(actor=SYSTEM, fields=fields, password="fuzz-pass-1")


@pytest.fixture
def callers(world):
    """(name, base URL, headers, real ids of that host) for each role; tokens and objects are
    fresh for every operation."""

    def bearer(user):
        return {"Authorization": f"Bearer {access_token(user)}"}

    provider, acme = _provider_objects(world), _acme_objects(world)
    callers = [
        ("system admin", "http://localhost", bearer(world.sysadmin), provider),
        ("dealer admin", "http://localhost", bearer(world.north_admin), provider),
        ("tenant admin", "http://acme.test", bearer(world.a_admin), acme),
        ("tenant user", "http://acme.test", bearer(world.a_user), acme),
        ("anonymous", "http://acme.test", {}, acme),
    ]
    # Each signed-in caller really is signed in on its host: a fuzz run whose tokens were all
    # refused would only ever test the 401 path.
    for name, base_url, headers, _ in callers[:-1]:
        client = Client(
            HTTP_HOST=base_url.removeprefix("http://"),
            **{"HTTP_" + k.upper(): v for k, v in headers.items()},
        )
        assert client.get("/api/v1/auth/me/").status_code == 200, name
        connection.set_schema_to_public()
    # Django's test client does the same: the handler must not close the test's connection
    # (and with it the transaction that keeps the test database clean) around each request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield callers
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _send(case, name, base_url, headers):
    response = case.call(base_url=base_url, headers=headers, app=app)
    connection.set_schema_to_public()
    assert response.status_code < 500, (
        f"{name}: {case.method} {response.request.url} -> {response.status_code}\n"
        f"{response.request.body!r:.500}\n{response.text[:500]}"
    )
    case.validate_response(response, checks=[not_a_server_error])
    _assert_error_body(response, f"{name}: {case.method} {response.request.url}")


def _assert_error_body(response, label: str) -> None:
    """Every refusal, whichever layer answers it, carries the one error body."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    assert isinstance(body, dict), f"{label} -> {response.status_code} without the error body"
    assert set(body) == {"code", "message", "fields"}, f"{label} -> {response.status_code}: {body}"


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=list(HealthCheck),
)
@pytest.mark.django_db
def test_no_server_error(case, callers):
    resource = case.operation.path.removeprefix("/api/v1/").split("/")[0]
    generated = dict(case.path_parameters or {})
    for name, base_url, headers, known in callers:
        case.path_parameters = dict(generated)
        _send(case, name, base_url, headers)
        if generated and resource in known:
            # The same request on a real object of the caller's host.
            key = "kind" if resource == "brand" else next(iter(generated))
            case.path_parameters = {**generated, key: known[resource]}
            _send(case, f"{name} (existing {resource})", base_url, headers)


# Bodies of the wrong shape altogether, which generation from the schema rarely produces: every
# operation that takes a body gets each of them, as the callers that get past the permission
# checks, on a generated and a real id.
ODD_BODIES = ["[]", "null", '"text"', "42", '{"": null}', "[" * 40 + "]" * 40]
WITH_BODY = [
    operation.ok()
    for operation in schema.get_all_operations()
    if operation.ok().method.upper() in ("POST", "PUT", "PATCH", "DELETE")
]


@pytest.mark.parametrize(
    "operation", WITH_BODY, ids=[f"{op.method.upper()} {op.path}" for op in WITH_BODY]
)
@pytest.mark.django_db
def test_bodies_of_the_wrong_shape(operation, callers):
    resource = operation.path.removeprefix("/api/v1/").split("/")[0]
    params = [p.name for p in operation.path_parameters]
    for name, base_url, headers, known in callers[::2]:  # system/tenant admin, anonymous
        host = base_url.removeprefix("http://")
        paths = [operation.path.format(**dict.fromkeys(params, "1"))]
        if params and resource in known:
            paths.append(operation.path.format(**dict.fromkeys(params, known[resource])))
        client = Client(HTTP_HOST=host, **{"HTTP_" + k.upper(): v for k, v in headers.items()})
        for path in paths:
            for body in ODD_BODIES:
                response = client.generic(
                    operation.method.upper(), path, body, content_type="application/json"
                )
                connection.set_schema_to_public()
                assert response.status_code < 500, (
                    f"{name}: {operation.method.upper()} {path} {body[:20]!r} -> "
                    f"{response.status_code}\n{response.content[:500]!r}"
                )
                _assert_error_body(response, f"{name}: {operation.method.upper()} {path}")


# Query values at the edges that generation rarely hits: huge numbers, moments outside UTC,
# offsets PostgreSQL refuses, bytes that are not UTF-8, and junk cursors.
ODD_VALUES = [
    "9" * 40,
    "-1",
    "1e999",
    "0001-01-01T00:00:00+01:00",
    "2026-01-01T00:00:00+18:17",
    "%ff%fe",
    "bz0wJnI9MCZwPXg%3D",  # a cursor whose position is "x"
]
WITH_QUERY = [
    operation.ok()
    for operation in schema.get_all_operations()
    if operation.ok().method.upper() == "GET" and len(operation.ok().query)
]


@pytest.mark.parametrize(
    "operation", WITH_QUERY, ids=[f"{op.method.upper()} {op.path}" for op in WITH_QUERY]
)
@pytest.mark.django_db
def test_query_values_at_the_edges(operation, callers):
    names = [p.name for p in operation.query]
    for name, base_url, headers, _ in callers[::2]:  # system admin, tenant admin, anonymous
        client = Client(
            HTTP_HOST=base_url.removeprefix("http://"),
            **{"HTTP_" + k.upper(): v for k, v in headers.items()},
        )
        path = operation.path.format(
            **dict.fromkeys([p.name for p in operation.path_parameters], "1")
        )
        for param in names:
            for value in ODD_VALUES:
                response = client.get(f"{path}?{param}={value}")
                connection.set_schema_to_public()
                assert response.status_code < 500, (
                    f"{name}: GET {path}?{param}={value} -> {response.status_code}\n"
                    f"{response.content[:500]!r}"
                )
                _assert_error_body(response, f"{name}: GET {path}?{param}={value}")
