"""Micro-benchmark of the SIP message layer: parse and serialise typical messages, µs per op.

    .venv/bin/python bench/bench_parse.py [--seconds 0.1] [--repeat 15] [--profile]

No database, no network: pure CPU in this process. Each case runs for about ``--seconds``,
``--repeat`` times; the best (least disturbed) figure is printed. Time is this process's CPU time
(``time.process_time``), not the wall clock: the machine is shared, and time spent waiting for a
core while other processes run is not the parser's. The messages are what SIPp and phones send in
``bench_sip_register`` / ``bench_sip_calls``: a REGISTER with and without digest credentials, an
INVITE with SDP, and the responses the engine builds for them.

``--profile`` prints a cProfile of the registrar-shaped case (the hot path of a registration).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telephony.sip.message import Request, Response, make_response, parse  # noqa: E402
from telephony.sip.transport import Source, TransportLayer  # noqa: E402

REGISTER = (
    b"REGISTER sip:bench.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-12345-1-0;rport\r\n"
    b"From: <sip:100000@bench.test>;tag=12345SIPpTag001\r\n"
    b"To: <sip:100000@bench.test>\r\n"
    b"Call-ID: 1-12345@127.0.0.1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:100000@127.0.0.1:5071;transport=UDP>\r\n"
    b"Max-Forwards: 70\r\n"
    b"Expires: 3600\r\n"
    b"User-Agent: SIPp-register\r\n"
    b"Content-Length: 0\r\n\r\n"
)

REGISTER_AUTH = REGISTER.replace(b"CSeq: 1 REGISTER", b"CSeq: 2 REGISTER").replace(
    b"Max-Forwards: 70\r\n",
    b'Authorization: Digest username="100000",realm="bench.test",'
    b'uri="sip:bench.test",nonce="ZmxvYXQ6MTczMjYzNjQ1Ni4xMjM0NTY3OmFiY2RlZjAxMjM0NTY3ODk",'
    b'response="3f2b5c8d9e0a1b2c3d4e5f6071829304",algorithm=MD5,'
    b'opaque="b8c9d0e1f2a3b4c5",qop=auth,cnonce="6b8b4567",nc=00000001\r\n'
    b"Max-Forwards: 70\r\n",
)

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    b"INVITE sip:100001@bench.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-12345-7-2;rport\r\n"
    b"From: <sip:100000@bench.test>;tag=12345SIPpTag007\r\n"
    b"To: <sip:100001@bench.test>\r\n"
    b"Call-ID: 7-12345@127.0.0.1\r\n"
    b"CSeq: 2 INVITE\r\n"
    b"Contact: <sip:100000@127.0.0.1:5071;transport=UDP>\r\n"
    b'Proxy-Authorization: Digest username="100000",realm="bench.test",'
    b'uri="sip:100001@bench.test",nonce="ZmxvYXQ6MTczMjYzNjQ1Ni4xMjM0NTY3OmFiY2RlZjAxMjM0NTY3ODk",'
    b'response="3f2b5c8d9e0a1b2c3d4e5f6071829304",algorithm=MD5\r\n'
    b"Max-Forwards: 70\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

# What the callee's UA answers the engine's outgoing INVITE with.
OK_INVITE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKa1b2c3d4e5f60718;rport=5060\r\n"
    b"From: <sip:100000@bench.test>;tag=5f3a9c1d2e4b\r\n"
    b"To: <sip:100001@bench.test>;tag=9876SIPpTag01\r\n"
    b"Call-ID: 0b1c2d3e4f5a6b7c8d9e@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:100001@127.0.0.1:5072;transport=UDP>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


class _NullConn:
    kind = "UDP"
    closed = False

    def send(self, data: bytes, addr: object = None) -> None:
        pass


SOURCE = Source("UDP", ("127.0.0.1", 5071), ("127.0.0.1", 5060), _NullConn())  # type: ignore[arg-type]


def registrar_path(data: bytes) -> bytes:
    """What the engine does with a REGISTER apart from auth and Redis: parse, stamp the Via,
    match the transaction, read what the registrar reads, build and serialise the answer."""
    req = parse(data)
    assert isinstance(req, Request)
    TransportLayer._stamp_via(req, SOURCE)
    via = req.top_via
    _ = (via.branch, via.host, via.port, via.is_rfc3261, req.method)
    _ = (req.to.uri, req.call_id, req.cseq.seq, req.get("Authorization"), req.tokens("Require"))
    _ = ([c.expires for c in req.contacts], req.expires, req.get("User-Agent"), req.contact_star)
    resp = make_response(
        req,
        200,
        to_tag="a1b2c3d4e5f6",
        headers=[
            ("Server", "Bench PBX"),
            ("Contact", "<sip:100000@127.0.0.1:5071;transport=UDP>;expires=3600"),
            ("Date", "Tue, 26 Nov 2024 10:00:00 GMT"),
        ],
    )
    out = bytes(resp)
    # the transport reads the top Via to address the response
    v = resp.top_via
    _ = (v.received, v.rport, v.host, v.port)
    return out


def invite_path(data: bytes) -> bytes:
    """Parse an INVITE, read what the B2BUA reads, answer 100 Trying."""
    req = parse(data)
    assert isinstance(req, Request)
    TransportLayer._stamp_via(req, SOURCE)
    _ = (req.top_via.branch, req.from_.tag, req.to.tag, req.to.uri, req.call_id, req.cseq)
    _ = (req.contacts, req.routes, req.content_type, req.body, req.get("Proxy-Authorization"))
    return bytes(make_response(req, 100))


def cases() -> list[tuple[str, Callable[[], object]]]:
    reg = parse(REGISTER_AUTH)
    inv = parse(INVITE)
    ok = parse(OK_INVITE)
    assert isinstance(reg, Request)
    assert isinstance(inv, Request)
    assert isinstance(ok, Response)
    built = make_response(reg, 401, to_tag="a1b2c3d4e5f6", headers=[("Server", "Bench PBX")])
    return [
        ("parse REGISTER (no credentials)", lambda: parse(REGISTER)),
        ("parse REGISTER with Authorization", lambda: parse(REGISTER_AUTH)),
        ("parse INVITE with SDP", lambda: parse(INVITE)),
        ("parse 200 OK to INVITE with SDP", lambda: parse(OK_INVITE)),
        ("bytes(parsed REGISTER)", lambda: bytes(reg)),
        ("bytes(parsed INVITE)", lambda: bytes(inv)),
        ("make_response(REGISTER, 401)", lambda: make_response(reg, 401, to_tag="a1b2c3")),
        ("bytes(built 401)", lambda: bytes(built)),
        ("registrar path (parse .. bytes(200))", lambda: registrar_path(REGISTER_AUTH)),
        ("INVITE path (parse .. bytes(100))", lambda: invite_path(INVITE)),
    ]


def measure(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Best µs per call over ``repeat`` runs of about ``seconds`` each."""
    n = 1
    while True:  # calibrate the inner loop count
        t0 = time.process_time()
        for _ in range(n):
            fn()
        dt = time.process_time() - t0
        if dt >= seconds / 10:
            break
        n *= 2
    loops = max(1, int(n * seconds / dt / 10) * 10)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(loops):
            fn()
        best = min(best, (time.process_time() - t0) / loops)
    return best * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=0.1, help="per run of a case")
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"SIP message micro-benchmark (Python {sys.version.split()[0]}, load {load:.1f})")
    for name, fn in cases():
        print(f"  {name:<40} {measure(fn, args.seconds, args.repeat):8.1f} µs")
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(20000):
            registrar_path(REGISTER_AUTH)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
    print(f"  (load at the end {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
