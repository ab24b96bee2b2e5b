"""The registrar over real UDP/TCP on loopback, against the worker's Redis, with the conftest
tenants (acme.test 101/102, beta.test 201/202) published from the test process."""

import json
import time
from typing import Any

import pytest
import redis

from telephony.sip.registrar import Binding, RegistrarConfig
from tests.sip.engine_fixtures import (
    SIP_PASSWORD,
    EngineHandle,
    SipTestClient,
    digest_authorization,
    wait_until,
    worker_redis_url,
)


@pytest.fixture
def r() -> Any:
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    yield client
    client.close()


def bindings_in_redis(r: Any, domain: str, user: str) -> list[dict[str, Any]]:
    return [json.loads(v) for v in r.hgetall(f"sip:loc:{domain}:{user}").values()]


def registration_events(r: Any) -> list[dict[str, str]]:
    return [fields for _, fields in r.xrange("sip:events") if fields.get("type") == "registration"]


def lookup(engine: EngineHandle, domain: str, user: str) -> list[Binding]:
    return engine.run(engine.pbx.locations.lookup(domain, user))


@pytest.mark.parametrize(
    ("transport", "algorithm"),
    [("UDP", "SHA-256"), ("UDP", "MD5"), ("TCP", "SHA-256"), ("TCP", "MD5")],
)
def test_register_with_digest(
    sip_engine: EngineHandle, r: Any, world: Any, transport: str, algorithm: str
) -> None:
    """Story: a phone registers with its extension's password; the engine stores where it is
    (contact and observed source) in Redis and reports the registration on the event stream."""
    with sip_engine.client(transport) as phone:
        first = phone.request(phone.register_request("101", "acme.test"))
        assert first.status == 401
        assert first.get("Server") == "TestPBX"
        resp = phone.register("101", "acme.test", algorithm=algorithm, expires=120)
        assert resp.status == 200, resp
        contacts = resp.get_all("Contact")
        assert len(contacts) == 1
        assert contacts[0].endswith(";expires=120")
        [stored] = bindings_in_redis(r, "acme.test", "101")
        assert stored["transport"] == transport
        assert stored["source_port"] == phone.local[1]
        assert stored["user_agent"] == "pytest-sip"
        assert (stored["flow"] is not None) == (transport == "TCP")
        ttl = r.ttl("sip:loc:acme.test:101")
        assert 120 < ttl <= 181
        assert r.zscore("sip:loc:expiry", f"acme.test\n101\n{'c:' + stored['contact']}")
        [binding] = lookup(sip_engine, "acme.test", "101")
        target, flow = sip_engine.call(lambda: sip_engine.pbx.locations.target_for(binding))
        assert (target.kind, target.host, target.port) == (transport, "127.0.0.1", phone.local[1])
        assert flow is not None
        if transport == "TCP":
            assert flow.conn.remote == ("127.0.0.1", phone.local[1])  # its own connection
        sip_engine.run(sip_engine.pbx.events.flush())
        [event] = registration_events(r)
        assert event["action"] == "registered"
        assert event["domain"] == "acme.test"
        assert event["user"] == "101"
        assert event["schema"] == world.tenant_a.schema_name
        assert event["source"] == f"{transport.lower()}:127.0.0.1:{phone.local[1]}"
        assert event["expires"] == "120"


def test_wrong_password_and_unknown_users_get_the_same_401(sip_engine: EngineHandle) -> None:
    with sip_engine.client() as phone:
        wrong = phone.register("101", "acme.test", password="not-it")
        ghost = phone.register("999", "acme.test")
        nodomain = phone.register("101", "nowhere.test")
        for resp in (wrong, ghost, nodomain):
            assert resp.status == 401
            assert [h.split(", nonce=")[0] for h in resp.get_all("WWW-Authenticate")] == [
                f'Digest realm="{resp.from_.uri.host}"'
            ] * 2
            assert "stale" not in resp.get_all("WWW-Authenticate")[0]
        assert {n for n, _ in wrong.headers} == {n for n, _ in ghost.headers}


