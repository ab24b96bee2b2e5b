"""Calls through the B2BUA: extension-to-extension and inbound DID calls/s (in one run, with
their ratio) with CDRs written, and calls held.

    .venv/bin/python bench/bench_sip_calls.py [--calls 6000] [--rate 400] [--concurrent 20000]
                                              [--hold 120] [--profile] [--no-cdr]

All on loopback, engine in a child process (uvloop), media direct (SDP only, no RTP):

1. a scratch database with one tenant ``bench.test`` (schema ``t_bench``, via ``setup_pbx`` and
   ``do_create_tenant``) for the CDRs, and a synthetic routing snapshot of that domain (users
   100000.., password ``pw<user>``) under a private Redis prefix, published as
   ``bench_sip_register`` does; the callee 100001 gets one binding pointing at a SIPp UAS;
2. **calls/s**: SIPp ``call_uac_auth.xml`` (INVITE, 407, INVITE with digest, 180, 200, ACK,
   BYE at once) against SIPp ``call_uas.xml`` through the engine, as fast as it goes under a
   cap on calls in progress; prints calls/s, failures and retransmissions, then drains the
   event stream into CDRs with the real consumer (``telephony.engine.cdr``) and prints CDRs/s
   and that every completed call has exactly one CDR;
   then **inbound DID calls/s**: SIPp ``carrier_uac.xml`` plays the carrier on an IP trunk
   (known by its address and source port) calling a DID whose inbound rule rings the same
   callee; printed with the ratio to the extension calls, CDRs drained for both;
3. **calls held**: the same scenario with a long hold time at ``--rate`` until ``--concurrent``
   calls are up (or the engine stops keeping up); prints the peak of answered calls in the
   engine's active-call mirror and the engine's RSS;
4. ``--profile``: the engine under cProfile during step 2, top functions by own time.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sip_register as reg  # noqa: E402 -- after the path set-up above

UAC = ROOT / "tests" / "sip" / "scenarios" / "call_uac_auth.xml"
UAS = ROOT / "tests" / "sip" / "scenarios" / "call_uas.xml"
CARRIER = ROOT / "tests" / "sip" / "scenarios" / "carrier_uac.xml"
DOMAIN = reg.DOMAIN
CALLER, CALLEE = "100000", "100001"
DID = "+15550100001"
TRUNK_ID = 1


def publish_trunk(redis_url: str, prefix: str, carrier_port: int) -> None:
    """An IP trunk from SIPp's address and port, the DID assigned to the bench tenant and an
    inbound rule DID -> the callee (what ``telephony/engine/carriers.py`` and the tenant
    snapshot publish)."""
    import redis

    from telephony.sip import contract

    trunk = contract.TrunkSnapshot(
        id=TRUNK_ID, name="Bench carrier", host="127.0.0.1", addresses=("127.0.0.1",),
        source_port=carrier_port, options_interval=0, tenants=frozenset({"t_bench"}),
    )  # fmt: skip
    carriers = contract.CarrierSnapshot({TRUNK_ID: trunk}, {DID: DOMAIN})
    rule = contract.InboundRule(1, DID, in_hours=contract.RouteTarget("extension", CALLEE))
    reg.publish_tenant(redis_url, prefix, 2, contract.RoutingSnapshot(inbound=(rule,)))
    r = redis.Redis.from_url(redis_url)
    r.set(contract.key(prefix, contract.CARRIERS), carriers.to_json())
    r.publish(contract.key(prefix, contract.CARRIERS_CHANGED), "1")
    r.publish(contract.key(prefix, contract.SNAPSHOT_CHANGED), DOMAIN)
    r.close()


def bind_callee(redis_url: str, prefix: str, port: int) -> None:
    """One registered contact for the callee, as the registrar stores it."""
    import redis

    from telephony.sip.registrar import Binding

    contact = f"sip:{CALLEE}@127.0.0.1:{port}"
    b = Binding(
        aor=f"{CALLEE}@{DOMAIN}",
        contact=contact,
        expires_at=time.time() + 86400,
        transport="UDP",
        source_host="127.0.0.1",
        source_port=port,
        flow=None,
        user_agent="SIPp UAS",
        instance=None,
        reg_id=None,
        registered_at=time.time(),
    )
    r = redis.Redis.from_url(redis_url)
    r.hset(f"{prefix}sip:loc:{DOMAIN}:{CALLEE}", b.key, b.to_json())
    r.close()


def caller_csv(path: Path) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, delimiter=";", quoting=csv.QUOTE_NONE, lineterminator="\n")
        fh.write("SEQUENTIAL\n")
        w.writerow([CALLER, f"[authentication username={CALLER} password=pw{CALLER}]", DOMAIN,
                    CALLEE])  # fmt: skip


def start_uas(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    # In the foreground (no -bg): a backgrounded SIPp forks away from this Popen, so
    # terminate() at the end missed it and every run left a UAS behind.
    return subprocess.Popen(
        [
            "sipp",
            "-sf",
            str(UAS),
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-nostdin",
            "-buff_size",
            "4194304",
            "-max_socket",
            "65000",
            "-trace_err",
            "-error_file",
            str(tmp / "uas_err.log"),
        ],  # fmt: skip
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp,
    )


def run_uac(
    port: int, csv_path: Path | None, tmp: Path, *, calls: int, rate: int, limit: int,
    hold_ms: int, timeout: float, carrier_port: int = 0,
) -> dict[str, float]:  # fmt: skip
    """SIPp as the extension (``csv_path``: callers and credentials), or as the carrier
    calling the DID from ``carrier_port``."""
    stat = tmp / f"uac_{int(time.time() * 1000)}.csv"
    if carrier_port:
        who = ["-sf", str(CARRIER), "-s", DID, "-p", str(carrier_port), "-key", "caller",
               "+15557770000", "-key", "fromdomain", "carrier.example"]  # fmt: skip
    else:
        who = ["-sf", str(UAC), "-inf", str(csv_path)]
    cmd = ["sipp", f"127.0.0.1:{port}", *who, "-i",
           "127.0.0.1", "-m", str(calls), "-r", str(rate), "-l", str(limit), "-d", str(hold_ms),
           "-buff_size", "4194304", "-max_socket", "65000", "-nostdin", "-trace_stat",
           "-stf", str(stat), "-fd", "1", "-timeout", f"{int(timeout)}s",
           "-timeout_error"]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp, check=False)
    elapsed = time.perf_counter() - start
    rows = list(csv.reader(stat.open(), delimiter=";"))
    col = {name: i for i, name in enumerate(rows[0])}
    last = rows[-1]

    def val(name: str) -> float:
        return float(last[col[name]]) if name in col and last[col[name]] else 0.0

    sipp_elapsed = reg._hms(last[col["ElapsedTime(C)"]]) or elapsed
    ok = val("SuccessfulCall(C)")
    return {
        "ok": ok,
        "failed": val("FailedCall(C)"),
        "retrans": val("Retransmissions(C)"),
        "elapsed": sipp_elapsed,
        "rate": ok / sipp_elapsed if sipp_elapsed else 0.0,
    }


def setup_tenant() -> None:
    """The tenant whose schema receives the CDRs (scratch database, real actions)."""
    from pbx.audit import SYSTEM
    from tenants import actions

    actions.ensure_public_tenant()
    actions.ensure_template_schema()
    actions.do_create_tenant(
        name="Bench", slug="bench", sip_domain=DOMAIN, web_host="bench.localhost",
        actor=SYSTEM, max_extensions=1000,
    )  # fmt: skip


def drain_cdrs(redis_url: str, prefix: str) -> tuple[int, float, int, int]:
    """(events acknowledged, seconds, CDRs, CDRs with one segment)."""
    import redis
    from django_tenants.utils import schema_context

    from telephony.engine.cdr import CdrConsumer
    from telephony.models import Cdr
    from telephony.sip import contract

    r = redis.Redis.from_url(redis_url)
    start = time.perf_counter()
    stream = contract.key(prefix, contract.EVENTS)
    acked = CdrConsumer(r, stream=stream, consumer="bench").drain(max_batches=10**6)
    seconds = time.perf_counter() - start
    r.close()
    with schema_context("t_bench"):
        total = Cdr.objects.count()
        one_segment = Cdr.objects.filter(segments__seq=1).exclude(segments__seq=2).count()
    return acked, seconds, total, one_segment


def hold_calls(
    port: int, csv_path: Path, tmp: Path, redis_url: str, prefix: str, engine_pid: int,
    *, target: int, rate: int, hold_s: int,
) -> dict[str, float]:  # fmt: skip
    """Bring calls up with a long hold time; watch the active-call mirror for the peak."""
    import redis

    stat = tmp / "held.csv"
    cmd = ["sipp", f"127.0.0.1:{port}", "-sf", str(UAC), "-inf", str(csv_path), "-i",
           "127.0.0.1", "-m", str(target), "-r", str(rate), "-l", str(target), "-d",
           str(hold_s * 1000), "-buff_size", "8388608", "-max_socket", "65000", "-nostdin",
           "-trace_stat", "-stf", str(stat), "-fd", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    r = redis.Redis.from_url(redis_url)
    key = f"{prefix}sip:calls:t_bench"
    peak, last_change, last = 0, time.monotonic(), -1
    start = time.monotonic()
    try:
        # Until the target is up, or nothing has changed for 10 s, or the hold time is spent.
        while time.monotonic() - start < hold_s - 5:
            n = int(r.hlen(key))
            peak = max(peak, n)
            if n != last:
                last, last_change = n, time.monotonic()
            if n >= target or time.monotonic() - last_change > 10:
                break
            time.sleep(0.5)  # a progress probe of another process, not a test wait
        rss = reg.rss_kib(engine_pid)
        up_for = time.monotonic() - start
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        r.close()
    rows = list(csv.reader(stat.open(), delimiter=";")) if stat.exists() else []
    failed = retrans = 0.0
    if len(rows) > 1:
        col = {name: i for i, name in enumerate(rows[0])}
        failed = float(rows[-1][col["FailedCall(C)"]] or 0)
        retrans = float(rows[-1][col["Retransmissions(C)"]] or 0)
    return {"peak": peak, "rss_kib": rss, "seconds": up_for, "failed": failed, "retrans": retrans}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=6000)
    ap.add_argument("--rate", type=int, default=400, help="offered calls/s")
    ap.add_argument("--limit", type=int, default=400, help="cap on calls in progress")
    ap.add_argument("--concurrent", type=int, default=20000)
    ap.add_argument("--hold", type=int, default=120, help="hold time (s) in the concurrency run")
    ap.add_argument("--hold-rate", type=int, default=300)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--no-cdr", action="store_true", help="skip the database and CDRs")
    ap.add_argument("--no-inbound", action="store_true", help="skip the inbound DID calls")
    args = ap.parse_args()

    prefix = f"benchcalls{os.getpid()}:"
    cdr = not args.no_cdr
    stack = contextlib.ExitStack()
    if cdr:
        from common import scratch

        scratch_db = stack.enter_context(scratch("sip_calls"))
        redis_url = scratch_db.redis_url
        setup_tenant()
    else:
        redis_url = os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/13")
    tmp = Path(tempfile.mkdtemp(prefix="bench-calls-"))
    profile = str(tmp / "engine.prof") if args.profile else None
    print(f"SIP calls benchmark ({os.cpu_count()} cores, SIPp {reg._sipp_version()})")
    with stack:
        try:
            reg.publish_tenant(redis_url, prefix, 2)
            port, uas_port = reg.free_port(), reg.free_port()
            bind_callee(redis_url, prefix, uas_port)
            caller_csv(tmp / "callers.csv")
            uas = start_uas(uas_port, tmp)
            try:
                with reg.engine_process(port, redis_url, prefix, profile) as proc:
                    res = run_uac(port, tmp / "callers.csv", tmp, calls=args.calls,
                                  rate=args.rate, limit=args.limit, hold_ms=0,
                                  timeout=args.calls / max(args.rate, 1) * 4 + 30)  # fmt: skip
                    print(
                        f"calls/s: {res['rate']:.0f} ({res['ok']:.0f} ok, {res['failed']:.0f} "
                        f"failed, {res['retrans']:.0f} retransmissions, {res['elapsed']:.1f} s; "
                        f"offered {args.rate}/s, at most {args.limit} in progress)"
                    )
                    completed = res["ok"]
                    if not args.no_inbound:
                        carrier_port = reg.free_port()
                        publish_trunk(redis_url, prefix, carrier_port)
                        time.sleep(0.5)  # the engine reloads on the announcements
                        inbound = run_uac(port, None, tmp, calls=args.calls, rate=args.rate,
                                          limit=args.limit, hold_ms=0,
                                          timeout=args.calls / max(args.rate, 1) * 4 + 30,
                                          carrier_port=carrier_port)  # fmt: skip
                        completed += inbound["ok"]
                        ratio = inbound["rate"] / res["rate"] if res["rate"] else 0.0
                        print(
                            f"inbound DID calls/s (SIPp as the carrier on an IP trunk -> DID "
                            f"rule -> extension): {inbound['rate']:.0f} ({inbound['ok']:.0f} "
                            f"ok, {inbound['failed']:.0f} failed, {inbound['retrans']:.0f} "
                            f"retransmissions, {inbound['elapsed']:.1f} s); "
                            f"ratio inbound/extension calls: {ratio:.2f}"
                        )
                    if cdr:
                        time.sleep(1.0)  # the engine's event writer batches; let it flush
                        acked, secs, total, single = drain_cdrs(redis_url, prefix)
                        print(
                            f"CDRs: {acked} events -> {total} CDRs in {secs:.1f} s "
                            f"({total / secs if secs else 0:.0f} CDRs/s, "
                            f"{acked / secs if secs else 0:.0f} events/s); "
                            f"{single} with their one segment; "
                            + ("every completed call has its CDR" if total >= completed
                               else "MISSING CDRs")
                        )  # fmt: skip
                    if profile is None and args.concurrent:
                        held = hold_calls(port, tmp / "callers.csv", tmp, redis_url, prefix,
                                          proc.pid, target=args.concurrent, rate=args.hold_rate,
                                          hold_s=args.hold)  # fmt: skip
                        print(
                            f"concurrent calls held: peak {held['peak']:.0f} of "
                            f"{args.concurrent} after {held['seconds']:.0f} s at "
                            f"{args.hold_rate}/s; {held['failed']:.0f} failed, "
                            f"{held['retrans']:.0f} retransmissions; engine RSS "
                            f"{held['rss_kib'] / 1024:.0f} MiB"
                        )
            finally:
                uas.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    uas.wait(10)
        finally:
            reg.cleanup(redis_url, prefix)
    if profile:
        import pstats

        print("\nengine profile, top 25 by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
