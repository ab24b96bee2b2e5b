"""Calls between extensions, end to end: the full engine on loopback and real pjsua2 phones
(each in its own process, see ``pjphone``), optionally with a real rtpengine."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from telephony.sip.media import MediaError, connection_address
from telephony.sip.message import Request, make_response
from tests.sip.callkit import (
    add_extension,
    call_layer,
    connect,
    dial,
    ended,
    events,
    register,
    set_snapshot,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import Phone, RtpEngineProcess

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

add_103 = add_extension("103")


@pytest.fixture
def engine(pbx) -> EngineHandle:
    return pbx()


def test_call_answer_audio_dtmf_hangup(engine: EngineHandle, phones: Callable[[str], Phone]):
    """Story: 101 calls 102, which rings and answers; they hear each other, 101 keys digits
    that 102 receives (RFC 2833), 102 hangs up. Caller ID is the extension's; events and the
    active-call mirror follow the call."""
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    inc = b.incoming()
    assert '"Acme 101" <sip:101@acme.test>' in inc["msg"]  # caller ID from the extension
    cb = inc["call"]
    b.answer(cb, 180)
    a.wait_state(ca, "EARLY")
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    b.wait_state(cb, "CONFIRMED")

    calls = engine.call(lambda: list(call_layer(engine).calls.by_id.values()))
    assert len(calls) == 1
    call_id = calls[0].id
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    live = wait_until(lambda: r.hget("sip:calls:t_acme", call_id))
    assert json.loads(live)["state"] == "answered"

    a.play(ca)
    b.play(cb)
    assert b.wait_audio(cb) > 10
    assert a.wait_audio(ca) > 10
    a.dtmf(ca, "19#")
    assert [b.wait("dtmf", call=cb)["digit"] for _ in range(3)] == ["1", "9", "#"]

    b.hangup(cb)
    a.wait_state(ca, "DISCONNECTED")
    b.wait_state(cb, "DISCONNECTED")
    wait_until(lambda: not engine.call(lambda: call_layer(engine).calls.by_id))
    kinds = [e["type"] for e in events(engine, call_id)]
    assert kinds == ["call.started", "call.ringing", "call.answered", "call.ended"]
    ended = events(engine, call_id)[-1]
    assert ended["status"] == "answered"
    assert ended["reason"] == "bye callee"
    wait_until(lambda: r.hget("sip:calls:t_acme", call_id) is None)
    r.close()


def test_busy_dnd_unregistered_and_unknown(engine: EngineHandle, phones):
    """Story: a callee who rejects gets the caller a busy signal; so does DND; an extension
    with no phone registered is 480; a number that does not exist is 404."""
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    b.answer(b.incoming()["call"], 486)
    assert ended(a, ca) == 486

    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(dnd=True))
    ca = dial(a, acc_a, "102")
    assert ended(a, ca) == 486
    assert not [e for e, _ in b.events if e == "incoming"]  # the DND phone never rang
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(dnd=False))

    b.close()  # 102's phone goes away; unregister by hand as the process is gone
    r = redis.Redis.from_url(worker_redis_url())
    for k in r.scan_iter("sip:loc:*102*"):
        r.delete(k)
    r.close()
    engine.call(lambda: engine.pbx.locations.hot.clear())
    ca = dial(a, acc_a, "102")
    assert ended(a, ca) == 480
    ca = dial(a, acc_a, "199")
    assert ended(a, ca) == 404
    statuses = [e["status"] for e in events(engine) if e["type"] == "call.ended"]
    assert statuses == ["busy", "busy", "no_answer", "failed"]


def test_cross_tenant_call_is_refused(engine: EngineHandle, phones):
    """Story: acme's 101 dials beta's 201, by beta's domain or by number: it never rings."""
    a, b = phones("101"), phones("201")
    acc_a = register(a, engine, "101")
    register(b, engine, "201", "beta.test")
    assert ended(a, dial(a, acc_a, "201", "beta.test")) == 404  # as if beta did not exist
    assert ended(a, dial(a, acc_a, "201")) == 404
    assert not [e for e, _ in b.events if e == "incoming"]


