"""CDRs of team-feature calls: a picked-up call is answered by the picker (its segment's
callee), in whatever order the events come; park events are tolerated and change nothing."""

import time

import pytest

from telephony.engine.cdr import CdrConsumer
from tests.telephony.engine_events import emit, read_cdr

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("reverse", [False, True], ids=["in order", "reversed"])
def test_picked_up_call_is_answered_by_the_picker(world, r, stream, in_tenant, reverse):
    """Story: 101 calls 102; 103 picks it up with *97102, then parks it; 104 retrieves it."""
    t0 = time.time() - 60
    common = {"schema": world.tenant_a.schema_name, "call_id": "p-1", "segment": 1}
    events = [
        ("call.started", 0, {"direction": "internal", "caller": "101", "callee": "102"}),
        ("call.ringing", 1, {}),
        ("call.answered", 4, {"leg": "media"}),
        ("call.picked_up", 4, {"by": "103", "extension": "102"}),
        ("call.answered", 5, {"leg": "b2", "callee": "103"}),
        ("call.parked", 20, {"slot": "701", "by": "103"}),
        ("call.unparked", 30, {"slot": "701", "reason": "retrieved", "by": "104"}),
        ("call.ended", 40, {"status": "answered", "reason": "bye caller"}),
    ]
    for kind, dt, fields in reversed(events) if reverse else events:
        emit(r, stream, kind, ts=t0 + dt, **fields, **common)
    assert CdrConsumer(r, stream=stream, consumer="t1").drain() == len(events)
    cdr, segs = read_cdr(in_tenant, world.tenant_a, "p-1")
    assert (cdr.caller_number, cdr.callee_number, cdr.status) == ("101", "102", "answered")
    assert (cdr.duration, cdr.billsec) == (40, 36)
    assert [(s.seq, s.from_number, s.to_number, s.status) for s in segs] == [
        (1, "101", "103", "answered")
    ]
    assert read_cdr(in_tenant, world.tenant_b, "p-1")[0] is None
