"""The engine's media features end to end: pjsua2 phones, the engine, rtpengine and the media
server on loopback. A virtual receptionist takes RFC 2833 digits and connects the caller; a
caller leaves a message in a mailbox (no phone registered, DND) and the stored file holds what
it said (its frequency measured); a party put on hold hears music; feature codes and the
mailbox menu ask the Django side for their changes through the event stream."""

from __future__ import annotations

import json
import math
import os
import struct
import time
import wave
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis

from telephony.media.prompts import PROMPTS
from telephony.sip import contract
from tests.sip.callkit import (
    add_extension,
    connect,
    dial,
    ended,
    events,
    media_engine,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url

GREETING_HZ = 440.0


def tone(path: str, freq: float, seconds: float) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    rate = 8000
    samples = (
        int(8000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(seconds * rate))
    )
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def peak_hz(path: str) -> tuple[float, float]:
    """(the strongest frequency, seconds) of a WAV file."""
    with wave.open(path, "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    freqs = np.fft.rfftfreq(len(data), 1 / rate)
    spectrum[freqs < 100] = 0  # not the DC offset or hum
    return float(freqs[int(np.argmax(spectrum))]), len(data) / rate


@pytest.fixture
def media_dir(tmp_path) -> str:
    """A media directory with a short tone for every default prompt and music on hold."""
    return tone_media(str(tmp_path / "media"))


def tone_media(root: str) -> str:
    """``root`` with a short tone for every default prompt and music on hold."""
    for name in PROMPTS:
        tone(os.path.join(root, "prompts", "en", f"{name}.wav"), 300.0, 0.2)
    tone(os.path.join(root, "moh", "default.wav"), 500.0, 2.0)
    return root


@pytest.fixture
def media_pbx(pbx, media_dir) -> Iterator[EngineHandle]:
    with media_engine(pbx, media_dir) as engine:
        yield engine


def set_media(engine: EngineHandle, **media: Any) -> None:
    set_snapshot(engine, "acme.test", lambda s: s.setdefault("media", {}).update(media))


def mailbox(**settings: Any) -> Any:
    def change(snap: dict) -> None:
        snap["extensions"]["102"]["voicemail"] = {"enabled": True, **settings}

    return change


def requests(engine: EngineHandle, kind: str) -> list[dict[str, str]]:
    """The engine's requests of ``kind`` to the Django side so far."""
    return [e for e in events(engine, kind=kind) if e["type"] == kind]


def wait_request(engine: EngineHandle, kind: str, timeout: float = 15.0) -> dict[str, str]:
    return wait_until(lambda: (requests(engine, kind) or [None])[-1], timeout)


def menu(**fields: Any) -> dict[str, Any]:
    return {
        "number": "800",
        "name": "Main",
        "options": [{"digit": "1", "target": {"kind": "extension", "target": "102"}}],
        "timeout": 5,
        "tries": 2,
        **fields,
    }


def test_ivr_connects_the_caller_to_the_extension_it_chose(media_pbx, phones, media_dir):
    """Story: a caller reaches the menu, hears its greeting (the tenant's own recording),
    presses 1 and talks to extension 102, which was rung while the caller heard ringback."""
    engine = media_pbx
    greeting = tone(os.path.join(media_dir, "tenants", "t_acme", "greet.wav"), GREETING_HZ, 3.0)
    set_media(engine, ivrs=[menu(greeting=greeting)])
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    assert a.wait_audio(ca) > 10  # the greeting
    a.dtmf(ca, "1")
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    b.wait_state(cb, "CONFIRMED")
    two_way_audio(b, cb, a, ca)
    # The caller now talks to the phone: the media server's session is gone.
    wait_until(lambda: engine.call(lambda: all(c.media is None for c in _calls(engine))))
    a.hangup(ca)
    assert ended(b, cb) == 200


def test_ivr_dial_by_extension_and_invalid_key(media_pbx, phones, media_dir):
    engine = media_pbx
    set_media(engine, ivrs=[menu(options=[])])
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "102#")
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    b.wait_state(cb, "CONFIRMED")
    a.hangup(ca)
    ended(b, cb)


def test_ivr_without_a_key_ends_after_its_tries(media_pbx, phones):
    engine = media_pbx
    set_media(engine, ivrs=[menu(timeout=1, tries=2)])
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    assert ended(a, ca) == 200  # goodbye, then the PBX hangs up


def _calls(engine: EngineHandle) -> list[Any]:
    return list(engine.pbx.calls.calls.by_id.values())


def _left(engine: EngineHandle, box: str) -> dict[str, str]:
    left = wait_request(engine, "voicemail.left")
    assert left["box"] == box
    assert left["schema"] == "t_acme"
    return left


def test_a_caller_leaves_a_message_when_no_phone_is_registered(media_pbx, phones, media_dir):
    """Story: 102 has no phone registered; its mailbox answers, the caller speaks (a 1 kHz
    tone) for about three seconds and hangs up; the message file holds that tone."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", mailbox(max_seconds=30))
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "102")
    a.wait_state(ca, "CONFIRMED")
    time.sleep(1.5)  # the greeting and the beep
    a.play(ca)
    time.sleep(3.0)
    a.hangup(ca)
    left = _left(engine, "102")
    path = left["path"]
    assert path.startswith(os.path.join(media_dir, "tenants", "t_acme", "voicemail", "102"))
    hz, seconds = peak_hz(path)
    assert abs(hz - 1000.0) < 20, hz
    assert 2.0 <= seconds <= 6.0, seconds
    assert float(left["seconds"]) >= 2.0
    assert left["caller"] == "101"


def test_dnd_sends_calls_to_voicemail_and_the_max_length_holds(media_pbx, phones):
    engine = media_pbx
    set_snapshot(engine, "acme.test", mailbox(max_seconds=5))
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(dnd=True))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "102")
    a.wait_state(ca, "CONFIRMED")  # the mailbox, not the phone: DND
    a.play(ca)
    assert ended(a, ca) == 200  # 5 s of message, goodbye, hung up by the PBX
    _, seconds = peak_hz(_left(engine, "102")["path"])
    assert seconds <= 5.5


def test_a_held_party_hears_music_and_comes_back(media_pbx, phones):
    """Story: 102 puts 101 on hold: 101 hears the music on hold (nobody plays anything
    else), 102 takes it back and they talk again."""
    engine = media_pbx
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    b.hold(cb)
    assert a.wait_audio(ca) > 10  # the music
    held = wait_until(lambda: engine.call(lambda: [c for c in _calls(engine) if c.hold]))
    assert held[0].hold.holder.user == "102"
    b.unhold(cb)
    wait_until(lambda: engine.call(lambda: not any(c.hold for c in _calls(engine))))
    two_way_audio(b, cb, a, ca)
    a.hangup(ca)
    ended(b, cb)


def test_feature_code_asks_for_dnd_and_confirms(media_pbx, phones):
    engine = media_pbx
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "*78")
    a.wait_state(ca, "CONFIRMED")
    assert ended(a, ca) == 200
    request = wait_request(engine, "feature.set")
    assert (request["extension"], request["feature"], request["number"]) == ("101", "dnd_on", "")
    ca = dial(a, acc, "*72102")
    assert ended(a, ca) == 200
    wait_until(lambda: requests(engine, "feature.set")[-1]["feature"] == "forward_always_on")
    assert requests(engine, "feature.set")[-1]["number"] == "102"


def test_mailbox_menu_plays_and_deletes_a_message(media_pbx, phones, media_dir):
    """Story: 102 has one new message; its owner dials the voicemail code (no PIN from its own
    phone), listens (1) and deletes it (7)."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", mailbox())
    message = tone(os.path.join(media_dir, "tenants", "t_acme", "vm", "m1.wav"), 700.0, 1.0)
    index = contract.MailboxIndex(new=(contract.VoicemailMessage("m1", message, "101"),))
    r = redis.Redis.from_url(worker_redis_url())
    r.set(contract.key("", contract.VOICEMAIL_BOX, schema="t_acme", box="102"), index.to_json())
    r.close()
    b = phones("102")
    acc = register(b, engine, "102")
    cb = dial(b, acc, "*57")
    b.wait_state(cb, "CONFIRMED")
    b.dtmf(cb, "1")
    time.sleep(2.5)
    b.dtmf(cb, "7")
    deleted = wait_request(engine, "voicemail.updated")
    assert (deleted["box"], deleted["message"], deleted["action"]) == ("102", "m1", "delete")
    b.hangup(cb)


