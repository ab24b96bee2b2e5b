"""G.711 against known values (ITU-T G.711 tables), and round trips of every code and sample.

User story: audio the media server sends or records sounds right on any phone: μ-law and A-law
bytes mean what every other implementation means by them.
"""

import numpy as np
import pytest

from telephony.media import codecs


@pytest.mark.parametrize(
    ("code", "value"),
    [
        (0xFF, 0),
        (0x7F, 0),
        (0x00, -32124),
        (0x80, 32124),
        (0xF0, 120),
        (0x70, -120),
        (0xEF, 132),
        (0xCF, 924),
    ],
)
def test_ulaw_decodes_known_codes(code, value):
    assert codecs.ulaw_decode(bytes([code]))[0] == value


@pytest.mark.parametrize(
    ("code", "value"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264), (0xF5, 528)],
)
def test_alaw_decodes_known_codes(code, value):
    assert codecs.alaw_decode(bytes([code]))[0] == value


def test_known_encodings():
    pcm = np.array([0, 1, -1, 32767, -32768, 1000, -1000], dtype=np.int16)
    assert codecs.ulaw_encode(pcm) == bytes([0xFF, 0xFF, 0x7F, 0x80, 0x00, 0xCE, 0x4E])
    assert codecs.alaw_encode(pcm) == bytes([0xD5, 0xD5, 0x55, 0xAA, 0x2A, 0xFA, 0x7A])
    assert codecs.SILENCE == {codecs.PCMU: 0xFF, codecs.PCMA: 0xD5}


@pytest.mark.parametrize("pt", [codecs.PCMU, codecs.PCMA])
def test_every_code_survives_decode_then_encode(pt):
    every = bytes(range(256))
    again = codecs.encode(pt, codecs.decode(pt, every))
    if pt == codecs.PCMU:  # μ-law has two zeros (0x7F, 0xFF): both come back as 0xFF
        assert again == every.replace(b"\x7f", b"\xff")
    else:
        assert again == every


@pytest.mark.parametrize("pt", [codecs.PCMU, codecs.PCMA])
def test_round_trip_error_is_within_the_segment_step(pt):
    pcm = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    back = codecs.decode(pt, codecs.encode(pt, pcm)).astype(np.int32)
    err = np.abs(back - pcm.astype(np.int32))
    magnitude = np.abs(pcm.astype(np.int32))
    loud = (magnitude > 256) & (magnitude < 32000)  # above it μ-law clips (32,635 -> 32,124)
    assert np.max(err[loud] / magnitude[loud]) < 0.045  # half a segment step: 3-4 %
    assert np.max(err) <= 644
    assert np.max(err[magnitude <= 256]) <= 16
    # Monotonic: a louder sample never decodes quieter.
    assert np.all(np.diff(back) >= 0)


def test_frames_are_vectorised_bytes():
    pcm = np.zeros(160, dtype=np.int16)
    assert codecs.ulaw_encode(pcm) == b"\xff" * 160
    assert codecs.ulaw_decode(b"\xff" * 160).dtype == np.int16
    assert codecs.alaw_decode(b"\xd5" * 160).shape == (160,)
