"""Run the benchmarks (``make bench``): all of them, or those named.

    bench/run.py                  # every bench/bench_<name>.py: tenants, migrate, api, others
    bench/run.py api              # one
    bench/run.py api -- --requests 200 --budget 20   # options after -- go to each benchmark

Each benchmark runs in its own process against its own scratch database (``pbx_bench_<name>``)
and Redis DB, created fresh and dropped at the end. If a benchmark process dies without cleaning
up (killed hard), this runner drops its database and empties its Redis DB afterwards.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The platform benchmarks first, in this order; any other bench/bench_<name>.py after them.
FIRST = ("tenants", "migrate", "api")


def discover() -> dict[str, str]:
    found = {p.stem.removeprefix("bench_"): p.name for p in sorted(HERE.glob("bench_*.py"))}
    ordered = {name: found[name] for name in FIRST if name in found}
    ordered.update({name: file for name, file in found.items() if name not in ordered})
    return ordered


BENCHMARKS = discover()


def _safety_cleanup(name: str, pid: int) -> None:
    """Drop what a dead benchmark process left behind (nothing, when it exited normally)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.test")
    import redis

    from bench.common import DB_PREFIX, REDIS_DBS, drop_database

    try:
        drop_database(f"{DB_PREFIX}{name}")
    except Exception as exc:  # noqa: BLE001 - report, and go on to Redis
        print(f"[run] could not drop {DB_PREFIX}{name}: {exc}", file=sys.stderr)
    base = os.environ.get("PBX_REDIS_BASE_URL", "redis://127.0.0.1:6379")
    for n in REDIS_DBS:
        client = redis.Redis.from_url(f"{base}/{n}", socket_connect_timeout=2)
        claimed = client.get("pbx_bench:claimed")
        if claimed is not None and int(claimed) == pid:
            client.flushdb()


_running: list[subprocess.Popen] = []


def _on_sigterm(signum, frame):
    # Ctrl-C reaches the benchmark through the process group; a SIGTERM to this runner does
    # not, so pass it on: the benchmark cleans up on SIGTERM as on Ctrl-C.
    for proc in _running:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    raise KeyboardInterrupt


def main() -> int:
    argv = sys.argv[1:]
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)

    env = {**os.environ}
    env.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.test")
    env["PYTHONUNBUFFERED"] = "1"
    results = []
    status = 0
    started_all = time.perf_counter()
    print(
        f"[run] {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs: {' '.join(names)}"
    )
    for name in names:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(HERE / BENCHMARKS[name]), *extra], env=env)
        _running[:] = [proc]
        try:
            rc = proc.wait()
        except KeyboardInterrupt:
            # The benchmark got the same Ctrl-C (same process group) and is cleaning up.
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            _safety_cleanup(name, proc.pid)
            print("[run] interrupted", file=sys.stderr)
            return 130
        if rc != 0:
            _safety_cleanup(name, proc.pid)
            status = 1
        results.append((name, rc, time.perf_counter() - started))
    print("\n[run] summary")
    for name, rc, seconds in results:
        print(f"  {name:<8} {'ok' if rc == 0 else f'FAILED (exit {rc})':<16} {seconds:6.1f} s")
    print(f"  {'total':<8} {'':<16} {time.perf_counter() - started_all:6.1f} s")
    return status


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.exit(main())
