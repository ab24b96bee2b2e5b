"""HTTPS by default: what the plain HTTP listener still serves, where it sends the rest, and
the softphone's WebSocket URL.

User story: ``make run`` serves the portal over HTTPS (browsers give a softphone its microphone
and secure WebSockets only on a secure origin). A desk phone keeps fetching its file over
plain HTTP; a person who types the old ``http://`` address lands on the same page over HTTPS;
the browser's softphone is told a ``wss://`` URL on the host it used.
(The live listeners, with the certificate: tests/e2e/test_https.py.)
"""

import importlib

import pytest
from django.test import Client, RequestFactory

from telephony.webphone import softphone_ws_url

pytestmark = pytest.mark.django_db

HOST = "acme.test"


@pytest.fixture
def https_on(settings):
    settings.PBX_HTTPS = True
    settings.PBX_HTTPS_PORT = 8443
    return settings


def plain(path, method="get", host=f"{HOST}:8000", **extra):
    return getattr(Client(), method)(path, HTTP_HOST=host, **extra)


def test_pages_over_plain_http_move_to_the_same_host_on_https(world, https_on):
    r = plain("/portal/extensions/?q=10&page=2")
    assert r.status_code == 301
    assert r["Location"] == f"https://{HOST}:8443/portal/extensions/?q=10&page=2"
    # A method other than GET keeps its method and body (308), e.g. an API client's sign-in.
    r = plain("/api/v1/auth/signin/", "post", data={"email": "x"}, content_type="application/json")
    assert r.status_code == 308
    assert r["Location"] == f"https://{HOST}:8443/api/v1/auth/signin/"
    # The provider's host too; on 443 no port is named.
    https_on.PBX_HTTPS_PORT = 443
    r = plain("/", host="localhost:8000")
    assert (r.status_code, r["Location"]) == (301, "https://localhost/")


def test_phones_and_probes_are_served_over_plain_http(world, https_on):
    assert plain("/healthz").status_code == 200
    # Provisioning answers (here: an unknown token) instead of redirecting.
    for path in ("/prov/nosuchtoken/001565a1b2c3.cfg", "/provision/001565a1b2c3.cfg"):
        r = plain(path)
        assert r.status_code in (401, 404), path
        assert "Location" not in r


def test_https_requests_and_the_plain_only_mode_are_not_redirected(world, https_on, settings):
    r = Client().get("/accounts/login/", HTTP_HOST=f"{HOST}:8443", secure=True)
    assert r.status_code == 200
    # Behind a TLS proxy the server's own HTTPS is off: plain HTTP serves everything.
    settings.PBX_HTTPS = False
    assert plain("/accounts/login/").status_code == 200


def test_a_malformed_host_gets_400_not_a_redirect(world, https_on, caplog):
    r = plain("/portal/", host="evil host")
    assert r.status_code == 400
    assert "Location" not in r
    assert any("Invalid HTTP_HOST" in rec.getMessage() for rec in caplog.records)


def test_a_host_the_pbx_does_not_serve_gets_400_not_a_redirect(world, https_on):
    """No redirect to a host a client made up (a cache in front would keep it)."""
    r = plain("/portal/", host="evil.example:8000")
    assert r.status_code == 400
    assert "Location" not in r


def test_softphone_ws_url_defaults_to_the_engine_wss_on_the_browser_host(settings):
    settings.PBX_SIP_WSS_URL = ""
    settings.SIP_WSS_PORT = 8089
    factory = RequestFactory()
    assert softphone_ws_url(factory.get("/", HTTP_HOST=f"{HOST}:8443")) == f"wss://{HOST}:8089"
    assert softphone_ws_url(factory.get("/", HTTP_HOST="Demo.Localhost")) == (
        "wss://demo.localhost:8089"
    )
    assert softphone_ws_url(factory.get("/", HTTP_HOST="[::1]:8443")) == "wss://[::1]:8089"


def test_softphone_ws_url_from_the_setting(settings):
    factory = RequestFactory()
    settings.PBX_SIP_WSS_URL = "wss://sip.example.net/ws"
    assert softphone_ws_url(factory.get("/", HTTP_HOST=HOST)) == "wss://sip.example.net/ws"
    # Behind a proxy with a certificate per tenant host: the browser's host in the URL.
    settings.PBX_SIP_WSS_URL = "wss://{host}/sip"
    assert softphone_ws_url(factory.get("/", HTTP_HOST=f"{HOST}:443")) == f"wss://{HOST}/sip"


HTTPS_VARIABLES = (
    "PBX_HTTPS",
    "PBX_HTTPS_PORT",
    "PBX_HSTS_SECONDS",
    "PBX_TRUST_X_FORWARDED_PROTO",
    "PBX_PUBLIC_HOSTS",
    "PBX_CSRF_TRUSTED_ORIGINS",
)


@pytest.fixture
def prod_settings(monkeypatch):
    """``pbx.settings.prod`` as loaded from an environment the test sets up first."""
    from pbx.settings import base

    def load(**env):
        for name in (
            "PBX_HTTPS",
            "PBX_HTTPS_PORT",
            "PBX_HSTS_SECONDS",
            "PBX_TRUST_X_FORWARDED_PROTO",
        ):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        importlib.reload(base)
        return importlib.reload(importlib.import_module("pbx.settings.prod"))

    yield load
    monkeypatch.undo()
    importlib.reload(base)


def test_production_settings_with_https(prod_settings):
    prod = prod_settings(PBX_PUBLIC_HOSTS="localhost,pbx.example.com")
    assert prod.PBX_HTTPS is True  # make run's default
    assert prod.SESSION_COOKIE_SECURE is prod.CSRF_COOKIE_SECURE is True
    assert {"https://localhost:8443", "https://pbx.example.com:8443"} <= set(
        prod.CSRF_TRUSTED_ORIGINS
    )
    assert prod.SECURE_HSTS_SECONDS == 0  # the self-signed certificate: off unless set
    assert not hasattr(prod, "SECURE_PROXY_SSL_HEADER")

    prod = prod_settings(PBX_HTTPS_PORT="443", PBX_HSTS_SECONDS="31536000")
    assert "https://localhost" in prod.CSRF_TRUSTED_ORIGINS
    assert prod.SECURE_HSTS_SECONDS == 31536000

    # Behind a TLS proxy: plain HTTP here, the proxy's word for HTTPS.
    prod = prod_settings(PBX_HTTPS="0", PBX_TRUST_X_FORWARDED_PROTO="1")
    assert prod.SECURE_PROXY_SSL_HEADER == ("HTTP_X_FORWARDED_PROTO", "https")
    assert prod.SESSION_COOKIE_SECURE is True
    assert prod.CSRF_TRUSTED_ORIGINS == []
