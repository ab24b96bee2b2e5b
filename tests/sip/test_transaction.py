"""Transaction layer on loopback UDP: Timer J absorbers, handlers run at once, client sends.

Real sockets and the real engine core with shortened timers (T1 = 20 ms, so Timer J = 1.28 s).
"""

from __future__ import annotations

import asyncio
import contextvars
import time

from telephony.sip.message import Request, Response, SipURI, parse
from telephony.sip.server import Engine, EngineConfig
from telephony.sip.transaction import ServerTransaction, Timers
from telephony.sip.transport import Target

T1 = 0.02


def config() -> EngineConfig:
    return EngineConfig(
        host="127.0.0.1",
        udp_port=0,
        tcp_port=None,
        product="TestPBX",
        timers=Timers(t1=T1, t2=8 * T1, t4=10 * T1),
    )


def request(method: str, port: int, n: int) -> bytes:
    return (
        f"{method} sip:pbx@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKtx{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@127.0.0.1>;tag=p1\r\n"
        "To: <sip:pbx@127.0.0.1>\r\n"
        f"Call-ID: tx-{n}@test\r\n"
        f"CSeq: {n} {method}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Client(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.queue.put_nowait(data)

    async def response(self) -> Response:
        msg = parse(await asyncio.wait_for(self.queue.get(), 2))
        assert isinstance(msg, Response)
        return msg


async def client() -> tuple[asyncio.DatagramTransport, Client]:
    loop = asyncio.get_running_loop()
    return await loop.create_datagram_endpoint(Client, local_addr=("127.0.0.1", 0))


def test_completed_non_invite_absorbs_retransmissions_until_timer_j() -> None:
    """A phone's REGISTER retransmission gets the same answer, not a second registration;
    after Timer J the layer has forgotten the transaction and holds nothing for it."""

    async def main() -> None:
        engine = Engine(config())
        calls: list[ServerTransaction] = []

        async def register(tx: ServerTransaction) -> None:
            calls.append(tx)
            await asyncio.sleep(0)
            tx.respond(200, headers=[("Expires", "60")])

        engine.handle("REGISTER", register)
        port = (await engine.start())["UDP"][1]
        transport, proto = await client()
        layer = engine.transactions
        try:
            raw = request("REGISTER", port, 1)
            transport.sendto(raw, ("127.0.0.1", port))
            first = await proto.response()
            assert first.status == 200
            done_at = time.monotonic()
            # what the layer keeps for Timer J is not the transaction itself
            assert len(layer.servers) == 1
            assert not isinstance(next(iter(layer.servers.values())), ServerTransaction)
            for _ in range(3):
                transport.sendto(raw, ("127.0.0.1", port))
                again = await proto.response()
                assert bytes(again) == bytes(first)
            assert len(calls) == 1
            # Timer J (64*T1) expires the absorber; the layer is empty again
            while layer.servers:
                await asyncio.sleep(T1)
                assert time.monotonic() - done_at < 64 * T1 * 1.5 + 1
            # not at once (done_at is taken after the answer arrived, hence the slack)
            assert time.monotonic() - done_at >= 64 * T1 * 0.5
            # the same request now is a new transaction
            transport.sendto(raw, ("127.0.0.1", port))
            assert (await proto.response()).status == 200
            assert len(calls) == 2
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_handlers_answer_with_and_without_suspending() -> None:
    """A handler that answers before its first await is answered as reliably as one that waits
    for something, and a failing handler still answers 500 either way."""

    async def main() -> None:
        engine = Engine(config())

        async def message(tx: ServerTransaction) -> None:
            body = tx.request.get("Subject")
            if body == "now":
                tx.respond(202)
            elif body == "later":
                await asyncio.sleep(T1)
                tx.respond(200)
            elif body == "fail-now":
                raise RuntimeError("boom")
            else:
                await asyncio.sleep(0)
                raise RuntimeError("boom later")

        engine.handle("MESSAGE", message)
        port = (await engine.start())["UDP"][1]
        transport, proto = await client()
        try:
            expected = {"now": 202, "later": 200, "fail-now": 500, "fail-later": 500}
            for n, (subject, status) in enumerate(expected.items(), start=10):
                raw = request("MESSAGE", port, n).replace(
                    b"Content-Length", f"Subject: {subject}\r\nContent-Length".encode()
                )
                transport.sendto(raw, ("127.0.0.1", port))
                resp = await proto.response()
                assert (resp.status, resp.call_id) == (status, f"tx-{n}@test"), subject
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_client_request_over_udp_is_sent_before_send_request_returns() -> None:
    async def main() -> None:
        engine = Engine(config())
        await engine.start()
        transport, proto = await client()
        port = transport.get_extra_info("sockname")[1]
        try:
            req = Request(
                "OPTIONS",
                SipURI("127.0.0.1", "peer", port=port),
                [
                    ("Max-Forwards", "70"),
                    ("From", "<sip:pbx@127.0.0.1>;tag=e1"),
                    ("To", "<sip:peer@127.0.0.1>"),
                    ("Call-ID", "client-1@test"),
                    ("CSeq", "1 OPTIONS"),
                ],
            )
            tx = engine.transactions.send_request(req, Target("UDP", "127.0.0.1", port))
            assert tx.sends == 1  # no task in between
            got = parse(await asyncio.wait_for(proto.queue.get(), 2))
            assert isinstance(got, Request)
            assert got.call_id == "client-1@test"
            assert got.top_via.branch == tx.branch
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_invite_rejected_then_acked_resolves_acked() -> None:
    async def main() -> None:
        engine = Engine(config())
        seen: list[ServerTransaction] = []

        def invite(tx: ServerTransaction) -> None:
            seen.append(tx)
            tx.respond(486)

        engine.handle("INVITE", invite)
        port = (await engine.start())["UDP"][1]
        transport, proto = await client()
        try:
            raw = request("INVITE", port, 20)
            transport.sendto(raw, ("127.0.0.1", port))
            resp = await proto.response()
            assert resp.status == 486
            to = resp.get("To") or ""
            ack = (
                raw.replace(b"INVITE sip", b"ACK sip")
                .replace(b"20 INVITE", b"20 ACK")
                .replace(b"To: <sip:pbx@127.0.0.1>", f"To: {to}".encode())
            )
            transport.sendto(ack, ("127.0.0.1", port))
            acked = await asyncio.wait_for(seen[0].acked, 2)
            assert acked is not None
            assert acked.method == "ACK"
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("SEEN", default="fresh")


def test_each_handler_runs_in_its_own_context() -> None:
    """What a handler puts in a context variable before its first await stays with it, as when
    every handler ran in a task of its own."""

    async def main() -> None:
        engine = Engine(config())

        async def message(tx: ServerTransaction) -> None:
            before = SEEN.get()
            SEEN.set("dirty")
            tx.respond(200, headers=[("Subject", before)])

        engine.handle("MESSAGE", message)
        port = (await engine.start())["UDP"][1]
        transport, proto = await client()
        try:
            for n in (30, 31):
                transport.sendto(request("MESSAGE", port, n), ("127.0.0.1", port))
                resp = await proto.response()
                assert resp.get("Subject") == "fresh"
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())


