"""Supervision end to end: pjsua2 phones, the engine, rtpengine and the media server on
loopback. Caller 101 talks to agent 102 on a call of queue 800; supervisor 103 joins it.

Stories: the supervisor listens (hears the call, nobody hears it), whispers (the agent hears
it, the caller does not) and barges in (both hear it), switching with keys 2, 3 and 1, while
caller and agent go on talking, also after the supervisor hung up; a phone that may not
supervise that call (not the queue's supervisor, a supervisor of another queue, a call that is
no queue call, another tenant's extension) hears "feature-failed" and nothing changes for the
call; the wallboard's button (``SuperviseCall``) rings the supervisor's phone, which listens
once answered, and is hung up when the call ends. Audio is measured as the level each phone
receives (each phone plays its own tone on its call).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.calls.supervision import Supervision
from tests.sip.callkit import (
    add_extension,
    connect,
    dial,
    ended,
    media_engine,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import Phone
from tests.sip.test_media_features import media_dir  # noqa: F401 - the fixture

SILENCE = 10  # a received level at most this is silence (pjsua's 0..255 scale)


@pytest.fixture
def sv_pbx(pbx, media_dir) -> Iterator[EngineHandle]:  # noqa: F811 - the fixture above
    with media_engine(pbx, media_dir) as engine:
        set_snapshot(engine, "acme.test", add_extension("103"))
        set_snapshot(engine, "acme.test", add_extension("104"))
        yield engine


def queues(*supervised: tuple[str, list[str]]) -> Any:
    """A snapshot change: queues (number, supervisors)."""

    def change(snap: dict) -> None:
        snap["callcenter"] = {
            "queues": [{"number": n, "name": f"Q{n}", "supervisors": s} for n, s in supervised]
        }

    return change


def the_call(engine: EngineHandle) -> Any:
    """The 101 -> 102 call (the only call of two phones on the engine)."""
    found = [
        c
        for c in engine.pbx.calls.calls.by_id.values()
        if c.b is not None and c.b.user == "102" and c.caller.number == "101"
    ]
    assert len(found) == 1
    return found[0]


def as_queue_call(engine: EngineHandle, queue: str) -> None:
    """The call becomes queue ``queue``'s (what the queue destination does when its agent
    answers)."""

    def mark() -> None:
        the_call(engine).queue = queue

    engine.call(mark)


def supervision_events(engine: EngineHandle) -> list[dict[str, str]]:
    engine.run(engine.pbx.events.flush())
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        raw: Any = r.xrange(engine.pbx.config.redis_prefix + "sip:events")
        entries: list[dict[str, str]] = [e for _, e in raw]
    finally:
        r.close()
    return [e for e in entries if e["type"] == contract.EventType.QUEUE_SUPERVISION]


def wait_mode(engine: EngineHandle, mode: str) -> dict[str, str]:
    """The last supervision event, once it says ``mode``."""

    def last() -> dict[str, str] | None:
        return next((e for e in supervision_events(engine)[-1:] if e["mode"] == mode), None)

    found = wait_until(last, 15)
    assert found is not None
    return found


def silent(phone: Phone, call: int, seconds: float = 1.5) -> bool:
    """The phone receives nothing audible on ``call`` for ``seconds``."""
    wait_until(lambda: phone.level(call)[1] <= SILENCE, 5)  # a level still decaying
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if phone.level(call)[1] > SILENCE:
            return False
        time.sleep(0.05)
    return True


def three_phones(engine: EngineHandle, phones: Any) -> tuple[Phone, Phone, Phone, int, int, int]:
    """101 calls 102 (answered), 103 registered: (101, 102, 103, 101's call, 102's call,
    103's account)."""
    a, b, c = phones("101"), phones("102"), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    acc_c = register(c, engine, "103")
    ca, cb = connect(a, acc, b)
    return a, b, c, ca, cb, acc_c


def test_supervisor_listens_whispers_and_barges(sv_pbx, phones):
    """Story: 103 supervises queue 800; 101's call answered by agent 102 is one of its
    calls. 103 dials *63102: it listens (101 and 102 hear nothing of 103's tone), keys 2
    (whisper: 102 hears 103, 101 does not), 3 (barge: 101 hears 103 too), 1 (listen again).
    101 speaks: 102 and 103 hear it. 103 hangs up: 101 and 102 go on talking."""
    engine = sv_pbx
    set_snapshot(engine, "acme.test", queues(("800", ["103"])))
    a, b, c, ca, cb, acc_c = three_phones(engine, phones)
    as_queue_call(engine, "800")
    cs = dial(c, acc_c, "*63102")
    c.wait_state(cs, "CONFIRMED")
    joined = wait_mode(engine, "listen")
    assert (joined["supervisor"], joined["agent"], joined["queue"]) == ("103", "102", "800")
    assert joined["schema"] == "t_acme"
    assert joined["call_id"] == engine.call(lambda: the_call(engine).id)
    assert engine.call(lambda: isinstance(the_call(engine).supervision, Supervision))
    c.play(cs)
    assert silent(a, ca)
    assert silent(b, cb)

    c.dtmf(cs, "2")
    wait_mode(engine, "whisper")
    assert b.wait_audio(cb) > SILENCE
    assert silent(a, ca)

    c.dtmf(cs, "3")
    wait_mode(engine, "barge")
    assert a.wait_audio(ca) > SILENCE
    assert b.wait_audio(cb) > SILENCE

    c.dtmf(cs, "1")
    wait_mode(engine, "listen")
    assert silent(a, ca)
    assert silent(b, cb)

    a.play(ca)  # the caller speaks: the agent and the supervisor hear it
    assert b.wait_audio(cb) > SILENCE
    assert c.wait_audio(cs) > SILENCE

    c.hangup(cs)
    ended(c, cs)
    wait_mode(engine, "ended")
    b.play(cb)  # the agent speaks: the caller hears it; the call goes on
    assert a.wait_audio(ca) > SILENCE
    assert b.wait_audio(cb) > SILENCE
    assert engine.call(lambda: the_call(engine).state) == "answered"
    a.hangup(ca)
    ended(b, cb)


def test_who_may_not_supervise_changes_nothing(sv_pbx, phones):
    """Story: 103 may not listen to 102's call when it is no queue call, when 103 supervises
    another queue (801) than the call's (800), nor may another tenant's 201 (dialling the
    same code and number): each hears "feature-failed" and is hung up on; the call is not
    touched (no supervision, no event) and 101 and 102 still talk."""
    engine = sv_pbx
    set_snapshot(engine, "acme.test", queues(("800", ["104"]), ("801", ["103"])))
    set_snapshot(engine, "beta.test", queues(("800", ["201"])))
    a, b, c, ca, cb, acc_c = three_phones(engine, phones)
    d = phones("201")
    acc_d = register(d, engine, "201", domain="beta.test")

    def refused(phone: Phone, acc: int, domain: str = "acme.test") -> None:
        call = dial(phone, acc, "*63102", domain=domain)
        assert ended(phone, call) == 200  # answered with the prompt, then hung up on

    refused(c, acc_c)  # not a queue call
    as_queue_call(engine, "800")
    refused(c, acc_c)  # a supervisor of queue 801 only
    refused(d, acc_d, "beta.test")  # another tenant's phone
    assert supervision_events(engine) == []
    assert engine.call(lambda: the_call(engine).supervision) is None
    two_way_audio(a, ca, b, cb)
    a.hangup(ca)
    ended(b, cb)


def test_wallboard_button_rings_the_supervisor_who_listens(sv_pbx, phones):
    """Story: the wallboard's "listen" on agent 102 (``SuperviseCall``): 103's phone rings,
    103 answers and hears the agent; the caller hears the agent as before, also after the
    agent put the call on hold and took it back. The caller hangs up: 103's call ends too."""
    engine = sv_pbx
    set_snapshot(engine, "acme.test", queues(("800", ["103"])))
    a, b, c, ca, cb, _ = three_phones(engine, phones)
    as_queue_call(engine, "800")
    cmd = contract.SuperviseCall(schema="t_acme", supervisor="103", agent="102")
    r = redis.Redis.from_url(worker_redis_url())
    try:
        r.publish(contract.key("", contract.CONTROL), cmd.to_json())
    finally:
        r.close()
    cs = c.incoming()["call"]
    c.answer(cs, 200)
    c.wait_state(cs, "CONFIRMED")
    joined = wait_mode(engine, "listen")
    assert (joined["supervisor"], joined["agent"]) == ("103", "102")
    c.play(cs)
    b.play(cb)
    assert c.wait_audio(cs) > SILENCE  # the agent
    assert a.wait_audio(ca) > SILENCE  # the agent, as before
    assert silent(b, cb)  # the caller is silent and the supervisor is not heard
    # The agent's hold and unhold are answered by its own media-server session: the call
    # stays supervised (no music on hold path, nothing relayed) and goes on.
    sv = engine.call(lambda: the_call(engine).supervision)
    b.hold(cb)
    wait_until(lambda: b.info(cb)["media"] == ["LOCAL_HOLD"], 10)
    b.unhold(cb)
    wait_until(lambda: b.info(cb)["media"] == ["ACTIVE"], 10)
    assert engine.call(lambda: the_call(engine).supervision) is sv
    assert engine.call(lambda: the_call(engine).hold) is None
    assert a.wait_audio(ca) > SILENCE
    a.hangup(ca)
    ended(b, cb)
    ended(c, cs)
    wait_mode(engine, "ended")
