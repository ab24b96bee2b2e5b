"""End to end, through nginx: the reverse-proxy example of ``deploy/nginx/`` as the guide
(``deploy/reverse-proxy.md``) sets it up, in front of the PBX's web server.

User story: a provider puts nginx in front of the PBX with a certificate per tenant host. A
browser reaches the tenant's portal over HTTPS with that host's certificate and gets secure
cookies; the live events WebSocket works through the proxy; a phone is given an HTTPS
provisioning URL on the proxy and fetches its file there, or over plain HTTP; other plain HTTP
moves to HTTPS; and the browser softphone's SIP WebSocket at ``/sip`` reaches the SIP engine's
WebSocket transport, which sees nginx's address as the client's.

The web server runs as ``pbx.processes`` makes it with ``PBX_HTTPS=0`` and the trust settings
the guide names; nginx runs ``deploy/nginx/pbx.conf`` with only its ports and paths replaced.
The SIP side is the engine's transport layer (``telephony.sip.transport``) listening for plain
WebSockets, which is where the proxied connection ends.
"""

import asyncio
import contextlib
import json
import queue
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from pbx import processes
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, HOST, ROOT, _free_port
from tests.e2e.test_https import _request, _wait

MAC = "001565e2e444"
DEPLOY = ROOT / "deploy" / "nginx"


