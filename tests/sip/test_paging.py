"""Paging and intercom end to end: pjsua2 phones, the engine, rtpengine and the media server on
loopback. The phones are not set to auto-answer: each test reads the auto-answer headers of the
INVITE its phone received and answers from the test, as the phone would by itself.

Stories: the receptionist pages a group and every free member's phone plays what she says
while she hears nothing back; a busy or DND member is left alone; a member that hangs up
leaves the page and the page ends with the pager; ``*46`` + extension is a two-way call the
phone answers by itself, as is an intercom group's first answer; another tenant cannot page
this one's group.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import redis

from telephony.media import codecs
from telephony.sip import contract
from telephony.sip.calls.destinations.paging import Page, auto_answer_headers
from telephony.sip.contract import CarrierSnapshot, TrunkSnapshot
from telephony.sip.message import Request, make_response, parse_address, parse_uri
from tests.media.phone import HEADER, peak_frequency, sdp_offer, tone
from tests.sip.callkit import (
    add_extension,
    connect,
    dial,
    ended,
    events,
    media_engine,
    register,
    set_snapshot,
    two_way_audio,
)
from tests.sip.carrier import publish_carriers
from tests.sip.engine_fixtures import EngineHandle, SipTestClient, wait_until, worker_redis_url
from tests.sip.pjphone import Phone

AUTO_ANSWER = (
    "Alert-Info: <http://127.0.0.1>;info=alert-autoanswer;delay=0",
    "Call-Info: <sip:acme.test>;answer-after=0",
    "Answer-Mode: Auto",
)


class RawPhone:
    """A member's phone as a raw SIP user agent on loopback (pjsua2 does not play a call the
    other side holds one-way): it registers, receives the page's INVITE, answers from its own
    RTP socket, reads the audio it is sent and hangs up, or is hung up."""

    def __init__(self, engine: EngineHandle, user: str, domain: str = "acme.test") -> None:
        self.user = user
        self.sip = SipTestClient(engine.host, engine.udp_port)
        assert self.sip.register(user, domain).status == 200
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind(("127.0.0.1", 0))
        self.tag = secrets.token_hex(4)
        self.invite: Request | None = None
        self.media_from: tuple[str, int] | None = None

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def expect(self, method: str, timeout: float = 10.0) -> Request:
        """The next request ``method`` the engine sends (anything else is skipped: INVITE
        retransmissions while waiting for the ACK...)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.user}: no {method}")
            try:
                msg = self.sip.recv(left)
            except TimeoutError:
                continue
            if isinstance(msg, Request) and msg.method == method:
                return msg

    def paged(self) -> Request:
        """The page's INVITE, with every auto-answer header."""
        self.invite = self.expect("INVITE")
        text = bytes(self.invite).decode()
        for header in AUTO_ANSWER:
            assert header in text, text
        return self.invite

    def answer(self, direction: str = "recvonly") -> None:
        assert self.invite is not None
        port = self.sip.local[1]
        body = sdp_offer(self.rtp.getsockname()[1], pts=(0, 101), direction=direction)
        headers = [
            ("Contact", f"<sip:{self.user}@127.0.0.1:{port}>"),
            ("Content-Type", "application/sdp"),
        ]
        ok = make_response(self.invite, 200, to_tag=self.tag, headers=headers, body=body)
        self.sip.send_raw(bytes(ok))
        self.expect("ACK")

    def audio(self, seconds: float) -> np.ndarray:
        """What arrives on the RTP socket over ``seconds``, decoded."""
        chunks = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.rtp.settimeout(left)
            try:
                data, self.media_from = self.rtp.recvfrom(2048)
            except TimeoutError:
                break
            pt = data[1] & 0x7F
            if pt in (codecs.PCMU, codecs.PCMA):
                chunks.append(codecs.decode(pt, data[12:]))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def talk(self, seconds: float) -> None:
        """Send a 500 Hz tone back to where the audio comes from (a phone that ignores its
        own recvonly): it must reach nobody."""
        assert self.media_from is not None
        pcm = tone(500, seconds)
        for i in range(len(pcm) // 160):
            header = HEADER.pack(0x80, 0, i, i * 160, 0x1234)
            self.rtp.sendto(
                header + codecs.encode(0, pcm[i * 160 : (i + 1) * 160]), self.media_from
            )
            time.sleep(0.02)

    def hangup(self) -> int:
        invite = self.invite
        assert invite is not None
        contact = invite.get("Contact")
        assert contact is not None
        host, port = self.sip.local
        bye = Request(
            "BYE",
            parse_address(contact).uri,
            [
                ("Via", f"SIP/2.0/UDP {host}:{port};branch=z9hG4bK{secrets.token_hex(8)};rport"),
                ("Max-Forwards", "70"),
                ("From", f"{invite.get('To')};tag={self.tag}"),
                ("To", str(invite.get("From"))),
                ("Call-ID", invite.call_id),
                ("CSeq", "1 BYE"),
            ],
        )
        return self.sip.request(bye).status

    def hung_up(self, timeout: float = 10.0) -> None:
        """The engine's BYE, answered 200."""
        bye = self.expect("BYE", timeout)
        self.sip.send_raw(bytes(make_response(bye, 200)))


@pytest.fixture
def raw_phones() -> Iterator[Callable[..., RawPhone]]:
    made: list[RawPhone] = []

    def make(engine: EngineHandle, user: str, domain: str = "acme.test") -> RawPhone:
        phone = RawPhone(engine, user, domain)
        made.append(phone)
        return phone

    yield make
    for phone in made:
        phone.close()


@pytest.fixture
def paging_pbx(pbx, tmp_path) -> Iterator[EngineHandle]:
    with media_engine(pbx, str(tmp_path)) as engine:
        for number in ("103", "104"):
            set_snapshot(engine, "acme.test", add_extension(number))
        yield engine


def group(engine: EngineHandle, members: list[str], *, number: str = "500", **fields: Any) -> None:
    entry = {"number": number, "name": "Floor", "members": members, **fields}
    set_snapshot(engine, "acme.test", lambda s: s.setdefault("team", {}).update(paging=[entry]))


def page_102_and_103(
    engine: EngineHandle, phones: Any, raw_phones: Any
) -> tuple[Phone, int, RawPhone, RawPhone]:
    """Group 500 of 102 and 103 (raw phones); 101 pages it and is answered at once. Returns
    101's phone and call, 102's and 103's phones."""
    group(engine, ["102", "103"])
    a = phones("101")
    acc = register(a, engine, "101")
    b, c = raw_phones(engine, "102"), raw_phones(engine, "103")
    ca = dial(a, acc, "500")
    a.wait_state(ca, "CONFIRMED")
    return a, ca, b, c


def pages(engine: EngineHandle) -> list[Page]:
    handler = engine.pbx.calls.router.handlers["paging"]
    return list(handler.pages.values())  # type: ignore[attr-defined]


def pages_calls(engine: EngineHandle) -> list[Any]:
    return [p.call for p in pages(engine)]


def listeners(engine: EngineHandle) -> Callable[[], set[str]]:
    """Who listens to the page now (read on the engine's loop)."""

    def read() -> set[str]:
        return {leg.user for p in pages(engine) for leg in p.listening}

    return lambda: engine.call(read)


def paged(phone: Phone) -> tuple[int, str]:
    """The page's INVITE as the phone received it: (its call, the message), with every
    auto-answer header and a sendonly offer."""
    incoming = phone.incoming()
    msg = incoming["msg"]
    for header in AUTO_ANSWER:
        assert header in msg, msg
    return incoming["call"], msg


def quiet(phone: Phone, call: int, seconds: float) -> int:
    """The loudest level ``phone`` received on ``call`` over ``seconds`` (polled)."""
    loudest = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        loudest = max(loudest, phone.level(call)[1])
        time.sleep(0.05)
    return loudest


def test_a_page_reaches_every_member_one_way_and_ends_with_the_pager(
    paging_pbx, phones, raw_phones
):
    """Story: 101 pages group 500 (102, 103): the PBX answers 101 at once; both phones are
    called with auto-answer and a sendonly offer; both hear 101's voice (a 1 kHz tone) while
    101 hears nothing of them; 101 hangs up and both phones are hung up."""
    engine = paging_pbx
    a, ca, b, c = page_102_and_103(engine, phones, raw_phones)
    for member in (b, c):
        body = member.paged().body
        assert b"a=sendonly" in body
        assert b"a=sendrecv" not in body
        member.answer()
    wait_until(lambda: listeners(engine)() == {"102", "103"}, 10)
    assert a.wait_audio(ca) > 10  # the beep: the page is open
    a.play(ca)
    for member in (b, c):
        heard = member.audio(1.0)
        assert len(heard) >= 30 * 160  # 1 s of 20 ms frames, a few late ones aside
        assert abs(peak_frequency(heard) - 1000) < 20
    time.sleep(0.3)  # the beep is long over (a quarter of a second)
    b.talk(1.0)  # phones that send anyway reach nobody: the pager hears silence
    assert quiet(a, ca, 0.5) <= 10
    a.hangup(ca)
    b.hung_up()
    c.hung_up()
    wait_until(lambda: engine.call(lambda: not pages(engine)), 10)


def test_busy_and_dnd_members_are_left_out(paging_pbx, phones, raw_phones):
    """Story: 102 and 103 are talking, 104 is in DND: a page of the group reaches nobody
    (480); once 104 leaves DND, the page reaches 104 and only 104."""
    engine = paging_pbx
    group(engine, ["102", "103", "104"])
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["104"].update(dnd=True))
    a, b, c = phones("101"), phones("102"), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    acc_c = register(c, engine, "103")
    d = raw_phones(engine, "104")
    talk_c, talk_b = connect(c, acc_c, b, "102")
    assert ended(a, dial(a, acc, "500")) == 480
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["104"].update(dnd=False))
    ca = dial(a, acc, "500")
    a.wait_state(ca, "CONFIRMED")
    d.paged()
    d.answer()
    wait_until(lambda: listeners(engine)() == {"104"}, 10)
    calls = engine.call(
        lambda: [(c.target, [leg.user for leg in c.forks]) for c in pages_calls(engine)]
    )
    assert calls == [("500", [])]  # nobody else was ever rung, nobody rings
    a.play(ca)
    assert abs(peak_frequency(d.audio(1.0)) - 1000) < 20
    a.hangup(ca)
    d.hung_up()
    c.hangup(talk_c)
    ended(b, talk_b)


