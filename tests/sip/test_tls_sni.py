"""Tenants' own certificates on the engine's TLS (5061) and WSS (8089) listeners, chosen by SNI.

User story: Acme's admin uploads a certificate for acme.test; a phone or browser that connects
to the engine asking for acme.test gets Acme's certificate (and it verifies against Acme's CA
for that name), any other name or none gets the platform's; a replaced certificate is served,
and a deleted one is not, as soon as Django announces it, without restarting the engine."""

import asyncio
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from websockets.asyncio.client import connect

from pbx.audit import SYSTEM
from telephony.engine.store import client, redis_key
from telephony.sip.contract import TLS_HOSTS
from telephony.sip.message import Response, parse
from tenants import actions
from tests.certkit import TestPki
from tests.sip.engine_fixtures import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform(tmp_path):
    """The platform's certificate (self-signed, as scripts/bootstrap.sh makes it)."""
    other = TestPki("Platform")
    leaf = other.leaf("pbx.platform.test")
    cert, key = tmp_path / "sip.crt", tmp_path / "sip.key"
    cert.write_text(leaf.chain_pem)
    key.write_text(leaf.key_pem)
    return leaf, str(cert), str(key)


def served(port: int, server_name: str | None) -> str:
    """The SHA-256 fingerprint of the certificate the listener at ``port`` presents when
    asked for ``server_name`` (None: no SNI), as "AB:CD:..."."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    digest = x509.load_der_x509_certificate(der).fingerprint(hashes.SHA256()).hex().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def verified_options(port: int, root_pem: str, host: str) -> Response:
    """SIP OPTIONS over WSS as a browser sends it: the certificate must verify for ``host``
    against ``root_pem`` (hostname checked), then the engine answers."""
    ctx = ssl.create_default_context(cadata=root_pem)
    options = (
        f"OPTIONS sip:{host} SIP/2.0\r\n"
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKsni1;rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:101@{host}>;tag=s1\r\n"
        f"To: <sip:{host}>\r\n"
        "Call-ID: sni-1@test\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )

    async def talk():
        async with connect(
            f"wss://{host}:{port}",
            subprotocols=["sip"],
            ssl=ctx,
            host="127.0.0.1",
            port=port,
            server_hostname=host,
        ) as ws:
            await ws.send(options)
            frame = await asyncio.wait_for(ws.recv(), 5)
            return parse(frame.encode() if isinstance(frame, str) else frame)

    return asyncio.run(talk())


def test_tenant_certificate_by_sni_on_tls_and_wss(
    sip_engine_factory, pki, platform, django_capture_on_commit_callbacks, world
):
    platform_leaf, cert_path, key_path = platform
    engine = sip_engine_factory(tls_cert=cert_path, tls_key=key_path)
    tls_port, wss_port = engine.addresses["TLS"][1], engine.addresses["WSS"][1]
    assert served(tls_port, "acme.test") == platform_leaf.fingerprint  # nothing uploaded yet

    leaf = pki.leaf("acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        cert = actions.do_upload_certificate(
            world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
        )
    wait_until(lambda: engine.call(lambda: "acme.test" in engine.pbx.tls_hosts.contexts))
    for port in (tls_port, wss_port):
        assert served(port, "acme.test") == leaf.fingerprint
        assert served(port, "ACME.test") == leaf.fingerprint  # host names are case-blind
        assert served(port, "beta.test") == platform_leaf.fingerprint
        assert served(port, None) == platform_leaf.fingerprint
    answer = verified_options(wss_port, pki.root_pem, "acme.test")
    assert isinstance(answer, Response)
    assert answer.status == 200

    # Replaced: the new certificate is served after the announcement, same engine.
    newer = pki.leaf("acme.test", "sip.acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        newer_cert = actions.do_upload_certificate(
            world.tenant_a, chain=newer.chain_pem, key=newer.key_pem, actor=SYSTEM
        )
    assert newer_cert.pk != cert.pk
    wait_until(
        lambda: engine.call(
            lambda: engine.pbx.tls_hosts.fingerprints.get("acme.test") == newer.fingerprint
        )
    )
    assert served(tls_port, "acme.test") == newer.fingerprint
    assert served(wss_port, "acme.test") == newer.fingerprint

    # Deleted: the platform's certificate serves acme.test again.
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_delete_certificate(newer_cert, actor=SYSTEM)
    wait_until(lambda: engine.call(lambda: "acme.test" not in engine.pbx.tls_hosts.contexts))
    assert served(tls_port, "acme.test") == platform_leaf.fingerprint
    assert served(wss_port, "acme.test") == platform_leaf.fingerprint


def test_engine_loads_published_certificates_at_start_and_survives_a_bad_one(
    sip_engine_factory, pki, platform, django_capture_on_commit_callbacks, world
):
    """An engine started after the upload serves it at once; a field it cannot load (garbage
    written behind Django's back) leaves that name on the platform's certificate, logged, and
    the listeners keep working."""
    platform_leaf, cert_path, key_path = platform
    leaf = pki.leaf("acme.test")
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_upload_certificate(
            world.tenant_a, chain=leaf.chain_pem, key=leaf.key_pem, actor=SYSTEM
        )
    client().hset(redis_key(TLS_HOSTS), "beta.test", '{"chain": "junk", "key": "junk"}')
    engine = sip_engine_factory(tls_cert=cert_path, tls_key=key_path)
    tls_port = engine.addresses["TLS"][1]
    assert served(tls_port, "acme.test") == leaf.fingerprint
    assert served(tls_port, "beta.test") == platform_leaf.fingerprint
