"""Make the shipped default prompt set and music on hold under ``MEDIA_ROOT``:

- ``prompts/<language>/<name>.wav`` for every entry of ``telephony.media.prompts.PROMPTS`` in
  each language it has words in (espeak-ng speaks them, sox makes them 8 kHz mono 16-bit with
  a little gain to a common level);
- ``moh/default.wav``: about 30 s of gentle music synthesised with sox (a pad chord and a
  plucked arpeggio over four chords, faded in and out).

Idempotent and quick the second time: a file whose words (and voice settings) have not changed
since it was made — a stamp per language holds their hashes — is not made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audio.convert import RATE, sox
from telephony.media.prompts import PROMPTS

VOICES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es"}
SPEED = 150  # words per minute: a little slower than espeak-ng's default, for the phone
VERSION = "1"  # bump to remake every file (a change of the processing below)
STAMP = ".stamp.json"
MOH_VERSION = "moh-1"
# Four bars (chord, arpeggio notes), played twice: 8 x 3.75 s = 30 s.
MOH_BARS = (
    ("C3 E3 G3 C4", "E4 G4 C5 G4 E4 C4"),
    ("A2 E3 A3 C4", "C5 A4 E4 A4 C5 E5"),
    ("F2 C3 F3 A3", "A4 C5 F4 C5 A4 F4"),
    ("G2 D3 G3 B3", "B4 D5 G4 D5 B4 G4"),
)
BAR_SECONDS = 3.75
ESPEAK = shutil.which("espeak-ng") or "/usr/bin/espeak-ng"


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class Command(BaseCommand):
    help = "Make the default prompts (espeak-ng) and music on hold (sox) under MEDIA_ROOT."

    def add_arguments(self, parser):
        parser.add_argument(
            "--language",
            action="append",
            help="only this language (repeatable); default: every language of the prompt set",
        )
        parser.add_argument("--force", action="store_true", help="remake every file")

    def handle(self, *args, **options):
        root = str(settings.MEDIA_ROOT)
        known = sorted({lang for words in PROMPTS.values() for lang in words})
        languages = options["language"] or known
        unknown = [lang for lang in languages if lang not in VOICES or lang not in known]
        if unknown:
            raise CommandError(f"no prompt set for {', '.join(unknown)} (have: {known})")
        made = 0
        for language in languages:
            made += self._language(root, language, force=options["force"])
        made += self._music(root, force=options["force"])
        self.stdout.write(f"prompts: {made} files made, the rest were current ({root})")

    def _language(self, root: str, language: str, *, force: bool) -> int:
        folder = os.path.join(root, "prompts", language)
        os.makedirs(folder, exist_ok=True)
        stamp_path = os.path.join(folder, STAMP)
        try:
            with open(stamp_path) as f:
                stamp = json.load(f)
        except (OSError, ValueError):
            stamp = {}
        if not isinstance(stamp, dict):
            stamp = {}
        made = 0
        voice = VOICES[language]
        with tempfile.TemporaryDirectory(prefix="pbx-prompts-") as tmp:
            for name, words in sorted(PROMPTS.items()):
                text = words.get(language)
                if not text:
                    continue
                digest = _hash(VERSION, voice, str(SPEED), text)
                target = os.path.join(folder, f"{name}.wav")
                if not force and stamp.get(name) == digest and os.path.isfile(target):
                    continue
                spoken = os.path.join(tmp, f"{name}.wav")
                try:
                    subprocess.run(  # noqa: S603 - fixed program, our own words
                        [ESPEAK, "-v", voice, "-s", str(SPEED), "-w", spoken, text],
                        check=True,
                        capture_output=True,
                        timeout=60,
                    )
                    partial = f"{target}.part"
                    # A little silence before and after; the level of every prompt the same.
                    sox(spoken, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                        "-t", "wav", partial, "highpass", "120", "pad", "0.1", "0.2",
                        "gain", "-n", "-2")  # fmt: skip
                except (subprocess.SubprocessError, OSError) as exc:
                    raise CommandError(f"could not make {language}/{name}: {exc}") from exc
                os.replace(partial, target)
                stamp[name] = digest
                made += 1
        if made:
            with open(stamp_path + ".part", "w") as f:
                json.dump(stamp, f, indent=0, sort_keys=True)
            os.replace(stamp_path + ".part", stamp_path)
        return made

    def _music(self, root: str, *, force: bool) -> int:
        folder = os.path.join(root, "moh")
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, "default.wav")
        stamp_path = os.path.join(folder, STAMP)
        digest = _hash(MOH_VERSION, repr(MOH_BARS), str(BAR_SECONDS))
        try:
            with open(stamp_path) as f:
                current = json.load(f).get("default") == digest
        except (OSError, ValueError, AttributeError):
            current = False
        if current and not force and os.path.isfile(target):
            return 0
        bar = str(BAR_SECONDS)
        note = str(BAR_SECONDS / 6)
        try:
            with tempfile.TemporaryDirectory(prefix="pbx-moh-") as tmp:
                bars = []
                for i, (chord, arpeggio) in enumerate(MOH_BARS):
                    tones = [a for n in chord.split() for a in ("sin", n)]
                    stack = os.path.join(tmp, f"stack{i}.wav")
                    pad = os.path.join(tmp, f"pad{i}.wav")
                    # One channel per tone, then mixed down: a soft sustained chord.
                    sox("-n", "-r", "16000", "-c", str(len(chord.split())), "-b", "16", stack,
                        "synth", bar, *tones)  # fmt: skip
                    sox(stack, "-c", "1", pad, "remix", "-", "fade", "q", "0.5", bar, "0.8",
                        "gain", "-n", "-12")  # fmt: skip
                    notes = []
                    for j, name in enumerate(arpeggio.split()):
                        path = os.path.join(tmp, f"n{i}-{j}.wav")
                        sox("-n", "-r", "16000", "-c", "1", "-b", "16", path, "synth", note,
                            "pluck", name, "fade", "q", "0.005", note, "0.45", "gain", "-n",
                            "-6")  # fmt: skip
                        notes.append(path)
                    arp = os.path.join(tmp, f"arp{i}.wav")
                    sox(*notes, arp)
                    mixed = os.path.join(tmp, f"bar{i}.wav")
                    sox("-m", pad, arp, mixed)
                    bars.append(mixed)
                total = str(BAR_SECONDS * len(bars) * 2)
                partial = f"{target}.part"
                sox(*bars, *bars, "-r", str(RATE), "-c", "1", "-b", "16", "-e", "signed-integer",
                    "-t", "wav", partial, "reverb", "30", "fade", "t", "2", total, "3",
                    "gain", "-n", "-1")  # fmt: skip
                os.replace(partial, target)
        except (subprocess.SubprocessError, OSError) as exc:
            raise CommandError(f"could not make the music on hold: {exc}") from exc
        with open(stamp_path, "w") as f:
            json.dump({"default": digest}, f)
        return 1
