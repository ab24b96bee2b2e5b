"""Audio for playback: WAV files and tones as 8 kHz 16-bit samples, encoded into 20 ms frames.

Prompt files should be WAV, 8000 Hz, mono, 16-bit PCM (the project's one format), but anything
RIFF/WAVE with PCM (8/16/24/32-bit), IEEE float, A-law or μ-law samples is read: channels are
averaged and the rate converted by linear interpolation. Reading happens in a thread
(:meth:`FrameCache.get`); encoded payloads are kept in an LRU bounded in bytes, so a prompt that
two hundred calls play is read and encoded once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
from collections import OrderedDict

import numpy as np

from telephony.media import codecs

log = logging.getLogger(__name__)

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the packet size of every stream we send
AMPLITUDE = 32767 * 10 ** (-12 / 20)  # -12 dBFS peak

__all__ = [
    "FRAME_SAMPLES",
    "RATE",
    "AudioError",
    "FrameCache",
    "read_wav",
    "tone",
    "write_wav",
]


class AudioError(Exception):
    """A file that cannot be played (missing, unreadable, not WAV, unknown sample format)."""


_FMT_PCM, _FMT_FLOAT, _FMT_ALAW, _FMT_ULAW, _FMT_EXTENSIBLE = 1, 3, 6, 7, 0xFFFE


def _samples(fmt: int, bits: int, data: bytes) -> np.ndarray:
    """Interleaved samples as float64 in [-1, 1)."""
    if fmt == _FMT_PCM:
        if bits == 8:
            return (np.frombuffer(data, np.uint8).astype(np.float64) - 128) / 128
        if bits == 16:
            return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.float64) / 32768
        if bits == 24:
            raw = (
                np.frombuffer(data[: len(data) // 3 * 3], np.uint8).reshape(-1, 3).astype(np.int32)
            )
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            value = np.where(value & 0x800000, value - (1 << 24), value)
            return value.astype(np.float64) / (1 << 23)
        if bits == 32:
            return np.frombuffer(data[: len(data) // 4 * 4], "<i4").astype(np.float64) / (1 << 31)
    elif fmt == _FMT_FLOAT and bits in (32, 64):
        dtype = "<f4" if bits == 32 else "<f8"
        size = bits // 8
        return np.clip(np.frombuffer(data[: len(data) // size * size], dtype), -1, 1).astype(
            np.float64
        )
    elif fmt in (_FMT_ALAW, _FMT_ULAW) and bits == 8:
        pt = codecs.PCMA if fmt == _FMT_ALAW else codecs.PCMU
        return codecs.decode(pt, data).astype(np.float64) / 32768
    raise AudioError(f"unsupported WAV sample format {fmt} with {bits} bits")


def parse_wav(blob: bytes) -> np.ndarray:
    """A WAV file's audio as 8 kHz mono int16 samples."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    data: bytes | None = None
    while pos + 8 <= len(blob):
        cid, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = blob[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise AudioError("short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _FMT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID's first bytes
            fmt = (tag, channels, rate, bits)
        elif cid == b"data":
            data = body  # a truncated file: what is there
            break
        pos += 8 + size + (size & 1)
    if fmt is None or data is None:
        raise AudioError("no fmt or data chunk")
    tag, channels, rate, bits = fmt
    if channels < 1 or not 1000 <= rate <= 384000:
        raise AudioError(f"bad WAV header: {channels} channels at {rate} Hz")
    samples = _samples(tag, bits, data)
    samples = samples[: len(samples) // channels * channels]
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    if rate == RATE and tag == _FMT_PCM and bits == 16 and channels == 1:
        return np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.int16)
    if rate != RATE and len(samples):
        count = int(len(samples) * RATE / rate)
        positions = np.arange(count) * (rate / RATE)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)


def read_wav(path: str) -> np.ndarray:
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return parse_wav(blob)


def write_wav(path: str, pcm: np.ndarray) -> None:
    """Write 8 kHz mono 16-bit WAV to ``path`` (via ``path.part`` and a rename: never half a file
    under the final name); parent directories are created."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = np.ascontiguousarray(pcm, dtype="<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(data),
        b"WAVE",
        b"fmt ",
        16,
        _FMT_PCM,
        1,
        RATE,
        RATE * 2,
        2,
        16,
        b"data",
        len(data),
    )
    part = path + ".part"
    with open(part, "wb") as f:
        f.write(header)
        f.write(data)
    os.replace(part, path)


# name -> (frequencies, seconds on, seconds off, default length: one cadence)
TONES: dict[str, tuple[tuple[float, ...], float, float]] = {
    "ringback": ((440.0, 480.0), 2.0, 4.0),
    "busy": ((480.0, 620.0), 0.5, 0.5),
    "congestion": ((480.0, 620.0), 0.25, 0.25),
    "beep": ((1000.0,), 0.25, 0.0),
}
MAX_SECONDS = 3600.0


def tone(name: str, seconds: float | None = None) -> np.ndarray:
    """A tone by name as 8 kHz samples: its cadence repeated to ``seconds`` (default: one)."""
    freqs, on, off = TONES[name]
    period = on + off
    total = period if seconds is None else min(max(seconds, 0.0), MAX_SECONDS)
    n = int(round(total * RATE))
    t = np.arange(n) / RATE
    wave = np.zeros(n)
    for f in freqs:
        wave += np.sin(2 * np.pi * f * t)
    wave *= AMPLITUDE / len(freqs)
    if off > 0:
        wave[(t % period) >= on] = 0.0
    return np.round(wave).astype(np.int16)


def to_frames(pt: int, pcm: np.ndarray) -> bytes:
    """Encode and pad with silence to whole 20 ms frames."""
    payload = codecs.encode(pt, pcm)
    rest = len(payload) % FRAME_SAMPLES
    if rest:
        payload += bytes([codecs.SILENCE[pt]]) * (FRAME_SAMPLES - rest)
    return payload


class FrameCache:
    """Encoded payloads of files and tones by (source, codec), LRU, bounded in bytes.

    A file's entry is keyed by its path, size and mtime: a prompt re-recorded under the same name
    is read again. Files are read and encoded in a worker thread; tones are small and made on
    the loop.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _lookup(self, key: tuple) -> bytes | None:
        with self._lock:
            payload = self._entries.get(key)
            if payload is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return payload

    def _store(self, key: tuple, payload: bytes) -> None:
        with self._lock:
            if key in self._entries or len(payload) > self.max_bytes:
                return
            self._entries[key] = payload
            self.size += len(payload)
            while self.size > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self.size -= len(old)

    def tone(self, pt: int, name: str, seconds: float | None) -> bytes:
        key = ("tone", name, seconds, pt)
        payload = self._lookup(key)
        if payload is None:
            self.misses += 1
            payload = to_frames(pt, tone(name, seconds))
            self._store(key, payload)
        return payload

    def silence(self, pt: int, seconds: float) -> bytes:
        frames = max(1, int(round(min(seconds, MAX_SECONDS) * RATE / FRAME_SAMPLES)))
        return bytes([codecs.SILENCE[pt]]) * (frames * FRAME_SAMPLES)

    def file_cached(self, pt: int, path: str) -> bytes | None:
        """The payload when it is cached and the file unchanged (a stat, no read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        return self._lookup(("file", path, st.st_size, st.st_mtime_ns, pt))

    def _load_file(self, pt: int, path: str) -> bytes:
        try:
            st = os.stat(path)
        except OSError as exc:
            raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
        key = ("file", path, st.st_size, st.st_mtime_ns, pt)
        payload = self._lookup(key)
        if payload is None:
            self.misses += 1
            payload = to_frames(pt, read_wav(path))
            self._store(key, payload)
        return payload

    async def file(self, pt: int, path: str) -> bytes:
        """A file's payload for codec ``pt``; :class:`AudioError` when it cannot be played."""
        payload = self.file_cached(pt, path)
        if payload is not None:
            return payload
        return await asyncio.to_thread(self._load_file, pt, path)
