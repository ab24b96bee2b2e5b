"""The shipped prompt set and music on hold are made at set-up (``make_prompts``): spoken
files of every prompt, 8 kHz mono 16-bit and not silent; music of about 30 s; a second run
makes nothing again."""

import io
import os

import pytest
from django.core.management import call_command

from telephony.media.prompts import PROMPTS, default_path

from .media import info, rms_dbfs


def test_prompts_and_music_are_made_once(media):
    out = io.StringIO()
    call_command("make_prompts", language=["es"], stdout=out)
    assert f"prompts: {len(PROMPTS) + 1} files made" in out.getvalue()
    for name in PROMPTS:
        path = default_path(str(media), "es", name)
        rate, channels, width, seconds = info(path)
        assert (rate, channels, width) == (8000, 1, 2), name
        assert 0.3 < seconds < 20, name
        assert rms_dbfs(path) > -35, name  # speech, not silence
    music = media / "moh" / "default.wav"
    rate, channels, width, seconds = info(music)
    assert (rate, channels, width) == (8000, 1, 2)
    assert seconds == pytest.approx(30, abs=1)
    assert -20 < rms_dbfs(music) < -10

    before = os.stat(default_path(str(media), "es", "welcome")).st_mtime_ns
    out = io.StringIO()
    call_command("make_prompts", language=["es"], stdout=out)
    assert "prompts: 0 files made" in out.getvalue()
    assert os.stat(default_path(str(media), "es", "welcome")).st_mtime_ns == before


def test_an_unknown_language_is_refused(media):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no prompt set for xx"):
        call_command("make_prompts", language=["xx"], stdout=io.StringIO())
