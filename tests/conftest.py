"""Shared fixtures: the platform and two tenants, created once per test run (per xdist worker).

Tenant A belongs to dealer "North" (under reseller "Top"); tenant B to dealer "South". Every API
test can therefore check that the other tenant's (and the other dealer's) caller gets 404.
"""

from dataclasses import dataclass

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from rest_framework.test import APIClient

PASSWORD = "Correct-Horse-42x"
SIP_PASSWORD = "Sip-Secret-Pass-77"


@dataclass
class World:
    public: object
    top_dealer: object
    north: object
    south: object
    tenant_a: object
    tenant_b: object
    sysadmin: object
    top_admin: object
    north_admin: object
    south_admin: object
    a_admin: object
    a_user: object
    b_admin: object


def _build_world() -> World:
    from dealers.actions import do_create_dealer
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension
    from tenants import actions
    from tenants.choices import Role

    public = actions.ensure_public_tenant()
    actions.ensure_template_schema()
    # A dealer's tenant and extension limits are totals for its subtree: Top keeps room
    # beside North's share for the sub-dealers tests add.
    top = do_create_dealer(
        name="Top Reseller", parent=None, actor=SYSTEM, max_tenants=50, max_extensions=500
    )
    north = do_create_dealer(name="North", parent=top, actor=SYSTEM, max_tenants=20)
    south = do_create_dealer(name="South", parent=None, actor=SYSTEM, max_tenants=20)
    tenant_a = actions.do_create_tenant(
        name="Acme",
        slug="acme",
        sip_domain="acme.test",
        web_host="acme.test",
        dealer=north,
        actor=SYSTEM,
        max_extensions=50,
    )
    tenant_b = actions.do_create_tenant(
        name="Beta",
        slug="beta",
        sip_domain="beta.test",
        web_host="beta.test",
        dealer=south,
        actor=SYSTEM,
        max_extensions=50,
    )

    def user(email, role, **kw):
        return actions.do_create_user(email=email, password=PASSWORD, role=role, actor=SYSTEM, **kw)

    world = World(
        public=public,
        top_dealer=top,
        north=north,
        south=south,
        tenant_a=tenant_a,
        tenant_b=tenant_b,
        sysadmin=user("root@provider.test", Role.SYSTEM_ADMIN),
        top_admin=user("top@dealers.test", Role.DEALER_ADMIN, dealer=top),
        north_admin=user("north@dealers.test", Role.DEALER_ADMIN, dealer=north),
        south_admin=user("south@dealers.test", Role.DEALER_ADMIN, dealer=south),
        a_admin=user("admin@acme.test", Role.TENANT_ADMIN, tenant=tenant_a),
        a_user=user("staff@acme.test", Role.TENANT_USER, tenant=tenant_a),
        b_admin=user("admin@beta.test", Role.TENANT_ADMIN, tenant=tenant_b),
    )
    for tenant, numbers in ((tenant_a, ("101", "102")), (tenant_b, ("201", "202"))):
        with schema_context(tenant.schema_name):
            connection.set_tenant(tenant)
            for n in numbers:
                do_create_extension(
                    number=n,
                    display_name=f"{tenant.name} {n}",
                    sip_password=SIP_PASSWORD,
                    actor=SYSTEM,
                )
    connection.set_schema_to_public()
    return world


