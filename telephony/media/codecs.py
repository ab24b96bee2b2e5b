"""G.711 μ-law (PCMU) and A-law (PCMA), vectorised with numpy lookup tables.

Encoding indexes a 65,536-entry table with the 16-bit samples (viewed as unsigned); decoding a
256-entry one. The tables are built once at import from the classic ITU-T G.711 segment rules
(μ-law with the 0x84 bias and the 32,635 clip; A-law from 13-bit magnitudes), so a frame of 160
samples costs one ``take`` either way.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "PCMA",
    "PCMU",
    "SILENCE",
    "alaw_decode",
    "alaw_encode",
    "decode",
    "encode",
    "ulaw_decode",
    "ulaw_encode",
]

PCMU = 0  # static RTP payload types (RFC 3551)
PCMA = 8

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _ulaw_encode_reference(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.int32)
    sign = (x < 0).astype(np.int32)
    mag = np.minimum(np.abs(x), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~((sign << 7) | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _ulaw_decode_reference(codes: np.ndarray) -> np.ndarray:
    u = ~codes.astype(np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mag = (((u & 0x0F) << 3) + _ULAW_BIAS) << exponent
    mag -= _ULAW_BIAS
    return np.where(u & 0x80, -mag, mag).astype(np.int16)


def _alaw_encode_reference(pcm: np.ndarray) -> np.ndarray:
    x = pcm.astype(np.int32) >> 3
    negative = x < 0
    mask = np.where(negative, 0x55, 0xD5)
    x = np.where(negative, -x - 1, x)
    seg = np.searchsorted(_ALAW_SEG_END, x, side="left").astype(np.int32)
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((x >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


def _alaw_decode_reference(codes: np.ndarray) -> np.ndarray:
    a = codes.astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ALL_SAMPLES = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16)
_ALL_CODES = np.arange(256, dtype=np.uint8)
# Indexed by the sample's 16 bits read as unsigned (``pcm.view(np.uint16)``).
ULAW_ENCODE = _ulaw_encode_reference(_ALL_SAMPLES)
ALAW_ENCODE = _alaw_encode_reference(_ALL_SAMPLES)
ULAW_DECODE = _ulaw_decode_reference(_ALL_CODES)
ALAW_DECODE = _alaw_decode_reference(_ALL_CODES)

# The code of a zero sample: what a frame of silence is filled with.
SILENCE = {PCMU: int(ULAW_ENCODE[0]), PCMA: int(ALAW_ENCODE[0])}


def _as_int16(pcm: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(pcm, dtype=np.int16)


def ulaw_encode(pcm: np.ndarray) -> bytes:
    return ULAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def alaw_encode(pcm: np.ndarray) -> bytes:
    return ALAW_ENCODE[_as_int16(pcm).view(np.uint16)].tobytes()


def ulaw_decode(data: bytes) -> np.ndarray:
    return ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> np.ndarray:
    return ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def encode(pt: int, pcm: np.ndarray) -> bytes:
    """16-bit samples -> payload of static type ``pt`` (0 or 8)."""
    return ulaw_encode(pcm) if pt == PCMU else alaw_encode(pcm)


def decode(pt: int, data: bytes) -> np.ndarray:
    """Payload of static type ``pt`` (0 or 8) -> 16-bit samples."""
    return ulaw_decode(data) if pt == PCMU else alaw_decode(data)