def test_a_member_hanging_up_leaves_the_page_and_the_last_one_ends_it(
    paging_pbx, phones, raw_phones
):
    engine = paging_pbx
    a, ca, b, c = page_102_and_103(engine, phones, raw_phones)
    for member in (b, c):
        member.paged()
        member.answer()
    wait_until(lambda: listeners(engine)() == {"102", "103"}, 10)
    states = engine.pbx.calls.states
    busy = lambda n: engine.call(lambda: states.busy("t_acme", n))  # noqa: E731
    assert busy("102")  # BLF: a listener is on a call
    assert busy("103")
    assert b.hangup() == 200
    wait_until(lambda: listeners(engine)() == {"103"}, 10)
    b.audio(0.3)  # what was on its way to 102 before it left
    assert not busy("102")
    assert busy("103")
    a.play(ca)
    assert abs(peak_frequency(c.audio(1.0)) - 1000) < 20  # the page goes on for 103
    assert len(b.audio(0.3)) == 0  # and no longer reaches 102
    assert a.info(ca)["state"] == "CONFIRMED"
    assert c.hangup() == 200
    assert ended(a, ca) == 200  # nobody listens any more: the PBX ends the page


def test_intercom_code_is_a_two_way_call_with_auto_answer(paging_pbx, phones):
    """Story: 101 dials *46102: 102's phone is called with auto-answer (and a two-way offer),
    answers, and they talk both ways."""
    engine = paging_pbx
    a, b = phones("101"), phones("102")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc, "*46102")
    cb, invite = paged(b)
    assert "To: <sip:102@acme.test>" in invite
    assert "a=sendonly" not in invite
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    b.wait_state(cb, "CONFIRMED")
    two_way_audio(a, ca, b, cb)
    a.hangup(ca)
    ended(b, cb)


