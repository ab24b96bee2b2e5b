"""Safe as it stands: error pages, host validation and the API docs' assets.

User story: someone probes the PBX as run by ``make run`` (production settings, DEBUG off). A
wrong URL gets the portal's own "Page not found" with the tenant's brand, not Django's list of
every URL; a crash gets a plain "Something went wrong", not a traceback with settings; a Host
header that is neither the provider's nor a tenant's gets a 400 that says nothing about which
hosts exist; and the API docs page loads Swagger UI from the PBX itself, not from a CDN.
"""

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import path

from tests.conftest import host_of

pytestmark = pytest.mark.django_db


def _boom(request):
    raise RuntimeError("secret-detail-in-the-exception")


urlpatterns = [path("boom/", _boom)]


def test_production_settings_turn_debug_off(monkeypatch):
    import importlib

    monkeypatch.setenv("PBX_DEBUG", "1")  # even when asked for: prod never debugs
    prod = importlib.import_module("pbx.settings.prod")
    prod = importlib.reload(prod)
    assert prod.DEBUG is False
    assert "drf_spectacular_sidecar" in prod.INSTALLED_APPS


def test_404_is_the_branded_portal_page_without_the_url_list(world, settings):
    from branding.actions import do_create_brand
    from pbx.audit import SYSTEM

    settings.DEBUG = False
    do_create_brand(dealer=world.north, product_name="North Voice", actor=SYSTEM)
    client = Client(HTTP_HOST=host_of(world.tenant_a))
    r = client.get("/no/such/page/")
    connection.set_schema_to_public()
    body = r.content.decode()
    assert r.status_code == 404
    assert 'data-testid="error-page"' in body
    assert "Page not found" in body
    assert "North Voice" in body  # the tenant's dealer's white label
    assert "api/v1/" not in body
    assert "URLconf" not in body
    assert "urlpatterns" not in body.lower()


def test_403_is_the_portal_page(world, settings, rf):
    from django.views.defaults import permission_denied

    settings.DEBUG = False
    request = rf.get("/x/", HTTP_HOST="localhost")
    request.tenant = world.public
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    r = permission_denied(request, exception=PermissionError("secret-reason"))
    body = r.content.decode()
    assert r.status_code == 403
    assert "Not allowed" in body
    assert "secret-reason" not in body


def test_500_shows_no_traceback(world, settings):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    client = Client(HTTP_HOST="localhost", raise_request_exception=False)
    r = client.get("/boom/")
    connection.set_schema_to_public()
    body = r.content.decode()
    assert r.status_code == 500
    assert "Something went wrong" in body
    assert "secret-detail" not in body
    assert "Traceback" not in body
    assert "SECRET_KEY" not in body
    assert "RuntimeError" not in body


def test_500_page_needs_no_database(django_assert_num_queries, rf):
    from pbx.views import server_error

    with django_assert_num_queries(0):
        r = server_error(rf.get("/"))
    assert r.status_code == 500
    assert "portal/portal.css" in r.content.decode()


@pytest.mark.parametrize(
    "host", ["unknown.example", "evil.test", "acme.test.evil.test", "127.0.0.2", "bad host!"]
)
def test_unknown_host_is_400_and_says_nothing(world, host):
    client = Client(HTTP_HOST=host)
    r = client.get("/portal/")
    r2 = client.get("/api/v1/auth/me/")
    connection.set_schema_to_public()
    assert r.status_code == 400
    assert r2.status_code == 400
    body = r.content
    # The same bytes for every unknown host and path: no brand, no host, no product name.
    assert body == r2.content == Client(HTTP_HOST="other.invalid").get("/").content
    text = body.decode()
    assert host not in text
    assert "Acme" not in text
    assert "Platform" not in text
    assert "Set-Cookie" not in r.headers
    assert "Location" not in r.headers


def test_known_hosts_are_served(world):
    for host in ("localhost", "127.0.0.1", host_of(world.tenant_a)):
        r = Client(HTTP_HOST=host).get("/healthz")
        connection.set_schema_to_public()
        assert r.status_code == 200, host


def test_host_cache_follows_suspension_and_new_domains(
    world, settings, django_capture_on_commit_callbacks
):
    """With the per-process host cache on (as in production), a change to a tenant or a domain
    is seen on the next request: the save bumps the generation on commit."""
    from pbx.audit import SYSTEM
    from tenants import hosts
    from tenants.actions import do_set_tenant_status
    from tenants.models import Domain

    settings.PBX_HOST_CACHE_SECONDS = 60
    hosts._cache.clear()
    host = host_of(world.tenant_a)
    assert hosts.tenant_for_host(host).status == "active"
    assert hosts.tenant_for_host("new.acme.test") is None  # cached as unknown
    with django_capture_on_commit_callbacks(execute=True):
        do_set_tenant_status(world.tenant_a, "suspended", actor=SYSTEM)
    try:
        assert hosts.tenant_for_host(host).status == "suspended"
    finally:
        with django_capture_on_commit_callbacks(execute=True):
            do_set_tenant_status(world.tenant_a, "active", actor=SYSTEM)
    assert hosts.tenant_for_host(host).status == "active"
    with django_capture_on_commit_callbacks(execute=True):
        Domain.objects.create(domain="new.acme.test", tenant=world.tenant_a, is_primary=False)
    assert hosts.tenant_for_host("new.acme.test").pk == world.tenant_a.pk
    # Another process (same Redis, its own memory) sees the bump through the generation.
    hosts._cache.put("new.acme.test", (b"stale",), None)
    assert hosts.tenant_for_host("new.acme.test").pk == world.tenant_a.pk
    # Each caller gets its own copy: what a request sets on it stays in that request.
    first = hosts.tenant_for_host(host)
    first.domain_url = "changed"
    assert getattr(hosts.tenant_for_host(host), "domain_url", None) != "changed"


def test_api_docs_load_swagger_ui_from_this_server(world):
    client = Client(HTTP_HOST="localhost")
    r = client.get("/api/v1/docs/")
    connection.set_schema_to_public()
    assert r.status_code == 200
    html = r.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html[:500]
    for url in assets:
        assert not url.startswith(("http:", "https:", "//")), url
    js = [u for u in assets if u.endswith(".js")]
    assert any("swagger-ui" in u for u in js), assets


def test_no_template_or_static_file_loads_from_another_host():
    """The portal's pages and assets reference nothing outside the PBX (works offline, leaks
    no visits to a CDN)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("templates", "static"):
        for f in (root / folder).rglob("*"):
            if f.suffix not in {".html", ".js", ".css", ".txt"} or "vendor" in f.parts:
                continue
            text = f.read_text(errors="replace")
            for m in re.finditer(r"""(?:src|href|url\()\s*=?\s*["']?(https?:)?//""", text):
                offenders.append(f"{f.relative_to(root)}: {text[m.start() : m.start() + 60]}")
    assert offenders == []
