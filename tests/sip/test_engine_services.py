"""Engine services around calls, over loopback with raw SIP clients (``SipTestClient``):

- check-sync / reboot NOTIFY from the control channel (provisioning's re-provision button);
- the tenant's white-label product in Server and User-Agent, never a version;
- NAT keep-alives: CRLF ping/pong on UDP, OPTIONS pings to NATed UDP bindings and dropping the
  ones that stop answering.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator

import pytest
import redis

from telephony.sip.message import Request, make_response
from tests.sip.callkit import dial, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, SipTestClient, wait_until, worker_redis_url

pytestmark = pytest.mark.django_db


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    yield client
    client.close()


def next_request(client: SipTestClient, method: str, timeout: float = 5.0) -> Request:
    """The next request of ``method`` the client receives (answers are skipped)."""
    while True:
        msg = client.recv(timeout)
        if isinstance(msg, Request) and msg.method == method:
            return msg


def answer(client: SipTestClient, req: Request, status: int = 200) -> None:
    client.send_raw(bytes(make_response(req, status, to_tag="t1")))


def nothing_received(client: SipTestClient) -> bool:
    """True if nothing is waiting on the client's socket (checked without waiting)."""
    client.sock.setblocking(False)
    try:
        client.sock.recv(65536)
    except BlockingIOError:
        return True
    finally:
        client.sock.setblocking(True)
    return False


def publish_control(r: redis.Redis, **cmd: object) -> None:
    wait_until(lambda: r.pubsub_numsub("sip:control")[0][1] > 0)
    r.publish("sip:control", json.dumps(cmd))


# --------------------------------------------------------------------------- check-sync


def test_check_sync_notify_reaches_every_contact_of_the_user_only(
    sip_engine: EngineHandle, r: redis.Redis
) -> None:
    """Story: an admin presses "reboot" for the phone of acme's 101. Both of 101's registered
    phones (one on UDP, one on TCP, reached over the connection it registered on) get
    ``NOTIFY`` with ``Event: check-sync;reboot=true``; beta's 201 gets nothing, nor does
    anybody for a command naming a user the domain does not have or another event."""
    set_snapshot(sip_engine, "acme.test", lambda s: s.update(product="Acme Voice"))
    with (
        sip_engine.client("UDP") as udp,
        sip_engine.client("TCP") as tcp,
        sip_engine.client("UDP") as beta,
    ):
        assert udp.register("101", "acme.test").status == 200
        assert tcp.register("101", "acme.test").status == 200
        assert beta.register("201", "beta.test").status == 200
        publish_control(r, op="notify", domain="beta.test", user="101", event="check-sync")
        publish_control(r, op="notify", domain="acme.test", user="101", event="talk")
        publish_control(
            r, op="notify", domain="acme.test", user="101", event="check-sync", reboot=True
        )
        for client in (udp, tcp):
            notify = next_request(client, "NOTIFY")
            assert notify.get("Event") == "check-sync;reboot=true"
            assert notify.get("Subscription-State") == "terminated"
            assert notify.get("User-Agent") == "Acme Voice"
            assert notify.to.uri.user == "101"
            assert str(notify.uri).startswith("sip:101@127.0.0.1:")  # the registered Contact
            answer(client, notify)
        assert nothing_received(udp)
        assert nothing_received(beta)

        publish_control(r, op="notify", domain="ACME.test", user="101", event="check-sync")
        notify = next_request(udp, "NOTIFY")
        assert notify.get("Event") == "check-sync;reboot=false"
        answer(udp, notify)
        assert nothing_received(beta)


# ---------------------------------------------------------------------------- white label


def test_server_and_user_agent_carry_the_tenant_product(
    pbx: Callable[..., EngineHandle], phones
) -> None:
    """Story: acme is sold as "Acme Voice". Its phones see that name in the Server header of
    the registrar's answers once they have authenticated and in the User-Agent of calls the
    PBX places to them; a tenant without a name of its own gets the engine's name; the
    challenge itself (before anybody is known) is the same for every domain. Never a
    version."""
    engine = pbx()
    set_snapshot(engine, "acme.test", lambda s: s.update(product="Acme Voice"))
    set_snapshot(engine, "beta.test", lambda s: s.update(product=""))
    with engine.client("UDP") as acme, engine.client("UDP") as beta:
        first = acme.request(acme.register_request("101", "acme.test"))
        assert first.status == 401
        assert first.get("Server") == "TestPBX"
        unknown = acme.request(acme.register_request("101", "nowhere.test"))
        assert unknown.get("Server") == first.get("Server")
        ok = acme.register("101", "acme.test")
        assert (ok.status, ok.get("Server")) == (200, "Acme Voice")
        ok = beta.register("201", "beta.test")
        assert (ok.status, ok.get("Server")) == (200, "TestPBX")

    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    invite = b.incoming()["msg"]
    assert "\r\nUser-Agent: Acme Voice\r\n" in invite
    a.hangup(ca)


# ------------------------------------------------------------------------- NAT keep-alives


def test_crlf_keepalive_gets_a_pong_on_udp(sip_engine: EngineHandle) -> None:
    """Story: a phone behind NAT sends RFC 5626 double-CRLF pings over UDP; each is answered
    with a single CRLF, so the phone knows its mapping and the PBX are alive."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        for _ in range(2):
            s.sendto(b"\r\n\r\n", (sip_engine.host, sip_engine.udp_port))
            data, addr = s.recvfrom(64)
            assert data == b"\r\n"
            assert addr == (sip_engine.host, sip_engine.udp_port)
        s.sendto(b"\r\n", (sip_engine.host, sip_engine.udp_port))  # a pong is not answered
        s.sendto(b"\r\n\r\n", (sip_engine.host, sip_engine.udp_port))
        assert s.recvfrom(64)[0] == b"\r\n"


def test_nat_bindings_are_pinged_and_dropped_when_silent(
    sip_engine_factory: Callable[..., EngineHandle], r: redis.Redis
) -> None:
    """Story: 101 registers from behind NAT over UDP (its Contact names a private address).
    The PBX pings it with OPTIONS every interval while it answers; when it stops answering,
    its binding is dropped after two missed pings (an ``expired`` registration event) and
    calls stop going to it. 102, registered with its real address, is never pinged."""

    def short_timers(pbx: object) -> None:
        # Short, but not so short that a loaded CI machine misses an answer within it.
        pbx.keepalive.interval = 1.0  # type: ignore[attr-defined]

    engine = sip_engine_factory(on_build=short_timers)
    with engine.client("UDP") as natted, engine.client("UDP") as direct:
        ok = natted.register("101", "acme.test", contacts=["<sip:101@10.0.0.99:5060>"])
        assert ok.status == 200
        assert direct.register("102", "acme.test").status == 200
        for _ in range(2):
            ping = next_request(natted, "OPTIONS")
            assert str(ping.uri) == "sip:101@10.0.0.99:5060"
            assert ping.get("User-Agent")
            answer(natted, ping)
        assert r.exists("sip:loc:acme.test:101")
        # Silence from now on: the binding goes.
        wait_until(lambda: not r.exists("sip:loc:acme.test:101"), timeout=20)
        assert engine.call(lambda: not engine.pbx.locations.hot.get(("acme.test", "101")))
        engine.run(engine.pbx.events.flush())
        regs = [e for _, e in r.xrange("sip:events") if e["type"] == "registration"]
        assert [e["action"] for e in regs if e["user"] == "101"] == ["registered", "expired"]
        assert r.exists("sip:loc:acme.test:102")
        assert nothing_received(direct)
