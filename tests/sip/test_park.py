"""Call park end to end: pjsua2 phones, the engine, rtpengine and the media server on
loopback. 102 parks its caller by a blind transfer to the park code or to a slot; the caller
hears the slot and music; the slot lights up on BLF and in the tenant's PARKED hash; 103
retrieves it (the code, or dialling the slot) and talks to it; a call parked too long rings
its parker again; a parked caller that hangs up frees the slot; another tenant reaches
nothing."""

from __future__ import annotations

import json
from typing import Any

import redis

from telephony.sip import contract
from tests.sip import test_media_features as media_features
from tests.sip.callkit import add_extension, connect, dial, ended, events, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url

# The media features' engine (rtpengine, the media server, short prompts and music).
media_dir = media_features.media_dir
media_pbx = media_features.media_pbx


ACCOUNTS: dict[str, int] = {}


def _calls(engine: EngineHandle) -> list[Any]:
    return list(engine.pbx.calls.calls.by_id.values())


def parked(engine: EngineHandle, domain_schema: str = "t_acme") -> dict[str, dict[str, Any]]:
    """The tenant's PARKED hash: slot -> record."""
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        key = contract.key(engine.pbx.config.redis_prefix, contract.PARKED, schema=domain_schema)
        return {slot: json.loads(raw) for slot, raw in r.hgetall(key).items()}
    finally:
        r.close()


def blf(engine: EngineHandle, slot: str, schema: str = "t_acme") -> list[Any]:
    states = engine.pbx.calls.states
    return engine.call(lambda: states.of(schema, slot))


def park_by_transfer(engine: EngineHandle, phones: Any, number: str) -> tuple[Any, int, Any]:
    """101 calls 102, which blind-transfers it to ``number`` (a park code or slot) and is let
    go; 101 hears the PBX (the slot's digits, the music). Returns (101, its call, 102); the
    phones' accounts are in ``ACCOUNTS``."""
    a, b = phones("101"), phones("102")
    acc = ACCOUNTS["101"] = register(a, engine, "101")
    ACCOUNTS["102"] = register(b, engine, "102")
    ca, cb = connect(a, acc, b)
    b.xfer(cb, f"sip:{number}@acme.test")
    frags = []
    while "SIP/2.0 200" not in "".join(frags):
        frags.append(b.wait("request", call=cb, method="NOTIFY")["msg"])
    assert ended(b, cb) == 200
    a.wait("request", call=ca, method="INVITE")  # re-offered towards the media server
    assert a.wait_audio(ca) > 10  # the slot's digits and the music on hold
    return a, ca, b


def test_park_by_transfer_to_the_code_and_retrieve_with_the_code(media_pbx, phones):
    """Story: 102 transfers its caller to *68; the call waits in the first slot (701, lit on
    BLF and listed for the portal); 103 dials *88701 and talks to the caller."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, ca, _ = park_by_transfer(engine, phones, "*68")
    record = wait_until(lambda: parked(engine).get("701"))
    assert (record["caller"], record["by"], record["engine"]) == (
        "101",
        "102",
        engine.pbx.engine_id,
    )
    [view] = blf(engine, "701")
    assert view.state == "confirmed"
    [call] = engine.call(lambda: _calls(engine))
    assert (call.a.user, call.b) == ("101", None)
    c = phones("103")
    acc_c = register(c, engine, "103")
    cc = dial(c, acc_c, "*88701")
    c.wait_state(cc, "CONFIRMED")
    a.play(ca)
    c.play(cc)
    assert c.wait_audio(cc) > 10
    assert a.wait_audio(ca) > 10
    assert parked(engine) == {}
    assert blf(engine, "701") == []
    kinds = [
        (e["type"], e.get("slot"), e.get("by"), e.get("reason")) for e in events(engine, call.id)
    ]
    assert ("call.parked", "701", "102", None) in kinds
    assert ("call.unparked", "701", "103", "retrieved") in kinds
    c.hangup(cc)
    assert ended(a, ca) == 200
    wait_until(lambda: engine.call(lambda: not _calls(engine)))


def test_park_in_a_slot_and_retrieve_by_dialling_it(media_pbx, phones):
    """Story: 102 transfers its caller to slot 703; 103 dials 703 and gets the caller; a
    transfer to a slot that is taken is refused and the parties stay connected."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, ca, b = park_by_transfer(engine, phones, "703")
    assert list(wait_until(lambda: parked(engine))) == ["703"]
    c = phones("103")
    acc_c = register(c, engine, "103")
    cc = dial(c, acc_c, "703")
    c.wait_state(cc, "CONFIRMED")
    a.play(ca)
    assert c.wait_audio(cc) > 10
    assert parked(engine) == {}
    c.hangup(cc)
    assert ended(a, ca) == 200

    # 101 (calling 102 again) parks itself by dialling a slot, and a transfer to it is busy.
    ca = dial(a, ACCOUNTS["101"], "704")
    a.wait_state(ca, "CONFIRMED")
    wait_until(lambda: "704" in parked(engine))
    cb2 = dial(b, ACCOUNTS["102"], "103")
    cc2 = c.incoming()["call"]
    c.answer(cc2, 200)
    b.wait_state(cb2, "CONFIRMED")
    b.xfer(cb2, "sip:704@acme.test")
    frags = []
    while "SIP/2.0 486" not in "".join(frags):
        frags.append(b.wait("request", call=cb2, method="NOTIFY")["msg"])
    b.play(cb2)
    assert c.wait_audio(cc2) > 10  # still connected
    b.hangup(cb2)
    ended(c, cc2)
    a.hangup(ca)
    wait_until(lambda: parked(engine) == {})


