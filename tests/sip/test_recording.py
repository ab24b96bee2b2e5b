"""Call recording in the SIP engine, end to end: pjsua2 phones, the engine and a real
rtpengine recording in pcap files (userspace) with its DTMF reports sent to the engine.

What rtpengine writes, as these tests read it: ``pcaps/<call-id>-<random>.pcap``, classic
pcap (little-endian, microseconds), link type 101 (raw IPv4, no Ethernet header); each packet
is one RTP (or RTCP) datagram as rtpengine received it: from the phone's address and port to
rtpengine's own. ``recording.ready`` names the file and the caller's address:port, which
tells the caller's stream from the callee's."""

from __future__ import annotations

import json
import math
import os
import struct
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.calls.call import Call
from telephony.sip.calls.record_policy import effective_policy
from telephony.sip.calls.recording import dtmf_from_info, join_pcaps
from telephony.sip.contract import (
    ExtensionSnapshot,
    RecordCall,
    RecordingPolicy,
    RecordingSnapshot,
    TenantSnapshot,
    TrunkSnapshot,
)
from tests.sip.callkit import connect, dial, ended, events, register, set_snapshot
from tests.sip.carrier import NATIONAL, carriers, publish_trunks, trunk
from tests.sip.carrier import routing as trunk_routing
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import RtpEngineProcess, free_port

__all__ = ["carriers"]  # a fixture, used by name

# ---------------------------------------------------------------------------- helpers


@pytest.fixture
def recording_pbx(pbx: Callable[..., EngineHandle], tmp_path: Path) -> Iterator[EngineHandle]:
    """An engine with an rtpengine that records into ``tmp_path`` and reports DTMF to it."""
    dtmf = free_port()
    rtp = RtpEngineProcess(recording_dir=str(tmp_path), dtmf_port=dtmf)
    try:
        engine = pbx(
            rtpengine=("127.0.0.1", rtp.ng_port),
            recording_dir=str(tmp_path),
            dtmf_listen=("127.0.0.1", dtmf),
        )
        engine.recording_dir = tmp_path  # type: ignore[attr-defined]
        yield engine
    finally:
        rtp.close()


def policy(engine: EngineHandle, tenant: str = "", **extensions: str) -> None:
    """Set acme's recording policy and its extensions' (``e101="always"``...)."""

    def change(snap: dict[str, Any]) -> None:
        if tenant:
            snap["recording"] = {"policy": tenant, "announcement": ""}
        for name, value in extensions.items():
            snap["extensions"][name[1:]]["recording"] = value

    set_snapshot(engine, "acme.test", change)


def requests(engine: EngineHandle, kind: str) -> list[dict[str, str]]:
    """The engine's stream entries of type ``kind`` (requests are not ``call.*`` events)."""
    engine.run(engine.pbx.events.flush())
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        stream = r.xrange(engine.pbx.config.redis_prefix + contract.EVENTS)
    finally:
        r.close()
    return [e for _, e in stream if e["type"] == kind]


def recording_states(engine: EngineHandle, call_id: str) -> list[tuple[str, str]]:
    return [
        (e["state"], e["by"])
        for e in events(engine, call_id)
        if e["type"] == contract.EventType.CALL_RECORDING
    ]


def the_call(engine: EngineHandle) -> Call:
    return engine.call(lambda: next(iter(engine.pbx.calls.calls.by_id.values())))


def control(engine: EngineHandle, message: contract.ControlMessage) -> None:
    r = redis.Redis.from_url(worker_redis_url())
    try:
        channel = engine.pbx.config.redis_prefix + contract.CONTROL
        wait_until(lambda: r.pubsub_numsub(channel)[0][1] > 0)
        r.publish(channel, message.to_json())
    finally:
        r.close()