def test_no_answer_timeout_and_cancel(engine: EngineHandle, phones):
    """Story: nobody answers within the extension's no-answer time: the caller gets 480 and
    the phone stops ringing; a caller who gives up (CANCEL) stops the ringing too.

    Nothing here races the engine's timer (this test once failed on a loaded machine: with a
    1 s timer for both halves, the timer could end the call before the test's next command to
    the phones). The phone rings by itself (no command round trip while the timer runs), and
    the CANCEL half runs with a long no-answer time, so only the caller's CANCEL can end it."""
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(no_answer_timeout=1))
    a, b = phones("101"), phones("102", auto_ring=True)
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    cb = b.incoming()["call"]
    assert ended(a, ca) == 480
    assert ended(b, cb) == 487  # CANCELled by us

    set_snapshot(
        engine, "acme.test", lambda s: s["extensions"]["102"].update(no_answer_timeout=600)
    )
    ca = dial(a, acc_a, "102")
    cb = b.incoming()["call"]
    a.wait_state(ca, "EARLY")
    a.hangup(ca)  # CANCEL before answer
    assert ended(b, cb) == 487
    assert ended(a, ca) == 487
    statuses = [e["status"] for e in events(engine) if e["type"] == "call.ended"]
    assert statuses == ["no_answer", "cancelled"]


def test_forking_first_answer_wins(engine: EngineHandle, phones):
    """Story: 102 is registered on two phones; both ring, the first to answer gets the call
    and the other stops ringing (CANCEL)."""
    a, desk, mobile = phones("101"), phones("102-desk"), phones("102-mobile")
    acc_a = register(a, engine, "101")
    register(desk, engine, "102")
    register(mobile, engine, "102")
    ca = dial(a, acc_a, "102")
    c_desk = desk.incoming()["call"]
    c_mobile = mobile.incoming()["call"]
    desk.answer(c_desk, 180)
    mobile.answer(c_mobile, 180)
    mobile.answer(c_mobile, 200)
    a.wait_state(ca, "CONFIRMED")
    assert ended(desk, c_desk) == 487
    a.play(ca)
    assert mobile.wait_audio(c_mobile) > 10
    a.hangup(ca)
    assert ended(mobile, c_mobile) == 200


def test_hold_unhold_and_caller_hangup(engine: EngineHandle, phones):
    """Story: 101 puts 102 on hold and takes it back (re-INVITE relayed with its SDP
    direction); then 101 hangs up."""
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    a.hold(ca)
    reinvite = b.wait("request", call=cb, method="INVITE")["msg"]
    assert "a=sendonly" in reinvite
    a.wait("media", call=ca, status=["LOCAL_HOLD"])
    b.drain()
    b.events = [e for e in b.events if e[0] != "media"]  # only media changes from here on
    a.unhold(ca)
    reinvite = b.wait("request", call=cb, method="INVITE")["msg"]
    assert "a=sendrecv" in reinvite
    a.wait("media", call=ca, status=["ACTIVE"])
    # Both ends have re-created their streams before the tone starts (on a loaded machine
    # the callee's can come later than the caller's).
    b.wait("media", call=cb, status=["ACTIVE"])
    a.play(ca)
    assert b.wait_audio(cb) > 10
    a.hangup(ca)
    assert ended(b, cb) == 200
    ev = events(engine)
    assert ev[-1]["reason"] == "bye caller"


def test_blind_transfer(engine: EngineHandle, phones):
    """Story: 101 calls 102; 102 transfers 101 to 103 blind. 103 rings and answers, 101 and
    103 talk, 102 is let go; the transferor sees sipfrag progress up to 200."""
    set_snapshot(engine, "acme.test", add_103)
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, "sip:103@acme.test")
    cc = c.incoming()["call"]
    c.answer(cc, 200)
    c.wait_state(cc, "CONFIRMED")
    frags = []
    while "200 OK" not in "".join(frags):
        frags.append(b.wait("request", call=cb, method="NOTIFY")["msg"])
    assert "SIP/2.0 100 Trying" in frags[0]
    assert ended(b, cb) == 200  # the PBX let the transferor go
    a.wait("request", call=ca, method="INVITE")  # 101 re-offered towards 103
    a.play(ca)
    assert c.wait_audio(cc) > 10
    c.play(cc)
    assert a.wait_audio(ca) > 10
    c.hangup(cc)
    assert ended(a, ca) == 200
    kinds = [e["type"] for e in events(engine)]
    assert "call.transferred" in kinds
    tr = next(e for e in events(engine) if e["type"] == "call.transferred")
    assert (tr["kind"], tr["from"], tr["to"], tr["segment"]) == ("blind", "101", "103", "2")


