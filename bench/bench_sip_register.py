"""Authenticated REGISTER/s: our engine against Kamailio, same SIPp scenario, same run.

    .venv/bin/python bench/bench_sip_register.py [--calls 40000] [--users 100000] [--profile]

What it does, all on loopback:

1. publishes a synthetic tenant ``bench.test`` (users 100000.., password ``pw<user>``, as the
   Kamailio reference config expects) to Redis under a private key prefix — no database needed;
2. starts our engine in a child process (uvloop; the bench address is on the guard's allow-list,
   otherwise the flood limit would ban SIPp) and Kamailio with
   ``/work/shared/bench-reference/kamailio-registrar.cfg`` (udp 127.0.0.1:5080);
3. runs ``tests/sip/scenarios/register_auth.xml`` with SIPp (``-buff_size 4194304``) against each,
   as fast as it goes with a cap on outstanding transactions, and prints REGISTER/s, failures and
   retransmissions, and our rate as a ratio of Kamailio's;
4. registers ``--users`` distinct users and prints the engine's RSS.

``--profile`` runs the engine under cProfile and prints the top functions afterwards.
Everything written to Redis under the private prefix is deleted at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "tests" / "sip" / "scenarios" / "register_auth.xml"
KAMAILIO_CFG = Path("/work/shared/bench-reference/kamailio-registrar.cfg")
DOMAIN = "bench.test"
SCHEMA = "t_bench"
FIRST_USER = 100000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------------- fixtures


def publish_tenant(redis_url: str, prefix: str, users: int, routing=None) -> None:
    """One tenant's routing snapshot, published as ``telephony/engine/snapshots.py`` does
    (``routing``: a ``contract.RoutingSnapshot`` for outside calls)."""
    import redis

    from telephony.sip import contract

    extensions = {}
    for n in range(FIRST_USER, FIRST_USER + users):
        u = str(n)
        extensions[u] = contract.ExtensionSnapshot(
            number=u,
            display_name=f"Bench {u}",
            ha1_md5=contract.ha1("MD5", u, DOMAIN, f"pw{u}"),
            ha1_sha256=contract.ha1("SHA-256", u, DOMAIN, f"pw{u}"),
            max_registrations=3,
            caller_id_number=u,
        )
    snap = contract.TenantSnapshot(
        tenant_id=999999, schema=SCHEMA, domain=DOMAIN, extensions=extensions,
        routing=routing or contract.RoutingSnapshot(),
    )  # fmt: skip
    r = redis.Redis.from_url(redis_url)
    r.set(contract.key(prefix, contract.SNAPSHOT, domain=DOMAIN), snap.to_json())
    r.sadd(contract.key(prefix, contract.DOMAINS), DOMAIN)
    r.close()


def cleanup(redis_url: str, prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=prefix + "*", count=5000))
    for i in range(0, len(keys), 5000):
        r.delete(*keys[i : i + 5000])
    r.close()


def write_csv(path: Path, users: int, first: int = FIRST_USER) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_NONE, lineterminator="\n")
        fh.write("SEQUENTIAL\n")
        for n in range(first, first + users):
            w.writerow([n, f"[authentication username={n} password=pw{n}]", DOMAIN])


# ----------------------------------------------------------------------------- processes


def engine_config(port: int, redis_url: str, prefix: str, **kw: Any) -> Any:
    """A bench engine's ``PbxConfig``: udp ``port`` on loopback, its Redis under ``prefix``,
    the bench address on the guard's allow-list (else the flood limit would ban the load);
    ``kw``: the bench's own settings."""
    from telephony.sip.app import PbxConfig
    from telephony.sip.security import GuardConfig
    from telephony.sip.server import EngineConfig

    kw.setdefault("guard", GuardConfig(allow_list=("127.0.0.1",)))
    return PbxConfig(
        engine=EngineConfig(host="127.0.0.1", udp_port=port, tcp_port=None, product="Bench PBX"),
        redis_url=redis_url,
        redis_prefix=prefix,
        nonce_secret=secrets.token_bytes(32),
        **kw,
    )


