"""Digest authentication (RFC 7616 / RFC 8760), pure: no sockets, no Redis.

Responses are computed by hand here (hashlib on the RFC formulas), not with the code under test;
the stored HA1s are the contract's ``ha1()``, as Django stores them (checked against the RFC
examples in ``tests/telephony/test_contract.py``).
"""

import hashlib
import re
from typing import Any

import pytest

from telephony.sip.auth import DigestAuth, parse_credentials
from telephony.sip.contract import ExtensionSnapshot, ha1
from telephony.sip.message import Request, parse_uri
from tests.sip.engine_fixtures import SipTestClient, wait_until

REALM = "acme.test"
PASSWORD = "Sip-Secret-Pass-77"
SECRET = b"0123456789abcdef0123456789abcdef"


def ext(number: str = "101", password: str = PASSWORD, realm: str = REALM) -> ExtensionSnapshot:
    """The extension as Django stores it: HA1s, not the password."""
    return ExtensionSnapshot(
        number=number,
        display_name=number,
        enabled=True,
        dnd=False,
        ha1_md5=ha1("MD5", number, realm, password),
        ha1_sha256=ha1("SHA-256", number, realm, password),
        max_registrations=3,
        allowed_transports=frozenset({"udp", "tcp"}),
        caller_id_name=number,
        caller_id_number=number,
    )


USERS = {"101": ext("101")}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def nonce_of(header_value: str) -> str:
    m = re.search(r'nonce="([^"]+)"', header_value)
    assert m
    return m.group(1)


def answer(
    challenge: str,
    *,
    user: str = "101",
    password: str = PASSWORD,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    uri: str = "sip:acme.test",
    method: str = "REGISTER",
) -> str:
    c = parse_credentials(challenge)
    assert c is not None
    alg = c["algorithm"]
    h = hashlib.sha256 if alg == "SHA-256" else hashlib.md5
    ha1 = h(f"{user}:{c['realm']}:{password}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    ncs = f"{nc:08x}"
    resp = h(f"{ha1}:{c['nonce']}:{ncs}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{user}", realm="{c["realm"]}", nonce="{c["nonce"]}", uri="{uri}", '
        f'response="{resp}", algorithm={alg}, cnonce="{cnonce}", qop=auth, nc={ncs}, '
        f'opaque="{c["opaque"]}"'
    )


def register(authorization: str | None, *, user: str = "101", proxy: bool = False) -> Request:
    headers = [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc"),
        ("From", f"<sip:{user}@acme.test>;tag=1"),
        ("To", f"<sip:{user}@acme.test>"),
        ("Call-ID", "c1@test"),
        ("CSeq", "1 REGISTER"),
    ]
    if authorization is not None:
        headers.append(("Proxy-Authorization" if proxy else "Authorization", authorization))
    return Request("REGISTER", parse_uri("sip:acme.test"), headers)


def test_challenge_offers_md5_only_by_default() -> None:
    """MD5 alone unless the tenant opts in: baresip/libre fails on any SHA-256 challenge."""
    auth = DigestAuth(SECRET)
    [(name, md5)] = auth.challenge(REALM, proxy=False)
    assert name == "WWW-Authenticate"
    assert md5.startswith('Digest realm="acme.test", nonce="')
    assert "algorithm=MD5" in md5
    c = parse_credentials(md5)
    assert c is not None
    assert (c["qop"], "stale" in c) == ("auth", False)
    assert c["opaque"]


def test_tenant_with_sha256_gets_sha256_first_then_md5() -> None:
    auth = DigestAuth(SECRET)
    headers = auth.challenge(REALM, proxy=False, sha256=True)
    assert [n for n, _ in headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    sha, md5 = (v for _, v in headers)
    assert sha.startswith('Digest realm="acme.test", nonce="')
    assert "algorithm=SHA-256" in sha
    assert "algorithm=MD5" in md5
    for v in (sha, md5):
        c = parse_credentials(v)
        assert c is not None
        assert c["qop"] == "auth"
        assert c["opaque"]
        assert "stale" not in c
    assert nonce_of(sha) == nonce_of(md5)
    proxy = auth.challenge(REALM, proxy=True, stale=True, sha256=True)
    assert [n for n, _ in proxy] == ["Proxy-Authenticate", "Proxy-Authenticate"]
    assert all(v.endswith(", stale=true") for _, v in proxy)


@pytest.mark.parametrize("which", [0, 1], ids=["SHA-256", "MD5"])
def test_verify_hand_computed_response(which: int) -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=False, sha256=True)[which][1]
    result = auth.verify(register(answer(challenge)), REALM, USERS.get, proxy=False, sha256=True)
    assert result.ok, result.reason
    assert result.username == "101"
    assert result.extension == USERS["101"]
    assert not result.stale


def test_sha256_answer_refused_where_not_offered() -> None:
    """A tenant without SHA-256 is not answered in SHA-256 (not offered, not accepted)."""
    auth = DigestAuth(SECRET)
    sha = auth.challenge(REALM, proxy=False, sha256=True)[0][1]
    result = auth.verify(register(answer(sha)), REALM, USERS.get, proxy=False)
    assert (result.ok, result.reason) == (False, "malformed credentials")


def test_verify_proxy_authorization() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=True)[0][1]
    req = register(answer(challenge), proxy=True)
    assert auth.verify(req, REALM, USERS.get, proxy=True).ok
    # Proxy credentials do not count as WWW credentials
    assert auth.verify(req, REALM, USERS.get, proxy=False).reason == "no credentials"