def read_pcap(path: str) -> tuple[int, list[tuple[str, bytes]]]:
    """The link type and the packets (``"src_ip:port"``, RTP bytes) of a pcap file."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack("<IHHiIII", data[:24])
    assert magic == 0xA1B2C3D4
    packets = []
    pos = 24
    while pos < len(data):
        _, _, length, _ = struct.unpack("<IIII", data[pos : pos + 16])
        ip = data[pos + 16 : pos + 16 + length]
        pos += 16 + length
        ihl = (ip[0] & 15) * 4
        src = ".".join(str(b) for b in ip[12:16])
        sport = struct.unpack("!H", ip[ihl : ihl + 2])[0]
        packets.append((f"{src}:{sport}", ip[ihl + 8 :]))
    return linktype, packets


def _ulaw(byte: int) -> int:
    byte = ~byte & 0xFF
    sign, exponent, mantissa = byte & 0x80, (byte >> 4) & 7, byte & 15
    sample = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return -sample if sign else sample


def tone_packets(rtp: list[bytes], freq: float = 1000.0) -> int:
    """How many of the G.711 packets in ``rtp`` carry a tone of ``freq`` (Goertzel per
    packet: 20 ms of 1 kHz is a whole number of cycles, so the measure is exact)."""
    k = 2 * math.cos(2 * math.pi * freq / 8000)
    found = 0
    for pkt in rtp:
        if pkt[1] & 0x7F != 0:
            continue
        samples = [_ulaw(b) for b in pkt[12:]]
        energy = sum(x * x for x in samples)
        if energy < len(samples) * 100**2:
            continue  # silence
        s1 = s2 = 0.0
        for x in samples:
            s1, s2 = x + k * s1 - s2, s1
        if (s1 * s1 + s2 * s2 - k * s1 * s2) / (energy * len(samples) / 2) > 0.8:
            found += 1
    return found


# -------------------------------------------------------------------- end to end


def test_always_records_both_directions_and_announces_the_file(recording_pbx, phones):
    """Story: acme records every call. 101 calls 102, both talk (a 1 kHz tone each); when 101
    hangs up, one pcap holds both directions' RTP, and ``recording.ready`` names it, its
    format, the caller's RTP address:port as the pcap shows it and when it started."""
    engine = recording_pbx
    policy(engine, "always")
    a, b = phones("101"), phones("102")
    a.only_codec("PCMU/8000")
    b.only_codec("PCMU/8000")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    call = the_call(engine)
    assert call.anchored
    a.play(ca)
    b.play(cb)
    assert a.wait_audio(ca) > 10
    assert b.wait_audio(cb) > 10
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "policy")])
    # About a second of both directions on disk (G.711: 216 bytes a packet, 50 a second).
    pcaps = engine.recording_dir / "pcaps"
    wait_until(lambda: sum(p.stat().st_size for p in pcaps.iterdir()) > 2 * 50 * 216)
    a.hangup(ca)
    ended(b, cb)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert (ready["call_id"], ready["schema"], ready["format"]) == (call.id, "t_acme", "pcap")
    assert abs(float(ready["started"]) - call.answered_at) < 2
    assert Path(ready["path"]).parent == engine.recording_dir / "pcaps"
    linktype, packets = read_pcap(ready["path"])
    assert linktype == 101  # raw IP
    rtcp = [p for _, p in packets if 200 <= p[1] <= 204]  # RTCP is in the capture too
    assert rtcp
    packets = [(src, p) for src, p in packets if not 200 <= p[1] <= 204]
    sources = {src for src, _ in packets}
    assert ready["caller"] in sources
    assert len(sources) == 2
    caller_rtp = [p for src, p in packets if src == ready["caller"]]
    callee_rtp = [p for src, p in packets if src != ready["caller"]]
    assert tone_packets(caller_rtp) > 10
    assert tone_packets(callee_rtp) > 10
    assert not list((engine.recording_dir / "metadata").iterdir())  # read and removed


def test_both_parties_hear_the_announcement_when_recording_starts(recording_pbx, phones, tmp_path):
    """Story: acme announces its recordings: as 101's call to 102 is answered, both hear
    the announcement (neither phone sends any sound of its own)."""
    engine = recording_pbx
    notice = tmp_path / "notice.wav"
    with wave.open(str(notice), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(12000 * math.sin(2 * math.pi * 440 * i / 8000)))
                for i in range(16000)
            )
        )
    set_snapshot(
        engine,
        "acme.test",
        lambda s: s.update(recording={"policy": "always", "announcement": str(notice)}),
    )
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    assert a.wait_audio(ca, 5) > 10
    assert b.wait_audio(cb, 5) > 10
    a.hangup(ca)
    ended(b, cb)


def test_a_ring_group_members_policy_records_its_calls(recording_pbx, phones):
    """Story: 102 records all its calls; 101 calls ring group 600, whose member 102
    answers: the call was anchored from the start and is recorded."""
    engine = recording_pbx
    policy(engine, e102=RecordingPolicy.ALWAYS)
    members = [{"number": "102", "external": False}]
    group = {"number": "600", "name": "Sales", "members": members, "member_seconds": 30}
    set_snapshot(
        engine, "acme.test", lambda s: s.setdefault("team", {}).update(ring_groups=[group])
    )
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b, "600")
    call = the_call(engine)
    assert call.anchored
    a.play(ca)
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "policy")])
    assert b.wait_audio(cb) > 10
    wait_until(
        lambda: any(p.stat().st_size > 10 * 216 for p in (engine.recording_dir / "pcaps").iterdir())
    )
    b.hangup(cb)
    ended(a, ca)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert ready["call_id"] == call.id