def test_intercom_to_a_dnd_or_unknown_extension_is_refused(paging_pbx, phones):
    engine = paging_pbx
    set_snapshot(engine, "acme.test", lambda s: s["extensions"]["102"].update(dnd=True))
    a = phones("101")
    acc = register(a, engine, "101")
    assert ended(a, dial(a, acc, "*46102")) == 486
    assert ended(a, dial(a, acc, "*46999")) == 404
    assert ended(a, dial(a, acc, "*46101")) == 404  # itself


def test_an_intercom_group_talks_with_the_first_to_answer(paging_pbx, phones):
    """Story: group 501 is duplex: 102 and 103 are called with auto-answer; 102 answers first
    and talks with 101 both ways; 103's call is cancelled."""
    engine = paging_pbx
    group(engine, ["102", "103"], number="501", duplex=True)
    a, b, c = phones("101"), phones("102"), phones("103")
    acc = register(a, engine, "101")
    register(b, engine, "102")
    register(c, engine, "103")
    ca = dial(a, acc, "501")
    cb, invite = paged(b)
    cc, _ = paged(c)
    assert "a=sendonly" not in invite
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    assert ended(c, cc) == 487
    two_way_audio(a, ca, b, cb)
    a.hangup(ca)
    ended(b, cb)


def test_another_tenant_cannot_page_this_tenants_group(paging_pbx, phones):
    """beta's 201 dials acme's paging number and acme's intercom target: neither exists for
    beta (404), and no acme phone is called."""
    engine = paging_pbx
    group(engine, ["102"])
    a, b = phones("201"), phones("102")
    acc = register(a, engine, "201", domain="beta.test")
    register(b, engine, "102")
    assert ended(a, dial(a, acc, "500", domain="beta.test")) == 404
    assert ended(a, dial(a, acc, "*46102", domain="beta.test")) == 404
    assert ended(a, dial(a, acc, "500", domain="acme.test")) == 404  # acme's domain from beta
    assert engine.call(lambda: pages(engine)) == []
    b.drain()
    assert not [e for e in b.events if e[0] == "incoming"]


