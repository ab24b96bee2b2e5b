"""A call's raw recording made listenable: rtpengine's pcap (both directions of the call's
RTP in one capture) to a stereo WAV — left the caller, right the callee, 8 kHz 16-bit — and
the WAV to an MP3 (lameenc).

The capture is read as it is written by rtpengine (``--recording-method=pcap``): classic
pcap (microseconds, either byte order), link type raw IP (101) by default or Ethernet with
``--recording-format=eth``: the only two it writes. Each packet appears once, as received, from
its sender's address: the caller's stream is the one from the address the engine reported
(``Recording.caller_address``), every other stream is the callee's.

Audio is placed by RTP timestamp from the moment its stream (SSRC) first arrived, so pauses
and silence keep their length and reordered packets land where they belong; a lost packet is
silence. A new SSRC (a re-INVITE, a transfer) starts at its own arrival time; a timestamp that
strays more than :data:`REANCHOR_SECONDS` from the arrival clock (a sender that jumped) is
re-anchored there. G.711 µ-law and A-law are decoded; DTMF events (RFC 4733), comfort noise,
other codecs and malformed packets are skipped.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import struct
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field

import lameenc
import numpy as np

from telephony.media.codecs import ALAW_DECODE, PCMA, PCMU, ULAW_DECODE

log = logging.getLogger(__name__)

__all__ = [
    "ConversionError",
    "Packet",
    "pcap_to_wav",
    "pcm_to_mp3",
    "read_pcap",
    "wav_source_to_wav",
    "wav_to_mp3",
]

RATE = 8000
REANCHOR_SECONDS = 2.0
# A recording is never longer than this (a corrupt capture cannot make a huge file).
MAX_SECONDS = 12 * 3600

# The media server's G.711 tables (one definition of the codec in the project).
DECODERS = {PCMU: ULAW_DECODE, PCMA: ALAW_DECODE}  # static payload types of RFC 3551 (8 kHz clock)

# pcap link types rtpengine writes (--recording-format=raw / eth)
_LINK_ETHERNET, _LINK_RAW = 1, 101


class ConversionError(Exception):
    """The file is not a capture this module reads (not pcap, an unknown link type)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One UDP datagram of the capture: when it arrived, from where, to where, its payload."""

    time: float
    src: str
    dst: str
    payload: bytes


def _ip_udp(data: bytes) -> tuple[str, str, bytes] | None:
    """(src "ip:port", dst "ip:port", UDP payload) of an IPv4/IPv6 packet, else None."""
    if not data:
        return None
    version = data[0] >> 4
    if version == 4:
        ihl = (data[0] & 0x0F) * 4
        if ihl < 20 or len(data) < ihl + 8 or data[9] != 17:
            return None
        frag = struct.unpack("!H", data[6:8])[0]
        if frag & 0x1FFF:
            return None  # a later fragment: no UDP header
        src = ".".join(str(b) for b in data[12:16])
        dst = ".".join(str(b) for b in data[16:20])
        udp = data[ihl:]
    elif version == 6:
        if len(data) < 48 or data[6] != 17:
            return None  # extension headers are not used for RTP
        src = f"[{ipaddress.IPv6Address(data[8:24])}]"
        dst = f"[{ipaddress.IPv6Address(data[24:40])}]"
        udp = data[40:]
    else:
        return None
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    end = min(len(udp), length) if length >= 8 else len(udp)
    return f"{src}:{sport}", f"{dst}:{dport}", udp[8:end]


def _network(link: int, frame: bytes) -> bytes | None:
    """The IP packet inside a frame of link type ``link`` (raw IP or Ethernet)."""
    if link == _LINK_RAW:
        return frame
    return frame[14:] if frame[12:14] in (b"\x08\x00", b"\x86\xdd") else None  # IPv4, IPv6


def read_pcap(path: str) -> Iterator[Packet]:
    """The UDP datagrams of a classic pcap file, in file order. A truncated last record ends
    the file; a frame that is not UDP over IP is skipped."""
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            raise ConversionError("not a pcap file (too short)")
        magic = head[:4]
        if magic == b"\xd4\xc3\xb2\xa1":
            endian = "<"
        elif magic == b"\xa1\xb2\xc3\xd4":
            endian = ">"
        else:
            raise ConversionError("not a pcap file (unknown magic)")
        link = struct.unpack(endian + "I", head[20:24])[0] & 0x0FFFFFFF
        if link not in (_LINK_RAW, _LINK_ETHERNET):
            raise ConversionError(f"unsupported pcap link type {link}")
        record = struct.Struct(endian + "IIII")
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            sec, frac, incl, _orig = record.unpack(rh)
            if incl > 262144:
                log.warning("pcap %s: record of %d bytes, file ends there", path, incl)
                return
            frame = f.read(incl)
            if len(frame) < incl:
                return
            ip = _network(link, frame)
            parsed = _ip_udp(ip) if ip else None
            if parsed is not None:
                yield Packet(sec + frac * 1e-6, parsed[0], parsed[1], parsed[2])


@dataclass(slots=True)
class _Rtp:
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> _Rtp | None:
    """The RTP header fields and payload (CSRCs, extension and padding removed); None for
    anything that is not RTP version 2 or is cut short (RTCP included)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    pt = data[1] & 0x7F
    if 72 <= pt <= 76:
        return None  # RTCP on the RTP port (rtcp-mux)
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:  # header extension
        if len(data) < offset + 4:
            return None
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2 : offset + 4])[0]
    end = len(data)
    if data[0] & 0x20 and end > offset:  # padding
        end -= data[-1]
    if end <= offset:
        return None
    seq, ts, ssrc = struct.unpack("!HII", data[2:12])
    return _Rtp(pt, seq, ts, ssrc, data[offset:end])


