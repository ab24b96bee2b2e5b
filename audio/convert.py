"""Uploaded audio to the one format every process plays and records: WAV, 8000 Hz, mono,
16-bit PCM (``sox`` in a subprocess, with a timeout, in a temporary directory).

A file that is too big, too short, too long or not audio sox can read is refused with
:class:`AudioRejected` (its text is the field error); nothing here raises anything else for
bad input.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterable
from typing import Protocol

log = logging.getLogger(__name__)

__all__ = [
    "MAX_BYTES",
    "MUSIC_SECONDS",
    "PROMPT_SECONDS",
    "AudioRejected",
    "convert_upload",
    "wav_seconds",
]

MAX_BYTES = 20 * 1024 * 1024
MIN_SECONDS = 0.2
PROMPT_SECONDS = 5 * 60
MUSIC_SECONDS = 10 * 60
SOX_TIMEOUT = 120
RATE = 8000
SOX = shutil.which("sox") or "/usr/bin/sox"
NOT_AUDIO = "not a WAV or MP3 file we can read"


class AudioRejected(Exception):
    """The upload is refused; ``str(exc)`` says why, as a field error."""


class Upload(Protocol):
    """What Django's ``UploadedFile`` offers (and a test's ``SimpleUploadedFile``)."""

    name: str | None
    size: int | None

    def chunks(self) -> Iterable[bytes]: ...


def _kind(head: bytes, name: str) -> str:
    """ "wav" or "mp3" from the file's first bytes (the name only breaks a tie); "" = neither."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    ext = os.path.splitext(name or "")[1].lower()
    # An MP3 may start with junk before its first frame; sox finds the frames or fails.
    return "mp3" if ext == ".mp3" else ""


def wav_seconds(path: str) -> float:
    """The duration of a PCM WAV file (``wave`` module); 0 for an unreadable one."""
    try:
        with wave.open(path, "rb") as w:
            rate = w.getframerate()
            return w.getnframes() / rate if rate else 0.0
    except (OSError, EOFError, wave.Error):
        return 0.0


def sox(*args: str, timeout: float = SOX_TIMEOUT) -> subprocess.CompletedProcess[bytes]:
    """Run sox quietly; raises ``subprocess.CalledProcessError`` / ``TimeoutExpired``."""
    return subprocess.run(  # noqa: S603 - fixed program, arguments are our own paths
        [SOX, "-V1", "--no-show-progress", *args],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def convert_upload(upload: Upload, dest: str, *, max_seconds: float) -> float:
    """Convert ``upload`` into the canonical WAV at ``dest`` (absolute; written atomically,
    its directory made); returns its duration in seconds. :class:`AudioRejected` for a file
    that is too big, not audio, shorter than 0.2 s or longer than ``max_seconds``."""
    if upload.size is not None and upload.size > MAX_BYTES:
        raise AudioRejected(f"at most {MAX_BYTES // (1024 * 1024)} MB")
    if upload.size == 0:
        raise AudioRejected("the file is empty")
    with tempfile.TemporaryDirectory(prefix="pbx-audio-") as tmp:
        source = os.path.join(tmp, "upload")
        written = 0
        with open(source, "wb") as out:
            for chunk in upload.chunks():
                written += len(chunk)
                if written > MAX_BYTES:
                    raise AudioRejected(f"at most {MAX_BYTES // (1024 * 1024)} MB")
                out.write(chunk)
        with open(source, "rb") as f:
            kind = _kind(f.read(16), upload.name or "")
        if not kind:
            raise AudioRejected(NOT_AUDIO)
        converted = os.path.join(tmp, "out.wav")
        try:
            # -G: guard against clipping when stereo is mixed down; the output's rate,
            # channels and encoding make sox resample and remix.
            sox("-G", "-t", kind, source, "-r", str(RATE), "-c", "1", "-b", "16",
                "-e", "signed-integer", "-t", "wav", converted)  # fmt: skip
        except subprocess.TimeoutExpired:
            log.warning("audio upload %r: sox timed out", upload.name)
            raise AudioRejected("the file took too long to convert") from None
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", b"") or b""
            log.info("audio upload %r refused: %s", upload.name, detail[:200])
            raise AudioRejected(NOT_AUDIO) from None
        seconds = wav_seconds(converted)
        if seconds < MIN_SECONDS:
            raise AudioRejected(f"too short: at least {MIN_SECONDS} seconds of audio")
        if seconds > max_seconds:
            raise AudioRejected(f"too long: at most {int(max_seconds // 60)} minutes")
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        partial = f"{dest}.part"
        shutil.copyfile(converted, partial)
        os.replace(partial, dest)
    return round(seconds, 2)
