"""End-to-end tests of the Engine on loopback: real sockets, random free ports."""

import asyncio
import socket
import time
from pathlib import Path

from websockets.asyncio.client import connect

from telephony.sip.message import Request, Response, SipParseError, SipURI, frame_length, parse
from telephony.sip.server import Engine, EngineConfig
from telephony.sip.transaction import ServerTransaction, Timers
from telephony.sip.transport import Target

TORTURE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "rfc4475"


def options(n: int, port: int, transport: str = "UDP") -> bytes:
    return (
        f"OPTIONS sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 127.0.0.1:9;branch=z9hG4bKopt{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@127.0.0.1>;tag=p1\r\n"
        "To: <sip:pbx@127.0.0.1>\r\n"
        f"Call-ID: opt-{n}@test\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def config(**kw: object) -> EngineConfig:
    base = {
        "host": "127.0.0.1",
        "udp_port": 0,
        "tcp_port": 0,
        "ws_port": 0,
        "product": "TestPBX",
        "timers": Timers(t1=0.02, t2=0.16, t4=0.2),
    }
    base.update(kw)
    return EngineConfig(**base)  # type: ignore[arg-type]


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, float]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait((data, time.monotonic()))


async def udp_client() -> tuple[asyncio.DatagramTransport, UdpClient]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(UdpClient, local_addr=("127.0.0.1", 0))
    return transport, proto


async def wait_for(proto: UdpClient, call_id: str, others: list[bytes] | None = None) -> Response:
    while True:
        data, _ = await asyncio.wait_for(proto.queue.get(), 2)
        try:
            msg = parse(data)
        except SipParseError:
            msg = None  # a 400 echoing the broken headers of a torture message
        if isinstance(msg, Response) and msg.call_id == call_id:
            return msg
        if others is not None:
            others.append(data)


def test_options_after_every_torture_message_over_udp() -> None:
    async def main() -> None:
        engine = Engine(config())
        addrs = await engine.start()
        port = addrs["UDP"][1]
        transport, proto = await udp_client()
        try:
            files = sorted(TORTURE.glob("*.dat"))
            assert len(files) == 50
            others: list[bytes] = []
            for n, path in enumerate(files, start=1):
                transport.sendto(path.read_bytes(), ("127.0.0.1", port))
                transport.sendto(options(n, port), ("127.0.0.1", port))
                resp = await wait_for(proto, f"opt-{n}@test", others)
                assert resp.status == 200, path.name
                assert resp.get("Server") == "TestPBX"
                # received/rport were stamped on the Via we sent (RFC 3581)
                assert resp.top_via.rport == transport.get_extra_info("sockname")[1]
                assert resp.top_via.received == "127.0.0.1"
                assert "options" in resp.tokens("Allow")
                assert resp.get("Accept") == "application/sdp"
            # Malformed requests with a Via are answered 400 back to the source address.
            # Answers to well-formed ones follow RFC 3261 18.2.2: received IP and the Via's
            # sent-by port (5060 here, as the torture Vias carry no rport), not to us.
            starts = {o.split(b"\r\n", 1)[0] for o in others}
            assert b"SIP/2.0 400 Bad Request" in starts
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_default_answers_by_method() -> None:
    async def main() -> None:
        engine = Engine(config())
        port = (await engine.start())["UDP"][1]
        transport, proto = await udp_client()
        try:
            cases = {b"OPTIONS": 200, b"REGISTER": 405, b"FOO": 501}
            for i, (method, status) in enumerate(cases.items()):
                raw = options(100 + i, port).replace(b"OPTIONS", method)
                transport.sendto(raw, ("127.0.0.1", port))
                resp = await wait_for(proto, f"opt-{100 + i}@test")
                assert resp.status == status, method
            # a request we cannot parse but can address: 400 with the headers we had
            bad = options(200, port).replace(b"CSeq: 200 OPTIONS", b"CSeq: 200 INVITE")
            transport.sendto(bad, ("127.0.0.1", port))
            assert (await wait_for(proto, "opt-200@test")).status == 400
            # unknown Require: 420 with Unsupported
            req = options(201, port).replace(b"Max-Forwards", b"Require: foo\r\nMax-Forwards")
            transport.sendto(req, ("127.0.0.1", port))
            resp = await wait_for(proto, "opt-201@test")
            assert resp.status == 420
            assert resp.get("Unsupported") == "foo"
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_custom_handler_gets_server_transaction() -> None:
    async def main() -> None:
        engine = Engine(config())
        seen: list[ServerTransaction] = []

        async def register(tx: ServerTransaction) -> None:
            seen.append(tx)
            await asyncio.sleep(0)
            tx.respond(200, headers=[("Expires", "60")])

        engine.handle("REGISTER", register)
        port = (await engine.start())["UDP"][1]
        transport, proto = await udp_client()
        try:
            raw = options(300, port).replace(b"OPTIONS", b"REGISTER")
            transport.sendto(raw, ("127.0.0.1", port))
            resp = await wait_for(proto, "opt-300@test")
            assert resp.status == 200
            assert resp.get("Expires") == "60"
            assert resp.to.tag == seen[0].to_tag
            # a retransmission is absorbed: same response, handler not called again
            transport.sendto(raw, ("127.0.0.1", port))
            again = await wait_for(proto, "opt-300@test")
            assert bytes(again) == bytes(resp)
            assert len(seen) == 1
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_tcp_options_round_trip_and_keepalive() -> None:
    async def main() -> None:
        engine = Engine(config())
        port = (await engine.start())["TCP"][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"\r\n\r\n")  # RFC 5626 ping
            assert await asyncio.wait_for(reader.readexactly(2), 2) == b"\r\n"
            writer.write(options(400, port, "TCP"))
            buf = b""
            while (n := frame_length(buf)) is None:
                buf += await asyncio.wait_for(reader.read(4096), 2)
            resp = parse(buf[:n], stream=True)
            assert isinstance(resp, Response)
            assert resp.status == 200
            assert resp.call_id == "opt-400@test"
        finally:
            writer.close()
            await engine.stop()

    asyncio.run(main())