@contextlib.contextmanager
def engine_ws_transport():
    """The SIP engine's WebSocket transport on a free port, in a thread; yields the port and a
    queue of the (message, source) pairs it hands the engine."""
    from telephony.sip.transport import TransportLayer

    received: queue.Queue = queue.Queue()
    loop = asyncio.new_event_loop()
    layer = TransportLayer(lambda msg, source: received.put((msg, source)))
    ports: list[int] = []
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        ports.append(loop.run_until_complete(layer.listen_ws("127.0.0.1", 0))[1])
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield ports[0], received
    finally:
        asyncio.run_coroutine_threadsafe(layer.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def nginx_conf(tmp: Path, *, web: int, sip_ws: int, http: int, https: int) -> Path:
    """``deploy/nginx/pbx.conf`` with this test's ports and directories, in a main
    configuration of its own."""
    site = (DEPLOY / "pbx.conf").read_text()
    for old, new in [
        ("127.0.0.1:8000", f"127.0.0.1:{web}"),
        ("127.0.0.1:8088", f"127.0.0.1:{sip_ws}"),
        ("listen 80 ", f"listen 127.0.0.1:{http} "),
        ("listen 443 ", f"listen 127.0.0.1:{https} "),
        ("/etc/pbx/tls/", f"{tmp}/tls/"),
        ("/etc/nginx/pbx-proxy.conf", f"{tmp}/pbx-proxy.conf"),
    ]:
        assert old in site, old
        site = site.replace(old, new)
    (tmp / "pbx.conf").write_text(site)
    shutil.copy(DEPLOY / "pbx-proxy.conf", tmp / "pbx-proxy.conf")
    temp = tmp / "temp"
    temp.mkdir()
    main = tmp / "nginx.conf"
    main.write_text(
        f"""
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{}}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp}/pbx.conf;
}}
"""
    )
    return main


@pytest.fixture(scope="module")
def proxied(live_pbx, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    (tmp / "tls").mkdir()
    (tmp / "tls" / "x").mkdir()  # so that "x/../<file>" would resolve, were it let through
    # The tenant host's certificate, named for the host as the guide asks.
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", f"/CN={HOST}", "-addext", f"subjectAltName=DNS:{HOST}",
            "-keyout", tmp / "tls" / f"{HOST}.key", "-out", tmp / "tls" / f"{HOST}.crt",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    web_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    env = {
        **live_pbx["env"],
        "PBX_HTTPS": "0",
        "PBX_HTTP_PORT": str(web_port),
        "PBX_WEB_WORKERS": "1",
        "PBX_TRUST_X_FORWARDED_PROTO": "1",
        "PBX_TRUST_X_FORWARDED_FOR": "1",
    }
    table = {p.name: p.argv for p in processes.processes(env)}
    assert "web-http" not in table
    procs = []
    with engine_ws_transport() as (sip_ws_port, received), Path(live_pbx["log"]).open("a") as log:
        try:
            procs.append(
                subprocess.Popen(
                    table["web"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
            main = nginx_conf(
                tmp, web=web_port, sip_ws=sip_ws_port, http=http_port, https=https_port
            )
            checked = subprocess.run(
                ["nginx", "-t", "-p", str(tmp), "-c", str(main)], capture_output=True, text=True
            )
            assert checked.returncode == 0, checked.stderr
            procs.append(
                subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(main)], stdout=log, stderr=log)
            )
            tls = ssl.create_default_context(cafile=str(tmp / "tls" / f"{HOST}.crt"))
            _wait(web_port)
            with contextlib.suppress(RuntimeError):
                _wait(https_port, tls, timeout=10)  # nginx answers 400 for "localhost"
            yield {
                "http": http_port,
                "https": https_port,
                "tls": tls,
                "cert": tmp / "tls" / f"{HOST}.crt",
                "sip": received,
            }
        finally:
            for proc in reversed(procs):
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _sign_in(proxied) -> dict:
    signin = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = _request(
        proxied["https"], HOST, "/api/v1/auth/signin/", tls=proxied["tls"], method="POST",
        body=signin,
    )  # fmt: skip
    assert response.status == 200, response.data
    return json.loads(response.data)


@pytest.mark.e2e
def test_the_portal_api_and_provisioning_through_the_proxy(proxied):
    https, tls = proxied["https"], proxied["tls"]
    page = _request(https, HOST, "/accounts/login/", tls=tls)
    assert page.status == 200
    assert page.peer_cert == ssl.PEM_cert_to_DER_cert(proxied["cert"].read_text())
    assert "; Secure" in page.getheader("Set-Cookie")  # the proxy's X-Forwarded-Proto trusted
    # A name that is no host name never reaches the certificate's path (nginx would load
    # tls/sub/../<host>.crt as asked): the handshake fails.
    odd = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{https}", "-servername", f"x/../{HOST}"],
        input="",
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert "subject=" not in odd.stdout
    assert "alert" in odd.stderr
    # Plain HTTP: pages move to HTTPS (nginx's redirect), phones are served.
    moved = _request(proxied["http"], HOST, "/portal/")
    assert moved.status == 301
    assert moved.getheader("Location") == f"https://{HOST}/portal/"

    auth = {"Authorization": f"Bearer {_sign_in(proxied)['access']}"}
    created = _request(
        https, HOST, "/api/v1/devices/", tls=tls, method="POST", headers=auth,
        body={"mac": MAC, "model_id": "yealink-t54w", "lines": [{"index": 1, "extension": "1001"}]},
    )  # fmt: skip
    assert created.status == 201, created.data
    device = json.loads(created.data)
    try:
        # The URL names the proxy's HTTPS, as the admin reached it.
        origin = f"https://{HOST}:{https}"
        assert device["provisioning_url"].startswith(f"{origin}/prov/")
        path = device["provisioning_url"].removeprefix(origin) + f"{MAC}.cfg"
        agent = {"User-Agent": f"Yealink SIP-T54W {MAC}"}
        over_https = _request(https, HOST, path, tls=tls, headers=agent)
        assert over_https.status == 200, over_https.data
        assert b"1001" in over_https.data
        over_http = _request(proxied["http"], HOST, path, headers=agent)
        assert (over_http.status, over_http.data) == (200, over_https.data)
    finally:
        _request(https, HOST, f"/api/v1/devices/{device['id']}/", tls=tls, method="DELETE",
                 headers=auth)  # fmt: skip


@pytest.mark.e2e
def test_websockets_through_the_proxy_reach_channels_and_the_sip_engine(proxied):
    from websockets.sync.client import connect

    https, tls = proxied["https"], proxied["tls"]
    token = _sign_in(proxied)["access"]

    def tunnel():  # to loopback, the URL's host name kept for SNI and the certificate
        return socket.create_connection(("127.0.0.1", https), timeout=10)

    url = f"wss://{HOST}:{https}/api/v1/ws/events/?token={token}"
    with connect(url, sock=tunnel(), ssl=tls, server_hostname=HOST) as ws:
        welcome = json.loads(ws.recv(timeout=10))
    assert welcome["type"] == "welcome"

    register = (
        f"REGISTER sip:{HOST} SIP/2.0\r\n"
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKproxytest;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:1001@{HOST}>;tag=proxytest\r\n"
        f"To: <sip:1001@{HOST}>\r\n"
        "Call-ID: proxytest@df7jal23ls0d.invalid\r\n"
        "CSeq: 1 REGISTER\r\n"
        "Contact: <sip:1001@df7jal23ls0d.invalid;transport=ws>;expires=600\r\n"
        "Content-Length: 0\r\n\r\n"
    )
    with connect(
        f"wss://{HOST}:{https}/sip",
        sock=tunnel(),
        ssl=tls,
        server_hostname=HOST,
        subprotocols=["sip"],
    ) as ws:
        assert ws.subprotocol == "sip"
        ws.send(register)
        message, source = proxied["sip"].get(timeout=10)
    assert message.method == "REGISTER"
    # The engine sees a plain WebSocket from nginx's address, not the browser's.
    assert source.kind == "WS"
    assert source.remote[0] == "127.0.0.1"
    assert message.top_via.params["received"] == "127.0.0.1"
