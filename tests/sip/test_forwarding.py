"""Call forwarding in the B2BUA, end to end with pjsua2 phones: always, busy (a rejecting
phone, and DND), no answer, loops, a target that is not an extension; and what the CDR
consumer makes of a forwarded call.

Decisions these tests pin down (see ``telephony/sip/calls/routing.py``): DND counts as busy
(its calls go to the busy target, as PortSIP sends a DND extension's calls to its forward
target or voicemail); an extension with no phone registered counts as unable to answer (its
no-answer target); a forward back to an extension the call already rang is not followed (the
call stays where it is).
"""

from __future__ import annotations

import logging

import pytest

from tests.sip.callkit import (
    add_extension,
    dial,
    drain_cdr_stream,
    ended,
    events,
    register,
    set_snapshot,
)
from tests.sip.engine_fixtures import EngineHandle

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


@pytest.fixture
def engine(pbx) -> EngineHandle:
    e = pbx()
    set_snapshot(e, "acme.test", add_extension("103"))
    return e


def forward(engine: EngineHandle, number: str, **rules: object) -> None:
    set_snapshot(engine, "acme.test", lambda s: s["extensions"][number].update(**rules))


def of_type(evs: list[dict[str, str]], kind: str) -> list[dict[str, str]]:
    return [e for e in evs if e["type"] == kind]


def test_forward_always_rings_only_the_target(engine: EngineHandle, phones, in_tenant, world):
    """Story: 102 forwards every call to 103. 101 dials 102: 102's phone never rings, 103's
    does and shows it was diverted from 102; they talk. The events and the CDR show the
    forward as its own segment."""
    forward(engine, "102", forward_always="103")
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc_a, "102")
    inc = c.incoming()
    assert "Diversion: <sip:102@acme.test>;reason=unconditional;counter=1" in inc["msg"]
    assert "To: <sip:103@acme.test>" in inc["msg"]
    cc = inc["call"]
    c.answer(cc, 200)
    a.wait_state(ca, "CONFIRMED")
    a.play(ca)
    assert c.wait_audio(cc) > 10
    a.hangup(ca)
    assert ended(c, cc) == 200
    b.drain()
    assert not [e for e, _ in b.events if e == "incoming"]

    evs = events(engine)
    [fwd] = of_type(evs, "call.forwarded")
    assert (fwd["reason"], fwd["from"], fwd["to"], fwd["segment"]) == ("always", "102", "103", "2")
    [answered] = of_type(evs, "call.answered")
    assert (answered["segment"], answered["kind"], answered["callee"]) == ("2", "forward", "103")

    # The CDR consumer (unchanged) files the forwarded part as a segment of kind "forward".
    from telephony.models import Cdr

    drain_cdr_stream()
    with in_tenant(world.tenant_a):
        cdr = Cdr.objects.get(call_id=fwd["call_id"])
        segs = list(cdr.segments.order_by("seq"))
        assert (cdr.callee_number, cdr.status) == ("102", "answered")
        assert [(s.seq, s.kind, s.status) for s in segs][-1] == (2, "forward", "answered")
        assert segs[-1].legs[-1]["user"] == "103"


def test_forward_busy_on_rejection_and_on_dnd(engine: EngineHandle, phones):
    """Story: 102 forwards busy calls to 103. When 102's phone rejects the call (486), 103
    rings; when 102 is on DND, 103 rings and 102's phone does not."""
    forward(engine, "102", forward_busy="103")
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc_a, "102")
    b.answer(b.incoming()["call"], 486)
    inc = c.incoming()
    assert "reason=user-busy" in inc["msg"]
    cc = inc["call"]
    c.answer(cc, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(c, cc) == 200

    forward(engine, "102", dnd=True)
    ca = dial(a, acc_a, "102")
    cc = c.incoming()["call"]
    c.answer(cc, 486)  # 103 is busy too: its own busy answer reaches the caller
    assert ended(a, ca) == 486
    b.drain()
    assert not [e for e, _ in b.events if e == "incoming"]
    reasons = [e["reason"] for e in of_type(events(engine), "call.forwarded")]
    assert reasons == ["busy", "busy"]


def test_forward_no_answer_cancels_then_calls_the_target(engine: EngineHandle, phones):
    """Story: 102 forwards unanswered calls to 103 after 1 s. 102's phone rings, stops
    ringing (CANCEL) after 1 s, then 103 rings and answers."""
    forward(engine, "102", forward_no_answer="103", no_answer_timeout=1)
    a, b, c = phones("101"), phones("102", auto_ring=True), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc_a, "102")
    cb = b.incoming()["call"]
    assert ended(b, cb) == 487  # the PBX CANCELled 102's ringing
    inc = c.incoming()
    assert "reason=no-answer" in inc["msg"]
    cc = inc["call"]
    c.answer(cc, 200)
    a.wait_state(ca, "CONFIRMED")
    c.hangup(cc)
    assert ended(a, ca) == 200
    evs = events(engine)
    [fwd] = of_type(evs, "call.forwarded")
    assert (fwd["reason"], fwd["from"], fwd["to"]) == ("no_answer", "102", "103")
    assert of_type(evs, "call.ended")[-1]["status"] == "answered"


def test_forward_loop_is_not_followed(engine: EngineHandle, phones, caplog):
    """Story: 102 forwards everything to 103 and 103 everything back to 102 (A->B->A). A call
    to 102 reaches 103 once and rings there instead of going round. Busy forwards in a circle
    end in busy; a forward to something that is not an extension is 480 and logged."""
    forward(engine, "102", forward_always="103")
    forward(engine, "103", forward_always="102")
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc_a, "102")
    cc = c.incoming()["call"]
    c.answer(cc, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(c, cc) == 200
    assert len(of_type(events(engine), "call.forwarded")) == 1

    forward(engine, "102", forward_always="", forward_busy="103")
    forward(engine, "103", forward_always="", forward_busy="102")
    ca = dial(a, acc_a, "102")
    b.answer(b.incoming()["call"], 486)
    c.answer(c.incoming()["call"], 486)
    assert ended(a, ca) == 486
    assert len(of_type(events(engine), "call.forwarded")) == 2  # one more, not a circle

    forward(engine, "102", forward_busy="", forward_always="004930123456")
    with caplog.at_level(logging.WARNING, logger="telephony.sip.calls.destinations.reject"):
        assert ended(a, dial(a, acc_a, "102")) == 480
    assert "004930123456" in caplog.text
    assert of_type(events(engine), "call.ended")[-1]["reason"].startswith("forward target")
