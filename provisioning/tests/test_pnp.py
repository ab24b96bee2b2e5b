"""SIP PnP responder over real UDP on loopback: SUBSCRIBE in, 200 + NOTIFY with the URL out."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator

import pytest

from provisioning.vendors.pnp import (
    PNP_MULTICAST_GROUP,
    PnpResponder,
    PnpResponderThread,
    SipMessage,
    extract_mac,
    parse_event,
    parse_sip,
)

KNOWN = {"001565a1b2c3", "000413a1b2c3", "0c383e123456", "000b82123456"}
URL = "https://pbx.example.com/provision/Zx9aQ/"
YEALINK_EVENT = (
    'ua-profile;profile-type="device";vendor="Yealink";model="T54W";version="96.86.0.70"'
)


class Provisioner:
    """The ``url_for``/``on_result`` callbacks the Django side supplies, recording calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, tuple[str, int]]] = []
        self.results: list[tuple[str, int | None]] = []
        self.result_seen = threading.Event()

    def url_for(self, mac: str, vendor: str, model: str, source: tuple[str, int]) -> str | None:
        self.calls.append((mac, vendor, model, source))
        if mac == "001565deadbe":
            raise RuntimeError("database down")
        return URL if mac in KNOWN else None

    def on_result(self, mac: str, status: int | None) -> None:
        self.results.append((mac, status))
        self.result_seen.set()


@pytest.fixture
def provisioner() -> Provisioner:
    return Provisioner()


def run(responder: PnpResponder) -> Iterator[tuple[str, int]]:
    thread = PnpResponderThread(responder)
    address = thread.start()
    yield address
    thread.stop()


@pytest.fixture
def pnp(provisioner: Provisioner) -> Iterator[tuple[str, int]]:
    responder = PnpResponder(
        provisioner.url_for, "127.0.0.1", 0, on_result=provisioner.on_result, t1=0.1, timer_f=0.8
    )
    yield from run(responder)


@pytest.fixture
def phone() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(2)
    yield sock
    sock.close()


def subscribe(
    phone: socket.socket,
    *,
    user: str = "MAC%3a001565a1b2c3",
    event: str = YEALINK_EVENT,
    rport: bool = False,
    via_port: int | None = None,
) -> tuple[bytes, str, str]:
    host, port = phone.getsockname()
    branch = "z9hG4bK" + uuid.uuid4().hex[:12]
    call_id = uuid.uuid4().hex
    via = f"SIP/2.0/UDP {host}:{via_port or port};branch={branch}" + (";rport" if rport else "")
    message = (
        f"SUBSCRIBE sip:{user}@224.0.1.75 SIP/2.0\r\n"
        f"Via: {via}\r\n"
        f"From: <sip:{user}@224.0.1.75>;tag=ph0ne\r\n"
        f"To: <sip:{user}@224.0.1.75>\r\n"
        f"Call-ID: {call_id}@{host}\r\n"
        "CSeq: 1 SUBSCRIBE\r\n"
        f"Contact: <sip:{user}@{host}:{port}>\r\n"
        "Max-Forwards: 70\r\n"
        "User-Agent: Yealink SIP-T54W 96.86.0.70\r\n"
        "Expires: 0\r\n"
        f"Event: {event}\r\n"
        "Accept: application/url\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    return message, branch, f"{call_id}@{host}"


def receive(phone: socket.socket) -> SipMessage:
    data, _ = phone.recvfrom(65535)
    message = parse_sip(data)
    assert message is not None, data
    return message


def answer(
    phone: socket.socket, notify: SipMessage, target: tuple[str, int], status: int = 200
) -> None:
    lines = [f"SIP/2.0 {status} OK"]
    lines += [f"Via: {v}" for v in notify.get_all("via")]
    for name in ("From", "To", "Call-ID", "CSeq"):
        lines.append(f"{name}: {notify.get(name)}")
    phone.sendto(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), target)