def test_a_trunk_that_records_always_records_its_outside_calls(recording_pbx, phones, carriers):
    """Story: the tenant never records, but its carrier's trunk is set to record every call:
    101's call out through it is recorded, the phone's stream told by ``caller``."""
    engine = recording_pbx
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier, recording=RecordingPolicy.ALWAYS))
    set_snapshot(engine, "acme.test", trunk_routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    call = the_call(engine)
    a.play(ca)
    assert a.wait_audio(ca) > 10  # the carrier echoes it
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "policy")])
    a.hangup(ca)
    assert ended(a, ca) == 200
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert ready["call_id"] == call.id
    _, packets = read_pcap(ready["path"])
    assert ready["caller"] in {src for src, _ in packets}
    carrier.done()


def test_never_is_not_anchored_and_records_nothing(recording_pbx, phones):
    """Story: a tenant that never records: the call has no recording (its anchoring is
    decided as without recording: see the policy tests), no file is written and no recording
    is announced; keyed codes do nothing."""
    engine = recording_pbx
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    call = the_call(engine)
    assert call.recording is None
    a.dtmf(ca, "*44")
    b.wait("dtmf", call=cb, digit="4")  # the keys went through, and changed nothing
    a.hangup(ca)
    ended(b, cb)
    wait_until(lambda: events(engine, call.id)[-1]["type"] == "call.ended")
    assert not list((engine.recording_dir / "pcaps").iterdir())
    assert requests(engine, contract.EventType.RECORDING_READY) == []


def test_on_demand_records_from_star44_and_pauses_with_star48(recording_pbx, phones):
    """Story: 101 records on demand (its own setting, the tenant never does). Its call is
    anchored but nothing is written until 101 keys *44; *48 pauses, *49 resumes; the call
    still ends with one file and one ``recording.ready``."""
    engine = recording_pbx
    policy(engine, e101=RecordingPolicy.ON_DEMAND)
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    call = the_call(engine)
    assert call.anchored
    a.play(ca)
    b.play(cb)
    assert b.wait_audio(cb) > 10
    assert not list((engine.recording_dir / "pcaps").iterdir())
    assert recording_states(engine, call.id) == []
    a.dtmf(ca, "*44")
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "101")])
    a.dtmf(ca, "*48")
    wait_until(lambda: recording_states(engine, call.id)[-1:] == [("paused", "101")])
    a.dtmf(ca, "*49")
    wait_until(lambda: recording_states(engine, call.id)[-1:] == [("recording", "101")])
    assert len(list((engine.recording_dir / "pcaps").iterdir())) == 2  # rtpengine's parts
    b.hangup(cb)
    ended(a, ca)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert [p.name for p in (engine.recording_dir / "pcaps").iterdir()] == [f"{call.id}.pcap"]
    assert ready["path"] == str(engine.recording_dir / "pcaps" / f"{call.id}.pcap")
    _, packets = read_pcap(ready["path"])
    assert {src for src, _ in packets} >= {ready["caller"]}


def test_keys_sent_in_sip_info_work_too(recording_pbx, phones):
    """Story: 102's phone sends its keys as SIP INFO: *44 starts the on-demand recording
    all the same (and the keys still reach 101)."""
    engine = recording_pbx
    policy(engine, RecordingPolicy.ON_DEMAND)
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    call = the_call(engine)
    b.dtmf_info(cb, "*44")
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "102")])
    a.wait("dtmf", call=ca, digit="4")
    a.hangup(ca)
    ended(b, cb)


