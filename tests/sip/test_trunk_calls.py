"""Outside calls through SIP trunks, end to end: pjsua2 phones as the extensions, SIPp playing the
carrier (``carrier.py``: its scenarios and helpers), the engine between them."""

from __future__ import annotations

import re

import pytest
import redis

from telephony.sip import contract
from tests.sip.callkit import add_extension, dial, ended, events, register, set_snapshot
from tests.sip.carrier import (
    E164,
    NATIONAL,
    carriers,
    channels,
    digest_ok,
    engine,
    header,
    publish_trunks,
    request_line,
    routed,
    routing,
    rtpengine,
    rtpengine_port,
    schema,
    trunk,
)
from tests.sip.engine_fixtures import wait_until, worker_redis_url
from tests.sip.pjphone import free_port

__all__ = ["carriers", "engine", "rtpengine"]  # fixtures, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def test_a_national_number_goes_out_in_e164_with_the_caller_id_and_audio(
    pbx, phones, carriers, rtpengine
):
    """Story: 101 (outbound caller ID +4930555) dials 030 1234567. The carrier challenges the
    INVITE, our answer is accepted (a new CSeq), it receives sip:+49301234567 with the caller ID
    in P-Asserted-Identity, the media anchored through rtpengine; the call connects and the
    phone hears its own audio echoed by the carrier. The CDR fields say it: outbound, trunk 1,
    dialled, E.164 number, presented caller ID."""
    engine = pbx(rtpengine=("127.0.0.1", rtpengine.ng_port))
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["101"].update(
        outbound_caller_ids=["+4930555"]))  # fmt: skip
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.play(ca)
    assert a.wait_audio(ca) > 10  # our audio went to the carrier and came back
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()
    first, authed = carrier.invites()
    for inv in (first, authed):
        assert request_line(inv) == f"INVITE sip:{E164}@127.0.0.1:{carrier.port} SIP/2.0"
        assert header(inv, "P-Asserted-Identity") == ['"Acme 101" <sip:+4930555@127.0.0.1>']
        assert header(inv, "From")[0].startswith('"Acme 101" <sip:+4930555@127.0.0.1>;tag=')
    assert not header(first, "Proxy-Authorization")
    assert header(authed, "Proxy-Authorization")[0].startswith('Digest username="acct"')
    assert digest_ok(authed)
    assert header(first, "CSeq") == ["1 INVITE"]
    assert header(authed, "CSeq") == ["2 INVITE"]
    # Anchored: the carrier is offered rtpengine's address, not the phone's.
    assert rtpengine_port(authed)
    assert channels(engine) == {}
    [ev] = routed(engine)
    assert {k: ev[k] for k in contract.CDR_FIELDS if k in ev} == {
        "direction": "outbound", "trunk": "1", "dialled": NATIONAL, "number": E164,
        "presented": "+4930555",
    }  # fmt: skip


def test_failover_from_503_and_silence_to_the_next_trunk(engine, phones, carriers):
    """Story: the rule's trunks are 1 (answers nothing at all), 2 (503) and 3 (takes it). The
    call goes to each in turn and connects on trunk 3; a routed event per attempt."""
    busy = carriers("503")
    good = carriers("auth")
    publish_trunks(
        engine,
        trunk(engine, 1, free_port()),  # nobody there
        trunk(engine, 2, busy),
        trunk(engine, 3, good, caller_id_header="rpid"),
    )
    set_snapshot(engine, "acme.test", routing(outbound=[
        {"id": 1, "trunks": [1, 2, 3], "prefix": "0", "strip": 1, "prepend": "+49"}]))  # fmt: skip
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(a, ca) == 200
    busy.done()
    good.done()
    [refused] = busy.invites()
    assert request_line(refused).startswith(f"INVITE sip:{E164}@")
    inv = good.invites()[-1]
    # Remote-Party-ID chosen for trunk 3, the trunk's caller ID (101 has none of its own).
    assert header(inv, "Remote-Party-ID") == [
        '"Acme 101" <sip:+4930999@127.0.0.1>;party=calling;screen=yes;privacy=off'
    ]
    assert not header(inv, "P-Asserted-Identity")
    assert [e["trunk"] for e in routed(engine)] == ["1", "2", "3"]


def test_every_trunk_failing_gives_the_caller_503(engine, phones, carriers):
    """Story: the only trunk answers 503: the caller hears 503, and nothing is left counted."""
    busy = carriers("503")
    publish_trunks(engine, trunk(engine, 1, busy))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    assert ended(a, dial(a, acc, NATIONAL)) == 503
    busy.done()
    assert channels(engine) == {}


