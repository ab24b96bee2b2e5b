"""Audio for the tests: real files made with sox, read back with ``wave`` and numpy."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile


def tone(path: Path, *, seconds: float = 1.0, rate: int = 44100, channels: int = 2,
         freq: int = 440, kind: str = "wav") -> Path:  # fmt: skip
    """A sine tone made by sox (any rate, channels; ``kind`` "wav" or "mp3")."""
    subprocess.run(  # noqa: S603
        ["sox", "-n", "-r", str(rate), "-c", str(channels), "-t", kind, str(path),  # noqa: S607
         "synth", str(seconds), "sine", str(freq), "gain", "-6"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return path


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def info(path) -> tuple[int, int, int, float]:
    """(rate, channels, bytes per sample, seconds) of a PCM WAV."""
    with wave.open(str(path), "rb") as w:
        return (w.getframerate(), w.getnchannels(), w.getsampwidth(),
                w.getnframes() / w.getframerate())  # fmt: skip


def samples(path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)


def rms_dbfs(path) -> float:
    x = samples(path)
    return float(20 * np.log10(max(np.sqrt(np.mean(x**2)), 1e-9) / 32768))


def dominant_hz(path) -> float:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
    x = samples(path)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spectrum))])