def serve(port: int, redis_url: str, prefix: str, profile: str | None) -> None:
    """The child process: our engine on udp ``port`` until SIGTERM."""
    import asyncio
    import logging

    from telephony.sip.app import build_engine
    from telephony.sip.registrar import RegistrarConfig

    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("BENCH_RCVBUF"):  # bytes asked for the UDP receive buffer (experiments)
        from telephony.sip import transport

        transport.UDP_RCVBUF = int(os.environ["BENCH_RCVBUF"])
    config = engine_config(
        port,
        redis_url,
        prefix,
        # SIPp 3.6 answers the first challenge and knows only MD5 (phones pick SHA-256).
        digest_algorithms=tuple(os.environ.get("BENCH_ALGS", "MD5,SHA-256").split(",")),
        registrar=RegistrarConfig(),
    )

    async def main() -> None:
        pbx = build_engine(config)
        await pbx.start()
        pbx.tune_gc()  # as serve_forever() does in production
        if os.environ.get("BENCH_NOGC"):
            import gc

            gc.disable()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        print("READY", flush=True)
        await stop.wait()
        await pbx.stop()

    run_engine(main, profile)


def run_engine(main: Callable[[], Coroutine[Any, Any, None]], profile: str | None) -> None:
    """``main()`` on uvloop (as the engine runs in production); under cProfile, its stats
    written to ``profile``, when one is given."""
    import uvloop

    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
        uvloop.run(main())
        prof.disable()
        prof.dump_stats(profile)
    else:
        uvloop.run(main())


@contextlib.contextmanager
def process(
    cmd: list[str], ready: str, name: str, *, wait: float = 30.0, stderr: int | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A child process (run from the repository root) once it has printed ``ready``; sent
    SIGTERM on the way out and killed when it has not stopped ``wait`` seconds later."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{name} exited at start")
            if ready in line:
                break
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def engine_process(
    port: int, redis_url: str, prefix: str, profile: str | None
) -> Iterator[subprocess.Popen[str]]:
    cmd = [sys.executable, __file__, "--serve", str(port), "--redis-url", redis_url]
    cmd += ["--prefix", prefix] + (["--profile-out", profile] if profile else [])
    # Under cProfile, stopping and writing the profile takes a while.
    with process(cmd, "READY", "engine", wait=120) as proc:
        yield proc