def test_a_call_parked_too_long_rings_its_parker(media_pbx, phones):
    """Story: the park timeout is 2 s; 102 parks its caller and nobody retrieves it: 102's
    phone rings with it, 102 answers and they talk again."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", lambda s: s.update(team={"park": {"timeout": 2}}))
    a, ca, b = park_by_transfer(engine, phones, "*68")
    incoming = b.incoming(timeout=10)
    assert "<sip:101@acme.test>" in incoming["msg"]
    cb = incoming["call"]
    b.answer(cb, 200)
    b.wait_state(cb, "CONFIRMED")
    b.play(cb)
    a.play(ca)
    assert b.wait_audio(cb) > 10
    assert a.wait_audio(ca) > 10
    assert parked(engine) == {}
    [call] = engine.call(lambda: _calls(engine))
    unparked = [e for e in events(engine, call.id) if e["type"] == "call.unparked"]
    assert [e["reason"] for e in unparked] == ["timeout"]
    a.hangup(ca)
    assert ended(b, cb) == 200


def test_a_parked_caller_that_hangs_up_frees_the_slot(media_pbx, phones):
    """102 parks its caller with the code and a slot (*68705); the caller hangs up: the slot
    is free again (BLF, the PARKED hash) and the call says why it left."""
    engine = media_pbx
    a, ca, _ = park_by_transfer(engine, phones, "*68705")
    wait_until(lambda: "705" in parked(engine))
    [call] = engine.call(lambda: _calls(engine))
    a.hangup(ca)
    ended(a, ca)
    wait_until(lambda: parked(engine) == {})
    assert blf(engine, "705") == []
    unparked = [e for e in events(engine, call.id) if e["type"] == "call.unparked"]
    assert [(e["slot"], e["reason"]) for e in unparked] == [("705", "hangup")]


def test_another_tenant_cannot_retrieve(media_pbx, phones):
    """acme's call waits in 701; beta's 201 dials *88701 in its own tenant: nothing is parked
    there (404), and acme's call stays parked."""
    engine = media_pbx
    a, ca, _ = park_by_transfer(engine, phones, "*68")
    wait_until(lambda: "701" in parked(engine))
    x = phones("201")
    acc = register(x, engine, "201", domain="beta.test")
    assert ended(x, dial(x, acc, "*88701", domain="beta.test")) == 404
    assert list(parked(engine)) == ["701"]
    beta = engine.call(lambda: engine.pbx.directory.tenant("beta.test").schema)
    assert parked(engine, beta) == {}
    assert blf(engine, "701", beta) == []
    a.hangup(ca)
    wait_until(lambda: parked(engine) == {})
