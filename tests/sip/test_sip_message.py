"""Parser/serialiser unit and property tests."""

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.sip.message import (
    Address,
    Request,
    Response,
    SipParseError,
    SipURI,
    TelURI,
    Via,
    frame_length,
    make_response,
    parse,
    parse_address,
    parse_uri,
)

REGISTER = (
    b"REGISTER sip:pbx.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK776asdhds;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'f: "Alice" <sip:1001@pbx.example.com>;tag=1928301774\r\n'
    b"t: <sip:1001@pbx.example.com>\r\n"
    b"i: a84b4c76e66710@192.0.2.10\r\n"
    b"CSeq: 314159 REGISTER\r\n"
    b"m: <sip:1001@192.0.2.10:5060;transport=udp>;expires=3600, <sip:1001@[::1]>;q=0.5\r\n"
    b'Authorization: Digest username="1001", realm="x", nonce="a,b"\r\n'
    b"l: 0\r\n\r\n"
)


def test_register_compact_forms_and_lists() -> None:
    msg = parse(REGISTER)
    assert isinstance(msg, Request)
    via = msg.top_via
    assert (via.transport, via.host, via.port, via.wants_rport, via.rport) == (
        "UDP",
        "2001:db8::9",
        5062,
        True,
        None,
    )
    assert msg.from_.display_name == "Alice"
    assert msg.call_id == "a84b4c76e66710@192.0.2.10"
    assert [c.expires for c in msg.contacts] == [3600, None]
    second = msg.contacts[1].uri
    assert isinstance(second, SipURI)
    assert second.host == "::1"
    assert str(second) == "sip:1001@[::1]"
    # commas inside an auth header are not list separators
    assert msg.get("authorization") == 'Digest username="1001", realm="x", nonce="a,b"'
    assert [n for n, _ in msg.headers].count("Contact") == 2


def test_uri_forms() -> None:
    uri = parse_uri("sips:alice:secret@example.com:5061;transport=tls;lr?Subject=hi%20there&x=y")
    assert isinstance(uri, SipURI)
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        "sips",
        "alice",
        "secret",
        "example.com",
        5061,
    )
    assert uri.transport == "tls"
    assert uri.lr
    assert uri.headers == {"Subject": "hi there", "x": "y"}
    assert parse_uri(str(uri)) == uri
    tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com")
    assert isinstance(tel, TelURI)
    assert tel.number == "+1-201-555-0123"
    for bad in ["sip:", "sip:host:99999", "sip:a@[::1", "sip:ho st", "sip:host%zz", "1sip:x"]:
        with pytest.raises(SipParseError):
            parse_uri(bad)


def test_address_forms() -> None:
    a = parse_address('"A \\"q\\" B" <sip:a@b>;tag=x;expires=60')
    assert a.display_name == 'A "q" B'
    assert a.tag == "x"
    assert a.expires == 60
    assert parse_address(str(a)) == a
    b = parse_address("sip:a@b;tag=1")
    assert b.tag == "1"
    assert isinstance(b.uri, SipURI)
    assert b.uri.params == {}
    for bad in ['"open <sip:a@b>', "< sip:a@b >", "Bell, A <sip:a@b>", "sip:a@b?x=y", "<sip:a@b"]:
        with pytest.raises(SipParseError):
            parse_address(bad)


def test_make_response_copies_headers_and_adds_tag() -> None:
    req = parse(REGISTER)
    assert isinstance(req, Request)
    resp = make_response(req, 200, to_tag="abc", headers=[("Expires", "60")])
    assert resp.reason == "OK"
    assert resp.get_all("Via") == req.get_all("Via")
    assert resp.to.tag == "abc"
    assert resp.cseq == req.cseq
    assert resp.call_id == req.call_id
    assert resp.get("Expires") == "60"
    assert parse(bytes(resp)) == resp
    assert make_response(req, 100, to_tag="abc").to.tag is None


def test_content_length_rules() -> None:
    body = b"hello"
    base = REGISTER.replace(b"l: 0\r\n", b"")
    # datagram without Content-Length: the body is the rest
    assert parse(base + body).body == body
    # stream without Content-Length: error
    with pytest.raises(SipParseError):
        parse(base + body, stream=True)
    # smaller: truncated on datagram
    with_cl = base.replace(b"\r\n\r\n", b"\r\nContent-Length: 2\r\n\r\n")
    assert parse(with_cl + body).body == b"he"
    with pytest.raises(SipParseError):
        parse(with_cl + body, stream=True)
    # larger: error
    big = base.replace(b"\r\n\r\n", b"\r\nContent-Length: 10\r\n\r\n")
    with pytest.raises(SipParseError):
        parse(big + body)


def test_limits() -> None:
    with pytest.raises(SipParseError) as info:
        parse(REGISTER + b"x" * 70000)
    assert info.value.status == 413
    many = REGISTER.replace(b"l: 0\r\n", b"X-A: 1\r\n" * 101 + b"l: 0\r\n")
    with pytest.raises(SipParseError):
        parse(many)
    assert parse(many, max_headers=200).get("X-A") == "1"


def test_frame_length() -> None:
    assert frame_length(REGISTER) == len(REGISTER)
    assert frame_length(REGISTER[:-5]) is None
    assert frame_length(REGISTER + b"INVITE") == len(REGISTER)
    with pytest.raises(SipParseError):
        frame_length(REGISTER.replace(b"l: 0\r\n", b""))


def test_header_mutators() -> None:
    msg = parse(REGISTER)
    top = msg.top_via.copy()
    top.params["received"] = "192.0.2.1"
    msg.replace_first("Via", str(top))
    assert msg.top_via.received == "192.0.2.1"
    msg.prepend("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp")
    assert msg.top_via.host == "proxy.example.com"
    msg.remove_first("Via")
    assert msg.top_via.received == "192.0.2.1"
    msg.set("Max-Forwards", "69")
    assert msg.max_forwards == 69


