"""Our answers to a carrier's digest challenges, checked by the engine's own verifier (the
same RFC from the other side) and by hand against RFC 2617's worked example."""

import pytest

from telephony.sip.auth import Credentials, DigestAuth, answer_challenge, parse_credentials
from telephony.sip.contract import ExtensionSnapshot, digest_hash, ha1
from telephony.sip.message import Request, parse_uri


def _request(header: tuple[str, str]) -> Request:
    return Request(
        "INVITE",
        parse_uri("sip:+15550100@carrier.test"),
        [("From", "<sip:acct@carrier.test>;tag=1"), ("To", "<sip:+15550100@carrier.test>"),
         ("Call-ID", "c1"), ("CSeq", "2 INVITE"), header],
    )  # fmt: skip


@pytest.mark.parametrize("sha256", [False, True])
def test_our_answer_passes_a_real_verifier(sha256):
    auth = DigestAuth(secret=b"k" * 32)
    challenge = dict(auth.challenge("carrier.test", proxy=True, sha256=sha256))
    values = [v for k, v in auth.challenge("carrier.test", proxy=True, sha256=sha256)]
    assert challenge
    header = answer_challenge(
        407, values, "INVITE", "sip:+15550100@carrier.test", Credentials("acct", "pw-9")
    )
    assert header is not None
    assert header[0] == "Proxy-Authorization"
    ext = ExtensionSnapshot(
        "acct",
        ha1_md5=ha1("MD5", "acct", "carrier.test", "pw-9"),
        ha1_sha256=ha1("SHA-256", "acct", "carrier.test", "pw-9"),
    )
    lookup = {"acct": ext}.get
    result = auth.verify(_request(header), "carrier.test", lookup, proxy=True, sha256=sha256)
    assert result.ok, result.reason


def test_rfc2617_example_without_qop_and_with_opaque():
    challenge = (
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    name, value = answer_challenge(
        401, [challenge], "GET", "/dir/index.html", Credentials("Mufasa", "Circle Of Life")
    )
    assert name == "Authorization"
    params = parse_credentials(value)
    h = lambda s: digest_hash("MD5", s)  # noqa: E731
    expected = h(
        f"{h('Mufasa:testrealm@host.com:Circle Of Life')}:dcd98b7102dd2f0e8b11d0f600bfb0c093:"
        f"{h('GET:/dir/index.html')}"
    )
    assert params["response"] == expected
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert "qop" not in params


def test_challenges_we_cannot_answer_give_none():
    creds = Credentials("acct", "pw", realm="carrier.test")
    other_realm = 'Digest realm="elsewhere", nonce="n", qop="auth"'
    auth_int_only = 'Digest realm="carrier.test", nonce="n", qop="auth-int"'
    odd_algorithm = 'Digest realm="carrier.test", nonce="n", algorithm=SHA-512-256'
    basic = 'Basic realm="carrier.test"'
    for challenge in (other_realm, auth_int_only, odd_algorithm, basic):
        assert answer_challenge(401, [challenge], "REGISTER", "sip:x", creds) is None
    # The first answerable one of several is taken.
    ok = 'Digest realm="carrier.test", nonce="n2", qop="auth,auth-int"'
    header = answer_challenge(401, [odd_algorithm, ok], "REGISTER", "sip:x", creds)
    assert header is not None
    assert parse_credentials(header[1])["nonce"] == "n2"