def test_websocket_options_round_trip() -> None:
    async def main() -> None:
        engine = Engine(config())
        port = (await engine.start())["WS"][1]
        try:
            async with connect(f"ws://127.0.0.1:{port}", subprotocols=["sip"]) as ws:  # type: ignore[list-item]
                assert ws.subprotocol == "sip"
                await ws.send(options(500, port, "WS").decode())
                frame = await asyncio.wait_for(ws.recv(), 2)
                resp = parse(frame.encode() if isinstance(frame, str) else frame)
                assert isinstance(resp, Response)
                assert resp.status == 200
                assert resp.call_id == "opt-500@test"
        finally:
            await engine.stop()

    asyncio.run(main())


def test_invite_client_transaction_retransmits_with_timer_a_doubling() -> None:
    async def main() -> None:
        t1 = 0.02
        engine = Engine(config(timers=Timers(t1=t1, t2=0.16, t4=0.2), tcp_port=None))
        await engine.start()
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        silent.setblocking(False)
        port = silent.getsockname()[1]
        loop = asyncio.get_running_loop()
        try:
            invite = Request(
                "INVITE",
                SipURI("127.0.0.1", "bob", port=port),
                [
                    ("Max-Forwards", "70"),
                    ("From", "<sip:alice@127.0.0.1>;tag=a1"),
                    ("To", "<sip:bob@127.0.0.1>"),
                    ("Call-ID", "timer-a@test"),
                    ("CSeq", "1 INVITE"),
                ],
            )
            tx = engine.transactions.send_request(invite, Target("UDP", "127.0.0.1", port))
            arrivals: list[float] = []
            start = time.monotonic()
            while not tx.future.done():
                try:
                    await asyncio.wait_for(loop.sock_recv(silent, 65536), 0.05)
                    arrivals.append(time.monotonic() - start)
                except TimeoutError:
                    pass
            final = tx.future.result()
            assert final.status == 408  # Timer B fired after 64*T1
            # sends at 0, T1, 3T1, 7T1, 15T1, 31T1, 63T1: 7 sends within Timer B's 64*T1
            assert tx.sends == 7
            assert len(arrivals) >= 6
            gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
            # each gap roughly doubles the previous one (allow scheduling jitter)
            for a, b in zip(gaps[1:], gaps[2:], strict=False):
                assert 1.4 < b / a < 2.8, gaps
        finally:
            silent.close()
            await engine.stop()

    asyncio.run(main())
