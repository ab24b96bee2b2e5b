"""Ring groups in the engine, end to end with pjsua2 phones (and a raw trunk INVITE): every
strategy, busy and absent members passed over, the group's timers, overflow, the caller-ID
prefix, BLF states, a trunk's caller, and another tenant's group out of reach."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from telephony.sip.calls.destinations.ring_group import RingGroups
from telephony.sip.contract import CarrierSnapshot, TrunkSnapshot
from telephony.sip.message import Request, parse_uri
from tests.sip.callkit import (
    add_extension,
    dial,
    drain_cdr_stream,
    ended,
    events,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.carrier import (
    E164,
    NATIONAL,
    carriers,
    header,
    publish_carriers,
    publish_trunks,
    request_line,
    rtpengine,
    schema,
    trunk,
)
from tests.sip.carrier import routing as outbound_routing
from tests.sip.engine_fixtures import EngineHandle, SipTestClient, wait_until
from tests.sip.pjphone import Phone
from tests.sip.test_media_features import (
    mailbox,
    media_dir,
    media_pbx,
    menu,
    peak_hz,
    set_media,
    wait_request,
)

__all__ = ["carriers", "media_dir", "media_pbx", "rtpengine"]  # fixtures, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

GROUP = "600"
DID = "+4930555100"  # acme's


def group(*members: str, **fields: Any) -> dict[str, Any]:
    """A ring group's snapshot (members: extension numbers, ``+...`` outside numbers)."""
    return {
        "number": GROUP,
        "name": "Sales",
        "members": [{"number": m, "external": m.startswith("+")} for m in members],
        "member_seconds": 30,
        "total_seconds": 60,
        **fields,
    }


def set_groups(engine: EngineHandle, *groups: dict[str, Any]) -> None:
    set_snapshot(
        engine, "acme.test", lambda s: s.setdefault("team", {}).update(ring_groups=list(groups))
    )


@pytest.fixture
def engine(pbx: Callable[..., EngineHandle]) -> EngineHandle:
    e = pbx()
    for n in ("103", "104", "105"):
        set_snapshot(e, "acme.test", add_extension(n))
    return e


def blf(engine: EngineHandle, number: str) -> list[str]:
    """The dialog states BLF shows for acme's ``number`` now."""
    s = schema(engine)
    return engine.call(lambda: [v.state for v in engine.pbx.calls.states.of(s, number)])


def of_type(evs: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
    return [e for e in evs if e["type"] == kind]


def idle(engine: EngineHandle, *numbers: str) -> None:
    """Wait until none of ``numbers`` is on a call or ringing on the engine."""
    wait_until(lambda: not any(blf(engine, n) for n in numbers))


def no_incoming(*phones: Phone) -> bool:
    for p in phones:
        p.drain()
    return not any(e == "incoming" for p in phones for e, _ in p.events)


def talk(a: Phone, ca: int, m: Phone, cm: int) -> None:
    """The caller and the member hear each other."""
    a.wait_state(ca, "CONFIRMED")
    m.wait_state(cm, "CONFIRMED")
    two_way_audio(a, ca, m, cm)


def ring_102_first(engine: EngineHandle, phones: Any) -> tuple[Phone, int, Phone, int, Phone]:
    """101, 102 (ringing, never answering) and 103 registered; 101 calls the group and 102's
    phone rings. Returns 101's phone and call, 102's phone and call, 103's phone."""
    a, b, c = phones("101"), phones("102", auto_ring=True), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc, GROUP)
    cb = b.incoming()["call"]
    return a, ca, b, cb, c


def caller_and_members(engine: EngineHandle, phones: Any) -> tuple[Phone, int, dict[str, Phone]]:
    """101 and the members 102, 103, 104 registered: 101's phone and account, the members'
    phones by number."""
    a = phones("101")
    acc = register(a, engine, "101")
    members = {n: phones(n) for n in ("102", "103", "104")}
    for n, p in members.items():
        register(p, engine, n)
    return a, acc, members