def test_record_call_from_the_control_channel_only_for_its_tenant(recording_pbx, phones):
    """Story: the API starts and stops an on-demand call's recording (``RecordCall``); the
    same command naming another tenant does nothing."""
    engine = recording_pbx
    policy(engine, RecordingPolicy.ON_DEMAND)
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    call = the_call(engine)
    a.play(ca)
    assert b.wait_audio(cb) > 10
    control(engine, RecordCall(schema="t_beta", call_id=call.id, action="start"))
    control(engine, RecordCall(schema="t_acme", call_id=call.id, action="start", by="api"))
    wait_until(lambda: recording_states(engine, call.id) == [("recording", "api")])
    pcaps = engine.recording_dir / "pcaps"
    wait_until(lambda: sum(p.stat().st_size for p in pcaps.iterdir()) > 10 * 216)
    control(engine, RecordCall(schema="t_beta", call_id=call.id, action="stop"))
    control(engine, RecordCall(schema="t_acme", call_id=call.id, action="stop", by="portal"))
    wait_until(lambda: recording_states(engine, call.id)[-1] == ("stopped", "portal"))
    assert recording_states(engine, call.id) == [("recording", "api"), ("stopped", "portal")]
    a.hangup(ca)
    ended(b, cb)
    [ready] = wait_until(lambda: requests(engine, contract.EventType.RECORDING_READY))
    assert ready["call_id"] == call.id


def test_an_in_call_code_dialled_as_a_call_is_refused(recording_pbx, phones):
    """Story: 101 dials *44 as a number: a clear 404, nothing rings."""
    engine = recording_pbx
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "*44")
    assert ended(a, ca) == 404


# --------------------------------------------------------------------------- units


def _tenant(policy: str, **recordings: str) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=1,
        schema="t_x",
        domain="x.test",
        recording=RecordingSnapshot(policy=policy),
        extensions={
            n: ExtensionSnapshot(number=n, recording=recordings.get(f"e{n}", ""))
            for n in ("101", "102")
        },
    )


@pytest.mark.parametrize(
    ("tenant", "exts", "trunk", "expected"),
    [
        ("never", {}, "", "never"),
        ("always", {}, "", "always"),
        ("never", {"e101": "on_demand"}, "", "on_demand"),
        ("never", {"e102": "always"}, "", "always"),
        ("on_demand", {"e101": "never"}, "", "on_demand"),  # the strongest wins
        ("never", {}, "always", "always"),
        ("on_demand", {"e102": "never"}, "never", "on_demand"),
    ],
)
def test_effective_policy_is_the_strongest_of_the_parties(tenant, exts, trunk, expected):
    t = _tenant(tenant, **exts)
    call = Call(id="c", tenant=t, caller=t.extensions["101"], callee="102", target="102")
    trunks = {}
    if trunk:
        trunks[7] = TrunkSnapshot(id=7, recording=trunk)
        call.trunks.append(7)
    assert effective_policy(call, trunks) == expected


def test_an_inbound_callers_number_is_no_extension_of_the_tenant():
    """An outside caller whose number happens to be an extension's does not bring that
    extension's policy."""
    t = _tenant("never", e101="always")
    call = Call(id="c", tenant=t, caller=t.extensions["101"], callee="102", target="102")
    call.inbound = True
    assert effective_policy(call) == "never"


@pytest.mark.parametrize(
    ("content_type", "body", "key"),
    [
        ("application/dtmf-relay", b"Signal=4\r\nDuration=160\r\n", "4"),
        ("application/dtmf-relay", b"Signal= *\r\nDuration=160", "*"),
        ("application/dtmf-relay", b"Signal=11\r\n", "#"),
        ("application/dtmf", b"9", "9"),
        ("application/dtmf-relay", b"Duration=160", ""),
        ("application/dtmf-relay", b"Signal=44", ""),
        ("application/media_control+xml", b"<x/>", ""),
    ],
)
def test_dtmf_in_sip_info(content_type, body, key):
    assert dtmf_from_info(content_type, body) == key


def test_join_pcaps_orders_parts_by_time(tmp_path):
    def pcap(path: Path, *times: int) -> Path:
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
        body = b"".join(struct.pack("<IIII", t, 0, 1, 1) + bytes([t]) for t in times)
        path.write_bytes(header + body)
        return path

    late = pcap(tmp_path / "b.pcap", 20, 21)
    early = pcap(tmp_path / "a.pcap", 10, 11)
    out = tmp_path / "out.pcap"
    join_pcaps([late, early], out)
    data = out.read_bytes()
    assert data[:24] == early.read_bytes()[:24]
    assert [data[24 + i * 17 + 16] for i in range(4)] == [10, 11, 20, 21]
    assert os.path.getsize(out) == 24 + 4 * 17


def test_record_call_round_trip():
    msg = RecordCall(schema="t_a", call_id="c1", action="pause", by="103")
    assert contract.ControlMessage.from_json(msg.to_json()) == msg
    assert contract.ControlMessage.from_json(json.dumps({"op": "record", "action": "x"})) is None
