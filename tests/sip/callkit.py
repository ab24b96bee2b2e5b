"""Helpers for end-to-end call tests: engines with a configured call layer, pjsua2 phones,
registration and dialling, the engine's call events and routing-snapshot changes.

The fixtures ``pbx`` and ``phones`` are made available to every test under ``tests/sip`` by
``tests/sip/conftest.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.calls import CallLayer
from telephony.sip.config import CallConfig
from telephony.sip.contract import ha1
from tests.sip.engine_fixtures import SIP_PASSWORD, EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import Phone

__all__ = [
    "add_extension",
    "call_layer",
    "connect",
    "dial",
    "drain_cdr_stream",
    "ended",
    "events",
    "media_engine",
    "pbx",
    "phones",
    "register",
    "set_snapshot",
    "two_way_audio",
]


def call_layer(engine: EngineHandle) -> CallLayer:
    return engine.pbx.calls


@pytest.fixture
def pbx(sip_engine_factory: Callable[..., EngineHandle]) -> Callable[..., EngineHandle]:
    """Start an engine whose call layer has ``CallConfig(**kw)``; ``engine`` passes options
    to ``running_engine`` (digest algorithms, timers...)."""

    def start(*, engine: dict[str, Any] | None = None, **kw: Any) -> EngineHandle:
        config = CallConfig(**{"no_answer_timeout": 10.0, **kw})

        def configure(p: Any) -> None:
            p.calls.configure(config)

        return sip_engine_factory(on_build=configure, **(engine or {}))

    return start


@pytest.fixture
def phones() -> Iterator[Callable[..., Phone]]:
    """``make(name, **Phone kwargs)``: pjsua2 phones, all closed at the end of the test."""
    started: list[Phone] = []

    def make(name: str, **kw: Any) -> Phone:
        p = Phone(name, **kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.close()


def register(phone: Phone, engine: EngineHandle, user: str, domain: str = "acme.test") -> int:
    proxy = f"sip:{engine.host}:{engine.udp_port};lr"
    return phone.account(user, domain, proxy, SIP_PASSWORD)


def dial(phone: Phone, acc: int, number: str, domain: str = "acme.test") -> int:
    return phone.call(acc, f"sip:{number}@{domain}")


def events(
    engine: EngineHandle, call_id: str | None = None, *, kind: str = "call."
) -> list[dict[str, str]]:
    """The engine's events so far (after flushing its sink) whose type starts with ``kind``
    (call events by default; a whole type, ``"queue.left"``, names one), optionally of one
    call."""
    engine.run(engine.pbx.events.flush())
    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        out = [e for _, e in r.xrange(engine.pbx.config.redis_prefix + "sip:events")]
    finally:
        r.close()
    found = [e for e in out if e["type"].startswith(kind)]
    return [e for e in found if call_id is None or e.get("call_id") == call_id]


def connect(a: Phone, acc_a: int, b: Phone, number: str = "102") -> tuple[int, int]:
    """a dials ``number``; b answers; both CONFIRMED. Returns (a's call, b's call)."""
    ca = dial(a, acc_a, number)
    cb = b.incoming()["call"]
    b.answer(cb, 180)
    a.wait_state(ca, "EARLY")
    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    b.wait_state(cb, "CONFIRMED")
    return ca, cb


def set_snapshot(engine: EngineHandle, domain: str, change: Callable[[dict], None]) -> None:
    """Change a tenant's published snapshot (as Django would) and wait until the engine holds
    exactly that snapshot."""
    r = redis.Redis.from_url(worker_redis_url())
    try:
        key = contract.key("", contract.SNAPSHOT, domain=domain)
        snap = json.loads(r.get(key))
        change(snap)
        raw = json.dumps(snap)
        r.set(key, raw)
        r.publish(contract.SNAPSHOT_CHANGED, domain)
    finally:
        r.close()
    expected = contract.TenantSnapshot.from_json(raw)
    wait_until(lambda: engine.call(lambda: engine.pbx.directory.tenant(domain) == expected))


def add_extension(number: str, **fields: Any) -> Callable[[dict], None]:
    """A snapshot change adding acme extension ``number`` (HA1s from its own number)."""

    def change(snap: dict) -> None:
        snap["extensions"][number] = {
            **snap["extensions"]["102"],
            "display_name": f"Acme {number}",
            "caller_id_name": f"Acme {number}",
            "caller_id_number": number,
            "ha1_md5": ha1("MD5", number, "acme.test", SIP_PASSWORD),
            "ha1_sha256": ha1("SHA-256", number, "acme.test", SIP_PASSWORD),
            **fields,
        }

    return change


def ended(phone: Phone, call: int) -> int:
    """Wait for the call to end on ``phone``; its last status code."""
    return int(phone.wait_state(call, "DISCONNECTED")["code"])


def two_way_audio(a: Phone, ca: int, b: Phone, cb: int) -> None:
    """Both phones play their tone on their call; each hears the other."""
    a.play(ca)
    b.play(cb)
    assert a.wait_audio(ca) > 10
    assert b.wait_audio(cb) > 10


def drain_cdr_stream() -> None:
    """The Django side reads the engine's events and requests so far as in production, through
    the (unchanged) CDR consumer: CDRs filed, ``feature.set`` and the like applied."""
    from telephony.engine.cdr import CdrConsumer

    r = redis.Redis.from_url(worker_redis_url())
    try:
        CdrConsumer(r, consumer="test").drain()
    finally:
        r.close()


@contextmanager
def media_engine(
    pbx: Callable[..., EngineHandle],
    media_dir: str,
    *,
    recording_dir: Path | None = None,
    engine: dict[str, Any] | None = None,
) -> Iterator[EngineHandle]:
    """An engine (from the ``pbx`` fixture) with rtpengine and our media server, both started
    here and stopped after; its files (prompts, music, greetings) under ``media_dir``. With
    ``recording_dir``, rtpengine records there and reports DTMF to the engine; ``engine``:
    options of the engine itself (a TLS certificate...)."""
    from tests.media.server import MediaServerProcess
    from tests.sip.pjphone import RtpEngineProcess, free_port

    recording: dict[str, Any] = {}
    if recording_dir is None:
        rtp = RtpEngineProcess()
    else:
        dtmf = free_port()
        rtp = RtpEngineProcess(recording_dir=str(recording_dir), dtmf_port=dtmf)
        recording = {"recording_dir": str(recording_dir), "dtmf_listen": ("127.0.0.1", dtmf)}
    server = MediaServerProcess()
    try:
        own = {"engine": engine} if engine else {}  # a wrapped ``pbx`` may set its own
        handle = pbx(
            **own,
            rtpengine=("127.0.0.1", rtp.ng_port),
            media_server=server.control,
            media_dir=media_dir,
            **recording,
        )
        wait_until(lambda: handle.call(lambda: handle.pbx.calls.media.available), 10)
        yield handle
    finally:
        server.close()
        rtp.close()
