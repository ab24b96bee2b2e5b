"""Soak: the engine's memory over many calls, which must stay flat.

    .venv/bin/python bench/bench_sip_soak.py [--checkpoints 10000,50000,100000] [--rate 300]
                                             [--held 100] [--settle 40]

All on loopback, engine in a child process (uvloop, production timers: T1 = 500 ms), media
direct, no database (events go to the Redis stream under a private prefix, no CDRs):

1. the synthetic tenant ``bench.test`` of ``bench_sip_calls`` (caller 100000, callee 100001 bound
   to a SIPp UAS);
2. ``--held`` calls brought up with a long hold time and kept for the whole run (as a PBX always
   has some);
3. SIPp ``call_uac_auth.xml`` (INVITE, 407, INVITE with digest, 180, 200, ACK, BYE) at
   ``--rate`` calls/s until each checkpoint's total of completed calls; after each checkpoint,
   ``--settle`` seconds without traffic (longer than 64*T1 = 32 s, when the last transactions
   end) and then the engine's RSS.

It prints, per checkpoint: calls, failures, retransmissions, calls/s reached and the RSS in MiB.
A leak shows as RSS growing from one checkpoint to the next (it grew ~15 KB per call before the
call layer stopped relying on the cycle collector: 163 MiB after 3,000 calls, 1,394 MiB after
90,000).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_sip_calls as calls  # noqa: E402 -- after the path set-up above
import bench_sip_register as reg  # noqa: E402


def hold(port: int, csv_path: Path, tmp: Path, n: int, seconds: int) -> subprocess.Popen[bytes]:
    cmd = ["sipp", f"127.0.0.1:{port}", "-sf", str(calls.UAC), "-inf", str(csv_path), "-i",
           "127.0.0.1", "-m", str(n), "-r", "50", "-l", str(n), "-d", str(seconds * 1000),
           "-nostdin", "-timeout", f"{seconds + 60}s"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoints", default="10000,50000,100000")
    ap.add_argument("--rate", type=int, default=300, help="offered calls/s")
    ap.add_argument("--limit", type=int, default=400, help="cap on calls in progress")
    ap.add_argument("--held", type=int, default=100, help="calls kept up for the whole run")
    ap.add_argument("--settle", type=int, default=40, help="seconds idle before each RSS")
    args = ap.parse_args()
    checkpoints = [int(c) for c in args.checkpoints.split(",") if c]

    prefix = f"benchsoak{os.getpid()}:"
    redis_url = os.environ.get("PBX_REDIS_URL", "redis://127.0.0.1:6379/13")
    tmp = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    print(f"SIP soak benchmark ({os.cpu_count()} cores, SIPp {reg._sipp_version()}); "
          f"{args.rate} calls/s offered, {args.held} held, {args.settle} s settle")  # fmt: skip
    try:
        reg.publish_tenant(redis_url, prefix, 2)
        port, uas_port = reg.free_port(), reg.free_port()
        calls.bind_callee(redis_url, prefix, uas_port)
        calls.caller_csv(tmp / "callers.csv")
        uas = calls.start_uas(uas_port, tmp)
        held: subprocess.Popen[bytes] | None = None
        try:
            with reg.engine_process(port, redis_url, prefix, None) as proc:
                print(f"engine RSS at start: {reg.rss_kib(proc.pid) / 1024:.0f} MiB")
                if args.held:
                    total_s = int(sum(checkpoints) / max(args.rate, 1) * 3 + 600)
                    held = hold(port, tmp / "callers.csv", tmp, args.held, total_s)
                    time.sleep(args.held / 50 + 2)  # they come up at 50/s
                done = 0
                for target in checkpoints:
                    n = target - done
                    res = calls.run_uac(port, tmp / "callers.csv", tmp, calls=n,
                                        rate=args.rate, limit=args.limit, hold_ms=0,
                                        timeout=n / max(args.rate, 1) * 4 + 60)  # fmt: skip
                    done = target
                    time.sleep(args.settle)
                    print(
                        f"after {target:>7,} calls: RSS {reg.rss_kib(proc.pid) / 1024:6.0f} MiB "
                        f"({res['ok']:.0f} ok, {res['failed']:.0f} failed, "
                        f"{res['retrans']:.0f} retransmissions, {res['rate']:.0f} calls/s)",
                        flush=True,
                    )
        finally:
            for p in (held, uas):
                if p is not None:
                    p.terminate()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(10)
                    if p.poll() is None:
                        p.kill()
    finally:
        reg.cleanup(redis_url, prefix)


if __name__ == "__main__":
    main()
