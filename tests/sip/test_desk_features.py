"""Desk-phone features end to end with pjsua2 phones, the engine, rtpengine and the media
server on loopback: speed dials set from the phone (through the Django side's request
handler and the republished snapshot) and dialled; hot desking (a user logs in at a desk phone
with its PIN: its calls ring there and the desk calls as the user); automatic callback on
busy (``*33``: the requester's phone rings when the busy extension is free, then the target).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from telephony.sip import contract
from tests.sip.callkit import add_extension, dial, drain_cdr_stream, ended, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, wait_until
from tests.sip.pjphone import Phone
from tests.sip.test_media_features import media_dir, media_pbx, requests, wait_request

__all__ = ["media_dir", "media_pbx"]  # the fixtures this module uses

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def extension(engine: EngineHandle, number: str) -> contract.ExtensionSnapshot:
    return engine.call(lambda: engine.pbx.directory.tenant("acme.test").extensions[number])


def change(engine: EngineHandle, number: str, **fields: Any) -> None:
    set_snapshot(engine, "acme.test", lambda s: s["extensions"][number].update(**fields))


def from_header(msg: str) -> str:
    return next(line for line in msg.splitlines() if line.lower().startswith("from:"))


# ------------------------------------------------------------------------------ speed dial


def test_speed_dial_set_on_the_phone_then_dialled_then_cleared(media_pbx, phones, world, in_tenant):
    """Story: 101 dials *74 2 102 and hears it confirmed; the Django side stores the speed
    dial (audited as the phone's) and republishes; 101 dials 2 and 102 rings. *74 2 *
    clears it: 2 is then no number (404)."""
    from pbx.models import AuditEntry
    from telephony.engine.snapshots import publish_tenant
    from telephony.models import SpeedDial

    engine = media_pbx
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    acc_b = register(b, engine, "102")
    assert ended(a, dial(a, acc, "*742102")) == 200
    request = wait_request(engine, "feature.set")
    assert (request["extension"], request["feature"], request["number"]) == (
        "101",
        "speed_dial_8",
        "2:102",
    )
    drain_cdr_stream()
    with in_tenant(world.tenant_a):
        assert list(SpeedDial.objects.values_list("extension__number", "code", "number")) == [
            ("101", "2", "102")
        ]
        entry = AuditEntry.objects.get(action="extension.speed_dial", tenant=world.tenant_a)
        assert entry.actor_label == "phone of extension 101"
    publish_tenant(world.tenant_a.pk)  # the test's transaction never commits: publish now
    wait_until(lambda: extension(engine, "101").speed_dials.get("2") == "102", 5)

    ca = dial(a, acc, "2")
    incoming = b.incoming()
    assert "To: <sip:102@acme.test>" in incoming["msg"]
    b.answer(incoming["call"], 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(b, incoming["call"])

    # 102 has no speed dial 2: for it, 2 is no number.
    assert ended(b, dial(b, acc_b, "2")) == 404

    assert ended(a, dial(a, acc, "*742*")) == 200
    wait_until(lambda: requests(engine, "feature.set")[-1]["number"] == "2:")
    drain_cdr_stream()
    with in_tenant(world.tenant_a):
        assert not SpeedDial.objects.exists()
    publish_tenant(world.tenant_a.pk)
    wait_until(lambda: not extension(engine, "101").speed_dials, 5)
    assert ended(a, dial(a, acc, "2")) == 404


def test_speed_dial_100_and_bad_settings_are_refused_on_the_phone(media_pbx, phones):
    """A two-digit speed dial calls its number; a malformed setting (*75 with one digit, a
    speed dial to itself) is answered "feature failed" and never sent; an extension's own
    number is never taken for a speed dial."""
    engine = media_pbx
    change(engine, "101", speed_dials={"07": "102", "2": "999"})
    # An extension numbered 2 (without a mailbox: its busy answer reaches the caller) wins.
    set_snapshot(engine, "acme.test", add_extension("2", voicemail=None))
    a, b, c = phones("101"), phones("102"), phones("2")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "2")
    ca = dial(a, acc, "07")
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(b, cb)
    ca = dial(a, acc, "2")
    cc = c.incoming()["call"]  # the extension, not the speed dial to 999
    c.answer(cc, 486)
    assert ended(a, ca) == 486
    assert ended(a, dial(a, acc, "*757")) == 200
    assert ended(a, dial(a, acc, "*7503101")) == 200  # to itself
    assert ended(a, dial(a, acc, "*74155")) == 200  # 1 is no speed dial code
    assert not requests(engine, "feature.set")


# ----------------------------------------------------------------------------- hot desking


def _desk_login_call(engine: EngineHandle, phones: Any) -> tuple[Phone, int, Phone, int, int]:
    """Desk phone 103 (a hot desk) and 101 registered; 102 has PIN 4711; at the desk, *70102
    is dialled and answered. Returns the desk's phone, account and call, 101's phone and
    account."""
    set_snapshot(engine, "acme.test", add_extension("103", hot_desk=True))
    change(engine, "101", voicemail=None)  # its busy answer reaches the caller
    change(engine, "102", voicemail={"enabled": True, "pin": contract.pin_hash("4711")})
    desk, a = phones("103"), phones("101")
    acc_desk = register(desk, engine, "103")
    acc_a = register(a, engine, "101")
    cd = dial(desk, acc_desk, "*70102")
    desk.wait_state(cd, "CONFIRMED")
    return desk, acc_desk, a, acc_a, cd


def test_hot_desk_login_with_the_pin_moves_the_user_to_the_desk(media_pbx, phones):
    """Story: at desk phone 103, 102 dials *70102 and its PIN (a wrong one first): the engine
    asks the Django side to log 102 in there. Logged in, a call to 102 rings the desk phone,
    and a call from the desk shows 102's caller ID. *71 logs out: the desk is itself again."""
    engine = media_pbx
    desk, acc_desk, a, acc_a, cd = _desk_login_call(engine, phones)
    time.sleep(0.5)  # the PIN prompt
    desk.dtmf(cd, "1234#")
    time.sleep(1.0)
    desk.dtmf(cd, "4711#")
    assert ended(desk, cd) == 200
    request = wait_request(engine, "feature.set")
    assert (request["extension"], request["feature"], request["number"]) == (
        "103",
        "hotdesk_login",
        "102",
    )
    change(engine, "103", hotdesk_user="102")  # what the Django side publishes

    ca = dial(a, acc_a, "102")  # 102's own phone is not registered: the desk rings
    incoming = desk.incoming()
    assert "To: <sip:102@acme.test>" in incoming["msg"]
    desk.answer(incoming["call"], 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(desk, incoming["call"])

    cd = dial(desk, acc_desk, "101")
    incoming = a.incoming()
    assert "<sip:102@acme.test>" in from_header(incoming["msg"])
    a.answer(incoming["call"], 486)
    assert ended(desk, cd) == 486

    assert ended(desk, dial(desk, acc_desk, "*71")) == 200
    wait_until(lambda: requests(engine, "feature.set")[-1]["feature"] == "hotdesk_logout")
    assert requests(engine, "feature.set")[-1]["extension"] == "103"
    change(engine, "103", hotdesk_user="")
    cd = dial(desk, acc_desk, "101")
    incoming = a.incoming()
    assert "<sip:103@acme.test>" in from_header(incoming["msg"])
    a.answer(incoming["call"], 486)
    assert ended(desk, cd) == 486


def test_hot_desk_wrong_pin_no_pin_and_no_desk_are_refused(media_pbx, phones):
    engine = media_pbx
    desk, acc_desk, a, acc_a, cd = _desk_login_call(engine, phones)
    for _ in range(3):
        time.sleep(0.6)
        desk.dtmf(cd, "0000#")
    assert ended(desk, cd) == 200
    # Beta's extension 201 is no number of acme's: nobody to log in as.
    assert ended(desk, dial(desk, acc_desk, "*70201")) == 200
    # 101's mailbox has no PIN: nothing proves it is 101 at the desk.
    assert ended(desk, dial(desk, acc_desk, "*70101")) == 200
    # 101 is no desk phone.
    assert ended(a, dial(a, acc_a, "*70102")) == 200
    assert not requests(engine, "feature.set")


# ------------------------------------------------------------------------ automatic callback


def _callback(engine: EngineHandle) -> Any:
    return engine.pbx.calls.router.handlers["callback"]


def _pending(engine: EngineHandle) -> list[tuple[str, str]]:
    pending = _callback(engine).pending
    return engine.call(lambda: [(p.requester, p.target) for p in pending.values()])


def _102_busy(engine: EngineHandle, phones: Any) -> tuple[Phone, int, Phone, int, Phone, int]:
    """101, 102 and 103 registered; 103 calls 102, who answers. Returns 101's phone and
    account, 102's phone and call, 103's phone and call."""
    a, b, c = phones("101"), phones("102"), phones("103")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    acc_c = register(c, engine, "103")
    cc = dial(c, acc_c, "102")
    cb = b.incoming()["call"]
    b.answer(cb, 200)
    c.wait_state(cc, "CONFIRMED")
    return a, acc_a, b, cb, c, cc


def test_callback_rings_the_requester_then_the_target_when_it_is_free(media_pbx, phones):
    """Story: 102 is on a call with 103; 101 calls 102, which answers busy. 101 dials *33.
    Nothing happens while 102 talks; when 103 hangs up, 101's phone rings showing 102, 101
    answers and hears ringback while 102's phone rings showing 101; 102 answers: they talk."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    change(engine, "102", voicemail=None)  # its busy answer reaches the caller
    a, acc_a, b, cb, c, cc = _102_busy(engine, phones)

    ca = dial(a, acc_a, "102")
    b.answer(b.incoming()["call"], 486)
    assert ended(a, ca) == 486
    assert ended(a, dial(a, acc_a, "*33")) == 200
    wait_until(lambda: _pending(engine) == [("101", "102")])
    assert engine.call(lambda: len(engine.pbx.calls.calls.by_id)) == 1  # only 102 and 103

    c.hangup(cc)
    ended(b, cb)
    incoming = a.incoming(timeout=10)
    assert "<sip:102@acme.test>" in from_header(incoming["msg"])
    a.answer(incoming["call"], 200)
    a.wait_state(incoming["call"], "CONFIRMED")
    target = b.incoming(timeout=10)
    assert "<sip:101@acme.test>" in from_header(target["msg"])
    b.answer(target["call"], 200)
    b.wait_state(target["call"], "CONFIRMED")
    b.play(target["call"])
    assert a.wait_audio(incoming["call"]) > 10
    assert not _pending(engine)
    a.hangup(incoming["call"])
    assert ended(b, target["call"]) == 200


def test_callback_after_a_busy_answer_and_cancelled_by_star_43(media_pbx, phones):
    """*33 with a number arms a callback to it; *43 cancels it (nothing rings when the
    target is free); a callback to no extension is refused."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, acc_a, b, cb, c, cc = _102_busy(engine, phones)
    assert ended(a, dial(a, acc_a, "*33102")) == 200
    wait_until(lambda: _pending(engine) == [("101", "102")])
    assert ended(a, dial(a, acc_a, "*43")) == 200
    wait_until(lambda: not _pending(engine))
    assert ended(a, dial(a, acc_a, "*33999")) == 200  # no such extension
    assert not _pending(engine)
    c.hangup(cc)
    ended(b, cb)
    wait_until(lambda: engine.call(lambda: not engine.pbx.calls.calls.by_id))
    a.drain()
    assert not [e for e, _ in a.events if e == "incoming"]