def test_refused_with_403_only_after_the_right_password(
    sip_engine: EngineHandle, world: Any, in_tenant: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Story: an admin disables extension 101 in the portal; within a second the running engine
    refuses the phone's REGISTER with 403 — but a wrong password still only gets 401."""
    from pbx.audit import SYSTEM
    from telephony.actions import do_update_extension
    from telephony.models import Extension

    with sip_engine.client() as phone:
        assert phone.register("101", "acme.test").status == 200
        with in_tenant(world.tenant_a), django_capture_on_commit_callbacks(execute=True):
            do_update_extension(Extension.objects.get(number="101"), actor=SYSTEM, enabled=False)
        committed = time.monotonic()
        directory = sip_engine.pbx.directory
        wait_until(
            lambda: sip_engine.call(
                lambda: not directory.tenant("acme.test").extensions["101"].enabled
            ),
            timeout=1.0,
        )
        assert time.monotonic() - committed < 1.0
        assert phone.register("101", "acme.test", password="wrong").status == 401
        assert phone.register("101", "acme.test").status == 403


def test_suspended_tenant_is_refused(
    sip_engine: EngineHandle, world: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from pbx.audit import SYSTEM
    from tenants.actions import do_set_tenant_status
    from tenants.choices import TenantStatus

    with django_capture_on_commit_callbacks(execute=True):
        do_set_tenant_status(world.tenant_b, TenantStatus.SUSPENDED, actor=SYSTEM)
    wait_until(
        lambda: sip_engine.call(lambda: not sip_engine.pbx.directory.tenant("beta.test").active)
    )
    with sip_engine.client() as phone:
        assert phone.register("201", "beta.test", password="wrong").status == 401
        assert phone.register("201", "beta.test").status == 403
        assert phone.register("101", "acme.test").status == 200  # other tenants unaffected


def test_credentials_of_another_extension_or_tenant_are_refused(sip_engine: EngineHandle) -> None:
    """Tenant isolation: acme's 101 cannot register as beta's 201, nor as acme's 102."""
    with sip_engine.client() as phone:
        # 101's password, To 201@beta.test, username 101: realm beta.test has no 101
        assert phone.register("201", "beta.test", username="101").status == 401
        # To 101@beta.test (no such AOR): same answer as a wrong password
        assert phone.register("101", "beta.test").status == 401
        # right password of 102, but for the AOR 101: 403 after authentication
        assert phone.register("101", "acme.test", username="102").status == 403
        # a digest computed for acme.test replayed against beta.test's challenge fails
        first = phone.request(phone.register_request("201", "beta.test"))
        challenge = first.get_all("WWW-Authenticate")[0].replace("beta.test", "acme.test")
        auth = digest_authorization(
            challenge, method="REGISTER", uri="sip:beta.test", username="201", password=SIP_PASSWORD
        )
        resp = phone.request(phone.register_request("201", "beta.test", authorization=auth))
        assert resp.status == 401


def test_same_user_in_two_domains_are_separate_aors(
    sip_engine: EngineHandle, world: Any, in_tenant: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension

    with in_tenant(world.tenant_b), django_capture_on_commit_callbacks(execute=True):
        do_create_extension(
            number="101", display_name="Beta 101", sip_password="Other-Pass-Word-9", actor=SYSTEM
        )
    wait_until(
        lambda: sip_engine.call(
            lambda: "101" in sip_engine.pbx.directory.tenant("beta.test").extensions
        )
    )
    with sip_engine.client() as a, sip_engine.client() as b:
        assert a.register("101", "acme.test").status == 200
        assert b.register("101", "beta.test").status == 401  # acme's password is not beta's
        assert b.register("101", "beta.test", password="Other-Pass-Word-9").status == 200
        [ba] = lookup(sip_engine, "acme.test", "101")
        [bb] = lookup(sip_engine, "beta.test", "101")
        assert ba.source_port == a.local[1]
        assert bb.source_port == b.local[1]
        assert ba.aor == "101@acme.test"
        assert bb.aor == "101@beta.test"


def test_several_contacts_up_to_the_limit_oldest_dropped(sip_engine: EngineHandle) -> None:
    """max_registrations is 3 (the default): a 4th phone gets in and the oldest binding goes."""
    phones = [sip_engine.client() for _ in range(4)]
    try:
        for n, phone in enumerate(phones[:3], start=1):
            resp = phone.register("102", "acme.test")
            assert resp.status == 200
            assert len(resp.get_all("Contact")) == n
        resp = phones[3].register("102", "acme.test")
        assert resp.status == 200
        listed = resp.get_all("Contact")
        assert len(listed) == 3
        assert not any(f":{phones[0].local[1]};" in c for c in listed)
        ports = {b.source_port for b in lookup(sip_engine, "acme.test", "102")}
        assert ports == {p.local[1] for p in phones[1:]}
    finally:
        for p in phones:
            p.close()


def test_min_and_max_expiry(sip_engine: EngineHandle) -> None:
    with sip_engine.client() as phone:
        resp = phone.register("101", "acme.test", expires=10)
        assert resp.status == 423
        assert resp.get("Min-Expires") == "60"
        assert lookup(sip_engine, "acme.test", "101") == []
        resp = phone.register("101", "acme.test", expires=999_999)
        assert resp.status == 200
        assert resp.get("Contact").endswith(";expires=3600")
        # a per-contact expires parameter wins over the header
        contact = f"<sip:101@127.0.0.1:{phone.local[1]}>;expires=90"
        resp = phone.register("101", "acme.test", contacts=[contact], expires=600)
        assert any(c.endswith(";expires=90") for c in resp.get_all("Contact"))


def test_unregister_and_query(sip_engine: EngineHandle, r: Any) -> None:
    with sip_engine.client() as phone, sip_engine.client("TCP") as desk:
        assert phone.register("101", "acme.test").status == 200
        assert desk.register("101", "acme.test").status == 200
        # query: no Contact -> the current bindings, nothing changed
        query = phone.register("101", "acme.test", contacts=[])
        assert query.status == 200
        assert len(query.get_all("Contact")) == 2
        # Expires: 0 removes one binding
        gone = phone.register("101", "acme.test", expires=0)
        assert gone.status == 200
        assert len(gone.get_all("Contact")) == 1
        assert len(bindings_in_redis(r, "acme.test", "101")) == 1
        # Contact: * with Expires: 0 removes all
        star = desk.register("101", "acme.test", contacts=["*"], expires=0)
        assert star.status == 200
        assert star.get_all("Contact") == []
        assert r.exists("sip:loc:acme.test:101") == 0
        assert desk.register("101", "acme.test", contacts=["*"], expires=60).status == 400
        sip_engine.run(sip_engine.pbx.events.flush())
        actions = [e["action"] for e in registration_events(r)]
        assert actions == ["registered", "registered", "unregistered", "unregistered"]


def test_instance_id_is_one_binding(sip_engine: EngineHandle) -> None:
    """RFC 5626: the same +sip.instance/reg-id replaces its binding even when the URI changes."""
    inst = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1'
    with sip_engine.client() as phone:
        for port in (7001, 7002):
            contact = f"<sip:101@192.168.1.20:{port}>;{inst}"
            resp = phone.register(
                "101", "acme.test", contacts=[contact], extra=[("Supported", "outbound, path")]
            )
            assert resp.status == 200
            assert resp.get("Require") == "outbound"
        [b] = lookup(sip_engine, "acme.test", "101")
        assert b.contact == "sip:101@192.168.1.20:7002"
        assert b.instance == "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
        assert b.reg_id == 1
        # NAT: the private Contact is kept, but requests go where the packets came from
        target, _ = sip_engine.call(lambda: sip_engine.pbx.locations.target_for(b))
        assert (target.host, target.port) == ("127.0.0.1", phone.local[1])


def test_transport_not_allowed(
    sip_engine: EngineHandle, world: Any, in_tenant: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from pbx.audit import SYSTEM
    from telephony.actions import do_update_extension
    from telephony.models import Extension

    with in_tenant(world.tenant_a), django_capture_on_commit_callbacks(execute=True):
        do_update_extension(
            Extension.objects.get(number="102"), actor=SYSTEM, allowed_transports=["tcp"]
        )
    wait_until(
        lambda: sip_engine.call(
            lambda: (
                sip_engine.pbx.directory.tenant("acme.test").extensions["102"].allowed_transports
                == frozenset({"tcp"})
            )
        )
    )
    with sip_engine.client() as udp, sip_engine.client("TCP") as tcp:
        assert udp.register("102", "acme.test").status == 403
        assert tcp.register("102", "acme.test").status == 200


def test_bindings_expire_in_redis(sip_engine_factory: Any, r: Any) -> None:
    engine = sip_engine_factory(registrar=RegistrarConfig(min_expires=1, reap_interval=0.05))
    with engine.client() as phone:
        assert phone.register("101", "acme.test", expires=1).status == 200
        assert r.exists("sip:loc:acme.test:101")
        wait_until(lambda: not r.exists("sip:loc:acme.test:101"), timeout=3)
        assert lookup(engine, "acme.test", "101") == []
        engine.run(engine.pbx.events.flush())
        assert [e["action"] for e in registration_events(r)] == ["registered", "expired"]


def test_restart_keeps_registrations(sip_engine_factory: Any) -> None:
    """Story: the engine restarts (or a second engine starts); every phone is still reachable."""
    from tests.sip.engine_fixtures import running_engine

    with running_engine() as first, first.client() as phone:
        assert phone.register("101", "acme.test").status == 200
        assert phone.register("102", "acme.test").status == 200
        port = phone.local[1]
    second = sip_engine_factory()
    for user in ("101", "102"):
        [b] = lookup(second, "acme.test", user)
        assert b.source_port == port
        assert b.expires_in() > 200
    # a refresh through the new engine counts as a refresh, not a new registration
    with SipTestClient(second.host, second.udp_port) as other:
        resp = other.register("101", "acme.test")
        assert len(resp.get_all("Contact")) == 2


def test_two_engines_share_locations(sip_engine_factory: Any) -> None:
    one = sip_engine_factory()
    two = sip_engine_factory()
    with one.client() as phone:
        assert lookup(two, "acme.test", "101") == []  # cached as empty on engine two
        assert phone.register("101", "acme.test").status == 200
    wait_until(lambda: lookup(two, "acme.test", "101"), timeout=1.0)