def test_ring_all_first_answer_wins_the_others_are_cancelled(engine, phones, in_tenant, world):
    """Story: 101 calls the sales group (ring all: 102, 103, 104, prefix "Sales"). All three
    phones ring at once, each showing "Sales" before the caller's name, and BLF shows each
    of them ringing. 103 answers: they talk, the other two stop ringing (CANCEL, "Call
    completed elsewhere"), and the call's answer names 103 as the callee."""
    set_groups(engine, group("102", "103", "104", caller_id_prefix="Sales"))
    a, b, c, d = phones("101"), phones("102"), phones("103"), phones("104")
    acc = register(a, engine, "101")
    for p, n in ((b, "102"), (c, "103"), (d, "104")):
        register(p, engine, n)
    ca = dial(a, acc, GROUP)
    incoming = {n: p.incoming() for p, n in ((b, "102"), (c, "103"), (d, "104"))}
    for n, inc in incoming.items():
        frm = next(ln for ln in inc["msg"].splitlines() if ln.startswith("From:"))
        assert frm.startswith('From: "Sales Acme 101" <sip:101@acme.test>'), frm
        assert f"To: <sip:{n}@acme.test>" in inc["msg"]
        assert blf(engine, n) == ["early"]
    c.answer(incoming["103"]["call"], 200)
    talk(a, ca, c, incoming["103"]["call"])
    for p, n in ((b, "102"), (d, "104")):
        assert ended(p, incoming[n]["call"]) == 487
    assert blf(engine, "103") == ["confirmed"]
    assert blf(engine, "102") == blf(engine, "104") == []
    a.hangup(ca)
    assert ended(c, incoming["103"]["call"]) == 200
    evs = events(engine)
    [answered] = of_type(evs, "call.answered")
    assert answered["callee"] == "103"
    assert '"user": "103"' in answered["legs"]
    assert of_type(evs, "call.ended")[-1]["status"] == "answered"

    # The CDR (its consumer unchanged): the group's number dialled, 103 the party answering.
    from telephony.models import Cdr

    drain_cdr_stream()
    with in_tenant(world.tenant_a):
        cdr = Cdr.objects.get(call_id=answered["call_id"])
        [seg] = cdr.segments.all()
        assert (cdr.callee_number, cdr.status, seg.status) == (GROUP, "answered", "answered")
        assert [leg["user"] for leg in seg.legs] == ["101", "103"]


def test_cancel_of_the_others_says_completed_elsewhere(engine, phones):
    """Story: in a ring-all group, a raw phone of 102 that was ringing is told by its CANCEL
    that the call was completed elsewhere (RFC 3326), so it does not list a missed call."""
    set_groups(engine, group("102", "103"))
    a, c = phones("101"), phones("103")
    acc = register(a, engine, "101")
    register(c, engine, "103")
    with engine.client() as raw:
        assert raw.register("102", "acme.test").status == 200
        ca = dial(a, acc, GROUP)
        invite = raw.recv(5)
        while not isinstance(invite, Request) or invite.method != "INVITE":
            invite = raw.recv(5)
        cc = c.incoming()["call"]
        c.answer(cc, 200)
        a.wait_state(ca, "CONFIRMED")
        cancel = raw.recv(5)
        while not isinstance(cancel, Request) or cancel.method != "CANCEL":
            cancel = raw.recv(5)
        assert cancel.call_id == invite.call_id
        assert cancel.get("Reason") == 'SIP;cause=200;text="Call completed elsewhere"'
    a.hangup(ca)
    assert ended(c, cc) == 200


def test_hunt_skips_a_busy_member_and_moves_on_after_a_refusal(engine, phones):
    """Story: the group hunts 102, 103, 105 in that order and skips busy members. 102 is on
    a call with 104: it does not ring. 103 rings and declines (486): 105 rings at once (long
    before 103's 30 s would have run out) and answers."""
    set_groups(engine, group("102", "103", "105", strategy="hunt"))
    a, b, c, d, e = phones("101"), phones("102"), phones("103"), phones("104"), phones("105")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    acc_d = register(d, engine, "104")
    register(e, engine, "105")
    cd = dial(d, acc_d, "102")
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    d.wait_state(cd, "CONFIRMED")
    ca = dial(a, acc_a, GROUP)
    cc = c.incoming()["call"]
    c.answer(cc, 486)
    started = time.monotonic()
    ce = e.incoming()["call"]
    assert time.monotonic() - started < 5
    e.answer(ce, 200)
    talk(a, ca, e, ce)
    assert no_incoming(b)  # 102, on its call, never rang for the group
    a.hangup(ca)
    assert ended(e, ce) == 200
    d.hangup(cd)
    assert ended(b, cb) == 200
    answered = [x for x in of_type(events(engine), "call.answered") if x["callee"] == "105"]
    assert len(answered) == 1