@contextlib.contextmanager
def kamailio_process() -> Iterator[subprocess.Popen[bytes] | None]:
    if shutil.which("kamailio") is None or not KAMAILIO_CFG.exists():
        yield None
        return
    pid = Path(tempfile.mkdtemp()) / "kam.pid"
    proc = subprocess.Popen(
        ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-P", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # up when it answers OPTIONS
            if _options_ok(5080):
                break
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _options_ok(port: int) -> bool:
    msg = (
        f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK1\r\n"
        "From: <sip:probe@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: probe\r\n"
        "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.bind(("127.0.0.1", 0))
        s.sendto(msg, ("127.0.0.1", port))
        try:
            return s.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ----------------------------------------------------------------------------------- SIPp


def run_sipp(port: int, users_csv: Path, calls: int, limit: int, rate: int) -> dict[str, float]:
    """Run the scenario; returns successes, failures, retransmissions, elapsed and rate."""
    with tempfile.TemporaryDirectory() as tmp:
        stat = Path(tmp) / "stat.csv"
        cmd = [
            "sipp", f"127.0.0.1:{port}", "-sf", str(SCENARIO), "-inf", str(users_csv),
            "-m", str(calls), "-l", str(limit), "-r", str(rate), "-i", "127.0.0.1",
            "-p", str(free_port()), "-buff_size", "4194304", "-nostdin", "-timeout", "120s",
            "-trace_stat", "-stf", str(stat), "-fd", "1",
        ]  # fmt: skip
        started = time.monotonic()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        elapsed = time.monotonic() - started
        rows = list(csv.reader(stat.open(), delimiter=";"))
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}

    def val(name: str) -> float:
        return float(last[col[name]])

    success = val("SuccessfulCall(C)")
    # SIPp's own elapsed time excludes its start-up; fall back to the wall clock.
    sipp_elapsed = _hms(last[col["ElapsedTime(C)"]]) or elapsed
    return {
        "success": success,
        "failed": val("FailedCall(C)"),
        "retrans": val("Retransmissions(C)"),
        "elapsed": sipp_elapsed,
        "rate": success / sipp_elapsed if sipp_elapsed else 0.0,
    }


def _hms(text: str) -> float:
    try:
        h, m, s, us = text.split(":")  # SIPp: HH:MM:SS:microseconds
        return int(h) * 3600 + int(m) * 60 + int(s) + int(us) / 1e6
    except ValueError:
        return 0.0


def report(name: str, r: dict[str, float]) -> None:
    print(
        f"  {name:<10} {r['rate']:>9,.0f} REGISTER/s  ({r['success']:,.0f} ok, "
        f"{r['failed']:,.0f} failed, {r['retrans']:,.0f} retransmissions, {r['elapsed']:.1f} s)"
    )


# ----------------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=40_000, help="REGISTER dialogs per target")
    ap.add_argument("--users", type=int, default=100_000, help="users for the RSS figure")
    ap.add_argument("--limit", type=int, default=2_000, help="SIPp outstanding calls cap")
    ap.add_argument("--rate", type=int, default=50_000, help="SIPp offered call rate")
    ap.add_argument(
        "--redis-url", default=os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.redis_url, args.prefix, args.profile_out)
        return

    prefix = f"bench:{secrets.token_hex(4)}:"
    users = max(args.users, args.calls)
    # A private file: /tmp is shared with other people's runs of this benchmark.
    profile = (
        str(Path(tempfile.mkdtemp(prefix="bench-reg-")) / "engine.prof") if args.profile else None
    )
    print(f"SIP REGISTER benchmark ({os.cpu_count()} cores, SIPp {_sipp_version()})")
    try:
        publish_tenant(args.redis_url, prefix, users)
        with tempfile.TemporaryDirectory() as tmp:
            bench_csv = Path(tmp) / "bench.csv"
            write_csv(bench_csv, min(args.calls, users))
            port = free_port()
            with engine_process(port, args.redis_url, prefix, profile) as proc:
                cpu0 = cpu_seconds(proc.pid)
                ours = run_sipp(port, bench_csv, args.calls, args.limit, args.rate)
                ours_cpu = cpu_seconds(proc.pid) - cpu0
                # RSS with --users distinct users registered (the first run registered
                # --calls of them already)
                if users > args.calls:
                    rest = Path(tmp) / "rest.csv"
                    write_csv(rest, users - args.calls, FIRST_USER + args.calls)
                    fill = run_sipp(port, rest, users - args.calls, args.limit, args.rate)
                else:
                    fill = {"success": 0.0, "failed": 0.0}
                rss = rss_kib(proc.pid)
            with kamailio_process() as kam:
                theirs = (
                    run_sipp(5080, bench_csv, args.calls, args.limit, args.rate) if kam else None
                )
        print("Authenticated REGISTER (401 challenge + REGISTER with digest + 200), UDP loopback:")
        report("ours", ours)
        if ours["success"]:
            per = ours_cpu / ours["success"] * 1e6
            print(
                f"  engine CPU: {per:,.0f} us per registration "
                f"(= {1e6 / per:,.0f} REGISTER/s per fully used core)"
            )
        if theirs is not None:
            report("kamailio", theirs)
            ratio = ours["rate"] / theirs["rate"] if theirs["rate"] else 0.0
            print(f"  ratio ours/kamailio: {ratio:.2f}")
        else:
            print("  kamailio: not installed, no ratio")
        registered = args.calls + fill["success"] - 0
        print(
            f"Engine RSS with {registered:,.0f} registrations of {users:,} users "
            f"(fill failures {fill['failed']:,.0f}): {rss / 1024:,.1f} MiB"
        )
    finally:
        cleanup(args.redis_url, prefix)
    if profile:
        import pstats

        if not Path(profile).exists():
            print("no profile: the engine did not write one")
            return
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


def _sipp_version() -> str:
    out = subprocess.run(["sipp", "-v"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        if word.startswith("v3"):
            return word.split("-")[0]
    return "?"


if __name__ == "__main__":
    main()
