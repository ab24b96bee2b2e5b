"""Recording in the contact centre, end to end: pjsua2 callers and agents, the engine, the media
server and a real rtpengine recording in pcap files.

A queue's recording policy (``Queue.recording``) counts once its agent answered a call
(``call.queue``), beside the tenant's and the extensions'; the agents ringing for a call the
queue may record are offered only what a recording is decoded from (G.711). A supervisor who
listens to or barges into a recorded call does not cut the recording: the caller stays on the
call's rtpengine pairing, with the media server's session in the agent's place, so the pcap
goes on holding what the caller says and what it hears. Audio is measured in the pcap as
``audio.recordings`` decodes it (each phone plays a 1 kHz tone on its call)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from audio.recordings import DECODERS, parse_rtp, read_pcap
from telephony.sip import contract
from telephony.sip.calls.call import Call
from telephony.sip.calls.record_policy import effective_policy, queue_policy
from telephony.sip.contract import (
    CallCenterSnapshot,
    ExtensionSnapshot,
    Queue,
    RecordingPolicy,
    RecordingSnapshot,
    TenantSnapshot,
)
from tests.sip.callkit import (
    add_extension,
    dial,
    ended,
    events,
    media_engine,
    register,
    set_snapshot,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until
from tests.sip.pjphone import Phone
from tests.sip.test_media_features import media_dir
from tests.sip.test_queues import QUEUE, agent_phones, answer, caller, queue, rung, set_queues
from tests.sip.test_recording import requests
from tests.sip.test_supervision import wait_mode

__all__ = ["media_dir"]  # a fixture, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

PHONES = ("101", "102", "103", "104")


@pytest.fixture
def rec_pbx(
    pbx: Callable[..., EngineHandle],
    media_dir: str,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> Iterator[EngineHandle]:
    """An engine with the media server and an rtpengine that records into ``rec/``; acme
    (101..104) never records, by the tenant's policy nor any extension's."""
    recordings = tmp_path / "rec"
    recordings.mkdir()
    with media_engine(pbx, media_dir, recording_dir=recordings) as engine:
        engine.recording_dir = recordings  # type: ignore[attr-defined]
        for n in ("103", "104"):
            set_snapshot(engine, "acme.test", add_extension(n))

        def never(snap: dict[str, Any]) -> None:
            snap["recording"] = {"policy": RecordingPolicy.NEVER, "announcement": ""}
            for n in PHONES:
                snap["extensions"][n]["recording"] = RecordingPolicy.NEVER

        set_snapshot(engine, "acme.test", never)
        yield engine


def queue_call(engine: EngineHandle) -> Call:
    """The one call of the queue on the engine, once its agent answered."""
    found = [c for c in engine.pbx.calls.calls.by_id.values() if c.queue == QUEUE]
    assert len(found) == 1
    return found[0]


def recording_states(engine: EngineHandle, call_id: str) -> list[str]:
    return [
        e["state"]
        for e in events(engine, call_id)
        if e["type"] == contract.EventType.CALL_RECORDING
    ]


def queue_answered(engine: EngineHandle, phones: Any) -> tuple[Phone, int, Phone, int, Call]:
    """101 calls the queue, its agent 102 answers; both play their tone. (caller, its call,
    agent, its call, the engine's call)."""
    agents = agent_phones(engine, phones, "102")
    a, acc = caller(engine, phones)
    ca = dial(a, acc, QUEUE)
    a.wait_state(ca, "CONFIRMED")
    who, cb = rung(agents)
    assert who == "102"
    b = agents["102"]
    answer(b, cb)
    a.play(ca)
    b.play(cb)
    call = engine.call(lambda: queue_call(engine))
    return a, ca, b, cb, call


def is_tone(pcm: np.ndarray) -> bool:
    """``pcm`` (20 ms) carries the phones' 1 kHz tone (Goertzel: 20 ms of 1 kHz is a whole
    number of cycles, so the measure is exact)."""
    x = pcm.astype(np.float64)
    energy = float((x**2).sum())
    if energy < len(x) * 100.0**2:
        return False  # silence
    ref = np.exp(-2j * math.pi * 1000.0 * np.arange(len(x)) / 8000)
    return bool(abs(x @ ref) ** 2 / (energy * len(x) / 2) > 0.8)


def tones(path: str, caller: str) -> tuple[list[float], list[float], set[str]]:
    """The pcap's RTP decoded as ``audio.recordings`` decodes it: when the packets of what
    the caller said and of what it heard carried the tone (epochs), and the sources of the
    latter."""
    said: list[float] = []
    heard: list[float] = []
    others: set[str] = set()
    for p in read_pcap(path):
        rtp = parse_rtp(p.payload)
        table = DECODERS.get(rtp.pt) if rtp is not None else None
        if rtp is None or table is None:
            continue
        if p.src != caller:
            others.add(p.src)
        if is_tone(table[np.frombuffer(rtp.payload, dtype=np.uint8)]):
            (said if p.src == caller else heard).append(p.time)
    return said, heard, others


def share(times: list[float], t0: float, t1: float) -> float:
    """The share of the 20 ms packets between epochs ``t0`` and ``t1`` found with the tone."""
    return sum(t0 <= t < t1 for t in times) / ((t1 - t0) * 50)


# -------------------------------------------------------------------- end to end


def test_a_queue_that_records_always_records_its_calls(rec_pbx, phones):
    """Story: acme and its extensions never record, but the support queue records every
    call. 101 calls the queue, agent 102 answers and they talk: the call is recorded from
    the answer, and when it ends ``recording.ready`` names one pcap holding both what 101
    said and what 102 said (G.711: the agent was offered nothing else)."""
    engine = rec_pbx
    set_queues(engine, queue("102", recording=RecordingPolicy.ALWAYS))
    a, ca, b, cb, call = queue_answered(engine, phones)
    assert call.anchored
    assert a.wait_audio(ca) > 10
    assert b.wait_audio(cb) > 10
    wait_until(lambda: recording_states(engine, call.id) == ["recording"])
    time.sleep(2.0)
    a.hangup(ca)
    ended(b, cb)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert (ready["call_id"], ready["format"]) == (call.id, "pcap")
    said, heard, _ = tones(ready["path"], ready["caller"])
    t0 = float(ready["started"]) + 0.5
    assert share(said, t0, t0 + 1.5) > 0.8
    assert share(heard, t0, t0 + 1.5) > 0.8


def test_a_queue_that_inherits_records_nothing_when_nobody_records(rec_pbx, phones):
    """Story: the queue's own policy is "" (its calls follow their parties') and acme and its
    extensions never record: 101's call answered by agent 102 is not recorded, nothing is
    written and no ``recording.ready`` comes."""
    engine = rec_pbx
    set_queues(engine, queue("102", recording=""))
    a, ca, b, cb, call = queue_answered(engine, phones)
    assert b.wait_audio(cb) > 10
    assert a.wait_audio(ca) > 10
    time.sleep(1.0)
    assert engine.call(lambda: queue_call(engine).recording) is None
    a.hangup(ca)
    ended(b, cb)
    wait_until(lambda: engine.call(lambda: call.id not in engine.pbx.calls.calls.by_id))
    engine.run(engine.pbx.events.flush())
    assert requests(engine, contract.EventType.RECORDING_READY) == []
    assert recording_states(engine, call.id) == []
    assert not list((engine.recording_dir / "pcaps").glob("*.pcap"))


def test_supervising_a_recorded_call_keeps_the_recording_whole(rec_pbx, phones):
    """Story: the support queue records every call and 103 supervises it. 101's call is
    answered by agent 102, both talking; 103 dials *63102 and listens, then keys 3 and
    barges in; then 101 hangs up. The pcap holds what 101 said all along, and what 101 heard
    (102) before and after 103 joined: once 103 joined it comes from the media server's
    session in 102's place, while 101's phone kept sending to the same address."""
    engine = rec_pbx
    set_queues(engine, queue("102", recording=RecordingPolicy.ALWAYS, supervisors=["103"]))
    a, ca, b, cb, call = queue_answered(engine, phones)
    assert a.wait_audio(ca) > 10
    wait_until(lambda: recording_states(engine, call.id) == ["recording"])
    media_id = call.media_id
    time.sleep(1.5)
    c = phones("103")
    cs = dial(c, register(c, engine, "103"), "*63102")
    c.wait_state(cs, "CONFIRMED")
    wait_mode(engine, "listen")
    joined = time.time()
    assert engine.call(lambda: queue_call(engine).media_id) == media_id
    assert a.wait_audio(ca) > 10  # the agent, through the media server
    assert c.wait_audio(cs) > 10
    time.sleep(2.5)
    c.dtmf(cs, "3")
    wait_mode(engine, "barge")
    barged = time.time()
    assert b.wait_audio(cb) > 10
    time.sleep(2.5)
    a.hangup(ca)
    ended(b, cb)
    ended(c, cs)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert ready["call_id"] == call.id
    said, heard, others = tones(ready["path"], ready["caller"])
    answered = float(ready["started"]) + 0.5
    # Before the supervisor, while it listens (the agent alone reaches the caller), and
    # once it barged in: the caller's words and what it hears are in the recording.
    for t0, t1 in ((answered, joined - 0.5), (joined + 1.0, barged), (barged + 0.5, barged + 2.0)):
        assert share(said, t0, t1) > 0.8, ("said", t0 - answered, t1 - answered)
        assert share(heard, t0, t1) > 0.8, ("heard", t0 - answered, t1 - answered)
    assert len(others) == 2  # the agent's phone, then the media server in its place


# ------------------------------------------------------------------------------ policy


def _tenant(policy: str, queue_recording: str, **recordings: str) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=1,
        schema="t_x",
        domain="x.test",
        recording=RecordingSnapshot(policy=policy),
        extensions={
            n: ExtensionSnapshot(number=n, recording=recordings.get(f"e{n}", ""))
            for n in ("101", "102", "103")
        },
        callcenter=CallCenterSnapshot(
            queues={"700": Queue(number="700", recording=queue_recording)}
        ),
    )


