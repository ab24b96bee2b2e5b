"""Calls from a carrier's IP trunk to the tenants' DIDs, end to end: the full engine on
loopback, SIPp as the carrier (``carrier_uac.xml``), raw INVITEs from the trunk's port for the
refusals, and a pjsua2 phone as the extension that answers.

Everything runs on 127.0.0.1, so the trunk is told apart from the phones by its source port
(``TrunkSnapshot.source_port``), as a carrier is by its address in production.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from telephony.sip import contract
from telephony.sip.contract import CarrierSnapshot, TrunkSnapshot
from telephony.sip.message import Request, Response, parse_uri
from telephony.sip.security import GuardConfig
from tests.sip.callkit import call_layer, connect, ended, events, register, set_snapshot
from tests.sip.engine_fixtures import (
    EngineHandle,
    SipTestClient,
    wait_until,
    worker_redis_url,
)
from tests.sip.pjphone import Phone, RtpEngineProcess, free_port

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

SCENARIOS = Path(__file__).parent / "scenarios"
DID_A = "+4930555100"  # acme's
DID_B = "+4930555200"  # beta's
UNASSIGNED = "+4930555999"


@pytest.fixture
def carriers() -> Iterator[Callable[[EngineHandle, CarrierSnapshot], None]]:
    """``publish(engine, snapshot)``: the carrier snapshot as Django publishes it; the engine
    holds it when this returns. Removed (with trunk states) at the end of the test."""
    r = redis.Redis.from_url(worker_redis_url())

    def publish(engine: EngineHandle, snapshot: CarrierSnapshot) -> None:
        r.set(contract.key("", contract.CARRIERS), snapshot.to_json())
        r.publish(contract.key("", contract.CARRIERS_CHANGED), "1")
        wait_until(lambda: engine.call(lambda: engine.pbx.directory.carriers == snapshot))

    yield publish
    r.delete(contract.key("", contract.CARRIERS), contract.key("", contract.TRUNK_LEADER))
    for k in r.scan_iter(match="sip:trunk:*"):
        r.delete(k)
    r.close()


def trunk(world: Any, port: int, *, tenants: tuple[Any, ...] | None = None, **kw: Any):
    schemas = [t.schema_name for t in (tenants if tenants is not None else (world.tenant_a,))]
    return TrunkSnapshot.read(
        {"id": 1, "name": "Carrier", "kind": "ip", "addresses": ["127.0.0.1"],
         "source_port": port, "country": "DE", "tenants": schemas, **kw}
    )  # fmt: skip


def pool(*trunks: TrunkSnapshot) -> CarrierSnapshot:
    return CarrierSnapshot(
        trunks={t.id: t for t in trunks},
        numbers={DID_A: "acme.test", DID_B: "beta.test"},
    )


def rules(*rows: dict[str, Any], **routing: Any) -> Callable[[dict], None]:
    def change(snap: dict) -> None:
        snap.setdefault("routing", {}).update({"inbound": list(rows), **routing})

    return change


def ext(number: str) -> dict[str, str]:
    return {"kind": "extension", "target": number}


def refuse(code: int) -> dict[str, str]:
    return {"kind": "reject", "target": str(code)}


def invite(
    client: SipTestClient,
    engine: EngineHandle,
    number: str,
    *,
    caller: str = "+4917012345678",
    from_domain: str = "carrier.example",
) -> Response:
    """An INVITE from the client's address, as a carrier sends one; its final answer."""
    lhost, lport = client.local[0], client.local[1]
    call_id = secrets.token_hex(8) + "@carrier"
    req = Request(
        "INVITE",
        parse_uri(f"sip:{number}@{engine.host}:{engine.udp_port}"),
        [
            ("Via", f"SIP/2.0/UDP {lhost}:{lport};branch=z9hG4bK{secrets.token_hex(8)};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{caller}@{from_domain}>;tag={secrets.token_hex(4)}"),
            ("To", f"<sip:{number}@{engine.host}>"),
            ("Call-ID", call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", f"<sip:carrier@{lhost}:{lport}>"),
        ],
    )
    return client.request(req, timeout=5)


@pytest.fixture
def engine(pbx: Callable[..., EngineHandle]) -> EngineHandle:
    return pbx()


def test_did_rings_the_extension_with_audio_whatever_the_from_domain(
    pbx: Callable[..., EngineHandle],
    phones: Callable[..., Phone],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    world: Any,
    tmp_path: Path,
) -> None:
    """Story: the carrier (SIPp) calls acme's DID, dialled in national form (030 555100, the
    trunk is German), with a From domain of beta.test (forged: only the source counts). Acme's
    rule sends the DID to extension 101, whose phone rings showing the caller's number in
    E.164, answers, and hears its own tone come back through rtpengine and the carrier (SIPp
    echoes the RTP). The events say inbound, trunk 1, DID +4930555100, all in acme."""
    rtp = RtpEngineProcess()
    try:
        engine = pbx(rtpengine=("127.0.0.1", rtp.ng_port))
        sipp_port = free_port()
        carriers(engine, pool(trunk(world, sipp_port)))
        set_snapshot(engine, "acme.test", rules({"id": 1, "number": DID_A, "in_hours": ext("101")}))
        phone = phones("101")
        register(phone, engine, "101")
        proc = subprocess.Popen(
            ["sipp", f"{engine.host}:{engine.udp_port}", "-sf", str(SCENARIOS / "carrier_uac.xml"),
             "-i", "127.0.0.1", "-p", str(sipp_port), "-mi", "127.0.0.1", "-mp", str(free_port()),
             "-s", "030555100", "-key", "caller", "015112345678", "-key", "fromdomain", "beta.test",
             "-m", "1", "-d", "4000", "-rtp_echo", "-nostdin", "-timeout", "30s",
             "-timeout_error", "-trace_err", "-error_file", str(tmp_path / "sipp.err")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
        )  # fmt: skip
        try:
            inc = phone.incoming()
            assert '"Outside Caller" <sip:+4915112345678@acme.test>' in inc["msg"]
            call = inc["call"]
            phone.answer(call, 200)
            phone.wait_state(call, "CONFIRMED")
            live = engine.call(lambda: list(call_layer(engine).calls.by_id.values()))
            assert [(c.tenant.domain, c.anchored) for c in live] == [("acme.test", True)]
            phone.play(call)
            assert phone.wait_audio(call) > 10  # our tone, back from the carrier's echo
            phone.wait_state(call, "DISCONNECTED")  # the carrier's BYE
            assert proc.wait(30) == 0, (tmp_path / "sipp.err").read_text()[-2000:]
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
        wait_until(lambda: not engine.call(lambda: call_layer(engine).calls.by_id))
        evs = events(engine)
        started = next(e for e in evs if e["type"] == "call.started")
        routed = next(e for e in evs if e["type"] == "call.routed")
        assert started["schema"] == world.tenant_a.schema_name
        assert (started["direction"], started["caller"], started["callee"]) == (
            "inbound", "+4915112345678", DID_A)  # fmt: skip
        assert (routed["direction"], routed["trunk"], routed["did"]) == ("inbound", "1", DID_A)
        assert [e["type"] for e in evs if e["call_id"] == started["call_id"]][-1] == "call.ended"
        assert all(e["schema"] == world.tenant_a.schema_name for e in evs)
    finally:
        rtp.close()


def _open_around_now(zone: str, minutes: int) -> list[list[list[int]]]:
    """A weekly schedule open only from ``minutes`` before to ``minutes`` after now on the
    tenant's clock (today only), so the test holds at any hour."""
    now = datetime.now(ZoneInfo(zone))
    minute = now.hour * 60 + now.minute
    week: list[list[list[int]]] = [[] for _ in range(7)]
    week[now.weekday()] = [[max(0, minute - minutes), min(1440, minute + minutes + 1)]]
    return week


def _closed_around_now(zone: str, minutes: int) -> list[list[list[int]]]:
    now = datetime.now(ZoneInfo(zone))
    minute = now.hour * 60 + now.minute
    week: list[list[list[int]]] = [[[0, 1440]] for _ in range(7)]
    today = []
    if minute - minutes > 0:
        today.append([0, minute - minutes])
    if minute + minutes + 1 < 1440:
        today.append([minute + minutes + 1, 1440])
    week[now.weekday()] = today
    return week


def test_office_hours_choose_the_target_by_the_tenant_clock(
    engine: EngineHandle,
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    world: Any,
) -> None:
    """Story: acme (in Auckland, far from UTC) sends its DID to one place in office hours and
    another out of them: with the office open now on Auckland's clock the in-hours target
    answers (486 here), with it closed now the out-of-hours one (603); on a holiday today
    the holiday target (480)."""
    zone = "Pacific/Auckland"
    rule = {"id": 1, "number": DID_A, "in_hours": refuse(486), "out_of_hours": refuse(603),
            "holiday": refuse(480)}  # fmt: skip
    with SipTestClient(engine.host, engine.udp_port) as client:
        carriers(engine, pool(trunk(world, client.local[1])))
        opened = _open_around_now(zone, 20)
        set_snapshot(engine, "acme.test", rules(rule, time_zone=zone, hours=True, weekly=opened))
        assert invite(client, engine, DID_A).status == 486
        closed = _closed_around_now(zone, 20)
        set_snapshot(engine, "acme.test", rules(rule, time_zone=zone, hours=True, weekly=closed))
        assert invite(client, engine, DID_A).status == 603
        today = datetime.now(ZoneInfo(zone)).date().isoformat()
        holidays = [{"start": today, "end": today}]
        set_snapshot(
            engine,
            "acme.test",
            rules(rule, time_zone=zone, hours=True, weekly=opened, holidays=holidays),
        )
        assert invite(client, engine, DID_A).status == 480


def test_blacklist_unknown_and_foreign_dids_and_suspended_tenant(
    engine: EngineHandle,
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    world: Any,
) -> None:
    """Story: a blacklisted caller gets the configured answer (busy 486, reject 603 for a
    prefix); a DID in nobody's pool is 404; beta's DID over a trunk shared only with acme is
    refused (404, as if it did not exist: beta's rules are never read); a rule to a
    destination type no module provides is 480, not a server error; a suspended tenant's DID
    is 403."""
    with SipTestClient(engine.host, engine.udp_port) as client:
        carriers(engine, pool(trunk(world, client.local[1])))
        set_snapshot(engine, "acme.test", rules(
            {"id": 1, "number": DID_A, "in_hours": refuse(486)},
            {"id": 2, "match": "pattern", "number": "+4930556XXX", "in_hours": {"kind": "ivr",
                                                                                "target": "7"}},
            blacklist=[{"number": "+4917099999"},
                       {"number": "+49180", "prefix": True, "action": "reject"}]))  # fmt: skip
        set_snapshot(
            engine, "beta.test", rules({"id": 1, "number": DID_B, "in_hours": refuse(486)})
        )
        assert invite(client, engine, DID_A, caller="+4917099999").status == 486
        assert invite(client, engine, DID_A, caller="01801234567").status == 603
        assert invite(client, engine, DID_A, caller="+4917011111").status == 486  # the rule's
        assert invite(client, engine, UNASSIGNED).status == 404
        assert invite(client, engine, DID_B).status == 404  # beta's DID, acme's trunk
        more = pool(trunk(world, client.local[1]))
        more.numbers["+4930556123"] = "acme.test"
        carriers(engine, more)
        assert invite(client, engine, "+4930556123").status == 480  # a menu that is gone
        set_snapshot(engine, "acme.test", lambda s: s.update(status="suspended"))
        assert invite(client, engine, DID_A).status == 403
    statuses = {e["status"] for e in events(engine) if e["type"] == "call.ended"}
    assert statuses <= {"busy", "no_answer", "failed"}


def test_invites_from_unknown_addresses_are_refused_and_counted(
    pbx: Callable[..., EngineHandle],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    world: Any,
) -> None:
    """Story: someone who is no carrier sends INVITEs to acme's DID with made-up From domains
    (toll-fraud probing): each is refused with the same 403 whatever the domain, the guard
    counts them like failed authentications, and the third gets the address banned: the
    fourth is not answered at all."""
    guard = GuardConfig(max_requests=100_000, request_window=1.0, max_failures=3)
    engine = pbx(engine={"guard": guard})
    carriers(engine, pool(trunk(world, free_port())))  # a trunk, but on another port
    with SipTestClient(engine.host, engine.udp_port) as client:
        first = invite(client, engine, DID_A, from_domain="nowhere.example")
        second = invite(client, engine, DID_A, from_domain="elsewhere.example")
        assert (first.status, second.status) == (403, 403)
        assert first.reason == second.reason
        assert engine.call(lambda: engine.pbx.guard.strangers) == 2
        assert invite(client, engine, DID_A, from_domain="acme.example").status == 403
        assert engine.call(lambda: engine.pbx.guard.strangers) == 3
        with pytest.raises(TimeoutError):
            invite(client, engine, DID_A, from_domain="nowhere.example")
    r = redis.Redis.from_url(worker_redis_url())
    try:
        wait_until(lambda: r.exists("sip:ban:127.0.0.1"))
    finally:
        r.delete("sip:ban:127.0.0.1")
        r.close()
    assert not events(engine)  # no call was ever made


def test_phones_behind_a_carriers_address_still_call_each_other(
    pbx: Callable[..., EngineHandle],
    phones: Callable[..., Phone],
    carriers: Callable[[EngineHandle, CarrierSnapshot], None],
    world: Any,
) -> None:
    """Story: acme's trunk names the carrier by its address alone (no port), and acme's phones
    send from that same address (one office NAT with the carrier's SBC; here all of
    127.0.0.1). A DID call from there is the carrier's; a phone's call to an extension is no
    DID of the trunk's tenants and names acme's domain, so it goes on to the extension path
    and its digest check: 101 still reaches 102. Someone at that address naming acme's domain
    without acme's credentials gets only the challenge."""
    engine = pbx()
    carriers(engine, pool(trunk(world, 0)))  # source_port 0: all of 127.0.0.1 is the carrier
    set_snapshot(engine, "acme.test", rules({"id": 1, "number": DID_A, "in_hours": refuse(486)}))
    a, b = phones("101"), phones("102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca, cb = connect(a, acc_a, b)
    a.hangup(ca)
    assert ended(b, cb) == 200
    with SipTestClient(engine.host, engine.udp_port) as client:
        assert invite(client, engine, DID_A).status == 486  # the carrier's DID call, its rule
        assert invite(client, engine, "102", from_domain="acme.test").status == 407
        assert invite(client, engine, UNASSIGNED).status == 404
