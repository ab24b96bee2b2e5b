"""Audio the media server plays: WAV files of any usual shape, tones, the frame cache, and the
WAV it writes; and in-band DTMF detection.

User story: a tenant uploads a prompt as a 44.1 kHz stereo or 8-bit or float WAV; it still
plays at the right pitch and length. Tones sound like the local network's.
"""

import asyncio
import os
import struct

import numpy as np
import pytest

from telephony.media import audio, codecs
from telephony.media.dtmf import InbandDetector
from tests.media.phone import peak_frequency, tone


def _wav(tag: int, channels: int, rate: int, bits: int, data: bytes, *, extensible=False) -> bytes:
    block = channels * bits // 8
    if extensible:
        fmt = struct.pack(
            "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0
        )
        fmt += struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk (padded) first
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _sine(freq, rate, seconds=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize(
    ("name", "blob"),
    [
        ("16-bit 8 kHz", _wav(1, 1, 8000, 16, (_sine(440, 8000) * 32767).astype("<i2").tobytes())),
        (
            "16-bit 16 kHz",
            _wav(1, 1, 16000, 16, (_sine(440, 16000) * 32767).astype("<i2").tobytes()),
        ),
        (
            "16-bit 44.1 kHz stereo",
            _wav(1, 2, 44100, 16, np.repeat(_sine(440, 44100) * 32767, 2).astype("<i2").tobytes()),
        ),
        (
            "8-bit unsigned",
            _wav(1, 1, 8000, 8, (_sine(440, 8000) * 127 + 128).astype(np.uint8).tobytes()),
        ),
        (
            "24-bit 48 kHz",
            _wav(
                1,
                1,
                48000,
                24,
                b"".join(
                    int(v).to_bytes(3, "little", signed=True) for v in _sine(440, 48000) * 8388607
                ),
            ),
        ),
        ("32-bit float", _wav(3, 1, 22050, 32, _sine(440, 22050).astype("<f4").tobytes())),
        (
            "extensible 32-bit int",
            _wav(
                1, 1, 8000, 32, (_sine(440, 8000) * 2**31).astype("<i4").tobytes(), extensible=True
            ),
        ),
        (
            "A-law",
            _wav(6, 1, 8000, 8, codecs.alaw_encode((_sine(440, 8000) * 32767).astype(np.int16))),
        ),
        (
            "μ-law",
            _wav(7, 1, 8000, 8, codecs.ulaw_encode((_sine(440, 8000) * 32767).astype(np.int16))),
        ),
    ],
)
def test_any_usual_wav_becomes_8khz_mono(name, blob):
    pcm = audio.parse_wav(blob)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 4000) <= 2, name  # 0.5 s
    assert abs(peak_frequency(pcm) - 440) < 5, name
    assert 15000 < np.max(np.abs(pcm)) < 17500, name  # half scale kept


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        (b"", "not a RIFF/WAVE file"),
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "no fmt or data chunk"),
        (_wav(2, 1, 8000, 4, b"\x00" * 100), "unsupported WAV sample format 2 with 4 bits"),
        (_wav(1, 0, 8000, 16, b"\x00" * 100), "bad WAV header: 0 channels at 8000 Hz"),
    ],
)
def test_unplayable_files_are_audio_errors(blob, error):
    with pytest.raises(audio.AudioError, match=error):
        audio.parse_wav(blob)


def test_write_then_read_back(tmp_path):
    path = str(tmp_path / "deep" / "dir" / "x.wav")
    pcm = tone(700, 1.0)
    audio.write_wav(path, pcm)
    assert os.listdir(tmp_path / "deep" / "dir") == ["x.wav"]
    assert np.array_equal(audio.read_wav(path), pcm)
    with pytest.raises(audio.AudioError, match="cannot read"):
        audio.read_wav(str(tmp_path / "nope.wav"))


def test_tones_and_their_cadences():
    ring = audio.tone("ringback")
    assert len(ring) == 6 * 8000  # one cadence: 2 s on, 4 s off
    assert np.max(np.abs(ring[16010:])) == 0
    spectrum = np.abs(np.fft.rfft(ring[:16000].astype(float)))
    freqs = np.fft.rfftfreq(16000, 1 / 8000)
    assert sorted(freqs[np.argsort(spectrum)[-2:]]) == [440.0, 480.0]
    level = 20 * np.log10(np.max(np.abs(ring)) / 32767)
    assert -13 < level < -11.5  # about -12 dBFS
    assert len(audio.tone("busy", 3.0)) == 24000
    congestion = audio.tone("congestion", 1.0)
    on = [bool(np.any(congestion[i : i + 2000])) for i in range(0, 8000, 2000)]
    assert on == [True, False] * 2  # 0.25 s on, 0.25 s off
    assert abs(peak_frequency(audio.tone("beep")) - 1000) < 5
    assert len(audio.tone("beep")) == 2000


def test_the_frame_cache_reads_once_and_stays_within_its_bytes(tmp_path):
    async def main():
        paths = []
        for n in range(4):
            path = str(tmp_path / f"p{n}.wav")
            audio.write_wav(path, tone(500, 1.0))  # 8,000 bytes encoded
            paths.append(path)
        cache = audio.FrameCache(max_bytes=20000)
        first = await cache.file(0, paths[0])
        assert len(first) == 8000
        assert cache.file_cached(0, paths[0]) is first
        assert cache.file_cached(8, paths[0]) is None  # per codec
        for path in paths[1:]:
            await cache.file(0, path)
        assert cache.size <= 20000
        assert cache.file_cached(0, paths[0]) is None  # least recently used went first
        # A file changed under the same name is read again.
        audio.write_wav(paths[3], tone(500, 0.5))
        assert len(await cache.file(0, paths[3])) == 4000
        with pytest.raises(audio.AudioError):
            await cache.file(0, str(tmp_path / "missing.wav"))
        return cache

    cache = asyncio.run(main())
    assert cache.misses >= 5


def _key(row, col, seconds=0.08, level=5000.0):
    t = np.arange(int(seconds * 8000)) / 8000
    return level * (np.sin(2 * np.pi * row * t) + np.sin(2 * np.pi * col * t))


def _detect(signal):
    detector = InbandDetector()
    pcm = np.round(signal).astype(np.int16)
    pcm = codecs.ulaw_decode(codecs.ulaw_encode(pcm))  # as heard through G.711
    digits = []
    for i in range(0, len(pcm), 160):
        digits += detector.feed(pcm[i : i + 160])
    return "".join(digits)


def test_inband_dtmf_every_key():
    rows, cols = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
    keys = "123A456B789C*0#D"
    gap = np.zeros(400)
    signal = np.concatenate(
        [np.concatenate([_key(rows[i // 4], cols[i % 4]), gap]) for i in range(16)]
    )
    assert _detect(signal) == keys


def test_inband_dtmf_ignores_speech_like_sound_and_repeats_only_after_a_pause():
    t = np.arange(16000) / 8000
    chord = 3000 * (
        np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 300 * t)
    )
    noise = np.random.default_rng(1).normal(0, 3000, 16000)
    assert _detect(np.concatenate([chord, noise])) == ""
    long_five = _key(770, 1336, seconds=0.5)
    assert _detect(long_five) == "5"
    assert _detect(np.concatenate([long_five, np.zeros(400), long_five])) == "55"
