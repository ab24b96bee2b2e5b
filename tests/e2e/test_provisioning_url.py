"""End to end, over real HTTP: the provisioning URL the API shows is one the running server
answers, under /prov/ and under PortSIP's /provision/.

User story: a tenant administrator adds a phone over the REST API and copies its provisioning
URL into the phone (or a DHCP option). The phone, an ordinary HTTP client, fetches its file from
that URL — scheme, host and port as shown — and gets it. (The bug: the URL said https on the
default port, where nothing listens.)
"""

import json
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, HOST

MAC = "001565e2e001"


def _http(url: str, *, method="GET", body=None, token=None) -> tuple[int, bytes]:
    """A plain HTTP request to ``url`` as written: its host name is sent as Host, and the
    connection goes to loopback (where *.localhost lives) on the URL's own port."""
    parts = urlsplit(url)
    assert parts.scheme == "http", url
    target = parts._replace(netloc=f"127.0.0.1:{parts.port or 80}").geturl()
    headers = {"Host": parts.netloc, "User-Agent": "Yealink SIP-T54W 96.86.0.70 " + MAC}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(target, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.e2e
def test_the_shown_provisioning_url_is_served(live_pbx):
    base = live_pbx["base"]
    status, body = _http(
        f"{base}/api/v1/auth/signin/",
        method="POST",
        body={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
    )
    assert status == 200, body
    token = json.loads(body)["access"]
    status, body = _http(
        f"{base}/api/v1/devices/",
        method="POST",
        token=token,
        body={"mac": MAC, "model_id": "yealink-t54w", "lines": [{"index": 1, "extension": "1001"}]},
    )
    assert status == 201, body
    device = json.loads(body)
    url = device["provisioning_url"]
    try:
        # The URL names this server's listener: http, the tenant's host, the port it runs on.
        parts = urlsplit(url)
        assert (parts.scheme, parts.hostname, parts.port) == ("http", HOST, urlsplit(base).port)
        status, config = _http(f"{url}{MAC}.cfg")
        assert status == 200, config
        assert b"1001" in config
        # PortSIP's path serves the same file.
        alias = url.replace("/prov/", "/provision/", 1)
        assert _http(f"{alias}{MAC}.cfg") == (200, config)
        # The URL the phone is told to re-fetch from (in its common file) is this server too.
        status, common = _http(f"{url}y000000000000.cfg")
        assert status == 200, common
        refetch = next(
            line.split("=", 1)[1].strip()
            for line in common.decode().splitlines()
            if line.startswith("static.auto_provision.server.url")
        )
        inner = urlsplit(refetch)
        assert (inner.scheme, inner.hostname, inner.port) == (parts.scheme, HOST, parts.port)
        assert inner.path == parts.path
        assert _http(f"{refetch.replace(inner.netloc, parts.netloc)}{MAC}.cfg") == (200, config)
    finally:
        _http(f"{base}/api/v1/devices/{device['id']}/", method="DELETE", token=token)
