"""Call pickup end to end: pjsua2 phones (and a raw UA for a BLF key's INVITE with Replaces),
the engine, rtpengine and the media server on loopback. A call ringing at 102 is answered by
103 with the directed pickup code, the group pickup code or a BLF key; the caller and the
picker then talk (audio both ways); nothing ringing is refused; another tenant reaches
nothing."""

from __future__ import annotations

import secrets
from typing import Any

from telephony.sip.message import Request, Response, parse_uri
from tests.sip import test_media_features as media_features
from tests.sip.callkit import add_extension, dial, ended, events, register, set_snapshot
from tests.sip.engine_fixtures import (
    SIP_PASSWORD,
    EngineHandle,
    SipTestClient,
    digest_authorization,
    wait_until,
)

# The media features' engine (rtpengine, the media server, short prompts and music).
media_dir = media_features.media_dir
media_pbx = media_features.media_pbx

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def _calls(engine: EngineHandle) -> list[Any]:
    return list(engine.pbx.calls.calls.by_id.values())


def ring_102(engine: EngineHandle, phones: Any) -> tuple[Any, int, Any, int]:
    """101 calls 102, whose phone rings. Returns (101's phone, its call, 102's, its call)."""
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "102")
    cb = b.incoming()["call"]
    b.answer(cb, 180)
    a.wait_state(ca, "EARLY")
    return a, ca, b, cb


def talk(p: Any, cp: int, q: Any, cq: int) -> None:
    """Audio flows both ways between two connected phones."""
    p.play(cp)
    q.play(cq)
    assert p.wait_audio(cp) > 10
    assert q.wait_audio(cq) > 10


def test_directed_pickup_by_code_answers_the_ringing_call(media_pbx, phones):
    """Story: 101 calls 102; 102's phone rings at an empty desk; 103 dials *97102 and talks
    to 101. 102's phone stops ringing (not a missed call); the picked call says who picked
    it up; 103's own call to the code ends cleanly and gives its call slot back."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, ca, b, cb = ring_102(engine, phones)
    c = phones("103")
    acc_c = register(c, engine, "103")
    cc = dial(c, acc_c, "*97102")
    c.wait_state(cc, "CONFIRMED")
    cancel = b.wait("request", call=cb, method="CANCEL")["msg"]
    assert "Call completed elsewhere" in cancel
    ended(b, cb)
    talk(a, ca, c, cc)
    [call] = engine.call(lambda: _calls(engine))  # the picker's own call is gone
    limits = engine.pbx.calls.limits
    assert engine.call(lambda: limits.counts.get("t_acme", 0)) == 1  # its slot given back
    assert (call.b.user, call.state) == ("103", "answered")
    picked = [e for e in events(engine, call.id) if e["type"] == "call.picked_up"]
    assert [(e["by"], e["extension"]) for e in picked] == [("103", "102")]
    own = [e for e in events(engine) if e.get("callee") == "*97102"]
    assert [e["type"] for e in events(engine, own[0]["call_id"])] == [
        "call.started",
        "call.ended",
    ]
    c.hangup(cc)
    assert ended(a, ca) == 200
    wait_until(lambda: engine.call(lambda: not _calls(engine)))
    assert engine.call(lambda: limits.counts.get("t_acme", 0)) == 0


def test_group_pickup_takes_the_call_of_a_group_member(media_pbx, phones):
    """Story: 102 and 103 are in the sales pickup group; 102 rings, 103 dials *98 and talks
    to the caller."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103", pickup_groups=["sales"]))
    set_snapshot(
        engine, "acme.test", lambda s: s["extensions"]["102"].update(pickup_groups=["sales"])
    )
    a, ca, b, cb = ring_102(engine, phones)
    c = phones("103")
    acc_c = register(c, engine, "103")
    cc = dial(c, acc_c, "*98")
    c.wait_state(cc, "CONFIRMED")
    ended(b, cb)
    talk(a, ca, c, cc)
    a.hangup(ca)
    assert ended(c, cc) == 200


def test_pickup_when_nothing_rings_is_refused(media_pbx, phones):
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    c = phones("103")
    acc = register(c, engine, "103")
    assert ended(c, dial(c, acc, "*97102")) == 480
    assert ended(c, dial(c, acc, "*98")) == 480  # 103 is in no pickup group
    wait_until(lambda: engine.call(lambda: not _calls(engine)))


def test_another_tenant_cannot_pick_up(media_pbx, phones):
    """102 of acme rings; beta's 201 dials *97102 and *98 in its own tenant: nothing rings
    there, and acme's call keeps ringing."""
    engine = media_pbx
    a, ca, b, cb = ring_102(engine, phones)
    x = phones("201")
    acc = register(x, engine, "201", domain="beta.test")
    assert ended(x, dial(x, acc, "*97102", domain="beta.test")) == 480
    ringing = engine.call(lambda: [c.state for c in _calls(engine)])
    assert ringing == ["ringing"]
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    a.hangup(ca)
    ended(b, cb)


# --- a BLF key: INVITE with Replaces -----------------------------------------------------


