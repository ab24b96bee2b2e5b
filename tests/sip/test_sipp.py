"""SIPp, an independent SIP implementation, registers the conftest extensions with digest auth.

SIPp 3.6 answers the first challenge of a 401 and knows only MD5, so this engine offers MD5 first
(``digest_algorithms``); phones get SHA-256 first by default.
"""

import csv
import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.sip.engine_fixtures import SIP_PASSWORD, worker_redis_url

SCENARIO = Path(__file__).parent / "scenarios" / "register_auth.xml"
USERS = [("101", "acme.test"), ("102", "acme.test"), ("201", "beta.test"), ("202", "beta.test")]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sipp_registers_every_user_with_digest(sip_engine_factory: Any, tmp_path: Path) -> None:
    """Story: 200 authenticated registrations (REGISTER, 401, REGISTER with credentials, 200)
    from SIPp all succeed, spread over two tenants, and end up as one binding per AOR."""
    engine = sip_engine_factory(digest_algorithms=("MD5", "SHA-256"))
    users = tmp_path / "users.csv"
    with users.open("w") as fh:
        fh.write("SEQUENTIAL\n")
        for user, domain in USERS:
            fh.write(f"{user};[authentication username={user} password={SIP_PASSWORD}];{domain}\n")
    stat = tmp_path / "stat.csv"
    calls = 200
    sipp_port = free_udp_port()
    proc = subprocess.run(
        [
            "sipp",
            f"127.0.0.1:{engine.udp_port}",
            "-sf",
            str(SCENARIO),
            "-inf",
            str(users),
            "-m",
            str(calls),
            "-r",
            "400",
            "-l",
            "50",
            "-i",
            "127.0.0.1",
            "-p",
            str(sipp_port),
            "-buff_size",
            "4194304",
            "-nostdin",
            "-timeout",
            "30s",
            "-trace_stat",
            "-stf",
            str(stat),
            "-trace_err",
            "-error_file",
            str(tmp_path / "errors.log"),
        ],  # fmt: skip
        capture_output=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    errors = (tmp_path / "errors.log").read_text() if (tmp_path / "errors.log").exists() else ""
    assert proc.returncode == 0, errors[-2000:]
    rows = list(csv.reader(stat.open(), delimiter=";"))
    col = {name: i for i, name in enumerate(rows[0])}
    last = rows[-1]
    assert int(last[col["SuccessfulCall(C)"]]) == calls
    assert int(last[col["FailedCall(C)"]]) == 0

    r = redis.Redis.from_url(worker_redis_url(), decode_responses=True)
    try:
        for user, domain in USERS:
            [raw] = r.hgetall(f"sip:loc:{domain}:{user}").values()
            b = json.loads(raw)
            assert b["contact"] == f"sip:{user}@127.0.0.1:{sipp_port};transport=UDP"
            assert b["user_agent"] == "SIPp-register"
            assert b["source_port"] == sipp_port
    finally:
        r.close()
