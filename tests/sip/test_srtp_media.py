"""SDES-SRTP phones and plain RTP phones call each other through rtpengine, which encrypts
towards the one and decrypts towards the other; an extension that requires SRTP cannot send
plain RTP.

Real engine (TLS listener), real rtpengine, pjsua2 as the plain phones, baresip over TLS with
SRTP mandatory as the encrypted one (``tests/sip/baresipkit.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from telephony.sip.calls.profiles import Profile
from telephony.sip.transaction import Timers
from tests.sip.baresipkit import Baresip, self_signed
from tests.sip.callkit import add_extension, dial, ended, media_engine, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.test_media_features import tone_media
from tests.sip.webrtc import audio


@pytest.fixture
def srtp_engine(pbx, tmp_path) -> Iterator[EngineHandle]:
    """An engine with TLS, rtpengine and the media server, MD5 digests (baresip's); acme's
    extension 104 requires SRTP."""
    cert, key = self_signed(tmp_path)
    options = {"tls_cert": cert, "tls_key": key, "digest_algorithms": None, "timers": Timers()}
    media = tone_media(str(tmp_path / "media"))
    with media_engine(pbx, media, engine=options) as engine:
        set_snapshot(engine, "acme.test", add_extension("104", srtp="required"))
        yield engine


def registered_over_tls(user: str) -> None:
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        found = wait_until(lambda: r.hgetall(f"sip:loc:acme.test:{user}"), timeout=10)
        assert [json.loads(b)["transport"] for b in found.values()] == ["TLS"]
    finally:
        r.close()


def _legs(engine: EngineHandle) -> list:
    return [leg for c in engine.pbx.calls.calls.by_id.values() for leg in c.legs()]


def test_a_plain_phone_calls_an_srtp_phone_and_both_hear(srtp_engine, phones, tmp_path):
    """Story: 101's desk phone (plain RTP) calls 104, whose phone requires SRTP over TLS: the
    phone is offered SRTP, answers, and echoes what it hears; 101 hears its own tone back,
    so audio crossed the encrypted leg in both directions."""
    engine = srtp_engine
    phone = Baresip(engine, tmp_path / "bs", "104", echo=True)
    try:
        registered_over_tls("104")
        desk = phones("101")
        acc = register(desk, engine, "101")
        call = dial(desk, acc, "104")
        desk.wait_state(call, "CONFIRMED")
        profiles = engine.call(lambda: sorted(leg.profile for leg in _legs(engine)))
        assert profiles == [Profile.RTP, Profile.SRTP]
        m = audio(desk.info(call)["remote_sdp"])
        assert m is not None
        assert m[2] == "RTP/AVP"
        desk.play(call)
        assert desk.wait_audio(call) > 10, phone.output()[-2000:]
        assert "SRTP is Enabled" in phone.output()
        desk.hangup(call)
        ended(desk, call)
    finally:
        phone.close()


def test_an_srtp_phone_calls_a_plain_phone_and_it_hears(srtp_engine, phones, tmp_path):
    """Story: 104's SRTP phone calls 102's desk phone: the desk phone is offered plain RTP
    and hears the SRTP phone's tone, decrypted by rtpengine."""
    engine = srtp_engine
    desk = phones("102")
    register(desk, engine, "102")
    phone = Baresip(engine, tmp_path / "bs", "104", echo=False, dial="102")
    try:
        inc = desk.incoming(20)
        offer = inc["msg"].partition("\r\n\r\n")[2]
        m = audio(offer)
        assert m is not None
        assert m[2] == "RTP/AVP"
        assert "a=crypto" not in offer
        desk.answer(inc["call"], 200)
        desk.wait_state(inc["call"], "CONFIRMED")
        assert desk.wait_audio(inc["call"]) > 10, phone.output()[-2000:]
        assert "SRTP is Enabled" in phone.output()
        desk.hangup(inc["call"])
        ended(desk, inc["call"])
    finally:
        phone.close()


def test_an_srtp_required_extension_offering_plain_rtp_gets_488(srtp_engine, phones):
    """Story: 101 is set to require SRTP, but its desk phone still sends plain RTP offers:
    its calls are refused 488 (Warning: SRTP required) and nothing rings."""
    engine = srtp_engine
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["101"].update(srtp="required"))
    desk, callee = phones("101"), phones("102")
    acc = register(desk, engine, "101")
    register(callee, engine, "102")
    assert ended(desk, dial(desk, acc, "102")) == 488
    assert not [e for e in callee.events if e[0] == "incoming"]


def test_an_intercom_group_offers_its_srtp_member_srtp(srtp_engine, phones, tmp_path):
    """Story: 104 (SRTP required, over TLS) is in duplex paging group 501; 101's desk phone
    calls the group: 104's phone is offered SRTP (its own profile, not the group's), takes
    the call and echoes, and 101 hears its own tone back through rtpengine."""
    engine = srtp_engine
    entry = {"number": "501", "name": "Floor", "members": ["104"], "duplex": True}
    set_snapshot(engine, "acme.test", lambda s: s.setdefault("team", {}).update(paging=[entry]))
    phone = Baresip(engine, tmp_path / "bs", "104", echo=True)
    try:
        registered_over_tls("104")
        desk = phones("101")
        acc = register(desk, engine, "101")
        call = dial(desk, acc, "501")
        desk.wait_state(call, "CONFIRMED")
        profiles = engine.call(lambda: sorted(leg.profile for leg in _legs(engine)))
        assert profiles == [Profile.RTP, Profile.SRTP]
        desk.play(call)
        assert desk.wait_audio(call) > 10, phone.output()[-2000:]
        assert "SRTP is Enabled" in phone.output()
        desk.hangup(call)
        ended(desk, call)
    finally:
        phone.close()
