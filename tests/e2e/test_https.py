"""End to end, over real sockets: the web server as ``make run`` starts it, HTTPS by default.

User story: a tenant admin opens the portal over HTTPS (a browser gives the web softphone its
microphone and secure WebSockets only on a secure origin), with the certificate the set-up
made; the live pages' WebSocket works over it. Typing the old ``http://`` address lands on
the same page over HTTPS. A desk phone, which knows only plain HTTP, is given a plain HTTP
provisioning URL and fetches its file there; the health probe answers there too; a WebSocket
opened in clear text is refused.

The two programs are the ones ``pbx.processes`` makes (``web`` on HTTPS, ``web-http`` on
plain HTTP), on the browser tests' database (``live_pbx``), with a certificate made by
``scripts/tls_cert.sh`` as ``make run`` makes it.
"""

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from pbx import processes
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    CHROMIUM_ARGS,
    HOST,
    ROOT,
    _free_port,
    fill_sign_in,
)

MAC = "001565e2e443"


def _request(port, host, path, *, tls=None, method="GET", body=None, headers=None):
    """One HTTP(S) request to loopback ``port`` naming ``host`` (as Host and, over TLS, as
    the name the certificate must carry). Returns the response, its body read."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.sock = tls.wrap_socket(raw, server_hostname=host) if tls is not None else raw
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json"} if data else {}
    conn.request(method, path, data, {**all_headers, **(headers or {})})
    response = conn.getresponse()
    response.data = response.read()
    response.peer_cert = conn.sock.getpeercert(binary_form=True) if tls is not None else None
    conn.close()
    return response


def _wait(port, tls=None, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if _request(port, "localhost", "/healthz", tls=tls).status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"nothing healthy on port {port}")


@pytest.fixture(scope="module")
def https_pbx(live_pbx, tmp_path_factory):
    """``web`` and ``web-http`` on the live database, HTTPS on with a fresh certificate."""
    var = tmp_path_factory.mktemp("https-var")
    subprocess.run(
        [ROOT / "scripts" / "tls_cert.sh"],
        env={**live_pbx["env"], "PBX_VAR_DIR": str(var)},  # PBX_DEMO_HOST: the tenant's host
        check=True,
        capture_output=True,
    )
    cert, key = var / "tls" / "sip.crt", var / "tls" / "sip.key"
    https_port, http_port = _free_port(), _free_port()
    env = {
        **live_pbx["env"],
        "PBX_HTTPS": "1",
        "PBX_HTTPS_PORT": str(https_port),
        "PBX_HTTP_PORT": str(http_port),
        "PBX_HTTPS_CERT": str(cert),
        "PBX_HTTPS_KEY": str(key),
        "PBX_WEB_WORKERS": "1",
    }
    table = {p.name: p.argv for p in processes.processes(env)}
    servers = []
    with Path(live_pbx["log"]).open("a") as log:
        try:
            for name in ("web", "web-http"):
                servers.append(
                    subprocess.Popen(
                        table[name], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                    )
                )
            tls = ssl.create_default_context(cafile=str(cert))
            _wait(https_port, tls)
            _wait(http_port)
            yield {"https": https_port, "http": http_port, "tls": tls, "cert": cert}
        finally:
            for server in servers:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()


@pytest.mark.e2e
def test_the_portal_is_https_with_the_certificate_and_live_pages_work(https_pbx):
    from playwright.sync_api import expect, sync_playwright

    port = https_pbx["https"]
    # A client that trusts only the made certificate, checking the tenant's host name in it.
    page = _request(port, HOST, "/accounts/login/", tls=https_pbx["tls"])
    assert page.status == 200
    assert b'name="password"' in page.data
    assert page.peer_cert == ssl.PEM_cert_to_DER_cert(https_pbx["cert"].read_text())
    assert "; Secure" in page.getheader("Set-Cookie")  # the CSRF cookie: HTTPS only

    base = f"https://{HOST}:{port}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            # The certificate is self-signed: the person accepts it once; here, the context.
            context = browser.new_context(ignore_https_errors=True)
            tab = context.new_page()
            tab.set_default_timeout(15_000)
            tab.goto(f"{base}/accounts/login/?next=/portal/extensions/")
            fill_sign_in(tab, ADMIN_EMAIL, ADMIN_PASSWORD)
            expect(tab).to_have_url(f"{base}/portal/extensions/")
            # The live status WebSocket (Channels) over wss, signed in by the session cookie.
            expect(tab.get_by_test_id("live-connection")).to_have_text("live")
            session = next(c for c in context.cookies() if c["name"] == "sessionid")
            assert session["secure"] is True
            assert tab.evaluate("window.isSecureContext") is True
            # The old address: the browser is sent on to the same page over HTTPS.
            tab.goto(f"http://{HOST}:{https_pbx['http']}/portal/extensions/?q=1")
            expect(tab).to_have_url(f"{base}/portal/extensions/?q=1")
        finally:
            browser.close()


@pytest.mark.e2e
def test_plain_http_redirects_pages_but_serves_phones_and_probes(https_pbx):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    http_port, https_port, tls = https_pbx["http"], https_pbx["https"], https_pbx["tls"]
    moved = _request(http_port, HOST, "/portal/?tab=1")
    assert moved.status == 301
    assert moved.getheader("Location") == f"https://{HOST}:{https_port}/portal/?tab=1"
    signin = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    moved = _request(http_port, HOST, "/api/v1/auth/signin/", method="POST", body=signin)
    assert moved.status == 308  # the client repeats its POST over HTTPS
    assert _request(http_port, "localhost", "/healthz").status == 200

    # The admin, over HTTPS, adds a phone: its URL is the plain HTTP listener's.
    signed_in = _request(
        https_port, HOST, "/api/v1/auth/signin/", tls=tls, method="POST", body=signin
    )
    assert signed_in.status == 200, signed_in.data
    auth = {"Authorization": f"Bearer {json.loads(signed_in.data)['access']}"}
    created = _request(
        https_port,
        HOST,
        "/api/v1/devices/",
        tls=tls,
        method="POST",
        body={"mac": MAC, "model_id": "yealink-t54w", "lines": [{"index": 1, "extension": "1001"}]},
        headers=auth,
    )
    assert created.status == 201, created.data
    device = json.loads(created.data)
    try:
        prefix = f"http://{HOST}:{http_port}/prov/"
        assert device["provisioning_url"].startswith(prefix)
        path = device["provisioning_url"].removeprefix(f"http://{HOST}:{http_port}")
        fetched = _request(
            http_port, HOST, f"{path}{MAC}.cfg", headers={"User-Agent": f"Yealink SIP-T54W {MAC}"}
        )
        assert fetched.status == 200, fetched.data
        assert b"1001" in fetched.data
    finally:
        _request(
            https_port,
            HOST,
            f"/api/v1/devices/{device['id']}/",
            tls=tls,
            method="DELETE",
            headers=auth,
        )

    # A WebSocket in clear text is refused at its handshake.
    token = json.loads(signed_in.data)["access"]
    sock = socket.create_connection(("127.0.0.1", http_port), timeout=10)
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://{HOST}:{http_port}/api/v1/ws/events/?token={token}", sock=sock)
    assert refused.value.response.status_code == 403
