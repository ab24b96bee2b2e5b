"""A registration trunk against a real registrar: Kamailio (``kamailio/registrar.cfg``) plays
the carrier, with digest authentication and a short granted expiry so refreshes happen within
the test. The trunk's state is read where the API reads it (``TRUNK_STATE`` in Redis) and the
binding where the carrier keeps it (Kamailio's location table, ``kamcmd ul.dump``)."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.contract import CarrierSnapshot, TrunkSnapshot
from telephony.sip.message import Request, parse_uri
from tests.sip.callkit import set_snapshot
from tests.sip.engine_fixtures import EngineHandle, SipTestClient, wait_until, worker_redis_url
from tests.sip.pjphone import free_port
from tests.sip.test_inbound_calls import DID_A, carriers, refuse, rules

__all__ = ["carriers"]

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

CONFIG = Path(__file__).parent / "kamailio" / "registrar.cfg"
KAMAILIO = "/usr/sbin/kamailio"
PASSWORD = "Carrier-Pass-31"  # noqa: S105 -- the test registrar's
GRANTED = 4  # seconds the registrar grants, whatever we ask


@dataclass
class Registrar:
    port: int
    ctl: Path
    proc: subprocess.Popen[bytes]

    def dump(self) -> str:
        """Kamailio's location table, as its admin would read it."""
        out = subprocess.run(
            ["kamcmd", "-s", f"unix:{self.ctl}", "ul.dump"],
            capture_output=True,
            timeout=10,
            check=True,
        )
        return out.stdout.decode()