def test_subscribe_gets_200_then_notify_with_url(
    pnp: tuple[str, int], phone: socket.socket, provisioner: Provisioner
) -> None:
    request, branch, call_id = subscribe(phone)
    phone.sendto(request, pnp)

    ok = receive(phone)
    assert ok.status == 200
    assert branch in (ok.get("via") or "")
    assert ok.get("call-id") == call_id
    assert ok.get("cseq") == "1 SUBSCRIBE"
    assert "tag=" in (ok.get("to") or "")
    assert ok.get("expires") == "0"

    notify = receive(phone)
    assert notify.method == "NOTIFY"
    assert notify.uri == f"sip:MAC%3a001565a1b2c3@127.0.0.1:{phone.getsockname()[1]}"
    assert (notify.get("event") or "").startswith("ua-profile")
    assert notify.get("content-type") == "application/url"
    assert notify.body.decode() == URL
    assert notify.get("call-id") == call_id
    assert notify.get("to") == "<sip:MAC%3a001565a1b2c3@224.0.1.75>;tag=ph0ne"
    assert notify.get("from") == ok.get("to")  # our tag from the 200 OK
    assert (notify.get("subscription-state") or "").startswith("terminated")

    answer(phone, notify, pnp)
    assert provisioner.result_seen.wait(2)
    assert provisioner.results == [("001565a1b2c3", 200)]
    assert provisioner.calls == [
        ("001565a1b2c3", "Yealink", "T54W", ("127.0.0.1", phone.getsockname()[1]))
    ]


def test_notify_is_retransmitted_until_answered(
    pnp: tuple[str, int], phone: socket.socket, provisioner: Provisioner
) -> None:
    phone.sendto(subscribe(phone)[0], pnp)
    assert receive(phone).status == 200
    first = receive(phone)
    second = receive(phone)  # no answer from us yet: the NOTIFY comes again
    assert second.method == "NOTIFY"
    assert second.get("via") == first.get("via")  # same transaction (same branch)
    answer(phone, second, pnp)
    assert provisioner.result_seen.wait(2)
    assert provisioner.results == [("001565a1b2c3", 200)]


def test_unanswered_notify_gives_up(
    pnp: tuple[str, int], phone: socket.socket, provisioner: Provisioner
) -> None:
    phone.sendto(subscribe(phone)[0], pnp)
    assert provisioner.result_seen.wait(3)
    assert provisioner.results == [("001565a1b2c3", None)]


def test_unknown_mac_gets_404_and_no_notify(
    pnp: tuple[str, int], phone: socket.socket, provisioner: Provisioner
) -> None:
    phone.sendto(subscribe(phone, user="MAC%3a001565000099")[0], pnp)
    reply = receive(phone)
    assert reply.status == 404
    assert provisioner.calls[0][0] == "001565000099"
    phone.settimeout(0.5)
    with pytest.raises(TimeoutError):
        phone.recvfrom(65535)


def test_failing_callback_gets_500(pnp: tuple[str, int], phone: socket.socket) -> None:
    phone.sendto(subscribe(phone, user="MAC%3a001565deadbe")[0], pnp)
    assert receive(phone).status == 500


def test_garbage_is_ignored_and_server_answers_next(
    pnp: tuple[str, int], phone: socket.socket, provisioner: Provisioner
) -> None:
    for junk in (
        b"\x00\xff\xfe garbage",
        b"hello world",
        b"SUBSCRIBE sip:x SIP/2.0\r\nno colon here\r\n\r\n",
        b"OPTIONS sip:224.0.1.75 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:1\r\n\r\n",
        b"X" * 20000,
    ):
        phone.sendto(junk, pnp)
    phone.sendto(subscribe(phone)[0], pnp)
    assert receive(phone).status == 200  # the first thing we hear is the real answer
    assert receive(phone).method == "NOTIFY"
    assert len(provisioner.calls) == 1


def test_wrong_event_package_gets_489(pnp: tuple[str, int], phone: socket.socket) -> None:
    phone.sendto(subscribe(phone, event="presence")[0], pnp)
    assert receive(phone).status == 489


def test_subscribe_without_mac_gets_400(pnp: tuple[str, int], phone: socket.socket) -> None:
    phone.sendto(subscribe(phone, user="MAC303")[0], pnp)
    assert receive(phone).status == 400


def test_rport_reply_goes_to_source_port(pnp: tuple[str, int], phone: socket.socket) -> None:
    # Via names port 9 (behind NAT the phone cannot know its public port); with rport the
    # answer must come back to the port the request was sent from.
    phone.sendto(subscribe(phone, rport=True, via_port=9)[0], pnp)
    assert receive(phone).status == 200