def test_privacy_code_withholds_the_caller_id(engine, phones, carriers):
    """Story: 101 dials *67 030 1234567: the carrier sees an anonymous From and Privacy: id;
    the real number only in P-Asserted-Identity (the trunk's choice), *67 is not sent."""
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "*67" + NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    carrier.done()
    inv = carrier.invites()[-1]
    assert request_line(inv).startswith(f"INVITE sip:{E164}@")
    assert header(inv, "From")[0].startswith('"Anonymous" <sip:anonymous@anonymous.invalid>')
    assert header(inv, "Privacy") == ["id"]
    assert header(inv, "P-Asserted-Identity") == ['"Acme 101" <sip:+4930999@127.0.0.1>']
    [ev] = routed(engine)
    assert (ev["presented"], ev["dialled"]) == ("anonymous", "*67" + NATIONAL)


def test_barring_blocked_prefixes_and_countries_refuse_before_the_carrier(engine, phones, carriers):
    """Story: 102 may only call internally: 030 1234567 is refused 403. 101 (international)
    dials a blocked premium number and a country the tenant may not call: 403 each. Then 101
    calls 030 1234567: the carrier's only call is that one (nothing refused reached it)."""
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing(
        outbound=[
            {"id": 1, "trunks": [1], "prefix": "00", "strip": 2, "prepend": "+"},
            {"id": 2, "trunks": [1], "prefix": "0", "strip": 1, "prepend": "+49"},
        ],
        blocked_prefixes=["+49900"], allowed_countries=["DE", "AT"],
    ))  # fmt: skip
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(
        call_scope="internal"))  # fmt: skip
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    acc_b = register(b, engine, "102")
    assert ended(b, dial(b, acc_b, NATIONAL)) == 403
    assert ended(a, dial(a, acc_a, "09001234567")) == 403
    assert ended(a, dial(a, acc_a, "00442071838750")) == 403
    ca = dial(a, acc_a, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    carrier.done()
    assert {request_line(i) for i in carrier.invites()} == {
        f"INVITE sip:{E164}@127.0.0.1:{carrier.port} SIP/2.0"
    }
    ends = [e for e in events(engine) if e["type"] == "call.ended"]
    assert "may not call outside numbers" in ends[0]["reason"]
    assert "blocked destination" in ends[1]["reason"]
    assert "not an allowed country" in ends[2]["reason"]


def test_emergency_from_a_suspended_tenant_and_one_at_its_call_limit(engine, phones, carriers):
    """Story: acme is suspended: 101's national call is refused 403, yet 112 goes out with the
    emergency caller ID. Acme active again with a limit of one call: while 101 talks to the
    carrier, 102's national call gets 503, its 112 goes out."""
    carrier = carriers("auth", calls=3)
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    acc_b = register(b, engine, "102")
    set_snapshot(engine, "acme.test", lambda s: s.update(status="suspended"))
    assert ended(a, dial(a, acc_a, NATIONAL)) == 403
    ca = dial(a, acc_a, "112")
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(a, ca) == 200

    set_snapshot(engine, "acme.test", lambda s: s.update(status="active", max_concurrent_calls=1))
    ca = dial(a, acc_a, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    assert ended(b, dial(b, acc_b, NATIONAL)) == 503
    cb = dial(b, acc_b, "112")
    b.wait_state(cb, "CONFIRMED")
    b.hangup(cb)
    a.hangup(ca)
    ended(a, ca)
    carrier.done()
    invites = [i for i in carrier.invites() if header(i, "Proxy-Authorization")]
    lines = [request_line(i).split()[1].split("@")[0] for i in invites]
    assert lines == ["sip:112", f"sip:{E164}", "sip:112"]
    for i in (invites[0], invites[2]):
        assert header(i, "P-Asserted-Identity")[0].endswith("<sip:+4930112@127.0.0.1>")


def test_a_forward_to_an_outside_number_goes_out_through_the_rules_with_diversion(
    engine, phones, carriers
):
    """Story: 102 forwards every call to 030 1234567. 101 dials 102: the carrier receives the
    E.164 number with a Diversion naming 102's outside number; the call connects."""
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(
        forward_always=NATIONAL, outbound_caller_ids=["+4930222"]))  # fmt: skip
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, "102")
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    carrier.done()
    inv = carrier.invites()[-1]
    assert request_line(inv).startswith(f"INVITE sip:{E164}@")
    assert header(inv, "Diversion") == ["<sip:+4930222@127.0.0.1>;reason=unconditional;counter=1"]
    [fwd] = [e for e in events(engine) if e["type"] == "call.forwarded"]
    assert fwd["to"] == NATIONAL


