"""Portal fixtures: a Django test client bound to a host name, optionally signed in."""

import pytest
from django.db import connection
from django.test import Client

#: The web password of the ``me`` fixture's user.
SELF_SERVICE_PASSWORD = "Correct-Horse-42x"


def host_of(tenant) -> str:
    return tenant.domains.get(is_primary=True).domain


class Portal:
    """A browser-like client on one host. Every call resets the connection to the public schema
    afterwards (the tenant middleware leaves it on the host's schema)."""

    def __init__(self, host: str, user=None, *, enforce_csrf_checks: bool = False):
        self.host = host
        self.client = Client(HTTP_HOST=host, enforce_csrf_checks=enforce_csrf_checks)
        if user is not None:
            self.client.force_login(user, backend="tenants.auth.HostScopedBackend")

    def _call(self, method, path, data=None, **extra):
        response = getattr(self.client, method)(path, data, **extra)
        connection.set_schema_to_public()
        return response

    def get(self, path, data=None, **extra):
        return self._call("get", path, data, **extra)

    def post(self, path, data=None, **extra):
        return self._call("post", path, data, **extra)


@pytest.fixture
def portal(world):
    def make(user=None, tenant=None, **kwargs) -> Portal:
        return Portal(host_of(tenant) if tenant is not None else "localhost", user, **kwargs)

    return make


@pytest.fixture
def rds():
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def live(rds, world):
    """The fan-out on a private stream, with both tenants' routing snapshots published and a
    clean live state: ``live.add(type, **fields)`` writes an engine entry, ``live.drain()``
    handles everything written so far."""
    from events.fanout import Fanout
    from telephony.engine.snapshots import publish_tenant
    from tests.portal.calls_helpers import stream_writer

    def wipe():
        for pattern in ("live:*", "sip:calls:*", "sip:ban:*"):
            for key in rds.scan_iter(pattern):
                rds.delete(key)

    wipe()
    publish_tenant(world.tenant_a.pk)
    publish_tenant(world.tenant_b.pk)
    name, add = stream_writer(rds)
    fanout = Fanout(rds, stream=name, consumer="portal-test")
    fanout.ensure_group()
    fanout.add = add
    yield fanout
    rds.delete(name)
    wipe()


@pytest.fixture
def me(world, in_tenant):
    """Extension 103 of Acme (tenant A) with a portal user (e-mail and web password), as an
    admin makes it."""
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_a):
        ext, _ = do_create_extension(
            number="103",
            display_name="Dana Desk",
            email="dana@acme.test",
            web_password=SELF_SERVICE_PASSWORD,
            sip_password="Sip-Secret-Pass-77",
            actor=SYSTEM,
        )
        from telephony.models import Extension

        ext = Extension.objects.select_related("user").get(pk=ext.pk)
    return ext


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """``with committed(): ...`` runs what the block's transactions do on commit. The test's
    own transaction never commits: what earlier steps of the test queued (each a request of
    its own in real life, committed then) is dropped first, so that the publish queued once
    per transaction is the block's own."""
    from contextlib import contextmanager

    from django.db import connection

    @contextmanager
    def run():
        del connection.run_on_commit[:]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            yield callbacks

    return run