def test_hunt_member_timeout_then_the_next_member(engine, phones):
    """Story: each member rings 1.5 s. 102 does not answer: its phone stops ringing (CANCEL)
    and 103 rings, and answers."""
    set_groups(engine, group("102", "103", strategy="hunt", member_seconds=1.5))
    a, ca, b, cb, c = ring_102_first(engine, phones)
    assert ended(b, cb) == 487
    cc = c.incoming()["call"]
    c.answer(cc, 200)
    talk(a, ca, c, cc)
    c.hangup(cc)
    assert ended(a, ca) == 200


def test_caller_giving_up_ends_the_hunt(engine, phones):
    """Story: while 102 rings for the hunt group (BLF shows 102 ringing, not 103), the caller
    hangs up: 102 stops ringing, 103 is never rung, and the call ends as cancelled."""
    set_groups(engine, group("102", "103", strategy="hunt"))
    a, ca, b, cb, c = ring_102_first(engine, phones)
    a.wait_state(ca, "EARLY")
    assert (blf(engine, "102"), blf(engine, "103")) == (["early"], [])
    a.hangup(ca)
    assert ended(a, ca) == 487
    assert ended(b, cb) == 487
    handler = engine.pbx.calls.router.handlers["ring_group"]
    wait_until(lambda: engine.call(lambda: not handler.rounds))
    assert no_incoming(c)
    assert of_type(events(engine), "call.ended")[-1]["status"] == "cancelled"


def test_group_gives_up_after_total_seconds_without_overflow(engine, phones):
    """Story: the group rings for 1 s in all (its members 5 s each) and has no overflow:
    102 rings, stops after 1 s, 103 never rings, and the caller hears 480."""
    set_groups(engine, group("102", "103", strategy="hunt", member_seconds=5, total_seconds=1))
    a, ca, b, cb, c = ring_102_first(engine, phones)
    assert ended(a, ca) == 480
    assert ended(b, cb) == 487
    assert no_incoming(c)
    assert of_type(events(engine), "call.ended")[-1]["status"] == "no_answer"


def test_round_robin_starts_after_the_member_rung_last(engine, phones):
    """Story: a round-robin group of 102, 103, 104: the first call rings 102 first, the next
    103 first, then 104, then 102 again; whoever rings first answers."""
    set_groups(engine, group("102", "103", "104", strategy="round_robin"))
    a, acc, members = caller_and_members(engine, phones)
    for expected in ("102", "103", "104", "102"):
        ca = dial(a, acc, GROUP)
        p = members[expected]
        cm = p.incoming()["call"]
        p.answer(cm, 200)
        a.wait_state(ca, "CONFIRMED")
        a.hangup(ca)
        assert ended(p, cm) == 200
        idle(engine, "101", expected)
    assert no_incoming(*members.values())
    s = schema(engine)
    handler = engine.pbx.calls.router.handlers["ring_group"]
    assert isinstance(handler, RingGroups)
    assert engine.call(lambda: dict(handler.last_rung)) == {(s, GROUP): "102"}


