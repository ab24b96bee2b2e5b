"""Blind transfer to outside numbers through the outbound rules and the trunks, and early media
from a trunk, end to end: pjsua2 phones as the extensions, SIPp playing the carrier
(``carrier.py``), rtpengine where media is checked."""

from __future__ import annotations

from dataclasses import replace

import pytest

from telephony.sip import contract
from telephony.sip.calls.call import Call, Leg
from telephony.sip.calls.outbound import Plan, Route
from telephony.sip.calls.transfer import presented
from telephony.sip.contract import ExtensionSnapshot, TenantSnapshot
from telephony.sip.transport import Target
from tests.sip.callkit import connect, dial, ended, events, register, set_snapshot
from tests.sip.carrier import (
    E164,
    NATIONAL,
    carriers,
    channels,
    engine,
    header,
    publish_trunks,
    request_line,
    routed,
    routing,
    rtpengine,
    rtpengine_port,
    trunk,
)
from tests.sip.engine_fixtures import wait_until
from tests.sip.pjphone import Phone, free_port

__all__ = ["carriers", "engine", "rtpengine"]  # fixtures, used by name

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def sipfrags(phone: Phone, call: int) -> list[str]:
    """The transferor's NOTIFY bodies (sipfrag status lines) up to the final one."""
    out: list[str] = []
    while not out or int(out[-1].split()[1]) < 200:
        msg = phone.wait("request", call=call, method="NOTIFY")["msg"]
        out.append(msg.partition("\r\n\r\n")[2].strip())
    return out


def still_talking(a: Phone, ca: int, b: Phone, cb: int) -> None:
    assert a.info(ca)["state"] == "CONFIRMED"
    assert b.info(cb)["state"] == "CONFIRMED"
    a.play(ca)
    assert b.wait_audio(cb) > 10


def test_blind_transfer_to_a_national_number_goes_out_through_the_rules(
    pbx, phones, carriers, rtpengine
):
    """Story: 101 calls 102; 102 transfers 101 blind to 030 1234567. The carrier receives
    sip:+49301234567 on the rule's trunk, challenges it and takes our answer, is offered
    rtpengine's media and shown 102's outbound caller ID (102 placed the outside leg; 101 is
    an extension with no number outside). 102 hears 100, 180, 200 in its NOTIFYs and is let
    go; 101 talks to the carrier (its audio comes back through the echo). The trunk's channel
    is counted while the call lasts; the CDR facts name the trunk on the transfer's segment."""
    engine = pbx(rtpengine=("127.0.0.1", rtpengine.ng_port))
    carrier = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(
        outbound_caller_ids=["+4930222"]))  # fmt: skip
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, f"sip:{NATIONAL}@acme.test")
    frags = sipfrags(b, cb)
    assert frags[0] == "SIP/2.0 100 Trying"
    assert "SIP/2.0 180 Ringing" in frags
    assert frags[-1] == "SIP/2.0 200 OK"
    assert ended(b, cb) == 200  # the transferor is let go
    reoffer = a.wait("request", call=ca, method="INVITE")["msg"].partition("\r\n\r\n")[2]
    assert rtpengine_port(reoffer)  # 101 talks to rtpengine, not to the carrier
    assert channels(engine) == {1: 1}
    a.play(ca)
    assert a.wait_audio(ca) > 10  # to the carrier and back
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()
    first, authed = carrier.invites()
    for inv in (first, authed):
        assert request_line(inv) == f"INVITE sip:{E164}@127.0.0.1:{carrier.port} SIP/2.0"
        assert header(inv, "P-Asserted-Identity") == ['"Acme 102" <sip:+4930222@127.0.0.1>']
        assert not header(inv, "Diversion")
    assert header(authed, "Proxy-Authorization")[0].startswith('Digest username="acct"')
    assert rtpengine_port(authed.split("\n\n", 1)[1])
    wait_until(lambda: channels(engine) == {})
    [ev] = routed(engine)
    assert {k: ev[k] for k in contract.CDR_FIELDS if k in ev} == {
        "direction": "outbound", "trunk": "1", "dialled": NATIONAL, "number": E164,
        "presented": "+4930222",
    }  # fmt: skip
    assert (ev["segment"], ev["kind"]) == ("2", "blind")
    tr = next(e for e in events(engine) if e["type"] == "call.transferred")
    assert (tr["kind"], tr["from"], tr["to"]) == ("blind", "101", E164)


def test_a_transfer_fails_over_from_a_trunk_answering_503(engine, phones, carriers):
    """Story: the rule's first trunk answers 503, the second takes the call: 102's transfer of
    101 to 030 1234567 reaches the second carrier and succeeds; only the trunk that answered
    is in the CDR facts, and only its channel was held."""
    busy = carriers("503")
    good = carriers("auth")
    publish_trunks(engine, trunk(engine, 1, busy), trunk(engine, 2, good))
    set_snapshot(engine, "acme.test", routing())
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, f"sip:{NATIONAL}@acme.test")
    assert sipfrags(b, cb)[-1] == "SIP/2.0 200 OK"
    assert ended(b, cb) == 200
    a.wait("request", call=ca, method="INVITE")
    assert channels(engine) == {2: 1}
    a.hangup(ca)
    assert ended(a, ca) == 200
    busy.done()
    good.done()
    [refused] = busy.invites()
    assert request_line(refused).startswith(f"INVITE sip:{E164}@")
    assert request_line(good.invites()[-1]).startswith(f"INVITE sip:{E164}@")
    assert [e["trunk"] for e in routed(engine)] == ["2"]
    wait_until(lambda: channels(engine) == {})


