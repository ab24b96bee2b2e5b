"""SIPp calls through the B2BUA, and the CDRs the real consumer writes for them.

SIPp plays both phones: the callee (``call_uas.xml``) registers 102 from its port and answers
every call; the caller registers 101 from its own port and places the calls with digest auth
(``call_uac_auth.xml``: INVITE, 407, INVITE with credentials, 180, 200, ACK, BYE). SIPp 3.6
knows only MD5 and answers the first challenge, so this engine offers MD5 first.
"""

from __future__ import annotations

import csv
import gc
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from telephony.engine.cdr import CdrConsumer
from telephony.sip.calls import Call, Leg
from telephony.sip.transaction import ClientTransaction, ServerTransaction
from tests.sip.engine_fixtures import SIP_PASSWORD, EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

SCENARIOS = Path(__file__).parent / "scenarios"
CALLS = 20


def sipp(engine: EngineHandle, port: int, scenario: str, users: Path, tmp: Path, *args: str):
    """Run one SIPp scenario from ``port`` against the engine; returns its statistics row."""
    stat = tmp / f"{scenario}-{port}.csv"
    errors = tmp / f"{scenario}-{port}.err"
    proc = subprocess.run(
        [
            "sipp",
            f"{engine.host}:{engine.udp_port}",
            "-sf",
            str(SCENARIOS / scenario),
            "-inf",
            str(users),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_stat",
            "-stf",
            str(stat),
            "-trace_err",
            "-error_file",
            str(errors),
            *args,
        ],  # fmt: skip
        capture_output=True,
        timeout=90,
        check=False,
        cwd=tmp,
    )
    log = errors.read_text() if errors.exists() else proc.stderr.decode()
    assert proc.returncode == 0, log[-2000:]
    rows = list(csv.reader(stat.open(), delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False))


def users_file(path: Path, *rows: tuple[str, ...]) -> Path:
    with path.open("w") as fh:
        fh.write("SEQUENTIAL\n")
        for user, *rest in rows:
            auth = f"[authentication username={user} password={SIP_PASSWORD}]"
            fh.write(";".join([user, auth, *rest]) + "\n")
    return path


def test_sipp_calls_complete_and_make_cdrs(
    sip_engine_factory: Any, tmp_path: Path, in_tenant: Any, world: Any
) -> None:
    """Story: 101 calls 102 twenty times; every call is answered and hung up (SIPp counts 0
    failures) and the CDR consumer files twenty answered CDRs 101 -> 102 in acme, none in
    beta. Once the calls and their transactions are over, the engine holds nothing of them:
    its tables are empty and reference counting alone has freed every call and leg (the cycle
    collector is off meanwhile: the engine tunes it to run full collections rarely, and calls
    left to it were kept, ~15 KB each, RSS growing without bound)."""
    engine = sip_engine_factory(digest_algorithms=("MD5", "SHA-256"))
    gc.collect()
    gc.disable()
    try:
        _calls_with_sipp(engine, tmp_path)
        layer = engine.pbx.calls
        tl = engine.pbx.engine.transactions
        wait_until(lambda: engine.call(lambda: not layer.calls.by_id))
        wait_until(lambda: engine.call(lambda: not (tl.clients or tl.servers)), timeout=10)
        assert engine.call(
            lambda: (layer.calls.legs, layer.limits.counts, layer.calls.tasks, tl._awaiting_ack)
        ) == ({}, {}, set(), {})
        wait_until(lambda: not live(Call, Leg, ClientTransaction, ServerTransaction), timeout=10)
    finally:
        gc.enable()
    engine.run(engine.pbx.events.flush())
    from telephony.models import Cdr

    r = redis.Redis.from_url(worker_redis_url())
    try:
        CdrConsumer(r, consumer="test").drain()
    finally:
        r.close()
    with in_tenant(world.tenant_a):
        cdrs = list(Cdr.objects.all())
        assert len(cdrs) == CALLS
        assert {(c.caller_number, c.callee_number, c.status) for c in cdrs} == {
            ("101", "102", "answered")
        }
        assert all(c.ended_at is not None and c.segments.count() == 1 for c in cdrs)
    with in_tenant(world.tenant_b):
        assert not Cdr.objects.exists()


def live(*types: type) -> int:
    """How many objects of these types exist (garbage included: the collector is off).

    ``type()``, not ``isinstance``: a dead weak proxy among the objects raises on ``isinstance``.
    """
    return sum(1 for o in gc.get_objects() if issubclass(type(o), types))


def _calls_with_sipp(engine: EngineHandle, tmp_path: Path) -> None:
    """101 calls 102 ``CALLS`` times, both played by SIPp."""
    uas_port, uac_port = free_port(), free_port()
    callee = users_file(tmp_path / "callee.csv", ("102", "acme.test"))
    caller = users_file(tmp_path / "caller.csv", ("101", "acme.test", "102"))
    # Each phone registers from the port it then calls or answers on.
    sipp(engine, uas_port, "register_auth.xml", callee, tmp_path, "-m", "1")
    sipp(engine, uac_port, "register_auth.xml", caller, tmp_path, "-m", "1")
    uas = subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(SCENARIOS / "call_uas.xml"),
            "-i",
            "127.0.0.1",
            "-p",
            str(uas_port),
            "-m",
            str(CALLS),
            "-nostdin",
            "-timeout",
            "60s",
            "-trace_err",
            "-error_file",
            str(tmp_path / "uas.err"),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    try:
        stats = sipp(
            engine, uac_port, "call_uac_auth.xml", caller, tmp_path,
            "-m", str(CALLS), "-r", "10", "-l", "5", "-d", "200",
        )  # fmt: skip
        assert int(stats["SuccessfulCall(C)"]) == CALLS
        assert int(stats["FailedCall(C)"]) == 0
        assert uas.wait(30) == 0
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait(5)


def test_cdrs_survive_a_stopped_consumer(
    sip_engine_factory: Any, tmp_path: Path, in_tenant: Any, world: Any, caplog: Any
) -> None:
    """Story: the CDR consumer is stopped while twenty calls are made: more events than the
    stream may hold (a cap of 30 here; 1,000,000 by default). The engine trims nothing; at the
    cap it keeps the rest in its queue and logs an alert. The consumer starts again: every call
    has its CDR, and what was acknowledged has left the stream."""
    from telephony.models import Cdr

    def small_cap(pbx: Any) -> None:
        pbx.events.cap = 30

    engine = sip_engine_factory(digest_algorithms=("MD5", "SHA-256"), on_build=small_cap)
    r = redis.Redis.from_url(worker_redis_url())
    try:
        consumer = CdrConsumer(r, consumer="test")
        consumer.ensure_group()  # the group exists; its consumer is stopped
        _calls_with_sipp(engine, tmp_path)
        wait_until(lambda: engine.call(lambda: engine.pbx.events.at_cap))
        assert r.xlen("sip:events") == 30
        assert "is at its cap of 30 entries" in caplog.text

        def every_call_has_its_cdr() -> bool:
            consumer.drain()
            with in_tenant(world.tenant_a):
                return Cdr.objects.filter(ended_at__isnull=False).count() == CALLS

        wait_until(every_call_has_its_cdr, timeout=30, interval=0.2)
        engine.run(engine.pbx.events.flush())
        consumer.drain()
        assert r.xlen("sip:events") == 0
        with in_tenant(world.tenant_a):
            assert {(c.caller_number, c.status) for c in Cdr.objects.all()} == {("101", "answered")}
    finally:
        r.close()