def test_longest_idle_member_rings_first(engine, phones):
    """Story: 103 finished a call, then 102 did; 104 has not had one. The longest-idle group
    of 102, 103, 104 rings 104 first, then 103, then 102 (each declining passes it on)."""
    set_groups(engine, group("102", "103", "104", strategy="longest_idle"))
    a, acc, members = caller_and_members(engine, phones)
    for n in ("103", "102"):
        ca = dial(a, acc, n)
        cm = members[n].incoming()["call"]
        members[n].answer(cm, 200)
        a.wait_state(ca, "CONFIRMED")
        a.hangup(ca)
        assert ended(members[n], cm) == 200
        idle(engine, "101", n)
    ca = dial(a, acc, GROUP)
    for n in ("104", "103"):
        cm = members[n].incoming()["call"]
        assert no_incoming(*(p for m, p in members.items() if m != n))
        members[n].answer(cm, 486)
    cm = members["102"].incoming()["call"]
    members["102"].answer(cm, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(members["102"], cm) == 200


def test_overflow_to_an_extension_when_nobody_answers(engine, phones):
    """Story: a ring-all group of 102 and 103 rings 1.5 s, then overflows to 104: both stop
    ringing, 104 rings showing it was diverted from the group, answers and talks."""
    overflow = {"kind": "extension", "target": "104"}
    set_groups(engine, group("102", "103", member_seconds=1.5, overflow=overflow))
    a, b, c, d = phones("101"), phones("102", auto_ring=True), phones("103"), phones("104")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    register(d, engine, "104")
    ca = dial(a, acc, GROUP)
    cb, cc = b.incoming()["call"], c.incoming()["call"]
    assert ended(b, cb) == 487
    assert ended(c, cc) == 487
    inc = d.incoming()
    assert f"Diversion: <sip:{GROUP}@acme.test>;reason=no-answer;counter=1" in inc["msg"]
    d.answer(inc["call"], 200)
    talk(a, ca, d, inc["call"])
    a.hangup(ca)
    assert ended(d, inc["call"]) == 200
    [fwd] = of_type(events(engine), "call.forwarded")
    assert (fwd["from"], fwd["to"], fwd["reason"]) == (GROUP, "104", "no_answer")


def test_nobody_to_ring_overflows_at_once(engine, phones):
    """Story: of the group's members 102 is on DND, 103 has no phone registered, 105 is
    disabled: nobody rings and the call goes straight on to the overflow, 104. Without
    skipping busy members, 102 on DND still rings."""
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(dnd=True))
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["105"].update(enabled=False))
    overflow = {"kind": "extension", "target": "104"}
    set_groups(engine, group("102", "103", "105", overflow=overflow))
    a, b, d = phones("101"), phones("102"), phones("104")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(d, engine, "104")
    ca = dial(a, acc, GROUP)
    cd = d.incoming(5)["call"]
    assert no_incoming(b)
    d.answer(cd, 486)
    assert ended(a, ca) == 486

    set_groups(engine, group("102", "103", skip_busy=False, overflow=overflow))
    ca = dial(a, acc, GROUP)
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(b, cb) == 200


def test_overflow_loop_between_groups_ends(engine, phones):
    """Story: group 600 overflows to group 601 and 601 back to 600; nobody answers either.
    The call goes 600 -> 601 once and then ends in 480 instead of going round."""
    g600 = group("102", member_seconds=1, overflow={"kind": "ring_group", "target": "601"})
    g601 = {**group("103", member_seconds=1), "number": "601",
            "overflow": {"kind": "ring_group", "target": GROUP}}  # fmt: skip
    set_groups(engine, g600, g601)
    a, b, c = phones("101"), phones("102", auto_ring=True), phones("103", auto_ring=True)
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc, GROUP)
    assert ended(b, b.incoming()["call"]) == 487
    assert ended(c, c.incoming()["call"]) == 487
    assert ended(a, ca) == 480
    assert no_incoming(b, c)


def test_caller_id_prefix_cannot_inject_headers(engine, phones):
    """Story: a prefix with quotes and a backslash (the API's job is to refuse worse) is
    shown quoted and escaped in one From display name; no header of its own appears."""
    set_groups(engine, group("102", caller_id_prefix='Q" \\X: y'))
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, GROUP)
    inc = b.incoming()
    lines = inc["msg"].splitlines()
    assert 'From: "Q\\" \\\\X: y Acme 101" <sip:101@acme.test>' in inc["msg"]
    assert not [ln for ln in lines if ln.startswith("X:")]
    b.answer(inc["call"], 603)
    assert ended(a, ca) == 480