def test_another_tenants_menu_and_mailbox_are_out_of_reach(media_pbx, phones):
    """The menus and mailboxes of one tenant are not numbers of another."""
    engine = media_pbx
    set_media(engine, ivrs=[menu()])
    a = phones("201")
    acc = register(a, engine, "201", domain="beta.test")
    ca = dial(a, acc, "800", domain="beta.test")
    assert ended(a, ca) == 404
    assert json.loads(json.dumps(requests(engine, "voicemail.left"))) == []


def test_ivr_choice_that_rings_out_goes_to_the_mailbox(media_pbx, phones):
    """Story: the caller picks 102 in the menu; 102's phone rings but nobody answers, so its
    mailbox takes the message, on the same media session the caller heard the menu from."""
    engine = media_pbx
    set_media(engine, ivrs=[menu()])
    set_snapshot(engine, "acme.test", mailbox())
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(no_answer_timeout=2))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "1")
    cb = b.incoming()["call"]
    b.answer(cb, 180)
    ended(b, cb)  # cancelled after 2 s of ringing
    time.sleep(1.5)  # the greeting and the beep
    a.play(ca)
    time.sleep(2.0)
    a.hangup(ca)
    hz, _ = peak_hz(_left(engine, "102")["path"])
    assert abs(hz - 1000.0) < 20