def test_wrong_password_and_unknown_user_fail_alike() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=False)[0][1]
    wrong = auth.verify(register(answer(challenge, password="nope")), REALM, USERS.get, proxy=False)
    ghost = auth.verify(
        register(answer(challenge, user="999"), user="999"), REALM, USERS.get, proxy=False
    )
    for r in (wrong, ghost):
        assert not r.ok
        assert not r.stale
        assert r.failed
        assert r.extension is None
    assert wrong.reason == ghost.reason == "wrong credentials"


def test_no_credentials_is_not_a_failure() -> None:
    r = DigestAuth(SECRET).verify(register(None), REALM, USERS.get, proxy=False)
    assert r.reason == "no credentials"
    assert not r.failed


def test_challenges_for_known_and_unknown_users_are_identical() -> None:
    """The challenge does not depend on the user: with the nonce masked, byte-identical."""
    auth = DigestAuth(SECRET)
    known = auth.challenge(REALM, proxy=False)
    unknown = auth.challenge(REALM, proxy=False)
    assert nonce_of(known[0][1]) != nonce_of(unknown[0][1])  # fresh nonce each time

    def mask(hs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(n, v.replace(nonce_of(v), "N")) for n, v in hs]

    assert mask(known) == mask(unknown)
    assert len(nonce_of(known[0][1])) == len(nonce_of(unknown[0][1]))


def test_expired_nonce_with_right_password_is_stale() -> None:
    clock = Clock()
    auth = DigestAuth(SECRET, nonce_ttl=30, clock=clock)
    challenge = auth.challenge(REALM, proxy=False)[0][1]
    clock.now += 31
    r = auth.verify(register(answer(challenge)), REALM, USERS.get, proxy=False)
    assert not r.ok
    assert r.stale
    assert r.extension == USERS["101"]
    # ...and with a wrong password it is a plain failure, not stale
    r = auth.verify(register(answer(challenge, password="x")), REALM, USERS.get, proxy=False)
    assert not r.stale
    assert r.failed


def test_nonce_count_replay_is_refused() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=False)[0][1]
    first = register(answer(challenge, nc=1))
    assert auth.verify(first, REALM, USERS.get, proxy=False).ok
    replay = auth.verify(first, REALM, USERS.get, proxy=False)
    assert not replay.ok
    assert replay.stale  # the phone retries on a fresh nonce without asking for a password
    assert replay.reason == "replayed nonce count"
    # the same nonce with a higher nc is fine (RFC 7616 3.4.5)
    assert auth.verify(register(answer(challenge, nc=2)), REALM, USERS.get, proxy=False).ok
    assert not auth.verify(register(answer(challenge, nc=2)), REALM, USERS.get, proxy=False).ok