@pytest.mark.parametrize(
    ("user", "event", "mac"),
    [
        (
            "MAC%3a000413a1b2c3",
            'ua-profile;profile-type="device";vendor="snom";model="snomD785"',
            "000413a1b2c3",
        ),
        (
            "0c383e123456",
            'ua-profile;profile-type="device";vendor="Fanvil";model="X6U"',
            "0c383e123456",
        ),
        (
            "MAC%3A000B82123456",
            'ua-profile;profile-type="device";vendor="Grandstream";model="GXP2170"',
            "000b82123456",
        ),
        (
            "anonymous",
            'ua-profile;profile-type="device";vendor="Grandstream";mac="00:0B:82:12:34:56"',
            "000b82123456",
        ),
    ],
)
def test_vendor_variants(
    pnp: tuple[str, int],
    phone: socket.socket,
    provisioner: Provisioner,
    user: str,
    event: str,
    mac: str,
) -> None:
    phone.sendto(subscribe(phone, user=user, event=event)[0], pnp)
    assert receive(phone).status == 200
    assert receive(phone).body.decode() == URL
    assert provisioner.calls[0][0] == mac


def test_multicast_group_on_loopback(provisioner: Provisioner, phone: socket.socket) -> None:
    # The production shape: the responder joins 224.0.1.75 and the phone multicasts.
    responder = PnpResponder(
        provisioner.url_for, PNP_MULTICAST_GROUP, 0, interface="127.0.0.1", t1=0.1, timer_f=0.5
    )
    assert responder.multicast
    for address in run(responder):
        assert address[0] == PNP_MULTICAST_GROUP
        phone.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
        phone.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        phone.sendto(subscribe(phone)[0], address)
        ok_data, ok_source = phone.recvfrom(65535)
        ok = parse_sip(ok_data)
        assert ok is not None
        assert ok.status == 200
        assert ok_source[0] == "127.0.0.1"  # unicast answer, not from the group address
        notify = receive(phone)
        assert notify.body.decode() == URL
        contact = notify.get("contact") or ""
        assert contact.startswith("<sip:127.0.0.1:")


# --- parsing helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "params", "mac"),
    [
        ("<sip:MAC%3a0015651234ab@224.0.1.75>;tag=1", {}, "0015651234ab"),
        ("<sip:MAC%3A0015651234AB@224.0.1.75>", {}, "0015651234ab"),
        ("<sip:MAC:0015651234ab@224.0.1.75>", {}, "0015651234ab"),
        ('"Phone" <sip:00-15-65-12-34-ab@224.0.1.75>', {}, "0015651234ab"),
        ("sip:0015651234ab@224.0.1.75;tag=abc", {}, "0015651234ab"),
        ("<sip:MAC0015651234ab@224.0.1.75>", {}, "0015651234ab"),
        ("<sip:anonymous@224.0.1.75>", {"mac": "0015651234ab"}, "0015651234ab"),
        ("<sip:MAC303@224.0.1.75>", {}, None),
        ("<sip:MAC%3affffffffffff@224.0.1.75>", {}, None),
        ("garbage", {}, None),
    ],
)
def test_extract_mac(header: str, params: dict[str, str], mac: str | None) -> None:
    assert extract_mac(header, params) == mac


def test_parse_event() -> None:
    package, params = parse_event(
        'ua-profile;profile-type="device";vendor="OEM";model="X 1";version="1.2";effective-by=3600'
    )
    assert package == "ua-profile"
    assert params == {
        "profile-type": "device",
        "vendor": "OEM",
        "model": "X 1",
        "version": "1.2",
        "effective-by": "3600",
    }


def test_parse_sip_compact_headers_and_body() -> None:
    message = parse_sip(
        b"NOTIFY sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bKx\r\no: ua-profile\r\n"
        b"c: application/url\r\nl: 5\r\n\r\nhttp://extra"
    )
    assert message is not None
    assert message.method == "NOTIFY"
    assert message.get("Event") == "ua-profile"
    assert message.body == b"http:"
    assert parse_sip(b"SIP/2.0 abc OK\r\n\r\n") is None
    assert parse_sip(b"\xff\xfe") is None
