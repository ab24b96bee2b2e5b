"""Blind transfer to destinations that are not an extension nor an outside number: the
transferee is taken to the media server with a re-INVITE (it is answered already), the
transferor is let go, and the router takes the call on: the direct-voicemail code, an IVR
(whose choice rings a phone again), and a BLF key retrieving a parked call (INVITE with
Replaces naming the parked caller's dialog, as the slot's BLF shows it)."""

from __future__ import annotations

import time
from typing import Any

from tests.sip import test_media_features as media_features
from tests.sip.callkit import (
    add_extension,
    connect,
    ended,
    events,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until
from tests.sip.test_pickup import RawPhone

media_dir = media_features.media_dir
media_pbx = media_features.media_pbx


def _calls(engine: EngineHandle) -> list[Any]:
    return list(engine.pbx.calls.calls.by_id.values())


def _transfer(b: Any, cb: int, number: str) -> None:
    """``b`` blind-transfers its call to ``number`` and is let go."""
    b.xfer(cb, f"sip:{number}@acme.test")
    frags = []
    while "SIP/2.0 200" not in "".join(frags):
        frags.append(b.wait("request", call=cb, method="NOTIFY")["msg"])
    assert ended(b, cb) == 200


def test_transfer_to_the_voicemail_code_leaves_a_message(media_pbx, phones):
    """Story: 102 transfers its caller to *55102 (its own mailbox); 101 hears the greeting,
    speaks and hangs up; the message is 102's, from 101."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", media_features.mailbox(max_seconds=30))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    _transfer(b, cb, "*55102")
    a.wait("request", call=ca, method="INVITE")
    assert a.wait_audio(ca) > 10  # the greeting
    time.sleep(1.0)  # the greeting and the beep
    a.play(ca)
    time.sleep(2.5)  # 101 speaks
    a.hangup(ca)
    left = media_features.wait_request(engine, "voicemail.left", timeout=20)
    assert (left["box"], left["caller"]) == ("102", "101")
    assert float(left["seconds"]) >= 1.0
    [started] = [e for e in events(engine) if e["type"] == "call.transferred"]
    assert (started["from"], started["to"]) == ("101", "*55102")


def test_transfer_of_a_held_caller_to_an_ivr_that_rings_a_phone(media_pbx, phones):
    """Story: 102 puts 101 on hold (music), then transfers it to the menu 800; 101 presses 1
    and 103 rings; 103 answers and they talk."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    option = {"digit": "1", "target": {"kind": "extension", "target": "103"}}
    media_features.set_media(engine, ivrs=[media_features.menu(options=[option])])
    a, b, c = phones("101"), phones("102"), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca, cb = connect(a, acc, b)
    b.hold(cb)
    wait_until(lambda: engine.call(lambda: any(x.hold for x in _calls(engine))))
    _transfer(b, cb, "800")
    assert engine.call(lambda: [x.hold for x in _calls(engine)]) == [None]
    a.dtmf(ca, "1")
    cc = c.incoming()["call"]
    c.answer(cc, 200)
    c.wait_state(cc, "CONFIRMED")
    two_way_audio(a, ca, c, cc)
    [call] = engine.call(lambda: _calls(engine))
    assert (call.a.user, call.b.user, call.media) == ("101", "103", None)
    c.hangup(cc)
    assert ended(a, ca) == 200


def test_blf_key_retrieves_a_parked_call(media_pbx, phones):
    """Story: 102 parks its caller in 701; 103's BLF key for 701 lights; 103 presses it (an
    INVITE with Replaces naming the parked dialog) and gets the caller."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    _transfer(b, cb, "*68")
    states = engine.pbx.calls.states
    [view] = wait_until(lambda: engine.call(lambda: states.of("t_acme", "701")))
    raw = RawPhone(engine, "103", "acme.test")
    try:
        replaces = f"{view.call_id};to-tag={view.local_tag};from-tag={view.remote_tag}"
        assert raw.invite("701", [("Replaces", replaces)]).status == 200
        [call] = engine.call(lambda: _calls(engine))
        assert (call.a.user, call.b.user) == ("101", "103")
        assert engine.call(lambda: states.of("t_acme", "701")) == []
        assert raw.bye("701").status == 200
        assert ended(a, ca) == 200
    finally:
        raw.close()


def test_the_caller_parks_its_callee_and_gets_it_back_on_timeout(media_pbx, phones):
    """Story: 101 called 102 and transfers 102 to the park (the callee becomes the parked
    caller); nobody retrieves it within the 2 s timeout, so 101's phone rings with 102,
    101 answers and they talk again."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", lambda s: s.update(team={"park": {"timeout": 2}}))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    _transfer(a, ca, "*68")
    b.wait("request", call=cb, method="INVITE")  # 102 re-offered towards the media server
    assert b.wait_audio(cb) > 10  # the slot and the music
    [call] = engine.call(lambda: _calls(engine))
    assert (call.a.user, call.caller.number, call.b) == ("102", "102", None)
    incoming = a.incoming(timeout=10)
    assert "<sip:102@acme.test>" in incoming["msg"]
    ca2 = incoming["call"]
    a.answer(ca2, 180)
    a.answer(ca2, 200)
    a.wait_state(ca2, "CONFIRMED")
    two_way_audio(a, ca2, b, cb)
    b.hangup(cb)
    assert ended(a, ca2) == 200