def test_a_transferor_that_hangs_up_on_the_202_does_not_end_the_transfer(
    engine: EngineHandle, phones
):
    """Story: 102 transfers 101 to 103 blind and hangs up at once, as many desk phones do.
    Only 102's leg goes: 103 rings, answers, and talks to 101. Had 103 not been there, 101
    would have been hung up rather than left alone on a dead call."""
    set_snapshot(engine, "acme.test", add_103)
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, "sip:103@acme.test")
    b.wait("request", call=cb, method="NOTIFY")  # 100 Trying: the REFER was taken
    b.hangup(cb)
    assert ended(b, cb) == 200
    cc = c.incoming()["call"]
    c.answer(cc, 200)
    c.wait_state(cc, "CONFIRMED")
    a.wait("request", call=ca, method="INVITE")  # 101 re-offered towards 103
    a.play(ca)
    assert c.wait_audio(cc) > 10
    c.hangup(cc)
    assert ended(a, ca) == 200

    # The same to an extension with no phone: the transfer fails, and 101 is let go.
    ca, cb = connect(a, acc_a, b)
    b.xfer(cb, "sip:104@acme.test")
    b.wait("request", call=cb, method="NOTIFY")
    b.hangup(cb)
    assert ended(b, cb) == 200
    assert ended(a, ca) == 200


def test_attended_transfer(engine: EngineHandle, phones):
    """Story: 101 talks to 102; 102 holds, calls 103, then transfers 101 to 103 with
    Replaces. 101 and 103 are joined; 102's two calls end."""
    set_snapshot(engine, "acme.test", add_103)
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    acc_b = register(b, engine, "102")
    register(c, engine, "103")
    ca, cb = connect(a, acc_a, b)
    b.hold(cb)
    b.wait("media", call=cb, status=["LOCAL_HOLD"])
    cb2, cc = connect(b, acc_b, c, "103")
    b.xfer_replaces(cb, cb2)
    assert ended(b, cb) == 200
    assert ended(b, cb2) == 200
    a.wait("request", call=ca, method="INVITE")
    c.wait("request", call=cc, method="INVITE")
    a.play(ca)
    c.play(cc)
    assert c.wait_audio(cc) > 10
    assert a.wait_audio(ca) > 10
    a.hangup(ca)
    assert ended(c, cc) == 200
    tr = next(e for e in events(engine) if e["type"] == "call.transferred")
    assert (tr["kind"], tr["from"], tr["to"]) == ("attended", "101", "103")


def test_hangup_over_control_channel(engine: EngineHandle, phones):
    """Story: an admin ends a call from the API (which publishes on sip:control); a command
    naming another tenant's schema is ignored."""
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    call_id = engine.call(lambda: next(iter(call_layer(engine).calls.by_id)))
    r = redis.Redis.from_url(worker_redis_url())
    wait_until(lambda: r.pubsub_numsub("sip:control")[0][1] > 0)
    r.publish("sip:control", json.dumps({"op": "hangup", "schema": "t_beta", "call_id": call_id}))
    r.publish("sip:control", json.dumps({"op": "hangup", "schema": "t_acme", "call_id": call_id}))
    r.close()
    assert ended(a, ca) == 200
    assert ended(b, cb) == 200
    assert events(engine)[-1]["reason"] == "api hangup"


