"""rtpengine's CPU per WebRTC <-> RTP call, with and without transcoding (Opus <-> G.711).

    .venv/bin/python bench/bench_webrtc.py [--calls 10] [--seconds 20]

What a browser softphone's call costs the media relay, measured on this machine:

1. rtpengine (userspace, as ``make run`` starts it) on its own ng port.
2. Debian's Chromium (Playwright, headless) with a fake microphone: one RTCPeerConnection per
   call, sending a tone — a real WebRTC endpoint: ICE, DTLS-SRTP, rtcp-mux.
3. Each browser offer goes to rtpengine with the engine's own parameters for a browser calling
   a desk phone (``telephony/sip/calls/profiles.py``: WebRTC to plain RTP, transcoding when the
   offer has no G.711);
   the other side of each call is a plain RTP endpoint here (a UDP socket sending G.711 µ-law
   every 20 ms and counting what arrives), answering G.711.
4. Two rounds: **passthrough** (the browser offers G.711 too: rtpengine only turns SRTP into
   RTP) and **transcoding** (the browser's offer is cut to Opus alone, so rtpengine decodes and
   encodes every frame both ways). Each round measures rtpengine's CPU time (``/proc``) over a
   steady window with every call flowing, and checks media flows both ways (packets the RTP
   side got, and the browser's ``packetsReceived``).

Prints CPU milliseconds per call-second for each round and their ratio. No database, no Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_media_calls import rtpengine  # noqa: E402
from telephony.sip.calls.profiles import Profile, ng_params, transcoding  # noqa: E402
from telephony.sip.media import RtpEngine  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
# Opus alone (transcoding round) or G.711 alone (passthrough round) of the browser's offer.
KEEP = {"transcode": ("opus",), "passthrough": ("PCMU",)}

PAGE = """
window.calls = [];
window.startCall = async () => {
  if (!window.mic) {
    window.mic = await navigator.mediaDevices.getUserMedia({audio: true});
  }
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTrack(window.mic.getAudioTracks()[0], window.mic);
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  await new Promise(done => {
    if (pc.iceGatheringState === 'complete') return done();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && done();
  });
  window.calls.push(pc);
  return {index: window.calls.length - 1, sdp: pc.localDescription.sdp};
};
window.answerCall = async (index, sdp) => {
  await window.calls[index].setRemoteDescription({type: 'answer', sdp});
};
window.received = async () => {
  let total = 0;
  for (const pc of window.calls) {
    (await pc.getStats()).forEach(s => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') total += s.packetsReceived;
    });
  }
  return total;
};
window.connected = () => window.calls.filter(pc => pc.connectionState === 'connected').length;
"""


def keep_codecs(sdp: str, names: tuple[str, ...]) -> str:
    """The audio section of ``sdp`` with only the payload types of ``names`` (case-blind)."""
    lines = sdp.replace("\r\n", "\n").strip("\n").split("\n")
    wanted = {n.lower() for n in names}
    keep: set[str] = set()
    for line in lines:
        if line.startswith("a=rtpmap:"):
            pt, _, rest = line[len("a=rtpmap:") :].partition(" ")
            if rest.split("/")[0].lower() in wanted:
                keep.add(pt)
    out = []
    for line in lines:
        if line.startswith("m=audio "):
            head = line.split()[:3]
            line = " ".join(head + [pt for pt in line.split()[3:] if pt in keep])
        elif (
            line.startswith(("a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"))
            and line.split(":", 1)[1].split()[0] not in keep
        ):
            continue
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def media_address(sdp: str) -> tuple[str, int]:
    host, port = "", 0
    for line in sdp.splitlines():
        if line.startswith("c=IN IP4 "):
            host = host or line.split()[2]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return host, port


class RtpSide(asyncio.DatagramProtocol):
    """The plain-RTP party of one call: µ-law silence-free tone frames every 20 ms."""

    def __init__(self) -> None:
        self.received = 0
        self.transport: asyncio.DatagramTransport | None = None
        self.ssrc = secrets.randbits(32)
        self.seq = 0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if len(data) > 12 and data[0] >> 6 == 2:
            self.received += 1

    def send_frame(self, target: tuple[str, int], payload: bytes) -> None:
        assert self.transport is not None
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHII", 0x80, 0, self.seq, self.seq * 160, self.ssrc)
        self.transport.sendto(header + payload, target)


def rtp_answer(port: int) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_round(page, ng: RtpEngine, mode: str, calls: int, seconds: float, pid: int):
    loop = asyncio.get_running_loop()
    sides: list[tuple[RtpSide, tuple[str, int]]] = []
    call_ids = []
    tone = bytes((0xFF if (i // 4) % 2 else 0x7F) for i in range(160))  # a square-ish tone
    for _ in range(calls):
        started = await page.evaluate("window.startCall()")
        offer = keep_codecs(started["sdp"], KEEP[mode])
        call_id = f"bench-{mode}-{secrets.token_hex(4)}"
        call_ids.append(call_id)
        # What the engine sends rtpengine for a browser calling a desk phone (profiles.py).
        codec = transcoding(offer.encode(), Profile.RTP, recorded=False)
        to_rtp = await ng.command(
            "offer",
            sdp=offer.encode(),
            call_id=call_id,
            from_tag="browser",
            replace=["origin", "session-connection"],
            **ng_params(Profile.RTP),
            **({"codec": codec} if codec else {}),
        )
        target = media_address(str(to_rtp["sdp"]))
        transport, side = await loop.create_datagram_endpoint(RtpSide, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        back = await ng.command(
            "answer",
            sdp=rtp_answer(port),
            call_id=call_id,
            from_tag="browser",
            to_tag="phone",
            replace=["origin", "session-connection"],
            **ng_params(Profile.WEBRTC, answer=True),
        )
        await page.evaluate(
            "([i, sdp]) => window.answerCall(i, sdp)", [started["index"], back["sdp"]]
        )
        sides.append((side, target))

    async def pump() -> None:
        next_at = loop.time()
        while True:
            for side, target in sides:
                side.send_frame(target, tone)
            next_at += 0.02
            await asyncio.sleep(max(0, next_at - loop.time()))

    sender = asyncio.create_task(pump())
    try:
        deadline = time.monotonic() + 20
        while await page.evaluate("window.connected()") < calls:
            if time.monotonic() > deadline:
                raise SystemExit(f"{mode}: only {await page.evaluate('window.connected()')} "
                                 f"of {calls} browser calls connected")  # fmt: skip
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # DTLS done, jitter buffers filled: the steady state
        got_rtp = sum(s.received for s, _ in sides)
        got_browser = await page.evaluate("window.received()")
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        await asyncio.sleep(seconds)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        rtp_rate = (sum(s.received for s, _ in sides) - got_rtp) / (t1 - t0) / calls
        browser_rate = (await page.evaluate("window.received()") - got_browser) / (t1 - t0) / calls
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        await page.evaluate("window.calls.forEach(pc => pc.close()); window.calls = []")
        for side, _ in sides:
            if side.transport is not None:
                side.transport.close()
        for call_id in call_ids:
            with contextlib.suppress(Exception):
                await ng.delete(call_id)
    per_call_second = (cpu1 - cpu0) / ((t1 - t0) * calls) * 1000
    return per_call_second, rtp_rate, browser_rate


async def run(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        ng_port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="bench-webrtc-") as tmp, rtpengine(ng_port) as proc:
        tone = Path(tmp) / "tone.wav"
        sox = ["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(tone)]
        await asyncio.to_thread(
            subprocess.run, [*sox, "synth", "60", "sine", "1000", "vol", "0.5"], check=True
        )
        ng = RtpEngine("127.0.0.1", ng_port)
        await ng.open()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[
                    "--use-fake-device-for-media-stream",
                    "--use-fake-ui-for-media-stream",
                    f"--use-file-for-fake-audio-capture={tone}",
                    "--allow-loopback-in-peer-connection",
                ],
            )
            page = await browser.new_page()
            # A secure context (localhost), without a server: the page is served by Playwright.
            html = f"<!doctype html><title>bench</title><script>{PAGE}</script>"
            await page.route(
                "http://localhost/bench",
                lambda route: route.fulfill(body=html, content_type="text/html"),
            )
            await page.goto("http://localhost/bench")
            print(
                f"rtpengine, {args.calls} WebRTC <-> RTP calls, {args.seconds:.0f} s steady window"
            )
            print(f"{'round':>12} {'CPU ms/call-s':>14} {'RTP pkts/s':>11} {'browser pkts/s':>15}")
            results = {}
            for mode in ("passthrough", "transcode"):
                cost, rtp_rate, browser_rate = await one_round(
                    page, ng, mode, args.calls, args.seconds, proc.pid
                )
                results[mode] = cost
                print(f"{mode:>12} {cost:>14.2f} {rtp_rate:>11.1f} {browser_rate:>15.1f}")
                if rtp_rate < 40 or browser_rate < 40:
                    raise SystemExit(f"{mode}: media did not flow both ways at 50 packets/s")
            await browser.close()
        ng.close()
    ratio = results["transcode"] / results["passthrough"] if results["passthrough"] else 0
    print(f"transcoding costs {ratio:.1f}x passthrough; "
          f"one core carries ~{1000 / results['transcode']:.0f} transcoded or "
          f"~{1000 / results['passthrough']:.0f} passthrough WebRTC calls")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10, help="concurrent calls per round")
    ap.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