def test_a_caller_from_a_trunk_cannot_page(paging_pbx, world, raw_phones):
    """A DID routed to the paging group (a misconfiguration, or on purpose): nobody outside
    the tenant's phones may speak through them (403), and no phone is called."""
    engine = paging_pbx
    group(engine, ["102"])
    member = raw_phones(engine, "102")
    with SipTestClient(engine.host, engine.udp_port) as carrier:
        did = "+4930555100"
        trunk = TrunkSnapshot.read(
            {"id": 1, "name": "Carrier", "kind": "ip", "addresses": ["127.0.0.1"],
             "source_port": carrier.local[1], "country": "DE",
             "tenants": [world.tenant_a.schema_name]}
        )  # fmt: skip
        assert trunk is not None
        snapshot = CarrierSnapshot(trunks={1: trunk}, numbers={did: "acme.test"})
        r = redis.Redis.from_url(worker_redis_url())
        try:
            publish_carriers(engine, snapshot)
            rule = {"id": 1, "number": did, "in_hours": {"kind": "paging", "target": "500"}}
            set_snapshot(
                engine, "acme.test", lambda s: s.setdefault("routing", {}).update(inbound=[rule])
            )
            lhost, lport = carrier.local
            invite = Request(
                "INVITE",
                parse_uri(f"sip:{did}@{engine.host}:{engine.udp_port}"),
                [
                    ("Via", f"SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK{secrets.token_hex(8)}"),
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:+4917012345678@carrier.example>;tag={secrets.token_hex(4)}"),
                    ("To", f"<sip:{did}@{engine.host}>"),
                    ("Call-ID", secrets.token_hex(8) + "@carrier"),
                    ("CSeq", "1 INVITE"),
                    ("Contact", f"<sip:carrier@{lhost}:{lport}>"),
                ],
            )
            assert carrier.request(invite, timeout=5).status == 403
        finally:
            r.delete(contract.key("", contract.CARRIERS), contract.key("", contract.TRUNK_LEADER))
            r.close()
    # Refused by the page itself (the trunk's call was taken and routed to the group).
    ended_events = [e for e in events(engine) if e["type"] == "call.ended"]
    assert [e["reason"] for e in ended_events] == ["page from outside"]
    assert engine.call(lambda: pages(engine)) == []
    with pytest.raises(AssertionError, match="no INVITE"):
        member.expect("INVITE", timeout=0.5)


def test_auto_answer_headers_carry_the_domain_as_a_uri():
    headers = dict(auto_answer_headers("acme.test"))
    assert headers["Call-Info"] == "<sip:acme.test>;answer-after=0"
    assert headers["Answer-Mode"] == "Auto"
    assert "info=alert-autoanswer" in headers["Alert-Info"]