def test_media_anchored_through_rtpengine(pbx, phones):
    """Story: the tenant asks for anchored media: both phones are given rtpengine's address
    and port (not each other's), and audio flows through it both ways."""
    rtp = RtpEngineProcess()
    try:
        engine = pbx(rtpengine=("127.0.0.1", rtp.ng_port))
        set_snapshot(engine, "acme.test", lambda s: s.update(anchor_media=True))
        a, b = phones("101"), phones("102")
        acc_a = register(a, engine, "101")
        register(b, engine, "102")
        ca, cb = connect(a, acc_a, b)
        sdp_b = b.info(cb)["remote_sdp"]
        sdp_a = a.info(ca)["remote_sdp"]
        assert connection_address(sdp_b.encode()) == "127.0.0.1"
        assert connection_address(sdp_a.encode()) == "127.0.0.1"
        port = lambda sdp: int(sdp.split("m=audio ")[1].split()[0])  # noqa: E731
        base = 30000 + (rtp.proc.pid and 0)
        assert all(port(s) >= 30000 for s in (sdp_a, sdp_b)), (sdp_a, sdp_b, base)
        a.play(ca)
        b.play(cb)
        assert b.wait_audio(cb) > 10
        assert a.wait_audio(ca) > 10
        a.hangup(ca)
        ended(b, cb)
    finally:
        rtp.close()


def test_blind_transfer_of_an_anchored_call_keeps_media_anchored(pbx, phones):
    """Story: on a tenant with anchored media, 102 transfers 101 to 103 blind. 103 is offered
    rtpengine's address (never 101's own), 101 is re-offered rtpengine too, and they hear each
    other through it; the old media session is torn down."""
    rtp = RtpEngineProcess()
    try:
        engine = pbx(rtpengine=("127.0.0.1", rtp.ng_port))
        set_snapshot(engine, "acme.test", lambda s: s.update(anchor_media=True))
        set_snapshot(engine, "acme.test", add_103)
        a, b, c = phones("101"), phones("102"), phones("103")
        acc_a = register(a, engine, "101")
        register(b, engine, "102")
        register(c, engine, "103")
        ca, cb = connect(a, acc_a, b)
        phone_port = lambda sdp: int(sdp.split("m=audio ")[1].split()[0])  # noqa: E731
        a_own_port = phone_port(b.info(cb)["remote_sdp"])  # rtpengine's, as 102 sees it
        assert a_own_port >= 30000
        b.xfer(cb, "sip:103@acme.test")
        inc = c.incoming()
        offered = inc["msg"].partition("\r\n\r\n")[2]
        assert connection_address(offered.encode()) == "127.0.0.1"
        assert phone_port(offered) >= 30000  # rtpengine's port, not 101's phone port
        cc = inc["call"]
        c.answer(cc, 200)
        c.wait_state(cc, "CONFIRMED")
        assert ended(b, cb) == 200
        reoffer = a.wait("request", call=ca, method="INVITE")["msg"].partition("\r\n\r\n")[2]
        assert phone_port(reoffer) >= 30000  # 101 keeps talking to rtpengine
        call = engine.call(lambda: next(iter(call_layer(engine).calls.by_id.values())))
        assert call.anchored
        assert call.media_id == f"{call.id}-2"

        def old_session_gone() -> bool:
            try:
                engine.run(call_layer(engine).anchor.media.query(call.id))
            except MediaError:
                return True
            return False

        wait_until(old_session_gone)
        a.play(ca)
        c.play(cc)
        assert c.wait_audio(cc) > 10
        assert a.wait_audio(ca) > 10
        c.hangup(cc)
        assert ended(a, ca) == 200
    finally:
        rtp.close()


def test_tenant_concurrent_call_limit(engine: EngineHandle, phones):
    """Story: a tenant allowed one call at a time: while 101's call to 102 rings, a second call
    is refused 503 before anything rings; once the first ends, calls go through again."""
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    set_snapshot(engine, "acme.test", lambda s: s.update(max_concurrent_calls=1))
    first = dial(a, acc_a, "102")
    b.incoming()
    second = dial(a, acc_a, "102")
    assert ended(a, second) == 503
    assert not [e for e, _ in b.events if e == "incoming"]  # the refused call never rang
    a.hangup(first)
    ended(a, first)
    wait_until(lambda: engine.call(lambda: call_layer(engine).limits.counts.get("t_acme", 0)) == 0)
    third = dial(a, acc_a, "102")
    b.incoming()
    a.hangup(third)
    ended(a, third)