def test_another_tenants_group_is_unreachable(engine, phones):
    """Story: acme has group 600; beta's 201 dials 600 and gets 404, as for any number beta
    does not have, and no acme phone rings. A disabled group is an unknown number too."""
    set_groups(engine, group("102", "103"))
    z, b = phones("201"), phones("102")
    acc_z = register(z, engine, "201", "beta.test")
    register(b, engine, "102")
    assert ended(z, dial(z, acc_z, GROUP, "beta.test")) == 404
    assert ended(z, dial(z, acc_z, "699", "beta.test")) == 404
    assert no_incoming(b)

    set_groups(engine, group("102", "103", enabled=False))
    a = phones("101")
    acc_a = register(a, engine, "101")
    assert ended(a, dial(a, acc_a, GROUP)) == 404
    assert no_incoming(b)


# ------------------------------------------------------------------------ a trunk's caller


def carrier_invite(client: SipTestClient, engine: EngineHandle, number: str) -> Request:
    lhost, lport = client.local[0], client.local[1]
    sdp = (
        f"v=0\r\no=- 1 1 IN IP4 {lhost}\r\ns=-\r\nc=IN IP4 {lhost}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()
    return Request(
        "INVITE",
        parse_uri(f"sip:{number}@{engine.host}:{engine.udp_port}"),
        [
            ("Via", f"SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK{secrets.token_hex(8)};rport"),
            ("Max-Forwards", "70"),
            ("From", f'"Jane Roe" <sip:+4917012345678@carrier.example>;tag={secrets.token_hex(4)}'),
            ("To", f"<sip:{number}@{engine.host}>"),
            ("Call-ID", secrets.token_hex(8) + "@carrier"),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:carrier@{lhost}:{lport}>"),
            ("Content-Type", "application/sdp"),
        ],
        sdp,
    )


def test_trunk_caller_reaches_the_group_by_an_inbound_rule(engine, phones, world):
    """Story: the carrier calls acme's DID, whose inbound rule sends it to the ring group.
    102's phone rings showing the outside caller's name after the group's prefix; 102
    declines and, with nobody else in the group and no overflow, the carrier hears 480."""
    set_groups(engine, group("102", caller_id_prefix="Sales"))
    b = phones("102")
    register(b, engine, "102")
    with engine.client() as carrier:
        snap = CarrierSnapshot(
            trunks={1: TrunkSnapshot.read({
                "id": 1, "name": "Carrier", "kind": "ip", "addresses": ["127.0.0.1"],
                "source_port": carrier.local[1], "country": "DE",
                "tenants": [world.tenant_a.schema_name]})},
            numbers={DID: "acme.test"},
        )  # fmt: skip
        publish_carriers(engine, snap)
        rule = {"id": 1, "number": DID, "in_hours": {"kind": "ring_group", "target": GROUP}}
        set_snapshot(engine, "acme.test", lambda s: s.setdefault("routing", {}).update(
            inbound=[rule]))  # fmt: skip
        req = carrier_invite(carrier, engine, DID)
        carrier.send_raw(bytes(req))
        inc = b.incoming()
        assert '"Sales Jane Roe" <sip:+4917012345678@acme.test>' in inc["msg"]
        b.answer(inc["call"], 603)
        final = carrier.response_to(req.call_id, 1, timeout=5)
        assert final.status == 480
    evs = events(engine)
    assert of_type(evs, "call.started")[-1]["direction"] == "inbound"
    assert all(e["schema"] == world.tenant_a.schema_name for e in evs)


# ----------------------------------------------------------------- with the media server


def test_ivr_option_rings_the_group_and_joins_the_member(media_pbx, phones):
    """Story: the menu's option 1 is the sales group (102, 103). The caller, answered by the
    menu, presses 1 and hears ringback while both phones ring; 103 answers and they talk
    (the caller re-INVITEd to it); 102 stops ringing."""
    engine = media_pbx
    for n in ("103", "104"):
        set_snapshot(engine, "acme.test", add_extension(n))
    set_groups(engine, group("102", "103"))
    option = {"digit": "1", "target": {"kind": "ring_group", "target": GROUP}}
    set_media(engine, ivrs=[menu(options=[option])])
    a, b, c = phones("101"), phones("102"), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc, "800")
    a.wait_state(ca, "CONFIRMED")
    a.dtmf(ca, "1")
    cb, cc = b.incoming()["call"], c.incoming()["call"]
    b.answer(cb, 180)
    c.answer(cc, 200)
    c.wait_state(cc, "CONFIRMED")
    assert ended(b, cb) == 487
    two_way_audio(c, cc, a, ca)
    a.hangup(ca)
    assert ended(c, cc) == 200
    evs = events(engine)
    assert of_type(evs, "call.answered")[-1]["callee"] == "103"
    assert [(f["from"], f["to"]) for f in of_type(evs, "call.forwarded")] == [("800", GROUP)]


