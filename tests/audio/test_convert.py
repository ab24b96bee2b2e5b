"""Uploads of any rate and channel count, WAV or MP3, become the one format every process
plays: WAV, 8000 Hz, mono, 16-bit; what is not audio (or too short, long or big) is a field
error's text, never an exception of another kind."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audio import convert
from audio.convert import AudioRejected, convert_upload

from .media import dominant_hz, info, tone, upload


def test_a_44k_stereo_wav_becomes_8k_mono_16_bit(tmp_path):
    source = tone(tmp_path / "in.wav", seconds=1.5, rate=44100, channels=2, freq=600)
    dest = tmp_path / "out" / "x.wav"
    seconds = convert_upload(upload(source), str(dest), max_seconds=60)
    assert info(dest)[:3] == (8000, 1, 2)
    assert seconds == pytest.approx(1.5, abs=0.01)
    assert dominant_hz(dest) == pytest.approx(600, abs=5)  # the sound survived, not just a file
    assert not (tmp_path / "out" / "x.wav.part").exists()


def test_an_mp3_is_decoded(tmp_path):
    source = tone(tmp_path / "in.mp3", seconds=2, rate=22050, channels=1, freq=400, kind="mp3")
    dest = tmp_path / "x.wav"
    seconds = convert_upload(upload(source, "song.MP3"), str(dest), max_seconds=60)
    assert info(dest)[:3] == (8000, 1, 2)
    assert seconds == pytest.approx(2, abs=0.1)
    assert dominant_hz(dest) == pytest.approx(400, abs=5)


def test_text_named_wav_is_refused_with_a_field_message(tmp_path):
    bad = SimpleUploadedFile("greeting.wav", b"this is not audio at all\n" * 40)
    with pytest.raises(AudioRejected) as exc:
        convert_upload(bad, str(tmp_path / "x.wav"), max_seconds=60)
    assert str(exc.value) == "not a WAV or MP3 file we can read"
    # A RIFF header with nothing sound behind it, and an .mp3 of noise bytes: refused too.
    for name, data in (("a.wav", b"RIFF\x24\x00\x00\x00WAVEjunkjunk"), ("b.mp3", b"\x00" * 500)):
        with pytest.raises(AudioRejected):
            convert_upload(SimpleUploadedFile(name, data), str(tmp_path / "y.wav"), max_seconds=9)
    assert not list(tmp_path.glob("*.wav"))


def test_too_short_too_long_too_big_and_empty(tmp_path, monkeypatch):
    short = tone(tmp_path / "short.wav", seconds=0.1)
    with pytest.raises(AudioRejected, match="too short"):
        convert_upload(upload(short), str(tmp_path / "x.wav"), max_seconds=60)
    long = tone(tmp_path / "long.wav", seconds=3, rate=8000, channels=1)
    with pytest.raises(AudioRejected, match="too long"):
        convert_upload(upload(long), str(tmp_path / "x.wav"), max_seconds=2)
    with pytest.raises(AudioRejected, match="empty"):
        convert_upload(SimpleUploadedFile("e.wav", b""), str(tmp_path / "x.wav"), max_seconds=9)
    monkeypatch.setattr(convert, "MAX_BYTES", 1000)  # a limit of this test's size
    with pytest.raises(AudioRejected, match="at most"):
        convert_upload(upload(long), str(tmp_path / "x.wav"), max_seconds=60)
    assert not (tmp_path / "x.wav").exists()
