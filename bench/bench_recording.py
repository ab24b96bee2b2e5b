"""Call recording conversion: how long one call-minute takes from rtpengine's pcap to the
stereo WAV and to the MP3 (``audio.recordings``).

    .venv/bin/python bench/bench_recording.py [--minutes 1,5,30] [--repeat 3]

Writes a capture as rtpengine does (classic pcap, raw IP link type, every RTP packet once as
received: G.711 µ-law, 20 ms frames, a tone each way, with a sprinkle of DTMF packets and one
lost packet in a hundred), then times ``pcap_to_wav`` and ``wav_to_mp3`` on it (best of
``--repeat``) and prints seconds per call-minute and the real-time factor. No database, no
Redis; the files go to a temporary directory, removed at the end. Target: well under a second
per call-minute on one core, so a worker keeps up with hundreds of concurrent recorded calls.
"""

from __future__ import annotations

import argparse
import math
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from audio.recordings import pcap_to_wav, wav_to_mp3  # noqa: E402
from telephony.media.codecs import ulaw_encode  # noqa: E402

RATE, FRAME = 8000, 160


def _frames(freq: float) -> list[bytes]:
    """One second of µ-law tone as 50 frames (looped)."""
    pcm = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / RATE))) for i in range(RATE)
    )
    law = ulaw_encode(np.frombuffer(pcm, "<i2"))
    return [law[i : i + FRAME] for i in range(0, RATE, FRAME)]


def write_capture(path: str, minutes: float) -> int:
    """A pcap of a two-way call of ``minutes``; returns its packet count."""
    caller, callee = _frames(440.0), _frames(1000.0)
    hosts = {
        "a": (bytes([10, 0, 0, 1]), 4000, 0xAAAA),
        "b": (bytes([10, 0, 0, 2]), 5000, 0xBBBB),
    }
    engine = bytes([10, 0, 0, 9])
    count = 0
    t0 = 1_700_000_000.0
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i in range(int(minutes * 60 * 50)):
            t = t0 + i * 0.02
            for side, frames in (("a", caller), ("b", callee)):
                if (i * 7 + (side == "b")) % 100 == 3:
                    continue  # lost
                src, port, ssrc = hosts[side]
                pt, payload = 0, frames[i % 50]
                if side == "a" and i % 500 == 250:
                    pt, payload = 101, b"\x05\x0a\x00\xa0"  # a DTMF event
                rtp = struct.pack("!BBHII", 0x80, pt, i & 0xFFFF, (i * FRAME) & 0xFFFFFFFF, ssrc)
                udp = struct.pack("!HHHH", port, 30000, 8 + 12 + len(payload), 0) + rtp + payload
                ip = struct.pack(
                    "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, src, engine
                )
                frame = ip + udp
                f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)))
                f.write(frame)
                count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", default="1,5,30", help="call lengths, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="runs per length (best counts)")
    args = parser.parse_args()
    print(f"{'call':>8} {'packets':>9} {'pcap':>8} {'pcap->wav':>10} {'wav->mp3':>9} "
          f"{'s/min':>7} {'x real time':>11}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as tmp:
        for minutes in (float(m) for m in args.minutes.split(",")):
            pcap, wav, mp3 = (os.path.join(tmp, f"call.{x}") for x in ("pcap", "wav", "mp3"))
            packets = write_capture(pcap, minutes)
            best_wav = best_mp3 = math.inf
            for _ in range(args.repeat):
                start = time.perf_counter()
                seconds = pcap_to_wav(pcap, wav, caller="10.0.0.1:4000")
                middle = time.perf_counter()
                wav_to_mp3(wav, mp3)
                end = time.perf_counter()
                best_wav, best_mp3 = min(best_wav, middle - start), min(best_mp3, end - middle)
            assert abs(seconds - minutes * 60) < 1, seconds
            per_minute = (best_wav + best_mp3) / minutes
            print(
                f"{minutes:>6.1f} m {packets:>9} {os.path.getsize(pcap) / 1e6:>6.1f}MB "
                f"{best_wav:>9.3f}s {best_mp3:>8.3f}s {per_minute:>7.3f} {60 / per_minute:>10.0f}x"
            )


if __name__ == "__main__":
    main()
