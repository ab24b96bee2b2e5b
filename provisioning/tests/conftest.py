"""Fixtures for the Django side of provisioning: two tenants of their own, their extensions,
admins, clients bound to host names, and helpers to add phones through the real actions.

The tenants (``phonea.test`` under a dealer, ``phoneb.test`` without) are created once per test
run next to the ``acme``/``beta`` world of ``tests/conftest.py`` (which this directory cannot
see), with different names so both may live in one database.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from tests.conftest import Api as _Api

PASSWORD = "Correct-Horse-42x"
SIP_PASSWORD = "Sip-Secret-Pass-77"
HOST_A = "phonea.test"


def sip_password(number: str) -> str:
    """Each extension's SIP password (letters for digits: the policy refuses the number)."""
    return f"{SIP_PASSWORD}-" + number.translate(str.maketrans("0123456789", "abcdefghij"))


HOST_B = "phoneb.test"

# Real User-Agent strings, one per vendor family (as the phones send them).
USER_AGENTS = {
    "yealink-t54w": "Yealink SIP-T54W 96.86.0.70 80:5e:c0:12:34:56",
    "yealink-w60b": "Yealink W60B 77.85.0.25",
    "fanvil-x6u": "Fanvil X6U 2.12.1 0c383e123456",
    "grandstream-gxp2170": "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82123456",
    "snom-d785": "Mozilla/4.0 (compatible; snomD785-SIP 10.1.54.13 1.1.3-s)",
    "snom-m900": "Snom-M900/530",
    "poly-vvx-450": "FileTransport PolycomVVX-VVX_450-UA/6.4.3.5003",
    "cisco-spa504g": "Cisco/SPA504G-7.6.2",
    "htek-uc926": "Htek UC926 2.0.4.4.46 001fc1123456",
}


@dataclass
class ProvWorld:
    dealer: object
    tenant_a: object
    tenant_b: object
    a_admin: object
    a_user: object
    b_admin: object


def _build() -> ProvWorld:
    from dealers.actions import do_create_dealer
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension
    from tenants import actions
    from tenants.choices import Role

    actions.ensure_public_tenant()
    actions.ensure_template_schema()
    dealer = do_create_dealer(name="Phone Reseller", parent=None, actor=SYSTEM, max_tenants=5)
    tenant_a = actions.do_create_tenant(
        name="Phones A",
        slug="phonea",
        sip_domain="sip.phonea.test",
        web_host=HOST_A,
        dealer=dealer,
        actor=SYSTEM,
        max_extensions=20,
        time_zone="Europe/Berlin",
        language="de",
    )
    tenant_b = actions.do_create_tenant(
        name="Phones B", slug="phoneb", sip_domain="sip.phoneb.test", web_host=HOST_B, actor=SYSTEM
    )

    def user(email, role, tenant):
        return actions.do_create_user(
            email=email, password=PASSWORD, role=role, tenant=tenant, actor=SYSTEM
        )

    world = ProvWorld(
        dealer=dealer,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        a_admin=user("admin@phonea.test", Role.TENANT_ADMIN, tenant_a),
        a_user=user("staff@phonea.test", Role.TENANT_USER, tenant_a),
        b_admin=user("admin@phoneb.test", Role.TENANT_ADMIN, tenant_b),
    )
    for tenant, numbers in ((tenant_a, ("301", "302", "303")), (tenant_b, ("401", "402"))):
        with schema_context(tenant.schema_name):
            connection.set_tenant(tenant)
            for n in numbers:
                do_create_extension(
                    number=n,
                    display_name=f"{tenant.name} {n}",
                    sip_password=sip_password(n),
                    actor=SYSTEM,
                )
    connection.set_schema_to_public()
    return world


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        if not hasattr(pytest, "prov_world"):
            pytest.prov_world = _build()


@pytest.fixture
def pw(db) -> ProvWorld:
    connection.set_schema_to_public()
    return pytest.prov_world


@pytest.fixture
def in_tenant():
    """``with in_tenant(t): ...`` runs ORM code (and actions) inside a tenant's schema."""

    @contextmanager
    def ctx(tenant) -> Iterator[None]:
        connection.set_tenant(tenant)
        try:
            yield
        finally:
            connection.set_schema_to_public()

    return ctx


class Phone:
    """A phone fetching over HTTP: Django's test client on a host, from an address."""

    def __init__(self, host: str, address: str = "192.0.2.10", user_agent: str = "") -> None:
        self.client = Client(HTTP_HOST=host, REMOTE_ADDR=address)
        self.user_agent = user_agent

    def get(self, path: str, *, auth: tuple[str, str] | None = None, **extra):
        if self.user_agent:
            extra.setdefault("HTTP_USER_AGENT", self.user_agent)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            extra["HTTP_AUTHORIZATION"] = f"Basic {token}"
        response = self.client.get(path, **extra)
        connection.set_schema_to_public()
        return response


@pytest.fixture
def phone(pw):
    def make(host: str = HOST_A, address: str = "192.0.2.10", user_agent: str = "") -> Phone:
        return Phone(host, address, user_agent)

    return make


# The REST client of the project's tests (a host, a bearer token), re-exported for test_api.
Api = _Api


@pytest.fixture
def api(pw):
    def make(user=None, host: str = HOST_A) -> Api:
        return Api(host, user)

    return make


@pytest.fixture
def add_device(pw, in_tenant):
    """Add a phone through ``do_add_device`` in a tenant (default tenant A)."""
    from pbx.audit import SYSTEM
    from provisioning.actions import do_add_device

    def make(mac: str, model_id: str, lines=("301",), tenant=None, **fields):
        with in_tenant(tenant or pw.tenant_a):
            return do_add_device(
                mac=mac,
                model_id=model_id,
                lines=[{"index": i, "extension": n} for i, n in enumerate(lines, start=1)],
                actor=SYSTEM,
                **fields,
            )

    return make


def _clear_bans() -> None:
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    keys = list(client.scan_iter("prov:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _no_bans(request):
    """Failure counters live in Redis, outside the test transaction: each test starts clean.

    Only for tests that use the database (the pure vendor tests need no Redis).
    """
    uses_db = "db" in request.fixturenames or "transactional_db" in request.fixturenames
    if uses_db:
        _clear_bans()
    yield
    if uses_db:
        _clear_bans()


@pytest.fixture
def share_connection():
    """Let a server thread use this test's database connection (and so see its rows).

    The TFTP server and PnP responder call Django from executor threads; rows a test writes
    live in its open transaction, visible only on its own connection. The test thread is
    blocked in the client meanwhile, so the connection is never used by two threads at once.
    """
    from django.db import connections

    conn = connections["default"]
    conn.inc_thread_sharing()

    def wrap(func):
        def call(*args):
            connections["default"] = conn
            try:
                return func(*args)
            finally:
                connection.set_schema_to_public()

        return call

    yield wrap
    conn.dec_thread_sharing()