# Tests that run a SIP engine share one xdist worker: Redis pub/sub channels (location,
# ban and snapshot announcements, engine control) are not per database, so engines of two
# workers would hear each other's announcements. The audio tests announce changed mailboxes
# (MWI), which an engine of another worker would turn into NOTIFYs to its test phones.
ENGINE_TESTS = (
    "tests/sip/",
    "tests/e2e/test_live_status.py",
    "tests/e2e/test_supervision.py",
    # Its module's stack (web, engine, Redis DB 10, soft.localhost) must exist once: two
    # workers' stacks would overwrite each other's snapshot (other SIP passwords: 401s).
    "tests/e2e/test_softphone.py",
    "tests/telephony/",
    "tests/audio/",
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(ENGINE_TESTS):
            item.add_marker(pytest.mark.xdist_group("sip-engine"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from django.core.cache import caches
    from django_redis import get_redis_connection

    # A new test database reuses primary keys: forget lock-outs, revocations and rate-limit
    # counters (raw keys, pbx.api.throttling) of earlier runs.
    caches["security"].delete_pattern("*")
    raw = get_redis_connection("default")
    for key in raw.scan_iter(match="throttle:*", count=1000):
        raw.delete(key)
    with django_db_blocker.unblock():
        pytest.world = _build_world()
    return


@pytest.fixture
def world(db) -> World:
    connection.set_schema_to_public()
    return pytest.world


def access_token(user, tenant=None) -> str:
    """An access token shaped as sign-in issues it (host family and sign-in session claims),
    for ``tenant``'s hosts — by default the user's own tenant's, or the provider's for system
    and dealer admins. No database work: WebSocket tests call this on their event loop."""
    import uuid

    from rest_framework_simplejwt.tokens import AccessToken

    from pbx.credentials import FAMILY_CLAIM, SESSION_CLAIM
    from pbx.security import host_family

    token = AccessToken.for_user(user)
    token[FAMILY_CLAIM] = host_family(tenant if tenant is not None else user.tenant)
    token[SESSION_CLAIM] = uuid.uuid4().hex
    return str(token)


class Api:
    """An API client bound to a host, signed in as a user (or anonymous). The token is issued
    for ``tenant``'s host family (default: the user's own), as sign-in on that host — or, for a
    provider-side admin on a tenant's host, ``POST /tenants/{id}/token/`` — would issue it."""

    def __init__(self, host: str, user=None, tenant=None):
        self.host = host
        self.client = APIClient(HTTP_HOST=host)
        if user is not None:
            token = access_token(user, tenant)
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def _call(self, method, path, data=None, **extra):
        response = getattr(self.client, method)(path, data, format="json", **extra)
        connection.set_schema_to_public()
        return response

    def get(self, path, data=None, **extra):
        return self._call("get", path, data, **extra)

    def post(self, path, data=None, **extra):
        return self._call("post", path, data, **extra)

    def patch(self, path, data=None, **extra):
        return self._call("patch", path, data, **extra)

    def put(self, path, data=None, **extra):
        return self._call("put", path, data, **extra)

    def delete(self, path, data=None, **extra):
        return self._call("delete", path, data, **extra)


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on: connecting to it is refused at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_of(tenant) -> str:
    return tenant.domains.get(is_primary=True).domain if not tenant.is_public else "localhost"


@pytest.fixture
def api(world):
    def make(user=None, tenant=None) -> Api:
        host = host_of(tenant) if tenant is not None else "localhost"
        return Api(host, user, tenant if tenant is not None else world.public)

    return make


@pytest.fixture
def in_tenant():
    """Run ORM code inside a tenant's schema: ``with in_tenant(t): ...``."""
    from contextlib import contextmanager

    @contextmanager
    def ctx(tenant):
        previous = connection.tenant
        connection.set_tenant(tenant)
        try:
            yield
        finally:
            connection.set_tenant(previous) if previous is not None else None
            connection.set_schema_to_public()

    return ctx


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """A channel layer object per test: channels_redis binds receivers to the event loop that
    first used it, and tests run their sockets on loops of their own."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def ws():
    """An event loop in a thread of its own for WebSocket tests (see tests/sockets.py)."""
    from tests.sockets import LoopThread

    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def pki(settings, tmp_path):
    """A test PKI (root -> intermediate -> leaves, ``tests.certkit``) that the deployment
    trusts for tenants' certificate uploads; what the uploads published for the engines (the
    ``sip:tls:hosts`` hash) is forgotten after."""
    from telephony.engine.store import client, redis_key
    from telephony.sip.contract import TLS_HOSTS
    from tests.certkit import TestPki, trust

    pki = TestPki()
    trust(settings, tmp_path, pki)
    yield pki
    client().delete(redis_key(TLS_HOSTS))
