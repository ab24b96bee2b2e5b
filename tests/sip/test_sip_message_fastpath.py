"""The parser's fast paths give exactly what the general parser gives.

``telephony.sip.message`` recognises the usual shapes of URIs, addresses, Vias, CSeqs and header
blocks with one compiled regex or a short loop, and hands everything else to the general code
(``_parse_*_slow``, ``_slow_headers``). These tests feed both the same input — generated
structured values, the same values mutated character by character, and every RFC 4475 torture
message — and require equal results, or the same SipParseError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telephony.sip import message as m
from tests.sip.test_sip_message import REGISTER, addresses, messages, sip_uris, vias

TORTURE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "rfc4475"

# Characters that matter to the grammar, so that mutations hit the interesting cases.
SPECIAL = "<>\";:@=,?%\\ \t/[]&+$!~*().-_`'#\r\n0123456789aZ"


def outcome(fn: Callable[[str], Any], value: str) -> tuple[str, Any]:
    try:
        return "ok", fn(value)
    except m.SipParseError as exc:
        return "error", (exc.reason, exc.status)


def same(fast: Callable[[str], Any], slow: Callable[[str], Any], value: str) -> None:
    a, b = outcome(fast, value), outcome(slow, value)
    if a[0] == "error" and b[0] == "error":
        return  # both reject it (the fast path defers to the slow one, so the reason is its own)
    assert a == b, value
    if a[0] == "ok":
        assert str(a[1]) == str(b[1]), value  # serialises the same way, too


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[str]) -> str:
    s = list(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "insert", "delete"]))
        i = draw(st.integers(0, max(0, len(s) - 1)))
        c = draw(st.sampled_from(SPECIAL))
        if op == "replace" and s:
            s[i] = c
        elif op == "insert":
            s.insert(i, c)
        elif s:
            del s[i]
    return "".join(s)


uri_text = sip_uris().map(str)
address_text = st.one_of(
    addresses().map(str),
    st.sampled_from(
        [
            "<sip:100000@bench.test>;tag=12345SIPpTag001",
            '"Alice" <sip:1001@pbx.example.com:5060;transport=udp>;expires=60',
            '<sip:1001@10.0.0.1;ob>;+sip.instance="<urn:uuid:0000-1>";reg-id=1',
            "<SIPS:a@B.example:05061;LR;maddr=x>;Tag=Q",
            '"" <sip:x@y>',
        ]
    ),
)
via_text = st.one_of(
    vias().map(str),
    st.sampled_from(
        [
            "SIP/2.0/UDP 127.0.0.1:5071;branch=z9hG4bK-1-0;rport",
            "SIP/2.0/udp host.example;received=192.0.2.1;rport=5060",
            "SIP/2.0/TCP 10.0.0.1:0;branch=x",
            "SIP/2.0/UDP 10.0.0.1:70000;branch=x",
            'SIP/2.0/WSS abc.invalid;branch=z9hG4bK1;alias;x="a;b"',
        ]
    ),
)
cseq_text = st.one_of(
    st.builds(
        lambda n, meth: f"{n} {meth}", st.integers(0, 2**32), st.sampled_from(["INVITE", "x"])
    ),
    st.sampled_from(["2147483648 INVITE", "01 ACK", "1  BYE", "1 B-YE"]),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(uri_text, mutated(uri_text)))
def test_uri_fast_path_matches_general_parser(value: str) -> None:
    same(m.parse_uri, m._parse_uri_slow, value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(address_text, mutated(address_text)))
def test_address_fast_path_matches_general_parser(value: str) -> None:
    same(m.parse_address, m._parse_address_slow, value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(via_text, mutated(via_text)))
def test_via_fast_path_matches_general_parser(value: str) -> None:
    same(m.parse_via, m._parse_via_slow, value)


@settings(max_examples=200)
@given(st.one_of(cseq_text, mutated(cseq_text)))
def test_cseq_fast_path_matches_general_parser(value: str) -> None:
    same(m.parse_cseq, m._parse_cseq_slow, value)


# ------------------------------------------------------------------ whole messages


@contextmanager
def general_parser_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Route every fast path of the module to its general counterpart."""
    with monkeypatch.context() as mp:
        mp.setattr(m, "parse_uri", m._parse_uri_slow)
        mp.setattr(m, "parse_address", m._parse_address_slow)
        mp.setattr(m, "parse_via", m._parse_via_slow)
        mp.setattr(m, "parse_cseq", m._parse_cseq_slow)
        mp.setattr(m, "_fast_headers", lambda lines, mh: m._slow_headers(lines, mh, True))
        yield


def parse_outcome(data: bytes) -> tuple[str, Any]:
    try:
        msg = m.parse(data)
    except m.SipParseError as exc:
        return "error", (exc.reason, exc.status, exc.partial, exc.is_request)
    return "ok", (type(msg), msg, bytes(msg), dict(msg._cache))


def compare(data: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = parse_outcome(data)
    with general_parser_only(monkeypatch):
        slow = parse_outcome(data)
    assert fast == slow, data


def test_torture_messages_parse_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(TORTURE.glob("*.dat"))
    assert len(files) == 50
    for path in files:
        compare(path.read_bytes(), monkeypatch)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_messages_parse_the_same(
    data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = bytearray(REGISTER.replace(b"\r\nv: ", b"\r\nVia: "))
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = ord(data.draw(st.sampled_from(SPECIAL)))
    compare(bytes(raw), monkeypatch)


@settings(
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(msg=messages())
def test_generated_messages_parse_the_same(
    msg: m.Request | m.Response, monkeypatch: pytest.MonkeyPatch
) -> None:
    if isinstance(msg, m.Request):
        msg.uri.headers.clear()
    compare(bytes(msg), monkeypatch)
