"""A browser softphone (SIP over WebSocket, WebRTC media) and desk phones (plain RTP) call each
other through rtpengine: each side gets SDP of its own media profile.

Real engine, real rtpengine, real pjsua2 phones on loopback; the browser's signalling is
``tests/sip/webrtc.py`` (Chrome's SDP, checked at the SDP level).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from tests.sip.callkit import (
    add_extension,
    dial,
    ended,
    media_engine,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.carrier import (
    NATIONAL,
    carriers,
    publish_trunks,
    routing,
    rtpengine_port,
    trunk,
)
from tests.sip.engine_fixtures import EngineHandle, wait_until
from tests.sip.test_media_features import mailbox, menu, set_media, tone_media
from tests.sip.webrtc import WsPhone, audio, chrome_answer, chrome_offer, codecs

__all__ = ["carriers"]  # a fixture, used by name


@pytest.fixture
def rtc(pbx, tmp_path) -> Iterator[EngineHandle]:
    """An engine with rtpengine and the media server; acme has extension 103 for browsers."""
    with media_engine(pbx, tone_media(str(tmp_path / "media"))) as engine:
        set_snapshot(engine, "acme.test", add_extension("103"))
        yield engine


@pytest.fixture
def browser(rtc) -> Iterator[WsPhone]:
    """Extension 103 in a browser, registered over WebSocket."""
    phone = WsPhone(rtc, "103")
    assert phone.register().status == 200
    yield phone
    phone.close()


def assert_plain_rtp(sdp: str | bytes) -> None:
    """What a desk phone must get: RTP/AVP, nothing of WebRTC."""
    text = sdp.decode() if isinstance(sdp, bytes) else sdp
    m = audio(text)
    assert m is not None, text
    assert m[2] == "RTP/AVP", text
    for attr in ("a=ice-ufrag", "a=candidate", "a=fingerprint", "a=setup:", "a=rtcp-mux"):
        assert attr not in text, f"{attr} in a desk phone's SDP:\n{text}"


def assert_webrtc(sdp: str | bytes) -> None:
    """What a browser must get: UDP/TLS/RTP/SAVPF with ICE, a DTLS fingerprint, rtcp-mux."""
    text = sdp.decode() if isinstance(sdp, bytes) else sdp
    m = audio(text)
    assert m is not None, text
    assert m[2] == "UDP/TLS/RTP/SAVPF", text
    for attr in ("a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=fingerprint:", "a=rtcp-mux"):
        assert attr in text, f"no {attr} in a browser's SDP:\n{text}"
    assert "a=crypto:" not in text  # DTLS-SRTP, never SDES keys to a browser


def test_browser_calls_a_desk_phone(rtc, browser, phones):
    """Story: a user dials 102 from the browser softphone; the desk phone rings with a plain
    RTP offer (G.711 kept, nothing it cannot parse), and the browser gets a WebRTC answer."""
    desk = phones("102")
    register(desk, rtc, "102")
    browser_offer = chrome_offer()
    answered = {}

    def answer_desk() -> None:
        inc = desk.incoming()
        answered["sdp"] = inc["msg"].partition("\r\n\r\n")[2]
        desk.answer(inc["call"], 200)
        answered["call"] = inc["call"]

    t = threading.Thread(target=answer_desk)
    t.start()
    resp = browser.invite("102", browser_offer)
    t.join(10)
    assert resp.status == 200
    assert_plain_rtp(answered["sdp"])
    assert {"PCMU", "PCMA"} <= set(codecs(answered["sdp"]))
    assert_webrtc(resp.body)
    assert "a=setup:active" in resp.body.decode() or "a=setup:passive" in resp.body.decode()
    assert browser.bye().status == 200
    ended(desk, answered["call"])


def test_desk_phone_calls_the_browser(rtc, browser, phones):
    """Story: a colleague's desk phone dials 103, which is signed in only in a browser: the
    browser gets a WebRTC offer with the desk phone's G.711 (no transcoding), and its WebRTC
    answer reaches the desk phone as plain RTP."""
    desk = phones("101")
    acc = register(desk, rtc, "101")
    call = dial(desk, acc, "103")
    invite = browser.incoming()
    assert_webrtc(invite.body)
    offered = codecs(invite.body)
    assert offered[0] in ("PCMU", "PCMA")
    assert "OPUS" not in offered
    assert "TELEPHONE-EVENT" in offered
    browser.answer(invite, 180)
    browser.answer(invite, 200, chrome_answer(invite.body))
    browser.wait_request("ACK")
    desk.wait_state(call, "CONFIRMED")
    assert_plain_rtp(desk.info(call)["remote_sdp"])
    desk.hangup(call)
    bye = browser.wait_request("BYE")
    browser.send(browser.reply(bye, 200))


def test_a_plain_phone_and_a_browser_of_one_extension_both_ring(rtc, browser, phones):
    """Story: 103 is signed in on a UDP desk phone and in a browser; a call to 103 rings both,
    each with an offer of its own kind; the desk phone answers and both parties hear each
    other (the browser's ringing pairing is dropped)."""
    caller, desk = phones("101"), phones("103")
    acc = register(caller, rtc, "101")
    register(desk, rtc, "103")
    call = dial(caller, acc, "103")
    invite = browser.incoming()
    assert_webrtc(invite.body)
    browser.answer(invite, 180)
    inc = desk.incoming()
    assert_plain_rtp(inc["msg"].partition("\r\n\r\n")[2])
    desk.answer(inc["call"], 200)
    caller.wait_state(call, "CONFIRMED")
    cancel = browser.wait_request("CANCEL")
    browser.send(browser.reply(cancel, 200))
    two_way_audio(caller, call, desk, inc["call"])
    caller.hangup(call)
    ended(desk, inc["call"])


def test_the_browser_answers_a_forked_call(rtc, browser, phones):
    """Story: the same two devices ring; this time the browser answers: the caller gets the
    answer of the browser's own pairing (plain RTP) and the desk phone is cancelled."""
    caller, desk = phones("101"), phones("103")
    acc = register(caller, rtc, "101")
    register(desk, rtc, "103")
    call = dial(caller, acc, "103")
    invite = browser.incoming()
    inc = desk.incoming()
    browser.answer(invite, 200, chrome_answer(invite.body))
    browser.wait_request("ACK")
    caller.wait_state(call, "CONFIRMED")
    assert ended(desk, inc["call"]) == 487
    assert_plain_rtp(caller.info(call)["remote_sdp"])
    [live] = rtc.call(lambda: list(rtc.pbx.calls.calls.by_id.values()))
    assert live.media_id.endswith("-webrtc")
    assert not live.pairings
    caller.hangup(call)
    bye = browser.wait_request("BYE")
    browser.send(browser.reply(bye, 200))


def test_an_opus_only_browser_is_transcoded_to_g711(rtc, browser, phones):
    """Story: a browser that offers Opus alone calls a G.711 desk phone: rtpengine transcodes
    (the phone is offered PCMU/PCMA, not Opus), and the call counts against the cap."""
    desk = phones("102")
    register(desk, rtc, "102")
    seen = {}

    def answer_desk() -> None:
        inc = desk.incoming()
        seen["sdp"] = inc["msg"].partition("\r\n\r\n")[2]
        seen["call"] = inc["call"]
        desk.answer(inc["call"], 200)

    t = threading.Thread(target=answer_desk)
    t.start()
    resp = browser.invite("102", chrome_offer(opus_only=True))
    t.join(10)
    assert resp.status == 200
    assert_plain_rtp(seen["sdp"])
    offered = codecs(seen["sdp"])
    assert "OPUS" not in offered
    assert {"PCMU", "PCMA"} <= set(offered)
    assert_webrtc(resp.body)
    assert codecs(resp.body)[0] == "OPUS"  # the browser keeps its codec
    assert rtc.call(lambda: len(rtc.pbx.calls.anchor.transcoding)) == 1
    assert browser.bye().status == 200
    ended(desk, seen["call"])
    wait_until(lambda: rtc.call(lambda: not rtc.pbx.calls.anchor.transcoding))


def test_transcoding_over_the_cap_is_refused_488(rtc, browser, phones):
    """Story: the engine may transcode no more calls (cap reached): an Opus-only browser's
    call gets 488 with a Warning saying why, and nothing rings."""
    desk = phones("102")
    register(desk, rtc, "102")
    rtc.call(lambda: setattr(rtc.pbx.calls.config, "max_transcoded_calls", 0))
    resp = browser.invite("102", chrome_offer(opus_only=True))
    assert resp.status == 488
    assert "transcod" in (resp.get("Warning") or "")

    # A browser that offers G.711 too needs no transcoding: it still gets through.
    def answer_desk() -> None:
        inc = desk.incoming()
        desk.answer(inc["call"], 200)

    t = threading.Thread(target=answer_desk)
    t.start()
    assert browser.invite("102", chrome_offer()).status == 200
    t.join(10)
    assert browser.bye().status == 200


# --- every call path: the non-browser side always sees plain RTP --------------------------


def test_the_browser_reaches_the_menu_and_voicemail_as_webrtc(rtc, browser):
    """Story: from the browser, a user calls the auto attendant and then a colleague who has
    no phone registered (the mailbox answers): the media server speaks plain RTP, the browser
    gets WebRTC answers from rtpengine."""
    set_media(rtc, ivrs=[menu()])
    resp = browser.invite("800", chrome_offer())
    assert resp.status == 200
    assert_webrtc(resp.body)
    assert browser.bye().status == 200
    set_snapshot(rtc, "acme.test", mailbox(max_seconds=30))
    resp = browser.invite("102", chrome_offer(opus_only=True))  # transcoded for the mailbox
    assert resp.status == 200
    assert_webrtc(resp.body)
    assert browser.bye().status == 200


def test_a_menu_choice_rings_the_browser_with_webrtc(rtc, browser, phones):
    """Story: a desk phone's caller picks 1 in the menu, which rings 103 in a browser: the
    caller leaves the media server for the browser, whose offer is WebRTC; the caller's
    re-INVITE is plain RTP."""
    set_media(
        rtc,
        ivrs=[menu(options=[{"digit": "1", "target": {"kind": "extension", "target": "103"}}])],
    )
    desk = phones("101")
    acc = register(desk, rtc, "101")
    call = dial(desk, acc, "800")
    desk.wait_state(call, "CONFIRMED")
    desk.dtmf(call, "1")
    invite = browser.incoming(15)
    assert_webrtc(invite.body)
    browser.answer(invite, 200, chrome_answer(invite.body))
    browser.wait_request("ACK")
    wait_until(lambda: rtc.call(lambda: all(c.media is None for c in _live(rtc))), 10)
    assert_plain_rtp(desk.info(call)["remote_sdp"])
    desk.hangup(call)
    bye = browser.wait_request("BYE")
    browser.send(browser.reply(bye, 200))


def test_a_ring_group_rings_a_browser_and_a_desk_phone_each_in_its_profile(rtc, browser, phones):
    """Story: ring group 600 has 103 (a browser) and 102 (a desk phone); a caller's desk
    phone rings both; 102 answers and the two desk phones hear each other."""
    set_snapshot(
        rtc,
        "acme.test",
        lambda s: s.setdefault("team", {}).update(
            ring_groups=[
                {
                    "number": "600",
                    "name": "Sales",
                    "members": [
                        {"number": "103", "external": False},
                        {"number": "102", "external": False},
                    ],
                    "member_seconds": 30,
                    "total_seconds": 60,
                }
            ]
        ),
    )
    caller, desk = phones("101"), phones("102")
    acc = register(caller, rtc, "101")
    register(desk, rtc, "102")
    call = dial(caller, acc, "600")
    invite = browser.incoming()
    assert_webrtc(invite.body)
    inc = desk.incoming()
    assert_plain_rtp(inc["msg"].partition("\r\n\r\n")[2])
    desk.answer(inc["call"], 200)
    caller.wait_state(call, "CONFIRMED")
    cancel = browser.wait_request("CANCEL")
    browser.send(browser.reply(cancel, 200))
    two_way_audio(caller, call, desk, inc["call"])
    caller.hangup(call)
    ended(desk, inc["call"])


def test_a_hold_from_the_browser_keeps_both_profiles(rtc, browser, phones):
    """Story: the browser's user holds and takes back a call with a desk phone: each
    re-INVITE reaches the desk phone as plain RTP, each answer the browser as WebRTC."""
    desk = phones("102")
    register(desk, rtc, "102")
    got = {}

    def answer_desk() -> None:
        inc = desk.incoming()
        got["call"] = inc["call"]
        desk.answer(inc["call"], 200)

    t = threading.Thread(target=answer_desk)
    t.start()
    assert browser.invite("102", chrome_offer()).status == 200
    t.join(10)
    for direction in ("sendonly", "sendrecv"):
        resp = browser.reinvite(chrome_offer().replace(b"a=sendrecv", f"a={direction}".encode()))
        assert resp.status == 200
        assert_webrtc(resp.body)
        reoffer = desk.wait("request", call=got["call"], method="INVITE")["msg"]
        assert_plain_rtp(reoffer.partition("\r\n\r\n")[2])
    assert browser.bye().status == 200
    ended(desk, got["call"])


def _live(engine: EngineHandle) -> list:
    return list(engine.pbx.calls.calls.by_id.values())


def test_the_browser_calls_out_through_a_trunk_in_plain_rtp(rtc, browser, carriers):
    """Story: from the browser, a user dials an outside number: the carrier (SIPp) is offered
    plain RTP through rtpengine, and the browser gets a WebRTC answer."""
    carrier = carriers("auth")
    publish_trunks(rtc, trunk(rtc, 1, carrier))
    set_snapshot(rtc, "acme.test", routing())
    resp = browser.invite(NATIONAL, chrome_offer())
    assert resp.status == 200
    assert_webrtc(resp.body)
    assert browser.bye().status == 200
    carrier.done()
    for invite in carrier.invites():
        body = invite.partition("\n\n")[2]
        assert_plain_rtp(body)
        assert rtpengine_port(body)


def test_a_desk_phone_puts_the_browser_on_hold_with_music(rtc, browser, phones):
    """Story: a desk phone's user puts a browser caller on hold: the browser is re-INVITEd to
    the music in WebRTC (rtpengine in the holder's place), and back to the phone on unhold."""
    desk = phones("102")
    register(desk, rtc, "102")
    got = {}

    def answer_desk() -> None:
        inc = desk.incoming()
        got["call"] = inc["call"]
        desk.answer(inc["call"], 200)

    t = threading.Thread(target=answer_desk)
    t.start()
    assert browser.invite("102", chrome_offer()).status == 200
    t.join(10)
    desk.wait_state(got["call"], "CONFIRMED")
    for action in (desk.hold, desk.unhold):
        action(got["call"])
        reinvite = browser.wait_request("INVITE", 15)
        assert_webrtc(reinvite.body)
        browser.answer(reinvite, 200, chrome_answer(reinvite.body))
        browser.wait_request("ACK")
        # The desk phone's own re-INVITE is answered once the browser took the new offer.
        desk.wait("response", call=got["call"], method="INVITE")
    assert browser.bye().status == 200
    ended(desk, got["call"])


def test_a_queue_offers_its_caller_to_a_browser_agent_in_webrtc(rtc, browser, phones):
    """Story: 103, an agent of the support queue, works in a browser; a desk phone's caller
    waits with music (the media server, plain RTP), then the browser rings with a WebRTC
    offer, answers, and the caller is re-INVITEd to it in plain RTP."""
    set_snapshot(
        rtc,
        "acme.test",
        lambda s: s.setdefault("callcenter", {}).update(
            queues=[
                {
                    "number": "700",
                    "name": "Support",
                    "agents": [{"number": "103"}],
                    "ring_seconds": 10,
                    "wrap_up_seconds": 0,
                    "announce_seconds": 0,
                }
            ]
        ),
    )
    desk = phones("101")
    acc = register(desk, rtc, "101")
    call = dial(desk, acc, "700")
    desk.wait_state(call, "CONFIRMED")
    invite = browser.incoming(15)
    assert_webrtc(invite.body)
    browser.answer(invite, 200, chrome_answer(invite.body))
    browser.wait_request("ACK")
    wait_until(lambda: rtc.call(lambda: all(c.media is None for c in _live(rtc))), 10)
    assert_plain_rtp(desk.info(call)["remote_sdp"])
    desk.hangup(call)
    bye = browser.wait_request("BYE")
    browser.send(browser.reply(bye, 200))


def test_an_automatic_callback_rings_the_browser_in_webrtc(rtc, browser, phones):
    """Story: 103 works in a browser; 102 is on a call, so 103 arms a callback to it (*33102).
    When 102 is free the engine calls the browser first — a call it places itself, from the
    media server's plain offer, converted to WebRTC — then 102, and joins them: the browser
    is re-INVITEd in WebRTC, the desk phone talks plain RTP."""
    from tests.sip.test_desk_features import _pending, change

    change(rtc, "102", voicemail=None)
    first, busy = phones("101"), phones("102")
    acc = register(first, rtc, "101")
    register(busy, rtc, "102")
    talking = dial(first, acc, "102")
    busy_call = busy.incoming()["call"]
    busy.answer(busy_call, 200)
    first.wait_state(talking, "CONFIRMED")

    assert browser.invite("*33102", chrome_offer()).status == 200
    wait_until(lambda: _pending(rtc) == [("103", "102")])
    browser.bye()
    first.hangup(talking)
    ended(busy, busy_call)

    invite = browser.incoming(15)
    assert "<sip:102@acme.test>" in (invite.get("From") or "")
    assert_webrtc(invite.body)
    browser.answer(invite, 200, chrome_answer(invite.body))
    browser.wait_request("ACK")
    target = busy.incoming(15)
    busy.answer(target["call"], 200)
    busy.wait_state(target["call"], "CONFIRMED")
    joined = browser.wait_request("INVITE", 15)
    assert_webrtc(joined.body)
    browser.answer(joined, 200, chrome_answer(joined.body))
    browser.wait_request("ACK")
    assert_plain_rtp(busy.info(target["call"])["remote_sdp"])
    busy.hangup(target["call"])
    bye = browser.wait_request("BYE")
    browser.send(browser.reply(bye, 200))


class _SlowNg:
    """A UDP relay in front of the real rtpengine that holds every ng command ``delay``
    seconds: rtpengine busy, so the caller can give up while the engine waits for it."""

    def __init__(self, target: tuple[str, int], delay: float) -> None:
        import socket

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.target, self.delay, self.running = target, delay, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import socket
        import time

        upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        upstream.settimeout(2)
        while self.running:
            try:
                data, client = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            time.sleep(self.delay)
            upstream.sendto(data, self.target)
            try:
                self.sock.sendto(upstream.recv(65536), client)
            except TimeoutError:
                continue

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        self.sock.close()


def test_a_caller_who_gives_up_while_rtpengine_works_frees_its_transcoding(rtc, browser, phones):
    """Story: an Opus-only browser calls 102, which has a desk phone and a browser (a pairing
    per profile, the desk phone's transcoded); rtpengine is slow and the caller hangs up while
    the engine waits for it. Nothing of the call stays: its transcoding slot is free (the cap
    is 1: the next such call still gets through) and its rtpengine sessions are deleted."""
    from telephony.sip.media import RtpEngine

    desk = phones("102")
    register(desk, rtc, "102")
    other_tab = WsPhone(rtc, "102")
    assert other_tab.register().status == 200
    anchor = rtc.pbx.calls.anchor
    rtc.call(lambda: setattr(rtc.pbx.calls.config, "max_transcoded_calls", 1))
    direct = anchor.media
    slow = _SlowNg(direct.addr, 0.5)

    async def use(media: RtpEngine) -> None:
        await media.open()
        anchor.media = media

    try:
        rtc.run(use(RtpEngine("127.0.0.1", slow.port, timeout=5.0)))
        final = browser.invite_and_cancel("102", chrome_offer(opus_only=True), after=0.2)
        assert final.status == 487
        # The engine's offers finish (slowly) after the call ended: nothing may stay.
        wait_until(lambda: rtc.call(lambda: not anchor.transcoding and not _live(rtc)), 8)
    finally:
        rtc.run(use(direct))
        slow.close()
        other_tab.close()
    wait_until(lambda: not rtc.run(direct.command("list", limit=100)).get("calls"), 5)

    def answer_desk() -> None:
        inc = desk.incoming(15)
        desk.answer(inc["call"], 200)

    t = threading.Thread(target=answer_desk)
    t.start()
    assert browser.invite("102", chrome_offer(opus_only=True)).status == 200
    t.join(15)
    assert browser.bye().status == 200