def test_ringing_invite_outlives_timer_b() -> None:
    """An INVITE answered 180 stays alive past 64*T1 (Timer B ends only a silent INVITE);
    the 200 that comes later still completes it."""

    async def main() -> None:
        from telephony.sip.message import make_response

        engine = Engine(config())
        await engine.start()
        transport, proto = await client()
        port = transport.get_extra_info("sockname")[1]
        try:
            req = Request(
                "INVITE",
                SipURI("127.0.0.1", "phone", port=port),
                [
                    ("Max-Forwards", "70"),
                    ("From", "<sip:pbx@127.0.0.1>;tag=r1"),
                    ("To", "<sip:phone@127.0.0.1>"),
                    ("Call-ID", "ringing-1@test"),
                    ("CSeq", "1 INVITE"),
                    ("Contact", "<sip:pbx@127.0.0.1>"),
                ],
            )
            tx = engine.transactions.send_request(req, Target("UDP", "127.0.0.1", port))
            invite = parse(await asyncio.wait_for(proto.queue.get(), 2))
            assert isinstance(invite, Request)
            ringing = make_response(invite, 180, to_tag="ph1")
            transport.sendto(bytes(ringing), ("127.0.0.1", engine.addresses["UDP"][1]))
            await asyncio.sleep(64 * T1 * 1.5)  # past Timer B
            assert not tx.future.done()
            ok = make_response(invite, 200, to_tag="ph1")
            transport.sendto(bytes(ok), ("127.0.0.1", engine.addresses["UDP"][1]))
            final = await asyncio.wait_for(tx.future, 2)
            assert final.status == 200
        finally:
            transport.close()
            await engine.stop()

    asyncio.run(main())