def test_an_internal_only_extension_cannot_transfer_a_call_out(engine, phones, carriers):
    """Story: 102 may only call internally. Its transfer of 101 to 030 1234567 is refused
    (NOTIFY with 403), nothing reaches the carrier, and 101 and 102 stay connected."""
    publish_trunks(engine, trunk(engine, 1, free_port()))  # nothing may ever be sent there
    set_snapshot(engine, "acme.test", routing())
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(
        call_scope="internal"))  # fmt: skip
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, f"sip:{NATIONAL}@acme.test")
    assert sipfrags(b, cb)[-1].startswith("SIP/2.0 403 ")
    still_talking(a, ca, b, cb)
    assert routed(engine) == []
    assert channels(engine) == {}
    a.hangup(ca)
    assert ended(b, cb) == 200


def test_a_transfer_to_an_unknown_number_matching_no_rule_gets_404(engine, phones):
    """Story: 102 transfers 101 to 555, no extension and no outbound rule's number (the rule
    takes numbers starting with 0): 404 in the NOTIFY as before, the call goes on."""
    publish_trunks(engine, trunk(engine, 1, free_port()))
    set_snapshot(engine, "acme.test", routing())
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, "sip:555@acme.test")
    assert sipfrags(b, cb)[-1].startswith("SIP/2.0 404 ")
    still_talking(a, ca, b, cb)
    assert routed(engine) == []
    a.hangup(ca)
    assert ended(b, cb) == 200


def test_early_media_from_the_carrier_reaches_the_caller(pbx, phones, carriers, rtpengine):
    """Story: 101 dials 030 1234567; the carrier answers 183 with SDP (its announcement), two
    seconds later 200. 101 gets the 183 with SDP (rtpengine's address: anchored), hears the
    carrier's early media before the answer, then the call connects."""
    engine = pbx(rtpengine=("127.0.0.1", rtpengine.ng_port))
    carrier = carriers("early")
    publish_trunks(engine, trunk(engine, 1, carrier))
    set_snapshot(engine, "acme.test", routing())
    a = phones("101")
    acc = register(a, engine, "101")
    ca = dial(a, acc, NATIONAL)
    early = a.wait("response", call=ca, method="INVITE", timeout=5)
    while not early["msg"].startswith("SIP/2.0 183"):
        early = a.wait("response", call=ca, method="INVITE", timeout=5)
    sdp = early["msg"].partition("\r\n\r\n")[2]
    assert sdp.startswith("v=0")
    assert rtpengine_port(sdp)
    assert a.info(ca)["state"] == "EARLY"
    a.play(ca)
    assert a.wait_audio(ca) > 10  # the carrier's early media, before any answer
    assert a.info(ca)["state"] == "EARLY"
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    assert ended(a, ca) == 200
    carrier.done()


def _call(direction: str, caller_number: str) -> tuple[Call, Leg, Leg]:
    """A call with its A leg (the caller) and an extension's B leg."""
    tenant = TenantSnapshot(schema="t_x", tenant_id=1, domain="x.test", extensions={})
    caller = ExtensionSnapshot.from_dict(caller_number, {"caller_id_number": caller_number,
                                                         "caller_id_name": "Outside"})  # fmt: skip
    call = Call(id="c", tenant=tenant, caller=caller, callee="101",
                inbound=direction == "inbound")  # fmt: skip
    target = Target("UDP", "127.0.0.1", 5060)
    a = Leg(call, "a", caller_number, target, "ta", "ca", "<sip:a@127.0.0.1>")
    b = Leg(call, "b1", "101", target, "tb", "cb", "<sip:b@127.0.0.1>")
    call.a, call.b = a, b
    return call, a, b


PLAN = Plan(NATIONAL, E164, (Route((1,), E164, "+4930222", 1),))


def test_the_caller_id_of_a_transfer_out_is_the_outside_transferees_own_number():
    """Rule: an outside caller transferred out is presented with its own number (withheld
    when it came anonymous); an extension transferee leaves the rules' caller ID; an
    emergency number keeps its emergency caller ID whoever is transferred."""
    call, a, b = _call("inbound", "+4917012345678")
    assert presented(call, a, PLAN) == (PLAN, "+4917012345678", "Outside")
    assert presented(call, b, PLAN) == (PLAN, "", "")  # the extension that answered it
    emergency = replace(PLAN, emergency=True)
    assert presented(call, a, emergency) == (emergency, "", "")
    call, a, _ = _call("inbound", "anonymous")
    assert presented(call, a, PLAN) == (replace(PLAN, withheld=True), "", "Outside")
    call, a, _ = _call("internal", "102")  # 102 called 101, 101 transfers 102 out
    assert presented(call, a, PLAN) == (PLAN, "", "")