class RawPhone:
    """A raw UA that calls with digest authentication (and custom headers)."""

    def __init__(self, engine: EngineHandle, user: str, domain: str) -> None:
        self.client = SipTestClient(engine.host, engine.udp_port)
        self.user, self.domain = user, domain
        self.call_id = secrets.token_hex(8) + "@raw"
        self.tag = secrets.token_hex(4)
        self.to_tag = ""
        self.contact = ""

    def _headers(self, number: str, cseq: str, branch: str = "") -> list[tuple[str, str]]:
        lhost, lport = self.client.local[0], self.client.local[1]
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        to = f"<sip:{number}@{self.domain}>" + (f";tag={self.to_tag}" if self.to_tag else "")
        return [
            ("Via", f"SIP/2.0/UDP {lhost}:{lport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{self.domain}>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", cseq),
            ("Contact", f"<sip:{self.user}@{lhost}:{lport}>"),
        ]

    def invite(self, number: str, extra: list[tuple[str, str]], body: bytes = SDP) -> Response:
        """INVITE ``number``, answer the challenge; the final answer (a 2xx is ACKed)."""
        uri = f"sip:{number}@{self.domain}"
        auth: str | None = None
        for seq in (1, 2):
            branch = "z9hG4bK" + secrets.token_hex(8)
            headers = self._headers(number, f"{seq} INVITE", branch) + extra
            if body:
                headers.append(("Content-Type", "application/sdp"))
            if auth is not None:
                headers.append(("Proxy-Authorization", auth))
            resp = self.client.request(Request("INVITE", parse_uri(uri), headers, body), 10)
            if resp.status != 407:
                break
            ack = self._headers(number, f"{seq} ACK", branch)
            ack[3] = ("To", resp.get("To") or "")
            self.client.send_raw(bytes(Request("ACK", parse_uri(uri), ack)))
            challenge = resp.get("Proxy-Authenticate") or ""
            auth = digest_authorization(
                challenge, method="INVITE", uri=uri, username=self.user, password=SIP_PASSWORD
            )
        if 200 <= resp.status < 300:
            self.to_tag = resp.to.tag or ""
            self.contact = (resp.get("Contact") or "").strip("<>")
            ack_headers = self._headers(number, "2 ACK")
            self.client.send_raw(bytes(Request("ACK", parse_uri(self.contact), ack_headers)))
        return resp

    def bye(self, number: str) -> Response:
        req = Request("BYE", parse_uri(self.contact), self._headers(number, "3 BYE"))
        return self.client.request(req, 5)

    def close(self) -> None:
        self.client.close()


def _fork(engine: EngineHandle) -> Any:
    """The ringing fork of the only call, as 102's BLF sees it (DialogView)."""
    states = engine.pbx.calls.states
    views = wait_until(lambda: engine.call(lambda: states.of("t_acme", "102")))
    [view] = views
    assert view.state == "early"
    return view


def test_blf_pickup_by_invite_with_replaces(media_pbx, phones):
    """Story: 103's BLF key for 102 flashes; 103 presses it: its phone sends an INVITE with
    Replaces naming the ringing dialog the BLF NOTIFY showed; 103 gets the caller."""
    engine = media_pbx
    set_snapshot(engine, "acme.test", add_extension("103"))
    a, ca, b, cb = ring_102(engine, phones)
    view = _fork(engine)
    raw = RawPhone(engine, "103", "acme.test")
    try:
        replaces = f"{view.call_id};to-tag={view.local_tag};from-tag={view.remote_tag}"
        resp = raw.invite("102", [("Replaces", replaces)])
        assert resp.status == 200
        assert b"m=audio" in resp.body
        ended(b, cb)
        a.wait("request", call=ca, method="INVITE")  # re-offered towards 103
        a.wait_state(ca, "CONFIRMED")
        [call] = engine.call(lambda: _calls(engine))
        assert call.b.user == "103"
        assert any(
            e["type"] == "call.picked_up" and e["by"] == "103" for e in events(engine, call.id)
        )
        assert raw.bye("102").status == 200
        assert ended(a, ca) == 200
    finally:
        raw.close()


def test_replaces_of_another_tenant_or_no_dialog_is_481(media_pbx, phones):
    """beta's 201 names acme's ringing dialog (as if it had seen acme's BLF): 481, and acme's
    call keeps ringing; a dialog that does not exist: 481; a pickup INVITE without an offer
    (nothing to answer the caller with): 488, before anything changes."""
    engine = media_pbx
    a, ca, b, cb = ring_102(engine, phones)
    view = _fork(engine)
    raw = RawPhone(engine, "201", "beta.test")
    other = RawPhone(engine, "101", "acme.test")
    try:
        replaces = f"{view.call_id};to-tag={view.local_tag};from-tag={view.remote_tag}"
        assert raw.invite("202", [("Replaces", replaces)]).status == 481
        assert other.invite("102", [("Replaces", "nothing@x;to-tag=1;from-tag=2")]).status == 481
        late = RawPhone(engine, "101", "acme.test")
        try:
            assert late.invite("102", [("Replaces", replaces)], body=b"").status == 488
        finally:
            late.close()
        assert engine.call(lambda: [c.state for c in _calls(engine)]) == ["ringing"]
    finally:
        raw.close()
        other.close()
    a.hangup(ca)
    ended(b, cb)