def test_forged_nonce_and_other_realm_are_refused() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=False)[0][1]
    forged = challenge.replace(nonce_of(challenge), "0" * 56)
    assert auth.verify(register(answer(forged)), REALM, USERS.get, proxy=False).reason == (
        "bad nonce"
    )
    other = DigestAuth(b"another-secret-of-32-bytes-long!")
    assert not other.verify(register(answer(challenge)), REALM, USERS.get, proxy=False).ok
    # a nonce issued for beta.test is no good for acme.test, even with a matching HA1
    beta = auth.challenge("beta.test", proxy=False)[0][1].replace("beta.test", REALM)
    assert auth.verify(register(answer(beta)), REALM, USERS.get, proxy=False).reason == "bad nonce"


def test_credentials_for_another_realm_are_ignored() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge("beta.test", proxy=False)[0][1]
    r = auth.verify(register(answer(challenge)), REALM, USERS.get, proxy=False)
    assert r.reason == "no credentials"


def test_qop_is_required() -> None:
    auth = DigestAuth(SECRET)
    challenge = auth.challenge(REALM, proxy=False)[0][1]
    legacy = re.sub(r", cnonce=\"[^\"]+\", qop=auth, nc=\w+", "", answer(challenge))
    r = auth.verify(register(legacy), REALM, USERS.get, proxy=False)
    assert not r.ok
    assert r.reason == "qop=auth required"


def test_replay_table_is_bounded_and_eviction_opens_no_window() -> None:
    clock = Clock()
    auth = DigestAuth(SECRET, max_tracked=3, clock=clock)
    used = []
    for _ in range(5):
        challenge = auth.challenge(REALM, proxy=False)[0][1]
        req = register(answer(challenge))
        assert auth.verify(req, REALM, USERS.get, proxy=False).ok
        used.append(req)
        clock.now += 1
    assert len(auth._nc) == 3
    # the evicted nonces are not accepted again: stale, so the phone fetches a new one
    r = auth.verify(used[0], REALM, USERS.get, proxy=False)
    assert not r.ok
    assert r.stale


@pytest.mark.django_db
def test_tenant_opts_in_to_sha256_over_the_api(
    sip_engine_factory: Any, api: Any, world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Story: on the engine's defaults every tenant is challenged with MD5 alone. The provider
    turns SHA-256 on for acme in the tenants API; acme's phones are then challenged SHA-256
    first and MD5 second (and register with either), while beta's still see MD5 alone."""
    engine = sip_engine_factory(digest_algorithms=None)

    def algorithms(client: SipTestClient, user: str, domain: str) -> list[str]:
        first = client.request(client.register_request(user, domain))
        assert first.status == 401
        return [
            (parse_credentials(v) or {}).get("algorithm", "")
            for v in first.get_all("WWW-Authenticate")
        ]

    with engine.client() as phone:
        assert algorithms(phone, "101", "acme.test") == ["MD5"]
        with django_capture_on_commit_callbacks(execute=True):
            r = api(world.sysadmin).patch(
                f"/api/v1/tenants/{world.tenant_a.pk}/", {"sip_digest_sha256": True}
            )
        assert r.status_code == 200
        assert r.json()["sip_digest_sha256"] is True
        wait_until(
            lambda: engine.call(lambda: engine.pbx.directory.tenant("acme.test").sip_digest_sha256)
        )
        assert algorithms(phone, "101", "acme.test") == ["SHA-256", "MD5"]
        assert algorithms(phone, "201", "beta.test") == ["MD5"]
        assert phone.register("101", "acme.test", algorithm="SHA-256").status == 200
        assert phone.register("101", "acme.test", algorithm="MD5").status == 200
        assert phone.register("201", "beta.test", algorithm="MD5").status == 200