def test_a_trunk_not_shared_with_the_tenant_is_never_used(engine, phones, carriers):
    """Story: trunk 1 belongs to beta only, trunk 2 is acme's. A rule listing 1 then 2 sends
    acme's call to trunk 2; a rule listing only trunk 1 gives acme no route (404)."""
    foreign = carriers("auth")
    own = carriers("auth")
    publish_trunks(
        engine,
        trunk(engine, 1, foreign, tenants=frozenset({schema(engine, "beta.test")})),
        trunk(engine, 2, own),
    )
    set_snapshot(engine, "acme.test", routing(outbound=[
        {"id": 1, "trunks": [1], "prefix": "00", "strip": 2, "prepend": "+"},
        {"id": 2, "trunks": [1, 2], "pattern": "0[1-9].", "strip": 1, "prepend": "+49"},
    ]))  # fmt: skip
    a = phones("101")
    acc = register(a, engine, "101")
    assert ended(a, dial(a, acc, "00442071838750")) == 404
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    own.done()
    assert foreign.proc.poll() is None  # still waiting for its first call
    foreign.close()
    assert not foreign.invites()
    assert [e["trunk"] for e in routed(engine)] == ["2"]


def test_a_trunk_at_its_channels_passes_the_call_to_the_next(engine, phones, carriers):
    """Story: trunk 1 takes one channel. 101's call holds it; 103's call goes to trunk 2."""
    first = carriers("auth")
    second = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, first, max_channels=1), trunk(engine, 2, second))
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, c = phones("101"), phones("103")
    acc_a = register(a, engine, "101")
    acc_c = register(c, engine, "103")
    ca = dial(a, acc_a, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        shared = r.hgetall(contract.key("", contract.TRUNK_CALLS, trunk="1"))
    finally:
        r.close()
    assert list(shared.values()) == ["1"]  # this engine's channel, for the others to see
    cc = dial(c, acc_c, NATIONAL)
    c.wait_state(cc, "CONFIRMED")
    c.hangup(cc)
    a.hangup(ca)
    first.done()
    second.done()
    assert [e["trunk"] for e in routed(engine)] == ["1", "2"]


def test_session_timer_refreshes_when_the_carrier_asks(engine, phones, carriers):
    """Story: the carrier's 200 says Session-Expires: 2;refresher=uac. About a second later
    the engine re-INVITEs the carrier with the same SDP (same origin version); the call
    carries on until 101 hangs up."""
    carrier = carriers("timer")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    handler = engine.pbx.calls.router.handlers["trunk"]
    wait_until(lambda: engine.call(lambda: handler.refreshed), timeout=5)
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()
    initial, refresh = carrier.invites()
    assert header(refresh, "Session-Expires") == ["2;refresher=uac"]
    origin = re.compile(r"^o=.*$", re.M)
    assert origin.search(initial).group(0) == origin.search(refresh).group(0)  # type: ignore[union-attr]
    assert re.sub(r"^o=.*$", "", initial.split("\n\n", 1)[-1], flags=re.M) == re.sub(
        r"^o=.*$", "", refresh.split("\n\n", 1)[-1], flags=re.M)  # fmt: skip


def test_hold_and_resume_reach_the_carrier(engine, phones, carriers):
    """Story: 101 talks to an outside number, puts it on hold and takes it back. Each time
    the carrier gets a re-INVITE in the call's dialog (sendonly, then sendrecv), answers it,
    and 101's phone sees the carrier's answer (recvonly while held); the call goes on until
    101 hangs up."""
    carrier = carriers("hold")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "CONFIRMED")
    a.hold(ca)
    wait_until(lambda: "a=recvonly" in a.info(ca)["remote_sdp"], timeout=5)
    a.unhold(ca)
    wait_until(lambda: "a=recvonly" not in a.info(ca)["remote_sdp"], timeout=5)
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()
    initial, hold, resume = carrier.invites()
    call_id = header(initial, "Call-ID")
    assert header(hold, "Call-ID") == header(resume, "Call-ID") == call_id
    assert _to_tag(hold) == _to_tag(resume)  # both inside the call's dialog (To-tag set)
    assert "a=sendonly" in hold
    assert "a=sendonly" not in resume
    assert "a=inactive" not in resume


def _to_tag(msg: str) -> str:
    [to] = header(msg, "To")
    found = re.search(r";tag=([^;>\s]+)", to)
    assert found, to
    return found.group(1)


def test_the_caller_hears_the_carrier_ring_and_may_give_up(engine, phones, carriers):
    """Story: the carrier rings (180 relayed: 101 is in EARLY state) and never answers; 101
    hangs up: the carrier gets a CANCEL, no other trunk is tried and the channel is free."""
    ringing = carriers("ring")
    spare = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, ringing), trunk(engine, 2, spare))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    a.wait_state(ca, "EARLY")
    a.hangup(ca)
    assert ended(a, ca) == 487
    ringing.done()
    assert spare.proc.poll() is None
    spare.close()
    assert not spare.invites()
    handler = engine.pbx.calls.router.handlers["trunk"]
    wait_until(lambda: engine.call(lambda: not handler.channels.counts and not handler.holding))
    assert [e["trunk"] for e in routed(engine)] == ["1"]
