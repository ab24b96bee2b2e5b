"""SIP over TLS (5061 in production) and secure WebSocket: a phone registers with digest over
TLS, and a browser-style client talks SIP over WSS, both against the full engine."""

import asyncio
import ssl

import pytest
from websockets.asyncio.client import connect

from telephony.sip.message import Response, parse
from tests.sip.baresipkit import self_signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def certificate(tmp_path):
    return self_signed(tmp_path)


def test_register_over_tls_with_digest(sip_engine_factory, certificate):
    engine = sip_engine_factory(tls_cert=certificate[0], tls_key=certificate[1])
    with engine.client("TLS") as phone:
        ok = phone.register("101", "acme.test")
        assert ok.status == 200
        contact = ok.get("Contact")
        assert "transport=tls" in contact
        bad = phone.register("102", "acme.test", password="Wrong-Password-99")
        assert bad.status == 401
    registrations = engine.run(engine.pbx.locations.lookup("acme.test", "101"))
    assert [b.transport for b in registrations] == ["TLS"]


def test_options_over_secure_websocket(sip_engine_factory, certificate):
    engine = sip_engine_factory(tls_cert=certificate[0], tls_key=certificate[1])
    port = engine.addresses["WSS"][1]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    options = (
        "OPTIONS sip:acme.test SIP/2.0\r\n"
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKwss1;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:101@acme.test>;tag=w1\r\n"
        "To: <sip:acme.test>\r\n"
        "Call-ID: wss-1@test\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    )

    async def talk():
        async with connect(f"wss://127.0.0.1:{port}", subprotocols=["sip"], ssl=ctx) as ws:
            assert ws.subprotocol == "sip"
            await ws.send(options)
            frame = await asyncio.wait_for(ws.recv(), 5)
            return parse(frame.encode() if isinstance(frame, str) else frame)

    response = asyncio.run(talk())
    assert isinstance(response, Response)
    assert response.status == 200
    assert response.call_id == "wss-1@test"
    assert "/" not in (response.get("Server") or "")  # a product name, never a version
