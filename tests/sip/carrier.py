"""The carrier side of trunk tests: SIPp playing the carrier behind a trunk (a UAS on a free
loopback port the trunk points at), the trunk and routing snapshots the tests publish, and
helpers to read what the carrier received.

Carrier scenarios (``scenarios/carrier_uas_*.xml``): ``auth`` challenges every INVITE with 407,
checks our digest answer (403 when wrong), rings and answers with SDP (its media port echoes the
RTP it receives, ``-rtp_echo``); ``503`` refuses every call; ``timer`` answers at once asking us
to refresh the session every 2 s (RFC 4028); ``ring`` rings until cancelled; ``early`` sends 183
with SDP before its 200. Each carrier takes a fixed number of calls and exits; its message trace
is then complete, so "nothing else reached the carrier" is checked by the calls it logged.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.contract import CarrierSnapshot, TrunkSnapshot
from tests.sip.callkit import events
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url
from tests.sip.pjphone import RtpEngineProcess, free_port

__all__ = [
    "E164",
    "NATIONAL",
    "Carrier",
    "carriers",
    "channels",
    "digest_ok",
    "engine",
    "header",
    "publish_carriers",
    "publish_trunks",
    "request_line",
    "routed",
    "routing",
    "rtpengine",
    "rtpengine_port",
    "schema",
    "trunk",
]

SCENARIOS = Path(__file__).parent / "scenarios"
NATIONAL = "0301234567"
E164 = "+49301234567"


class Carrier:
    """One SIPp carrier (UAS) in the background: ``calls`` calls, then it exits."""

    def __init__(self, scenario: str, tmp: Path, calls: int = 1) -> None:
        self.port = free_port()
        self.log = tmp / f"{scenario}-{self.port}.msg"
        self.err = tmp / f"{scenario}-{self.port}.err"
        self.proc = subprocess.Popen(
            [
                "sipp",
                "-sf",
                str(SCENARIOS / f"carrier_uas_{scenario}.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-mi",
                "127.0.0.1",
                "-mp",
                str(free_port()),
                "-rtp_echo",
                "-m",
                str(calls),
                "-nostdin",
                "-timeout",
                "60s",
                "-trace_msg",
                "-message_file",
                str(self.log),
                "-trace_err",
                "-error_file",
                str(self.err),
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp,
        )

    def done(self, timeout: float = 30) -> None:
        """Wait until the carrier took all its calls, successfully."""
        rc = self.proc.wait(timeout)
        assert rc == 0, self.err.read_text() if self.err.exists() else rc

    def invites(self) -> list[str]:
        """Every INVITE the carrier received (initial and re-INVITEs), as text."""
        text = self.log.read_text().replace("\r\n", "\n")
        out = []
        for block in re.split(r"^-{20,}[^\n]*\n", text, flags=re.M):
            m = re.match(r"\w+ message received \[\d+\] bytes :\n\n(.*)", block, re.S)
            if m and m.group(1).startswith("INVITE "):
                out.append(m.group(1).strip())
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def digest_ok(invite: str, password: str = "trunk-secret") -> bool:
    """Whether the INVITE's Proxy-Authorization is the right MD5 answer (RFC 2617, qop=auth)
    for the carrier's nonce, computed here from the password."""
    [value] = header(invite, "Proxy-Authorization")
    p = dict(
        re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)
        and [(k, a or b) for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', value)]
    )
    h = lambda text: hashlib.md5(text.encode()).hexdigest()  # noqa: E731, S324
    ha1 = h(f"{p['username']}:{p['realm']}:{password}")
    ha2 = h(f"INVITE:{p['uri']}")
    want = h(f"{ha1}:{p['nonce']}:{p['nc']}:{p['cnonce']}:auth:{ha2}")
    return p["response"] == want and p["uri"] == request_line(invite).split()[1]