@dataclass
class _Track:
    """One channel being assembled: decoded chunks at sample offsets."""

    chunks: list[tuple[int, np.ndarray]] = field(default_factory=list)
    # ssrc -> (anchor sample, RTP timestamp at the anchor)
    anchors: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(self, arrival: int, rtp: _Rtp) -> None:
        table = DECODERS.get(rtp.pt)
        if table is None:
            return  # DTMF (telephone-event), comfort noise, a codec not decoded here
        anchor = self.anchors.get(rtp.ssrc)
        if anchor is not None:
            delta = ((rtp.ts - anchor[1] + 2**31) % 2**32) - 2**31
            at = anchor[0] + delta
            if abs(at - arrival) > REANCHOR_SECONDS * RATE:
                anchor = None
        if anchor is None:
            anchor = (arrival, rtp.ts)
            self.anchors[rtp.ssrc] = anchor
            at = arrival
        if at < 0 or at > MAX_SECONDS * RATE:
            return
        self.chunks.append((at, table[np.frombuffer(rtp.payload, dtype=np.uint8)]))

    def end(self) -> int:
        return max((at + len(pcm) for at, pcm in self.chunks), default=0)

    def render(self, length: int) -> np.ndarray:
        out = np.zeros(length, dtype=np.int16)
        for at, pcm in self.chunks:
            n = min(len(pcm), length - at)
            if n > 0:
                out[at : at + n] = pcm[:n]
        return out


def _caller_source(sources: list[str], caller: str) -> str | None:
    """Which source address is the caller's: the reported one; else one with its port (a
    NAT may show another address); else the first stream of the capture."""
    if caller in sources:
        return caller
    port = caller.rpartition(":")[2]
    by_port = [s for s in sources if port and s.rpartition(":")[2] == port]
    if len(by_port) == 1:
        return by_port[0]
    if caller:
        log.info(
            "recording: caller %s not among the streams %s; the first is taken", caller, sources
        )
    return sources[0] if sources else None


def pcap_to_wav(source: str, dest: str, *, caller: str = "") -> float:
    """Write the stereo WAV of capture ``source`` at ``dest``; returns its length in seconds.
    ``caller``: the "ip:port" the caller's RTP came from (the left channel)."""
    packets: list[tuple[Packet, _Rtp]] = []
    for packet in read_pcap(source):
        rtp = parse_rtp(packet.payload)
        if rtp is not None:
            packets.append((packet, rtp))
    sources = list(dict.fromkeys(p.src for p, _ in packets))
    left_source = _caller_source(sources, caller)
    # rtpengine records what it receives; should a capture hold the forwarded copies too
    # (sent by rtpengine to a party), they repeat a stream already seen: skip them.
    seen_left = {r.ssrc for p, r in packets if p.src == left_source}
    left, right = _Track(), _Track()
    start = min((p.time for p, _ in packets), default=0.0)
    for p, r in packets:
        arrival = round((p.time - start) * RATE)
        if p.src == left_source:
            left.add(arrival, r)
        elif r.ssrc not in seen_left:
            right.add(arrival, r)
    length = min(max(left.end(), right.end()), MAX_SECONDS * RATE)
    if length == 0:
        raise ConversionError("no G.711 audio in the capture")
    stereo = np.empty((length, 2), dtype="<i2")
    stereo[:, 0] = left.render(length)
    stereo[:, 1] = right.render(length)
    with wave.open(dest, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(stereo.tobytes())
    return length / RATE


def _mp3_encoder(rate: int, channels: int, bitrate: int) -> lameenc.Encoder:
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(bitrate)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(5)
    return encoder


def wav_to_mp3(source: str, dest: str, *, bitrate: int = 32) -> None:
    """The MP3 of a 16-bit WAV (mono or stereo), with lameenc; stereo stays stereo."""
    with wave.open(source, "rb") as w:
        channels, rate, width = w.getnchannels(), w.getframerate(), w.getsampwidth()
        if width != 2:
            raise ConversionError(f"{source}: {8 * width}-bit WAV, 16-bit expected")
        encoder = _mp3_encoder(rate, channels, bitrate)
        with open(dest, "wb") as out:
            while True:
                frames = w.readframes(RATE * 10)
                if not frames:
                    break
                out.write(encoder.encode(frames))
            out.write(encoder.flush())


def pcm_to_mp3(pcm: np.ndarray, dest: str, *, bitrate: int = 32) -> None:
    """The MP3 of 8 kHz mono 16-bit samples (``telephony.media.audio.read_wav`` reads any WAV
    so): a voicemail message for mail (``audio.tasks``), with the recordings' encoder."""
    encoder = _mp3_encoder(RATE, 1, bitrate)
    with open(dest, "wb") as out:
        out.write(encoder.encode(np.ascontiguousarray(pcm, dtype="<i2").tobytes()))
        out.write(encoder.flush())


def wav_source_to_wav(source: str, dest: str) -> float:
    """A media-server recording (already a stereo 8 kHz 16-bit WAV): copied as it is, its
    length returned; any other WAV is refused."""
    with wave.open(source, "rb") as w:
        if w.getsampwidth() != 2 or w.getframerate() != RATE or w.getnchannels() not in (1, 2):
            raise ConversionError(f"{source}: not an 8 kHz 16-bit WAV")
        seconds = w.getnframes() / RATE
    shutil.copyfile(source, dest)
    return seconds