@pytest.mark.parametrize(
    ("tenant", "queue_recording", "exts", "expected"),
    [
        ("never", "always", {}, "always"),
        ("never", "on_demand", {"e102": "never"}, "on_demand"),
        ("never", "", {}, "never"),
        ("on_demand", "never", {}, "on_demand"),  # the strongest wins
        ("never", "never", {"e102": "always"}, "always"),
    ],
)
def test_a_queue_calls_policy_counts_once_its_agent_answered(
    tenant, queue_recording, exts, expected
):
    t = _tenant(tenant, queue_recording, **exts)
    call = Call(id="c", tenant=t, caller=t.extensions["101"], callee="700", target="700")
    assert effective_policy(call) == (RecordingPolicy.NEVER if tenant == "never" else tenant)
    call.queue, call.target = "700", "102"
    assert effective_policy(call) == expected


def test_the_policy_before_the_agents_ring_counts_the_queue_and_the_agents():
    t = _tenant("never", "", e103="on_demand")
    call = Call(id="c", tenant=t, caller=t.extensions["101"], callee="700", target="700")
    q = t.callcenter.queues["700"]
    assert queue_policy(call, q, ["102"]) == "never"
    assert queue_policy(call, q, ["102", "103"]) == "on_demand"
    assert queue_policy(call, Queue(number="700", recording="always"), ["102"]) == "always"