# ------------------------------------------------------------------ property tests

token = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
hostname = st.from_regex(r"[a-z][a-z0-9\-]{0,10}(\.[a-z][a-z0-9]{0,6}){0,2}", fullmatch=True)
host = st.one_of(hostname, st.ip_addresses().map(str))
port = st.one_of(st.none(), st.integers(1, 65535))
plain = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=16)
pname = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=8)


@st.composite
def sip_uris(draw: st.DrawFn) -> SipURI:
    user = draw(st.one_of(st.none(), st.text(min_size=1, max_size=12)))
    return SipURI(
        host=draw(host),
        user=user,
        password=draw(st.one_of(st.none(), st.text(max_size=6))) if user else None,
        port=draw(port),
        params=draw(st.dictionaries(pname, st.one_of(st.none(), plain.filter(bool)), max_size=3)),
        headers=draw(st.dictionaries(pname, plain, max_size=2)),
        scheme=draw(st.sampled_from(["sip", "sips"])),
    )


@st.composite
def addresses(draw: st.DrawFn, uri_st: st.SearchStrategy[SipURI] | None = None) -> Address:
    uri = draw(uri_st if uri_st is not None else sip_uris())
    display = draw(st.one_of(st.none(), plain.filter(lambda s: s.strip() == s and bool(s))))
    params = draw(st.dictionaries(pname, st.one_of(st.none(), token), max_size=3))
    return Address(uri, display, params)


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = {"branch": "z9hG4bK" + draw(token)}
    params.update(draw(st.dictionaries(pname, st.one_of(st.none(), token), max_size=2)))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS"])), draw(host), draw(port), params
    )


extra_value = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=20)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    method = draw(st.sampled_from(["INVITE", "REGISTER", "OPTIONS", "BYE", "X-FOO"]))
    headers = [("Via", str(v)) for v in draw(st.lists(vias(), min_size=1, max_size=3))]
    headers += [
        ("From", str(draw(addresses()))),
        ("To", str(draw(addresses()))),
        ("Call-ID", draw(token)),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
        ("Max-Forwards", str(draw(st.integers(0, 255)))),
    ]
    headers += [("Contact", str(a)) for a in draw(st.lists(addresses(), max_size=2))]
    headers += [("X-" + draw(token), draw(extra_value)) for _ in range(draw(st.integers(0, 3)))]
    body = draw(st.binary(max_size=64))
    if draw(st.booleans()):
        return Request(method, draw(sip_uris()).copy(), headers, body)
    return Response(draw(st.integers(100, 699)), draw(plain.map(str.strip)), headers, body)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages())
def test_round_trip(msg: Request | Response) -> None:
    if isinstance(msg, Request):
        msg.uri.headers.clear()  # not allowed in a Request-URI
    assert parse(bytes(msg)) == msg
    assert parse(bytes(msg), stream=True) == msg


@settings(max_examples=500)
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_sip_parse_error(data: bytes) -> None:
    with contextlib.suppress(SipParseError):
        parse(data)


@settings(max_examples=500)
@given(st.data())
def test_mutated_messages_only_raise_sip_parse_error(data: st.DataObject) -> None:
    raw = bytearray(REGISTER)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    try:
        msg = parse(bytes(raw))
    except SipParseError:
        return
    # whatever parsed must serialise and parse again
    bytes(msg)


INJECTION = "Inj\r\nX-Injected: yes\r\nCall-Info: <sip:x>;answer-after=0"


def test_display_name_is_quoted_escaped_and_kept_on_one_line() -> None:
    """A display name with quotes, backslashes and CR/LF stays one quoted-string (RFC 3261
    25.1) on the From line: no header can be injected through it."""
    addr = Address(SipURI("acme.test", user="101"), f'Evil "Q" \\ {INJECTION}', {"tag": "t1"})
    req = Request(
        "INVITE",
        parse_uri("sip:102@acme.test"),
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
            ("From", str(addr)),
            ("To", "<sip:102@acme.test>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 INVITE"),
        ],
    )
    wire = bytes(req)
    lines = wire.split(b"\r\n")
    assert not any(line.startswith((b"X-Injected", b"Call-Info")) for line in lines)
    assert b"\r" not in wire.replace(b"\r\n", b"")
    assert b"\n" not in wire.replace(b"\r\n", b"")
    back = parse(wire)
    assert (
        back.from_.display_name
        == 'Evil "Q" \\ Inj X-Injected: yes Call-Info: <sip:x>;answer-after=0'
    )
    assert back.from_.tag == "t1"
    assert back.get("X-Injected") is None
    assert back.get("Call-Info") is None


def test_serialiser_never_writes_a_cr_or_lf_inside_a_header() -> None:
    """The last resort: whatever a caller put in a raw header value or a URI user part, the
    wire has one line per header."""
    req = Request(
        "INVITE",
        SipURI("acme.test", user="10\r\n1"),
        [
            ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKx"),
            ("From", f'"{INJECTION}" <sip:101@acme.test>;tag=a'),
            ("To", "<sip:102@acme.test>"),
            ("Call-ID", "c1"),
            ("CSeq", "1 INVITE"),
            ("Subject", "one\rtwo\nthree\x00"),
        ],
    )
    wire = bytes(req)
    assert wire.startswith(b"INVITE sip:10%0D%0A1@acme.test SIP/2.0\r\n")
    back = parse(wire)
    assert [n for n, _ in back.headers] == [
        "Via", "From", "To", "Call-ID", "CSeq", "Subject"
    ]  # fmt: skip
    assert back.get("Subject") == "one two three"