def _answers_options(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.bind(("127.0.0.1", 0))
        lport = s.getsockname()[1]
        msg = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{lport};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
            f"From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
            f"Call-ID: {secrets.token_hex(6)}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), ("127.0.0.1", port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


@pytest.fixture
def registrar(tmp_path: Path) -> Iterator[Registrar]:
    """Kamailio on a free loopback port, stopped after the test."""
    port = free_port()
    ctl = tmp_path / "kamailio.ctl"
    cfg = tmp_path / "kamailio.cfg"
    text = CONFIG.read_text()
    for name, value in (("PORT", port), ("CTL", ctl), ("MAX_EXPIRES", GRANTED),
                        ("PASSWORD", PASSWORD)):  # fmt: skip
        text = text.replace(f"@{name}@", str(value))
    cfg.write_text(text)
    proc = subprocess.Popen(
        [KAMAILIO, "-f", str(cfg), "-DD", "-E", "-Y", str(tmp_path), "-w", str(tmp_path),
         "-P", str(tmp_path / "kamailio.pid"), "-m", "32", "-M", "8"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not _answers_options(port):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "kamailio did not start"
        yield Registrar(port, ctl, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def reg_trunk(world: Any, registrar: Registrar, **kw: Any) -> TrunkSnapshot:
    return TrunkSnapshot.read(
        {"id": 5, "name": "Registered carrier", "kind": "register", "host": "127.0.0.1",
         "port": registrar.port, "username": "acme-trunk", "password": PASSWORD,
         "register_expires": 300, "source_port": registrar.port, "country": "DE",
         "options_interval": 1, "tenants": [world.tenant_a.schema_name], **kw}
    )  # fmt: skip


def state(trunk_id: int = 5) -> dict[str, str]:
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        return r.hgetall(contract.key("", contract.TRUNK_STATE, trunk=str(trunk_id)))  # type: ignore[return-value]
    finally:
        r.close()


def test_trunk_registers_refreshes_takes_calls_and_unregisters(
    pbx: Callable[..., EngineHandle],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    registrar: Registrar,
    world: Any,
) -> None:
    """Story: the provider adds a registration trunk; the engine registers to the carrier
    (digest), the trunk shows "registered" with its expiry and the carrier holds our binding;
    the registrar grants only 4 s, so the engine refreshes before it runs out. A call the
    carrier routes to our binding (Kamailio looks it up and relays it to our Contact, the DID
    in To) reaches acme's rule for that DID. When the trunk is removed the engine
    un-registers and its state goes."""
    engine = pbx()
    carriers(engine, CarrierSnapshot(trunks={5: reg_trunk(world, registrar)},
                                     numbers={DID_A: "acme.test"}))  # fmt: skip
    first = wait_until(lambda: state().get("state") == "registered" and state(), timeout=10)
    assert first["error"] == ""
    assert 0 < float(first["expires"]) - time.time() <= GRANTED + 1
    dump = wait_until(lambda: "trunk-5@127.0.0.1" in (d := registrar.dump()) and d)
    assert "acme-trunk" in dump
    # Refreshed before the 4 s run out: the expiry moves on and the binding never lapses.
    wait_until(lambda: float(state().get("expires", 0)) > float(first["expires"]), timeout=8)
    service = engine.pbx.trunks
    assert engine.call(lambda: service.workers[5].registration.registrations) >= 2  # type: ignore[union-attr]
    assert "trunk-5@127.0.0.1" in registrar.dump()

    # The carrier delivers a call to our binding: R-URI trunk-5@engine, DID in To.
    set_snapshot(engine, "acme.test", rules({"id": 1, "number": DID_A, "in_hours": refuse(486)}))
    with SipTestClient("127.0.0.1", registrar.port) as client:
        lhost, lport = client.local
        req = Request(
            "INVITE",
            parse_uri(f"sip:acme-trunk@127.0.0.1:{registrar.port}"),
            [
                ("Via", f"SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK{secrets.token_hex(8)}"),
                ("Max-Forwards", "70"),
                ("From", f"<sip:+4917012345678@carrier.example>;tag={secrets.token_hex(4)}"),
                ("To", f"<sip:{DID_A}@carrier.example>"),
                ("Call-ID", secrets.token_hex(8) + "@carrier"),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:carrier@{lhost}:{lport}>"),
            ],
        )
        assert client.request(req, timeout=5).status == 486  # acme's rule answered

    # Removed: un-registered at the carrier, no state left.
    carriers(engine, CarrierSnapshot(numbers={DID_A: "acme.test"}))
    wait_until(lambda: "trunk-5@" not in registrar.dump(), timeout=5)
    wait_until(lambda: not state(), timeout=5)


def test_wrong_password_shows_failed_with_the_reason(
    pbx: Callable[..., EngineHandle],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    registrar: Registrar,
    world: Any,
) -> None:
    """Story: the admin mistypes the carrier's password; the trunk shows "failed" and says
    why (the registrar's 401 after our answer), the carrier holds no binding, and OPTIONS
    still find the carrier there (it answers)."""
    engine = pbx()
    bad = reg_trunk(world, registrar, password="not-the-password")  # noqa: S106
    carriers(engine, CarrierSnapshot(trunks={5: bad}))
    failed = wait_until(lambda: state().get("state") == "failed" and state(), timeout=10)
    assert failed["error"] == "401 Unauthorized from registrar (credentials refused)"
    assert failed["expires"] == "0"
    assert float(failed["checked"]) > time.time() - 10
    assert "trunk-5@" not in registrar.dump()
    pings = engine.call(lambda: engine.pbx.trunks.workers[5].health.pings)  # type: ignore[union-attr]
    assert pings >= 1


def test_ip_trunk_health_up_then_down(
    pbx: Callable[..., EngineHandle],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    registrar: Registrar,
    world: Any,
) -> None:
    """Story: an IP trunk to a carrier that answers OPTIONS is "up"; pointed at an address
    where nothing answers it turns "down" with "no response to OPTIONS"."""
    engine = pbx()
    ip = TrunkSnapshot.read(
        {"id": 6, "kind": "ip", "host": "127.0.0.1", "port": registrar.port,
         "addresses": ["127.0.0.1"], "source_port": registrar.port, "options_interval": 1,
         "tenants": [world.tenant_a.schema_name]}
    )  # fmt: skip
    carriers(engine, CarrierSnapshot(trunks={6: ip}))
    wait_until(lambda: state(6).get("state") == "up", timeout=5)
    dead = TrunkSnapshot.read({**ip.to_dict(), "port": free_port()})
    carriers(engine, CarrierSnapshot(trunks={6: dead}))
    down = wait_until(lambda: state(6).get("state") == "down" and state(6), timeout=10)
    assert down["error"] == "no response to OPTIONS"
