"""Brute-force and flood protection over real UDP on loopback, and the REST API that shows the
bans (and the registrations) the engines keep in Redis."""

import socket
from typing import Any

import pytest
import redis

from telephony.sip.security import GuardConfig
from tests.sip.engine_fixtures import EngineHandle, SipTestClient, wait_until, worker_redis_url

BRUTE = GuardConfig(max_failures=3, failure_window=60, max_requests=10_000, ban_seconds=30)


@pytest.fixture
def r() -> Any:
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    yield client
    client.close()


def options(client: SipTestClient, n: int, user_agent: str = "Yealink SIP-T46U") -> bytes:
    return (
        f"OPTIONS sip:acme.test SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{client.local[1]};branch=z9hG4bKopt{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:100@acme.test>;tag=s1\r\n"
        "To: <sip:100@acme.test>\r\n"
        f"Call-ID: scan-{n}@test\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        f"User-Agent: {user_agent}\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def dropped(engine: EngineHandle) -> int:
    return engine.call(lambda: engine.pbx.guard.dropped)


def assert_silent(client: SipTestClient) -> None:
    with pytest.raises(socket.timeout):
        client.recv(timeout=0.2)


def test_brute_force_is_banned_then_cleared_over_the_api(
    sip_engine_factory: Any, r: Any, api: Any, world: Any
) -> None:
    """Story: someone guesses 101's password from one address; after 3 wrong answers the
    address is banned (every request dropped, even with the right password), the system admin
    sees the ban in the API and lifts it, and the phone registers again."""
    engine = sip_engine_factory(guard=BRUTE)
    with engine.client() as attacker:
        for _ in range(3):
            assert attacker.register("101", "acme.test", password="guess").status == 401
        wait_until(lambda: r.exists("sip:ban:127.0.0.1"))
        assert 25 < r.ttl("sip:ban:127.0.0.1") <= 30
        before = dropped(engine)
        attacker.send_raw(bytes(attacker.register_request("101", "acme.test")))
        wait_until(lambda: dropped(engine) > before)
        assert_silent(attacker)

        # only the provider's system admin sees and clears bans (not on a tenant's host at all)
        assert api(world.a_admin, world.tenant_a).get("/api/v1/sip-bans/").status_code == 404
        assert api(world.north_admin).get("/api/v1/sip-bans/").status_code == 403
        assert api(world.north_admin).delete("/api/v1/sip-bans/127.0.0.1/").status_code == 403
        assert r.exists("sip:ban:127.0.0.1")
        admin = api(world.sysadmin)
        listed = admin.get("/api/v1/sip-bans/")
        assert listed.status_code == 200
        [ban] = [b for b in listed.json()["items"] if b["ip"] == "127.0.0.1"]
        assert ban["reason"] == "auth"
        assert 0 < ban["expires_in"] <= 30
        assert admin.delete("/api/v1/sip-bans/10.9.9.9/").status_code == 404
        assert admin.delete("/api/v1/sip-bans/127.0.0.1/").status_code == 204
        assert not r.exists("sip:ban:127.0.0.1")
        wait_until(lambda: engine.call(lambda: "127.0.0.1" not in engine.pbx.guard.bans), 1.0)
        assert attacker.register("101", "acme.test").status == 200


def test_ban_reaches_every_engine(sip_engine_factory: Any) -> None:
    one = sip_engine_factory(guard=BRUTE)
    two = sip_engine_factory(guard=BRUTE)
    with one.client() as attacker:
        for _ in range(3):
            attacker.register("101", "acme.test", password="guess")
    wait_until(lambda: two.call(lambda: "127.0.0.1" in two.pbx.guard.bans), 1.0)
    with two.client() as phone:
        phone.send_raw(options(phone, 1))
        assert_silent(phone)


def test_flood_is_banned(sip_engine_factory: Any, r: Any) -> None:
    engine = sip_engine_factory(guard=GuardConfig(max_requests=20, request_window=2))
    with engine.client() as flooder:
        for n in range(30):
            flooder.send_raw(options(flooder, n))
        answered = 0
        try:
            while True:
                flooder.recv(timeout=0.3)
                answered += 1
        except TimeoutError:
            pass
        assert answered == 20
        assert '"reason": "flood"' in wait_until(lambda: r.get("sip:ban:127.0.0.1"))


def test_scanner_user_agents_are_dropped_silently(sip_engine: EngineHandle) -> None:
    with sip_engine.client() as scanner:
        for n, ua in enumerate(["friendly-scanner", "sipvicious 0.3", "VaxSIPUserAgent/3.1"]):
            scanner.send_raw(options(scanner, n, user_agent=ua))
        assert_silent(scanner)
        scanner.send_raw(options(scanner, 9))
        assert scanner.recv().status == 200  # a phone from the same address is answered


def test_allow_list_is_never_banned(sip_engine_factory: Any, r: Any) -> None:
    engine = sip_engine_factory(
        guard=GuardConfig(max_failures=2, max_requests=5, allow_list=("127.0.0.1",))
    )
    with engine.client() as phone:
        for _ in range(6):
            assert phone.register("101", "acme.test", password="typo").status == 401
        assert phone.register("101", "acme.test").status == 200
    assert not r.exists("sip:ban:127.0.0.1")


def test_registrations_api(sip_engine: EngineHandle, api: Any, world: Any) -> None:
    """Story: a tenant admin sees which phones are registered to the tenant's extensions (and
    not another tenant's); a user without extensions.view does not."""
    with sip_engine.client() as a, sip_engine.client("TCP") as b, sip_engine.client() as c:
        assert a.register("101", "acme.test", user_agent="Yealink T46U").status == 200
        assert b.register("102", "acme.test").status == 200
        assert c.register("201", "beta.test").status == 200
        resp = api(world.a_admin, world.tenant_a).get("/api/v1/registrations/")
        assert resp.status_code == 200
        body = resp.json()
        assert body["total"] == 2
        first, second = body["items"]
        assert first["extension"] == "101"
        assert first["user_agent"] == "Yealink T46U"
        assert first["transport"] == "UDP"
        assert first["source_address"] == "127.0.0.1"
        assert first["source_port"] == a.local[1]
        assert 0 < first["expires"] <= 300
        assert second["extension"] == "102"
        assert second["transport"] == "TCP"
        one = api(world.a_admin, world.tenant_a).get("/api/v1/registrations/?extension=102")
        assert [i["extension"] for i in one.json()["items"]] == ["102"]
        beta = api(world.b_admin, world.tenant_b).get("/api/v1/registrations/").json()
        assert [i["extension"] for i in beta["items"]] == ["201"]
        assert api(world.a_user, world.tenant_a).get("/api/v1/registrations/").status_code == 403
        # another tenant's token is not valid on this tenant's host at all
        assert api(world.b_admin, world.tenant_a).get("/api/v1/registrations/").status_code == 401