def header(msg: str, name: str) -> list[str]:
    return [v.strip() for n, v in re.findall(r"^([\w-]+):(.*)$", msg, re.M) if n == name]


def request_line(msg: str) -> str:
    return msg.splitlines()[0].strip()


@pytest.fixture
def carriers(tmp_path: Path) -> Iterator[Callable[..., Carrier]]:
    started: list[Carrier] = []

    def start(scenario: str, calls: int = 1) -> Carrier:
        c = Carrier(scenario, tmp_path, calls)
        started.append(c)
        return c

    yield start
    for c in started:
        c.close()


def publish_trunks(engine: EngineHandle, *trunks: TrunkSnapshot) -> None:
    """Publish the carrier snapshot of ``trunks`` (as Django would) and wait until the engine
    holds it."""
    publish_carriers(engine, CarrierSnapshot(trunks={t.id: t for t in trunks}))


def publish_carriers(engine: EngineHandle, snap: CarrierSnapshot) -> None:
    """Publish the carrier snapshot (trunks and DIDs, as Django would) and wait until the
    engine holds it."""
    r = redis.Redis.from_url(worker_redis_url())
    try:
        r.set(contract.key("", contract.CARRIERS), snap.to_json())
        r.publish(contract.key("", contract.CARRIERS_CHANGED), "1")
    finally:
        r.close()
    wait_until(lambda: engine.call(lambda: engine.pbx.directory.carriers == snap))


def schema(engine: EngineHandle, domain: str = "acme.test") -> str:
    t = engine.call(lambda: engine.pbx.directory.tenant(domain))
    assert t is not None
    return t.schema


def trunk(engine: EngineHandle, id: int, carrier: Carrier | int, **kw: Any) -> TrunkSnapshot:
    port = carrier.port if isinstance(carrier, Carrier) else carrier
    fields: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "acct",
        "password": "trunk-secret",
        "tenants": frozenset({schema(engine)}),
        "caller_id": "+4930999",
        # No OPTIONS pings: a SIPp carrier aborts on any request its scenario does not expect
        # (health checks have tests of their own).
        "options_interval": 0,
        **kw,
    }
    return TrunkSnapshot(id=id, name=f"trunk {id}", **fields)


def routing(**kw: Any) -> Callable[[dict], None]:
    """A snapshot change: acme's outside-call routing (national numbers of Germany to trunks
    1 then 2, 0 stripped and +49 prepended; 112 the emergency number)."""

    def change(snap: dict) -> None:
        r = snap.setdefault("routing", {})
        r.update(
            country="DE",
            caller_id="+4930000",
            emergency_caller_id="+4930112",
            outbound=[{"id": 1, "trunks": [1, 2], "prefix": "0", "strip": 1, "prepend": "+49"}],
            emergency=[{"number": "112"}],
        )
        r.update(kw)

    return change


@pytest.fixture
def engine(pbx) -> EngineHandle:
    e = pbx()
    e.call(lambda: setattr(e.pbx.calls.router.handlers["trunk"], "timeout", 0.5))
    return e


def routed(engine: EngineHandle) -> list[dict[str, str]]:
    return [e for e in events(engine) if e["type"] == "call.routed"]


@pytest.fixture
def rtpengine() -> Iterator[RtpEngineProcess]:
    proc = RtpEngineProcess()
    try:
        yield proc
    finally:
        proc.close()


def rtpengine_port(sdp: str) -> bool:
    """Whether the SDP's audio goes to rtpengine (the call is anchored), not to a phone."""
    port = int(re.search(r"^m=audio (\d+)", sdp, re.M).group(1))  # type: ignore[union-attr]
    return port in RtpEngineProcess.ports()


def channels(engine: EngineHandle) -> dict[int, int]:
    """The engine's calls per trunk (its ``TrunkChannels`` counts)."""
    handler = engine.pbx.calls.router.handlers["trunk"]
    return dict(engine.call(lambda: handler.channels.counts))
