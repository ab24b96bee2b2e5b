"""RFC 4475 torture messages against the parser.

Each message is read byte-exact from ``shared/conformance/rfc4475`` beside the repository (CI
clones shared/ next to it). Valid messages must parse with the right values; invalid ones must be
rejected with a SipParseError carrying the status the engine answers with; the semantically odd
ones parse, and the test states what the engine does with them.
"""

from pathlib import Path

import pytest

from telephony.sip.message import (
    AbsoluteURI,
    Request,
    Response,
    SipParseError,
    SipURI,
    parse,
)

TORTURE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "rfc4475"


def load(name: str) -> bytes:
    return (TORTURE / f"{name}.dat").read_bytes()


# RFC 4475 3.1.1 (valid), 3.1.3/3.1.4/3.2 (valid syntax, semantics for the layers above).
VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq", "semiuri",
    "transports", "mpart01", "unreason", "noreason",
    "badbranch", "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "bcast", "zeromf",
    "cparam01", "cparam02", "regescrt", "sdp01", "inv2543", "baddate",
]  # fmt: skip

# RFC 4475 3.1.2 (invalid) and 3.1.4.1/3.1.4.8/3.1.4.9 (missing or repeated headers): status the
# engine answers a request with (responses are dropped).
INVALID = {
    "badinv01": 400,
    "clerr": 400,
    "ncl": 400,
    "scalar02": 400,
    "scalarlg": 400,  # a response: dropped
    "quotbal": 400,
    "ltgtruri": 400,
    "lwsruri": 400,
    "lwsstart": 400,
    "trws": 400,
    "escruri": 400,
    "regbadct": 400,
    "badaspec": 400,
    "baddn": 400,
    "badvers": 505,
    "mismatch01": 400,
    "mismatch02": 400,
    "bigcode": 400,  # a response: dropped
    "insuf": 400,
    "multi01": 400,
    "mcl01": 400,
    "test": 400,
}


def test_every_file_is_classified() -> None:
    names = {p.stem for p in TORTURE.glob("*.dat")}
    assert len(names) == 50
    assert names == set(VALID) | set(INVALID)


@pytest.mark.parametrize("name", VALID)
def test_valid_messages_parse_and_round_trip(name: str) -> None:
    msg = parse(load(name))
    again = parse(bytes(msg))
    assert again == msg


@pytest.mark.parametrize(("name", "status"), INVALID.items())
def test_invalid_messages_are_rejected(name: str, status: int) -> None:
    with pytest.raises(SipParseError) as info:
        parse(load(name))
    assert info.value.status == status


