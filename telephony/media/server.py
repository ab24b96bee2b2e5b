"""The media server: RTP endpoints that play, record and hear DTMF, driven over TCP JSON lines.

One :class:`MediaServer` per process. The SIP engine connects to the control port and opens a
*session* per call leg whose audio needs logic; each session has a UDP socket of its own from
the configured port range. A single 20 ms tick (``loop.call_at`` against the loop's clock, so it
does not drift; a late tick is caught up) sends the next frame of every playing session; frames
come pre-encoded from :class:`~telephony.media.audio.FrameCache`. Received packets are handled
as they arrive: RFC 4733 telephone-events become ``dtmf`` events, audio goes to a recording
and, decoded once, into the ring (:class:`Heard`) the sessions that *follow* this one read
from on their tick (:class:`Follow`: a page's fan-out; mixed, a conference, listen, whisper).

A session belongs to the control connection that opened it: when that connection drops, its
sessions close and their ports are free again (an engine that crashed leaks nothing). Nothing a
peer sends (control line or RTP packet) can raise out of the loop: bad requests get an error
reply, bad packets are dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
import random
import signal
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from telephony.media import audio, codecs, sdp
from telephony.media.dtmf import InbandDetector
from telephony.media.protocol import (
    DIGITS,
    MAX_LINE,
    ProtocolError,
    Request,
    decode,
    encode,
    error_reply,
    event,
    parse_request,
    reply,
)

log = logging.getLogger(__name__)

__all__ = ["MediaConfig", "MediaServer", "serve"]

TICK = 0.020
FRAME = audio.FRAME_SAMPLES
_HEADER = struct.Struct("!BBHII")
_SILENCE_RMS = 300.0  # about -40 dBFS: below it a frame counts as silence for recordings
_SILENCE_TAIL = audio.RATE // 4  # samples of silence kept after the last sound
_LATE = 0.010  # a tick this late (s) counts in late_ticks
# Following (``follow``): each source keeps this many decoded samples (whole frames, 640 ms);
# a follower reads a frame per tick, at most _MAX_LAG behind the newest sample
# (else it skips ahead to _JITTER behind it).
_RING = 32 * audio.FRAME_SAMPLES
_MAX_LAG = 8 * audio.FRAME_SAMPLES
_JITTER = audio.FRAME_SAMPLES
_SENDS = {"sendrecv": True, "sendonly": True, "recvonly": False, "inactive": False}
_RECEIVES = {"sendrecv": True, "recvonly": True, "sendonly": False, "inactive": False}


def _at_most(direction: str, cap: str) -> str:
    """``direction`` restricted to what ``cap`` allows (a listener's answer never sendrecv)."""
    send = _SENDS[direction] and _SENDS[cap]
    receive = _RECEIVES[direction] and _RECEIVES[cap]
    if send and receive:
        return "sendrecv"
    if send:
        return "sendonly"
    return "recvonly" if receive else "inactive"


@dataclass
class MediaConfig:
    control_host: str = "127.0.0.1"
    control_port: int = 2230
    rtp_host: str = "127.0.0.1"
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    rtp_timeout: float = 60.0  # no RTP for this long from a remote that should send: close
    cache_bytes: int = 64 * 1024 * 1024


class OpError(Exception):
    """A request that is well-formed but cannot be done (unknown session, no free port)."""


class PortPool:
    """The even UDP ports of the range, handed out round-robin (a freed port is reused last).

    Even only: a phone (or rtpengine) sends RTCP to the RTP port + 1, which must not be another
    session's RTP socket."""

    def __init__(self, host: str, low: int, high: int) -> None:
        first = low + (low & 1)
        if not 0 < low <= high <= 65535 or first > high:
            raise ValueError(f"bad RTP port range {low}-{high} (it needs an even port)")
        self.host = host
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._free = collections.deque(range(first, high + 1, 2))

    @property
    def free(self) -> int:
        return len(self._free)

    def bind(self) -> socket.socket:
        for _ in range(len(self._free)):
            port = self._free.popleft()
            sock = socket.socket(self.family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                self._free.append(port)  # someone else has it: try it again later
                continue
            sock.setblocking(False)
            return sock
        raise OpError("no free RTP port")

    def release(self, port: int) -> None:
        self._free.append(port)


class Play:
    """Items to send, frame by frame: payloads pre-encoded for ``codec``."""

    __slots__ = (
        "barge",
        "codec",
        "index",
        "loop",
        "notify",
        "offset",
        "on_end",
        "payloads",
        "req_id",
        "task",
    )

    def __init__(
        self,
        req_id: int | None,
        codec: int,
        *,
        loop: bool = False,
        barge: bool = False,
        notify: bool = True,
        on_end: Callable[[str], None] | None = None,
    ) -> None:
        self.req_id = req_id
        self.codec = codec
        self.loop = loop
        self.barge = barge
        self.notify = notify
        self.on_end = on_end
        self.payloads: list[bytes] | None = None  # None while files are being read
        self.index = 0
        self.offset = 0
        self.task: asyncio.Task | None = None

    def next_frame(self) -> bytes | None:
        payloads = self.payloads
        assert payloads is not None
        while self.index < len(payloads):
            payload = payloads[self.index]
            if self.offset < len(payload):
                frame = payload[self.offset : self.offset + FRAME]
                self.offset += FRAME
                return frame
            self.index += 1
            self.offset = 0
            if self.index == len(payloads) and self.loop:
                self.index = 0
        return None


class Recording:
    """What the remote sends, placed by RTP timestamp into a growing 8 kHz buffer."""

    def __init__(self, req_id: int, args: dict[str, Any]) -> None:
        self.req_id = req_id
        self.path: str = args["path"]
        self.max_seconds: float = args["max_seconds"]
        self.max_samples = max(1, int(self.max_seconds * audio.RATE))
        self.silence_seconds: float = args["silence_seconds"]
        self.stop_digits: str = args["stop_digits"]
        self.buffer = np.zeros(min(self.max_samples, 10 * audio.RATE), dtype=np.int16)
        self.end = 0  # samples written up to here
        self.started_at: float | None = None  # loop time when recording began (after the beep)
        self.last_voice = 0.0
        self.voice_end = 0  # the sample after the last one heard above the silence level
        self.ts0 = 0  # RTP timestamp of sample `base`
        self.base = 0
        self.ssrc: int | None = None

    def begin(self, now: float) -> None:
        if self.started_at is None:
            self.started_at = now
            self.last_voice = now

    def add(self, now: float, ssrc: int, ts: int, pcm: np.ndarray) -> bool:
        """Place a packet's samples; True when the buffer is full (max_seconds reached)."""
        if self.started_at is None:
            return False
        if self.ssrc != ssrc:
            # The first packet, or a new source (re-INVITE, the remote restarted): continue at
            # the end of what we have.
            self.ssrc, self.ts0, self.base = ssrc, ts, self.end
        offset = self.base + (((ts - self.ts0 + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
        plausible = (now - self.started_at) * audio.RATE + audio.RATE
        if offset > plausible:
            # A timestamp jump no clock could explain: rebase instead of a minutes-long gap.
            self.ts0, self.base, offset = ts, self.end, self.end
        if offset < 0:
            return False
        count = min(len(pcm), self.max_samples - offset)
        if count <= 0:
            return True
        stop = offset + count
        if stop > len(self.buffer):
            grown = np.zeros(min(self.max_samples, max(stop, 2 * len(self.buffer))), np.int16)
            grown[: self.end] = self.buffer[: self.end]
            self.buffer = grown
        self.buffer[offset:stop] = pcm[:count]
        self.end = max(self.end, stop)
        if self.silence_seconds > 0:
            level = math.sqrt(float(np.mean(np.square(pcm[:count], dtype=np.float64))))
            if level > _SILENCE_RMS:
                self.last_voice = now
                self.voice_end = max(self.voice_end, stop)
        return self.end >= self.max_samples

    def audio(self, reason: str) -> np.ndarray:
        """What is written: all of it, but a recording ended by silence loses that silence
        (a short tail of it stays, so the last word is not clipped)."""
        end = self.end
        if reason == "silence":
            end = min(end, self.voice_end + _SILENCE_TAIL)
        return self.buffer[:end]

    def due(self, now: float) -> str | None:
        """Why the recording ends by the clock now, if it does."""
        if self.started_at is None:
            return None
        if self.end >= self.max_samples or now - self.started_at >= self.max_seconds + 0.5:
            return "max"
        if self.silence_seconds > 0 and now - self.last_voice >= self.silence_seconds:
            return "silence"
        return None


class Heard:
    """What a session receives, decoded, for the sessions that follow it: a ring of the last
    :data:`_RING` samples and how many were ever written (a follower's read position is in
    that count, so positions never wrap). ``memo`` holds the frames encoded this tick, by
    (position, codec): N followers of one source with one codec cost one encoding."""

    __slots__ = ("memo", "memo_tick", "ring", "written")

    def __init__(self) -> None:
        self.ring = np.zeros(_RING, dtype=np.int16)
        self.written = 0
        self.memo: dict[tuple[int, int], bytes] = {}
        self.memo_tick = -1

    def write(self, pcm: np.ndarray) -> None:
        n = len(pcm)
        if n > _RING:
            pcm, n = pcm[-_RING:], _RING
        start = self.written % _RING
        end = start + n
        if end <= _RING:
            self.ring[start:end] = pcm
        else:
            split = _RING - start
            self.ring[start:] = pcm[:split]
            self.ring[: end - _RING] = pcm[split:]
        self.written += n

    def frame(self, pos: int) -> np.ndarray:
        """The frame that starts at sample ``pos`` (a view; never across the ring's end: the
        ring is whole frames and readers' positions are frame boundaries)."""
        start = pos % _RING
        return self.ring[start : start + FRAME]

    def encoded(self, pos: int, codec: int, tick: int) -> bytes:
        if self.memo_tick != tick:
            self.memo.clear()
            self.memo_tick = tick
        key = (pos, codec)
        payload = self.memo.get(key)
        if payload is None:
            payload = self.memo[key] = codecs.encode(codec, self.frame(pos))
        return payload


class Follow:
    """A session's sources (``follow``) and where it has read each of them up to."""

    __slots__ = ("mix", "out", "positions", "sources")

    def __init__(self, sources: list[Session]) -> None:
        self.sources = sources
        # Start at the newest whole frame: only what is heard from now on is relayed.
        self.positions = [_start(s.heard) for s in sources]
        # Reused every tick: the sum, and the clipped sum as the encoder takes it.
        self.mix = np.zeros(FRAME, dtype=np.int32)
        self.out = np.zeros(FRAME, dtype=np.int16)

    def _ready(self, i: int, heard: Heard) -> bool:
        """Whether source ``i`` has a whole frame for us; a reader left too far behind (a
        burst, the source's clock running fast) skips ahead to a little behind the newest."""
        pos = self.positions[i]
        if heard.written - pos > _MAX_LAG or pos < heard.written - _RING + FRAME:
            pos = self.positions[i] = _start(heard) - _JITTER
        return heard.written - pos >= FRAME

    def next_payload(self, codec: int, tick: int) -> bytes | None:
        """The next 20 ms for a session that sends ``codec``: None when no source has one
        (nothing is sent: the sources are quiet or late)."""
        sources = self.sources
        if len(sources) == 1:  # a page's listener: the common case, kept short
            source = sources[0]
            heard = source.heard
            if source.closed or heard is None or not self._ready(0, heard):
                return None
            pos = self.positions[0]
            self.positions[0] = pos + FRAME
            return heard.encoded(pos, codec, tick)
        if any(s.closed for s in sources):
            keep = [i for i, s in enumerate(sources) if not s.closed]
            self.sources = [sources[i] for i in keep]
            self.positions = [self.positions[i] for i in keep]
            sources = self.sources
        mix = self.mix
        mixed = 0
        for i, source in enumerate(sources):
            heard = source.heard
            if heard is None or not self._ready(i, heard):
                continue
            pos = self.positions[i]
            self.positions[i] = pos + FRAME
            if mixed:
                mix += heard.frame(pos)
            else:
                mix[:] = heard.frame(pos)
            mixed += 1
        if not mixed:
            return None
        np.clip(mix, -32768, 32767, out=mix)
        np.copyto(self.out, mix, casting="unsafe")  # in range after the clip
        return codecs.encode(codec, self.out)


def _start(heard: Heard | None) -> int:
    """The newest frame boundary of ``heard``: where a new reader starts."""
    if heard is None:
        return 0
    return heard.written - heard.written % FRAME


class _RtpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            self.session.on_rtp(data, addr)
        except Exception:  # a packet must never take the loop down
            log.exception("session %s: bad RTP packet dropped", self.session.id)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that went away: nothing to do.
        pass


class Connection:
    """One control connection: its writer and the sessions it opened."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.sessions: dict[str, Session] = {}
        self.peer = writer.get_extra_info("peername")
        self.open = True

    def send(self, message: dict[str, Any]) -> None:
        if self.open and not self.writer.is_closing():
            self.writer.write(encode(message))


class Session:
    """One RTP endpoint: a call leg's audio on our side."""

    def __init__(
        self, server: MediaServer, conn: Connection, sid: str, tenant: str, sock: socket.socket
    ) -> None:
        self.server = server
        self.conn = conn
        self.id = sid
        self.tenant = tenant
        self.sock = sock
        self.port: int = sock.getsockname()[1]
        self.transport: asyncio.DatagramTransport | None = None
        self.codec = codecs.PCMU
        self.te_pt: int | None = sdp.TELEPHONE_EVENT  # the remote's telephone-event type
        # The type our own offer gave it: a remote that answers with another number may still
        # send with ours (as RFC 3264 says it should).
        self.our_te_pt: int | None = None
        self.dest: tuple[str, int] | None = None  # where we send: the SDP's, then latched
        self.latched = False
        self.remote_receives = True
        self.remote_sends = True
        self.ssrc = random.getrandbits(32)
        self.seq = random.getrandbits(16)
        self.ts_base = random.getrandbits(32)
        self.tick0 = server.ticks
        self.talkspurt = True
        self.play: Play | None = None
        self.record: Recording | None = None
        self.last_rx = server.loop.time()
        self.last_event_ts: int | None = None
        self.sdp_id = random.getrandbits(31)
        self.sdp_version = 0
        self.inband: InbandDetector | None = None
        self.direction = "sendrecv"  # the most this session does (``open``'s direction)
        self.heard: Heard | None = None  # decoded audio received, while others follow us
        self.follow: Follow | None = None  # the sessions whose received audio we send
        self.closed = False
        self.rx_packets = 0
        self.tx_packets = 0

    # ------------------------------------------------------------------ SDP
    def our_sdp(self, answer: sdp.Answer | None) -> str:
        self.sdp_version += 1
        host = self.server.config.rtp_host
        if answer is None:
            self.our_te_pt = sdp.TELEPHONE_EVENT
            return sdp.build(
                host,
                self.port,
                session_id=self.sdp_id,
                version=self.sdp_version,
                direction=self.direction,
            )
        return sdp.build(
            host,
            self.port,
            session_id=self.sdp_id,
            version=self.sdp_version,
            codecs=(answer.codec,),
            telephone_event=answer.telephone_event,
            direction=_at_most(answer.direction, self.direction),
        )

    def apply_remote(self, remote: sdp.RemoteMedia, chosen: sdp.Answer) -> None:
        dest = (remote.address, remote.port)
        if dest != self.dest and not (self.latched and remote.address == sdp.UNSPECIFIED):
            self.dest = dest
            self.latched = False  # the remote moved: latch again on its first packet
        self.codec = chosen.codec
        self.te_pt = chosen.telephone_event
        self.remote_receives = remote.receives
        self.remote_sends = remote.sends
        self.last_rx = self.server.loop.time()
        if not self.remote_receives:
            self.talkspurt = True

    # ------------------------------------------------------------------ sending
    def on_tick(self, now: float) -> None:
        play = self.play
        sent = False
        if play is not None and play.payloads is not None:
            frame = play.next_frame()
            if frame is None:
                self.end_play("done")
            elif self.remote_receives and self.dest is not None:
                if play.codec != self.codec:  # the codec changed under a play (re-INVITE)
                    frame = codecs.encode(self.codec, codecs.decode(play.codec, frame))
                self._send(frame)
                sent = True
        follow = self.follow
        if follow is not None and self.play is None:
            # Read even when the remote does not want audio now (hold): the reader keeps
            # its place, and comes back to what is heard then, not to stale audio.
            payload = follow.next_payload(self.codec, self.server.ticks)
            if payload is not None and self.remote_receives and self.dest is not None:
                self._send(payload)
                sent = True
        if not sent:
            self.talkspurt = True
        record = self.record
        if record is not None:
            reason = record.due(now)
            if reason:
                self.finish_record(reason)

    def _send(self, payload: bytes) -> None:
        ts = (self.ts_base + (self.server.ticks - self.tick0) * FRAME) & 0xFFFFFFFF
        marker = 0x80 if self.talkspurt else 0
        header = _HEADER.pack(0x80, self.codec | marker, self.seq, ts, self.ssrc)
        self.talkspurt = False
        self.seq = (self.seq + 1) & 0xFFFF
        assert self.transport is not None
        assert self.dest is not None
        self.transport.sendto(header + payload, self.dest)
        self.tx_packets += 1
        self.server.tx_packets += 1

    # ------------------------------------------------------------------ receiving
    def on_rtp(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.closed or len(data) < 12 or data[0] >> 6 != 2 or 192 <= data[1] <= 223:
            return  # not RTP (RTCP types are 192-223, RFC 5761): never latched on
        self.rx_packets += 1
        self.server.rx_packets += 1
        self.last_rx = self.server.loop.time()
        if not self.latched:
            self.dest = (addr[0], addr[1])
            self.latched = True
        first = data[0]
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:
            if len(data) < offset + 4:
                return
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        end = len(data)
        if first & 0x20:
            end -= data[-1]
        if end <= offset:
            return
        pt = data[1] & 0x7F
        _, _, _, ts, ssrc = _HEADER.unpack_from(data)
        if pt == self.te_pt or pt == self.our_te_pt:
            self._on_telephone_event(data[offset:end], ts)
        elif pt in (codecs.PCMU, codecs.PCMA):
            if self.record is None and self.inband is None and self.heard is None:
                return
            pcm = codecs.decode(pt, data[offset:end])
            if self.heard is not None:
                self.heard.write(pcm)
            if self.inband is not None:
                for digit in self.inband.feed(pcm):
                    self.on_digit(digit)
            record = self.record
            if record is not None and record.add(self.server.loop.time(), ssrc, ts, pcm):
                self.finish_record("max")

    def _on_telephone_event(self, payload: bytes, ts: int) -> None:
        if len(payload) < 4 or payload[0] >= len(DIGITS):
            return
        if ts == self.last_event_ts:
            return  # the same event again (its updates and three end packets)
        self.last_event_ts = ts
        self.on_digit(DIGITS[payload[0]])

    def on_digit(self, digit: str) -> None:
        self.conn.send(event("dtmf", self.id, digit=digit))
        play = self.play
        if play is not None and play.barge:
            self.end_play("dtmf")
        record = self.record
        if record is not None and digit in record.stop_digits:
            self.finish_record("digit")

    # ------------------------------------------------------------------ play
    def start_play(self, req: Request) -> None:
        self.end_play("stopped")
        args = req.args
        play = Play(req.id, self.codec, loop=args["loop"], barge=args["barge"])
        self.play = play
        cache = self.server.cache
        payloads: list[bytes] = []
        for item in args["items"]:
            if "file" in item:
                cached = cache.file_cached(self.codec, item["file"])
                if cached is None:
                    play.task = asyncio.create_task(self._load(play, args["items"]))
                    return
                payloads.append(cached)
            elif "tone" in item:
                payloads.append(cache.tone(self.codec, item["tone"], item["seconds"]))
            else:
                payloads.append(cache.silence(self.codec, item["silence"]))
        self._begin(play, payloads)

    async def _load(self, play: Play, items: list[dict[str, Any]]) -> None:
        cache = self.server.cache
        payloads: list[bytes] = []
        try:
            for item in items:
                if "file" in item:
                    try:
                        payloads.append(await cache.file(play.codec, item["file"]))
                    except audio.AudioError as exc:
                        log.warning("session %s (%s): skipped: %s", self.id, self.tenant, exc)
                elif "tone" in item:
                    payloads.append(cache.tone(play.codec, item["tone"], item["seconds"]))
                else:
                    payloads.append(cache.silence(play.codec, item["silence"]))
        except Exception:
            log.exception("session %s: cannot load the play", self.id)
            payloads = []
        if self.play is play:
            play.task = None
            self._begin(play, payloads)

    def _begin(self, play: Play, payloads: list[bytes]) -> None:
        payloads = [p for p in payloads if p]
        if not payloads:
            self.end_play("error")
            return
        play.payloads = payloads

    def end_play(self, reason: str) -> None:
        play = self.play
        if play is None:
            return
        self.play = None
        self.talkspurt = True
        if play.task is not None and not play.task.done():
            play.task.cancel()
        if play.notify:
            self.conn.send(event("played", self.id, play=play.req_id, reason=reason))
        if play.on_end is not None:
            play.on_end(reason)

    # ------------------------------------------------------------------ record
    def start_record(self, req: Request) -> None:
        self.finish_record("stopped")
        record = Recording(req.id, req.args)
        self.record = record
        if req.args["beep"]:
            self.end_play("stopped")

            def begin(_reason: str) -> None:
                record.begin(self.server.loop.time())

            self.play = Play(None, self.codec, notify=False, on_end=begin)
            self._begin(self.play, [self.server.cache.tone(self.codec, "beep", None)])
        else:
            record.begin(self.server.loop.time())

    def finish_record(self, reason: str) -> asyncio.Task | None:
        record = self.record
        if record is None:
            return None
        self.record = None
        task = asyncio.create_task(self._write(record, reason))
        # Held until done (the loop keeps only weak references), and awaited at shutdown.
        self.server.writing.add(task)
        task.add_done_callback(self.server.writing.discard)
        return task

    async def _write(self, record: Recording, reason: str) -> None:
        pcm = record.audio(reason)
        fields: dict[str, Any] = {"record": record.req_id, "path": record.path, "reason": reason}
        try:
            await asyncio.to_thread(audio.write_wav, record.path, pcm)
            fields["seconds"] = round(len(pcm) / audio.RATE, 3)
        except OSError as exc:
            log.error(
                "session %s (%s): cannot write %s: %s", self.id, self.tenant, record.path, exc
            )
            fields.update(seconds=0.0, reason="error")
            fields["error"] = f"cannot write the recording: {exc.strerror or exc}"
        except Exception:
            log.exception("session %s (%s): cannot write %s", self.id, self.tenant, record.path)
            fields.update(seconds=0.0, reason="error", error="cannot write the recording")
        self.conn.send(event("recorded", self.id, **fields))

    # ------------------------------------------------------------------ follow
    def start_follow(self, sources: list[Session]) -> None:
        """Send what ``sources`` receive (none: stop following)."""
        for source in sources:
            if source.heard is None:
                source.heard = Heard()
        self.follow = Follow(sources) if sources else None
        self.talkspurt = True

    # ------------------------------------------------------------------ end
    def stop(self) -> None:
        self.end_play("stopped")
        self.finish_record("stopped")

    def close(self, reason: str = "closed") -> asyncio.Task | None:
        """End the session: play and recording end with ``reason``; the port is freed. Returns
        the task writing the recording, if there was one."""
        if self.closed:
            return None
        self.end_play(reason)
        task = self.finish_record(reason)
        self.closed = True
        self.follow = None
        if self.transport is not None:
            self.transport.close()
        else:
            self.sock.close()
        self.server.ports.release(self.port)
        self.server.sessions.pop(self.id, None)
        self.conn.sessions.pop(self.id, None)
        return task


class MediaServer:
    """The control listener, the sessions and the one tick that sends for all of them."""

    def __init__(self, config: MediaConfig) -> None:
        self.config = config
        self.loop = asyncio.get_running_loop()
        self.ports = PortPool(config.rtp_host, config.rtp_port_min, config.rtp_port_max)
        self.cache = audio.FrameCache(config.cache_bytes)
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.writing: set[asyncio.Task] = set()  # recordings being written
        self.ticks = 0
        self.wakeups = 0
        self.rx_packets = 0
        self.tx_packets = 0
        self.late_ticks = 0
        self.max_tick_lag = 0.0
        self.skipped_ticks = 0
        self.lags: collections.deque[float] = collections.deque(maxlen=3000)
        self._server: asyncio.Server | None = None
        self._next = 0.0
        self._tick_handle: asyncio.TimerHandle | None = None
        self._watch_handle: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        cfg = self.config
        self._server = await asyncio.start_server(
            self._serve_connection, cfg.control_host, cfg.control_port, limit=MAX_LINE
        )
        self._next = self.loop.time() + TICK
        self._tick_handle = self.loop.call_at(self._next, self._tick)
        self._watch_handle = self.loop.call_later(1.0, self._watch)
        log.info(
            "media server: control %s:%d, RTP %s ports %d-%d",
            cfg.control_host,
            self.control_port,
            cfg.rtp_host,
            cfg.rtp_port_min,
            cfg.rtp_port_max,
        )

    @property
    def control_port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for handle in (self._tick_handle, self._watch_handle):
            if handle is not None:
                handle.cancel()
        for session in list(self.sessions.values()):
            session.close("closed")
        if self.writing:
            await asyncio.gather(*self.writing, return_exceptions=True)
        for conn in list(self.connections):
            conn.open = False
            conn.writer.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # ------------------------------------------------------------------ the tick
    def _tick(self) -> None:
        now = self.loop.time()
        self.wakeups += 1
        lag = now - self._next
        self.lags.append(lag)
        if lag > self.max_tick_lag:
            self.max_tick_lag = lag
        if lag > _LATE:
            self.late_ticks += 1
        rounds = 0
        while self._next <= now and rounds < 5:
            self.ticks += 1
            for session in list(self.sessions.values()):
                try:
                    session.on_tick(now)
                except Exception:
                    log.exception("session %s: tick failed; closing it", session.id)
                    self._close_by_server(session, "error")
            self._next += TICK
            rounds += 1
        if self._next <= now:  # far behind (the machine stalled): start again from now
            missed = int((now - self._next) / TICK) + 1
            self.skipped_ticks += missed
            self._next += missed * TICK
        self._tick_handle = self.loop.call_at(self._next, self._tick)

    def _watch(self) -> None:
        """Once a second: close sessions whose remote should send but has gone quiet."""
        now = self.loop.time()
        limit = self.config.rtp_timeout
        for session in list(self.sessions.values()):
            if session.remote_sends and now - session.last_rx > limit:
                log.warning(
                    "session %s (%s): no RTP for %.0f s, closing", session.id, session.tenant, limit
                )
                self._close_by_server(session, "timeout")
        self._watch_handle = self.loop.call_later(1.0, self._watch)

    def _close_by_server(self, session: Session, reason: str) -> None:
        def tell(_: object = None) -> None:
            session.conn.send(event("closed", session.id, reason=reason))

        writing = session.close("closed")
        if writing is None:
            tell()
        else:  # `recorded` (with the real length) goes out first
            writing.add_done_callback(tell)

    # ------------------------------------------------------------------ control
    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = Connection(writer)
        self.connections.add(conn)
        log.info("control connection from %s", conn.peer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_LINE: the rest of it is unusable
                    conn.send(error_reply(None, "line too long"))
                    break
                except ConnectionError:
                    break
                if not line:
                    break
                if line.strip():
                    await self._handle_line(conn, line)
        finally:
            conn.open = False
            self.connections.discard(conn)
            if conn.sessions:
                log.info(
                    "control connection %s gone: closing %d sessions", conn.peer, len(conn.sessions)
                )
            for session in list(conn.sessions.values()):
                session.close("closed")
            writer.close()

    async def _handle_line(self, conn: Connection, line: bytes) -> None:
        req_id = None
        try:
            obj = decode(line)
            req_id = obj.get("id") if isinstance(obj.get("id"), int) else None
            req = parse_request(obj)
            result = await self._dispatch(conn, req)
        except (ProtocolError, OpError, sdp.SdpError) as exc:
            if req_id is None:
                log.warning("control %s: %s: %.200r", conn.peer, exc, line)
            conn.send(error_reply(req_id, str(exc)))
            return
        except Exception:
            log.exception("control %s: request failed: %.200r", conn.peer, line)
            conn.send(error_reply(req_id, "internal error"))
            return
        conn.send(reply(req.id, **result))

    def _session(self, conn: Connection, req: Request) -> Session:
        session = conn.sessions.get(req.session or "")
        if session is None:
            raise OpError("unknown session")
        return session

    @staticmethod
    def _sources(conn: Connection, session: Session, names: list[str]) -> list[Session]:
        """The sessions ``session`` may follow: its own control connection's, of its own
        tenant (one tenant's audio never reaches another's calls)."""
        sources: list[Session] = []
        for name in names:
            source = conn.sessions.get(name)
            if source is None or source.tenant != session.tenant:
                raise OpError(f"unknown source session {name[:40]!r}")
            sources.append(source)
        return sources

    async def _dispatch(self, conn: Connection, req: Request) -> dict[str, Any]:
        op = req.op
        if op == "open":
            return await self._open(conn, req)
        if op == "stats":
            return self._stats(req.args["reset"])
        session = self._session(conn, req)
        if op in ("answer", "update"):
            remote = sdp.parse(req.args["sdp"])
            chosen = sdp.negotiate(remote)
            session.apply_remote(remote, chosen)
            return {"sdp": session.our_sdp(chosen)} if op == "update" else {}
        if op == "play":
            session.start_play(req)
        elif op == "record":
            session.start_record(req)
        elif op == "follow":
            session.start_follow(self._sources(conn, session, req.args["sources"]))
        elif op == "stop":
            session.stop()
        elif op == "close":
            task = session.close("closed")
            if task is not None:
                await task  # the recording is on disk and `recorded` sent before the reply
        return {}

    async def _open(self, conn: Connection, req: Request) -> dict[str, Any]:
        sid = req.session or ""
        if sid in self.sessions:
            raise OpError("session exists")
        offer = req.args["offer"]
        remote = chosen = None
        if offer is not None:
            remote = sdp.parse(offer)
            chosen = sdp.negotiate(remote)
        sock = self.ports.bind()
        session = Session(self, conn, sid, req.args["tenant"], sock)
        try:
            transport, _ = await self.loop.create_datagram_endpoint(
                lambda: _RtpProtocol(session), sock=sock
            )
        except OSError:
            sock.close()
            self.ports.release(session.port)
            raise
        session.transport = transport
        if sid in self.sessions or not conn.open:  # raced with another open / the connection
            session.close("closed")
            raise OpError("session exists" if conn.open else "connection closed")
        self.sessions[sid] = session
        conn.sessions[sid] = session
        if req.args["inband"]:
            session.inband = InbandDetector()
        session.direction = req.args.get("direction", "sendrecv")
        if remote is not None and chosen is not None:
            session.apply_remote(remote, chosen)
        return {"sdp": session.our_sdp(chosen)}

    def _stats(self, reset: bool) -> dict[str, Any]:
        lags = sorted(self.lags)

        def pct(p: float) -> float:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))] * 1000, 3) if lags else 0.0

        result = {
            "sessions": len(self.sessions),
            "connections": len(self.connections),
            "playing": sum(1 for s in self.sessions.values() if s.play is not None),
            "recording": sum(1 for s in self.sessions.values() if s.record is not None),
            "following": sum(1 for s in self.sessions.values() if s.follow is not None),
            "rx_packets": self.rx_packets,
            "tx_packets": self.tx_packets,
            "ticks": self.ticks,
            "wakeups": self.wakeups,
            "late_ticks": self.late_ticks,
            "skipped_ticks": self.skipped_ticks,
            "max_tick_lag_ms": round(self.max_tick_lag * 1000, 3),
            "p50_tick_lag_ms": pct(0.50),
            "p99_tick_lag_ms": pct(0.99),
            "ports_free": self.ports.free,
            "cache_bytes": self.cache.size,
            "cache_hits": self.cache.hits,
            "cache_misses": self.cache.misses,
            "pid": os.getpid(),
        }
        if reset:
            self.late_ticks = 0
            self.skipped_ticks = 0
            self.max_tick_lag = 0.0
            self.lags.clear()
        return result


async def serve(config: MediaConfig, ready: Callable[[MediaServer], None] | None = None) -> None:
    """Run a media server until cancelled or sent SIGTERM/SIGINT; on the way out, recordings in
    progress are written (reason "closed") before the process ends."""
    server = MediaServer(config)
    await server.start()
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)
    if ready is not None:
        ready(server)
    try:
        await done.wait()
        log.info("media server stopping: %d sessions", len(server.sessions))
    finally:
        await server.stop()