def test_ivr_option_to_a_mailbox(media_pbx, phones):
    engine = media_pbx
    option = {"digit": "9", "target": {"kind": "voicemail", "target": "102"}}
    set_media(engine, ivrs=[menu(options=[option])])
    set_snapshot(engine, "acme.test", mailbox())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "9")
    time.sleep(1.5)
    a.play(ca)
    time.sleep(2.0)
    a.hangup(ca)
    assert float(_left(engine, "102")["seconds"]) >= 1.0


def test_disa_calls_out_as_its_extension_after_the_pin(media_pbx, phones):
    """Story: the menu's key 8 leads to DISA; a wrong PIN is refused, the right one lets the
    caller dial 102, which rings showing the DISA extension (103)'s caller ID."""
    engine = media_pbx
    option = {"digit": "8", "target": {"kind": "disa", "target": "5"}}
    disa = {"id": "5", "name": "Road", "pin": contract.pin_hash("4711"), "extension": "103"}
    set_snapshot(engine, "acme.test", add_extension("103", caller_id_number="103"))
    set_media(engine, ivrs=[menu(options=[option])], disa=[disa])
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "8")
    time.sleep(0.5)
    a.dtmf(ca, "1234#")
    time.sleep(1.0)
    a.dtmf(ca, "4711#")
    time.sleep(0.8)
    a.dtmf(ca, "102#")
    incoming = b.incoming()
    assert 'From: "Acme 103" <sip:103@acme.test>' in incoming["msg"]
    b.answer(incoming["call"], 200)
    b.wait_state(incoming["call"], "CONFIRMED")
    a.hangup(ca)
    ended(b, incoming["call"])


def test_disa_without_the_pin_hangs_up(media_pbx, phones):
    engine = media_pbx
    disa = {"id": "5", "pin": contract.pin_hash("4711"), "extension": "102"}
    option = {"digit": "8", "target": {"kind": "disa", "target": "5"}}
    set_media(engine, ivrs=[menu(options=[option])], disa=[disa])
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "8")
    for _ in range(3):
        time.sleep(0.6)
        a.dtmf(ca, "0000#")
    assert ended(a, ca) == 200
    assert not any(c.hops for c in engine.call(lambda: _calls(engine)))