def test_wsinv_header_values() -> None:
    msg = parse(load("wsinv"))
    assert isinstance(msg, Request)
    assert msg.method == "INVITE"
    assert isinstance(msg.uri, SipURI)
    assert msg.uri.params == {"unknownparam": None}
    assert str(msg.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"'
    assert msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert (msg.cseq.seq, msg.cseq.method) == (9, "INVITE")
    vias = msg.via
    assert [(v.transport, v.host, v.branch) for v in vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.get("Subject") == ""
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert str(msg.routes[0].uri) == (
        "sip:services.example.com;lr;unknownwith=value;unknown-no-value"
    )
    (contact,) = msg.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert contact.q == 0.33
    assert len(msg.body) == 150
    assert msg.body.startswith(b"v=0\r\n")


def test_esc01_escaped_uris_are_unescaped() -> None:
    msg = parse(load("esc01"))
    assert isinstance(msg, Request)
    assert isinstance(msg.uri, SipURI)
    assert msg.uri.user == "sips:user@example.com"
    assert msg.uri.host == "example.net"
    assert isinstance(msg.to.uri, SipURI)
    assert msg.to.uri.user == "user"
    assert isinstance(msg.from_.uri, SipURI)
    assert msg.from_.uri.user == "I have spaces"
    contact = msg.contacts[0].uri
    assert isinstance(contact, SipURI)
    assert contact.user == "caller"
    assert contact.params == {"lr": None, "name": "value%41"}
    # re-escaped on the way out, and equal after a second parse
    assert b"sip:sips%3Auser%40example.com@example.net" in bytes(msg)


def test_escnull_keeps_nul_in_user() -> None:
    msg = parse(load("escnull"))
    users = [c.uri.user for c in msg.contacts if isinstance(c.uri, SipURI)]
    assert users == ["\x00", "\x00\x00"]


def test_esc02_percent_in_method_and_header_name_is_literal() -> None:
    msg = parse(load("esc02"))
    assert isinstance(msg, Request)
    assert msg.method == "RE%47IST%45R"  # an unknown method: the engine answers 501
    assert len(msg.contacts) == 2  # C%6Fntact is an extension header, not Contact
    assert msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"
    assert msg.to.display_name == "%Z%45"


def test_intmeth_unusual_tokens() -> None:
    msg = parse(load("intmeth"))
    assert isinstance(msg, Request)
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert isinstance(msg.uri, SipURI)
    assert msg.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert msg.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_.tag == "_token~1'+`*%!-."
    assert msg.top_via.branch == "z9hG4bK-.!%66*_+`'~"


def test_semiuri_and_lwsdisp_and_transports() -> None:
    semi = parse(load("semiuri"))
    assert isinstance(semi, Request)
    assert isinstance(semi.uri, SipURI)
    assert semi.uri.user == "user;par=u@example.net"
    assert semi.uri.params == {}
    assert semi.tokens("Accept")[-1] == "message/sipfrag"
    assert parse(load("lwsdisp")).from_.display_name == "caller"
    vias = parse(load("transports")).via
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_dblreq_trailing_octets_ignored_on_datagram() -> None:
    msg = parse(load("dblreq"))
    assert isinstance(msg, Request)
    assert msg.method == "REGISTER"
    assert msg.body == b""


def test_responses_with_odd_reason_phrases() -> None:
    unreason = parse(load("unreason"))
    assert isinstance(unreason, Response)
    assert unreason.status == 200
    assert unreason.reason.startswith("= 2**3 * 5**2 ")
    assert "простое" in unreason.reason
    noreason = parse(load("noreason"))
    assert isinstance(noreason, Response)
    assert (noreason.status, noreason.reason) == (100, "")


def test_semantic_cases_parse_for_the_layers_above() -> None:
    # unkscm/novelsc: opaque URIs; the engine answers 416 Unsupported URI Scheme.
    unkscm = parse(load("unkscm"))
    assert isinstance(unkscm, Request)
    assert isinstance(unkscm.uri, AbsoluteURI)
    assert unkscm.uri.scheme == "nobodyknowsthisscheme"
    novelsc = parse(load("novelsc"))
    assert isinstance(novelsc, Request)
    assert isinstance(novelsc.uri, AbsoluteURI)
    # unksm2: unknown schemes in To/From/Contact are fine.
    unksm2 = parse(load("unksm2"))
    assert isinstance(unksm2.to.uri, AbsoluteURI)
    assert str(unksm2.contacts[0].uri) == "name:John_Smith"
    # badbranch: a bare magic cookie is not an RFC 3261 branch; pre-3261 matching is used.
    assert not parse(load("badbranch")).top_via.is_rfc3261
    # inv2543: no branch, no Max-Forwards: accepted (RFC 2543 compatibility).
    inv = parse(load("inv2543"))
    assert inv.max_forwards is None
    assert inv.top_via.branch is None
    # bext01: the engine answers 420 Bad Extension listing these in Unsupported.
    assert parse(load("bext01")).tokens("Require") == [
        "nothingsupportsthis",
        "nothingsupportsthiseither",
    ]
    # zeromf: Max-Forwards 0 is legal; the engine (a UAS for OPTIONS) answers 200.
    assert parse(load("zeromf")).max_forwards == 0
    # regescrt: an escaped header inside <> in Contact is legal syntax (registrar's concern).
    reg = parse(load("regescrt"))
    uri = reg.contacts[0].uri
    assert isinstance(uri, SipURI)
    assert uri.headers == {"Route": "<sip:sip.example.com>"}
    # cparam01: without <> the parameter belongs to the Contact, not the URI.
    c1 = parse(load("cparam01")).contacts[0]
    assert c1.params == {"unknownparam": None}
    c2 = parse(load("cparam02")).contacts[0]
    assert isinstance(c2.uri, SipURI)
    assert c2.uri.params == {"unknownparam": None}
    # baddate: the Date header is not used by the engine, so a bad zone is ignored.
    assert parse(load("baddate")).get("Date") == "Fri, 01 Jan 2010 16:00:00 EST"


def test_insuf_error_keeps_headers_to_answer_400() -> None:
    with pytest.raises(SipParseError) as info:
        parse(load("insuf"))
    err = info.value
    assert err.is_request is True
    assert err.partial is not None
    assert ("CSeq", "193942 INVITE") in err.partial
    assert any(n == "Via" for n, _ in err.partial)