def test_overflow_to_voicemail_takes_a_message(media_pbx, phones):
    """Story: the group (102, ringing 1.5 s) overflows to 102's mailbox: 102's phone stops
    ringing, the mailbox answers and the caller's words (a 1 kHz tone) are the message."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", mailbox())
    overflow = {"kind": "voicemail", "target": "102"}
    set_groups(engine, group("102", strategy="hunt", member_seconds=1.5, overflow=overflow))
    a, b = phones("101"), phones("102", auto_ring=True)
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, GROUP)
    assert ended(b, b.incoming()["call"]) == 487
    a.wait_state(ca, "CONFIRMED")
    time.sleep(1.5)  # the greeting and the beep
    a.play(ca)
    time.sleep(2.0)
    a.hangup(ca)
    left = wait_request(engine, "voicemail.left")
    assert (left["box"], left["schema"], left["caller"]) == ("102", "t_acme", "101")
    hz, _ = peak_hz(left["path"])
    assert abs(hz - 1000.0) < 20


# --------------------------------------------------------------------- outside members


def outside(number: str) -> dict[str, Any]:
    return {"number": number, "external": True}


def test_hunt_reaches_an_outside_member_through_the_outbound_rules(
    pbx, phones, carriers, rtpengine
):
    """Story: the group hunts 102, then an outside number (030 1234567, a mobile of the
    team). 102 declines; the number goes out through acme's outbound rule on trunk 1 (the
    carrier challenges, our answer is accepted), in E.164, showing the caller's name after
    the prefix; the carrier answers and echoes the caller's audio. The answer names the
    outside member as the callee."""
    engine = pbx(rtpengine=("127.0.0.1", rtpengine.ng_port))
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", outbound_routing())
    g = group("102", strategy="hunt", caller_id_prefix="Sales")
    set_groups(engine, {**g, "members": [*g["members"], outside(NATIONAL)]})
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, GROUP)
    b.answer(b.incoming()["call"], 486)
    a.wait_state(ca, "CONFIRMED")
    a.play(ca)
    assert a.wait_audio(ca) > 10  # through rtpengine to the carrier and back
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()
    _, authed = carrier.invites()
    assert request_line(authed) == f"INVITE sip:{E164}@127.0.0.1:{carrier.port} SIP/2.0"
    # 101 has no outbound caller ID of its own: the trunk's is presented.
    assert header(authed, "From")[0].startswith('"Sales Acme 101" <sip:+4930999@127.0.0.1>')
    evs = events(engine)
    assert of_type(evs, "call.answered")[-1]["callee"] == NATIONAL
    assert of_type(evs, "call.routed")[-1]["trunk"] == "1"


def test_ring_all_with_an_outside_member_cancels_it_when_a_phone_answers(engine, phones, carriers):
    """Story: a ring-all group of 102 and an outside number: the carrier rings (and would
    forever), 102 answers: the carrier's call is CANCELled and its channel freed."""
    ringing = carriers("ring")
    publish_trunks(engine, trunk(engine, 1, ringing))
    set_snapshot(engine, "acme.test", outbound_routing())
    g = group("102")
    set_groups(engine, {**g, "members": [*g["members"], outside(NATIONAL)]})
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, GROUP)
    cb = b.incoming()["call"]
    wait_until(lambda: ringing.log.exists() and "INVITE sip:" in ringing.log.read_text(), 10)
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    ringing.done()  # its scenario ends with our CANCEL
    handler = engine.pbx.calls.router.handlers["trunk"]
    wait_until(lambda: engine.call(lambda: not handler.channels.counts))
    a.hangup(ca)
    assert ended(b, cb) == 200