EVIL_NAME = 'Evil "Q" \\ Inj\r\nX-Injected: yes\r\nCall-Info: <sip:x>;answer-after=0'


def test_caller_id_name_cannot_inject_headers(engine: EngineHandle, phones, in_tenant, world):
    """Story: 101's caller ID name holds quotes, a backslash and CR/LF followed by header
    lines (written to the row directly, as a validation gap or an import would leave it). 102's
    phone gets an INVITE whose From and P-Asserted-Identity carry that name as one escaped
    quoted-string, and no header of the name's making (no auto-answer Call-Info)."""
    from telephony.engine.snapshots import publish_tenant
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        Extension.objects.filter(number="101").update(caller_id_name=EVIL_NAME)
    publish_tenant(world.tenant_a.pk)
    wait_until(
        lambda: engine.call(
            lambda: (
                "Inj" in engine.pbx.directory.tenant("acme.test").extensions["101"].caller_id_name
            )
        )
    )
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    inc = b.incoming()
    lines = inc["msg"].replace("\r\n", "\n").split("\n")
    assert not [line for line in lines if line.lower().startswith(("x-injected", "call-info"))]
    quoted = r'"Evil \"Q\" \\ Inj  X-Injected: yes  Call-Info: <sip:x>;answer-after=0"'
    assert [line for line in lines if line.startswith("From:")][0].startswith(
        f"From: {quoted} <sip:101@acme.test>;tag="
    )
    assert f"P-Asserted-Identity: {quoted} <sip:101@acme.test>" in lines
    b.answer(inc["call"], 486)
    assert ended(a, ca) == 486


def _sent_back(sock: socket.socket, timeout: float) -> list[bytes]:
    sock.settimeout(timeout)
    got = []
    with contextlib.suppress(TimeoutError):
        while True:
            got.append(sock.recv(65536))
    return got


def test_stray_2xx_is_dropped_but_a_dialogs_2xx_is_acked(engine: EngineHandle, phones):
    """Story: a 200 OK to an INVITE the engine never sent (RFC 4475 ``unreason``, from a
    spoofed source) gets nothing back: no ACK, no BYE (RFC 3261 17.1.3, 18.1.2), so the engine
    cannot be used as a reflector. A real callee whose 200 is retransmitted after the INVITE
    transaction is over (our ACK was lost) still gets the ACK again."""
    torture = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "rfc4475"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as spoofed:
        spoofed.bind(("127.0.0.1", 0))
        spoofed.sendto((torture / "unreason.dat").read_bytes(), (engine.host, engine.udp_port))
        assert _sent_back(spoofed, 1.0) == []

    a = phones("101")
    acc_a = register(a, engine, "101")
    with engine.client() as callee:
        assert callee.register("102", "acme.test").status == 200
        ca = dial(a, acc_a, "102")
        invite = callee.recv()
        while not isinstance(invite, Request):
            invite = callee.recv()
        assert invite.method == "INVITE"
        ok = make_response(invite, 200, to_tag="callee1")
        ok.set("Contact", f"<sip:102@{callee.local[0]}:{callee.local[1]}>")
        ok.set("Content-Type", "application/sdp")
        ok.body = (
            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
        callee.send_raw(bytes(ok))
        ack = callee.recv()
        assert isinstance(ack, Request)
        assert ack.method == "ACK"
        a.wait_state(ca, "CONFIRMED")
        # Timer M over: the 2xx now matches no transaction, only the dialog.
        wait_until(lambda: not engine.call(lambda: engine.pbx.engine.transactions.clients))
        callee.send_raw(bytes(ok))
        again = callee.recv()
        assert isinstance(again, Request)
        assert again.method == "ACK"
        assert again.to.tag == "callee1"
        a.hangup(ca)
        bye = callee.recv()
        while not (isinstance(bye, Request) and bye.method == "BYE"):
            bye = callee.recv()
        callee.send_raw(bytes(make_response(bye, 200)))
        wait_until(lambda: not engine.call(lambda: call_layer(engine).calls.by_id))
