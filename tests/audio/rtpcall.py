"""A two-party call through a real rtpengine that records it (``--recording-method=pcap``):
two UDP sockets on loopback play the caller and the callee, each sending G.711 RTP of its own
tone through rtpengine, which writes the call's pcap. What ``audio.recordings`` converts."""

from __future__ import annotations

import asyncio
import glob
import math
import os
import socket
import struct
import time
import uuid

import numpy as np

from telephony.media.codecs import alaw_encode, ulaw_encode
from telephony.sip.media import RtpEngine

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {codec}/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def tone(freq: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    n = int(RATE * seconds)
    return b"".join(
        struct.pack("<h", int(amplitude * math.sin(2 * math.pi * freq * i / RATE)))
        for i in range(n)
    )


def rtp(seq: int, ts: int, ssrc: int, payload: bytes, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def _port(sdp: bytes) -> int:
    for line in sdp.decode().splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise AssertionError(f"no audio port in {sdp!r}")


def record_call(
    ng_port: int,
    recording_dir: str,
    *,
    seconds: float = 2.0,
    caller_hz: float = 440.0,
    callee_hz: float = 1000.0,
    codec: str = "PCMU",
) -> tuple[str, str]:
    """Run one recorded call; returns (the pcap's path, the caller's RTP address "ip:port")."""
    pt = 0 if codec == "PCMU" else 8
    encode = ulaw_encode if codec == "PCMU" else alaw_encode
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(("127.0.0.1", 0))
    b.bind(("127.0.0.1", 0))
    caller = f"127.0.0.1:{a.getsockname()[1]}"
    call_id = uuid.uuid4().hex
    engine = RtpEngine("127.0.0.1", ng_port)

    async def setup() -> tuple[int, int]:
        offer = await engine.offer(
            SDP.format(port=a.getsockname()[1], pt=pt, codec=codec).encode(), call_id, "ft"
        )
        answer = await engine.answer(
            SDP.format(port=b.getsockname()[1], pt=pt, codec=codec).encode(), call_id, "ft", "tt"
        )
        await engine.command("start recording", call_id=call_id)
        return _port(answer), _port(offer)  # where the caller sends, where the callee sends

    async def teardown() -> None:
        await engine.delete(call_id)
        engine.close()

    loop = asyncio.new_event_loop()
    try:
        to_caller_side, to_callee_side = loop.run_until_complete(setup())
        pcm_a = encode(np.frombuffer(tone(caller_hz, seconds), "<i2"))
        pcm_b = encode(np.frombuffer(tone(callee_hz, seconds), "<i2"))
        start = time.monotonic()
        for i in range(len(pcm_a) // FRAME):
            chunk = slice(i * FRAME, (i + 1) * FRAME)
            a.sendto(
                rtp(1000 + i, 5000 + i * FRAME, 0x1111, pcm_a[chunk], pt),
                ("127.0.0.1", to_caller_side),
            )
            b.sendto(
                rtp(2000 + i, 9000 + i * FRAME, 0x2222, pcm_b[chunk], pt),
                ("127.0.0.1", to_callee_side),
            )
            pause = start + (i + 1) * 0.02 - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        time.sleep(0.1)
        loop.run_until_complete(teardown())
    finally:
        loop.close()
        a.close()
        b.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = glob.glob(os.path.join(recording_dir, "pcaps", f"{call_id}*.pcap"))
        if found:
            return found[0], caller
        time.sleep(0.05)
    raise AssertionError(f"rtpengine wrote no pcap in {recording_dir}: {os.listdir(recording_dir)}")
