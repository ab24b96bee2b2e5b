"""What every benchmark shares: a scratch database and Redis DB, timing helpers, tables.

A benchmark module calls :func:`scratch` first thing, before anything imports Django models::

    with scratch("tenants") as env:
        ...   # Django is set up against a fresh database ``pbx_bench_tenants``

On the way out (normal end, exception, Ctrl-C or SIGTERM) Django's connections are closed, the
scratch database is dropped (``WITH (FORCE)``, so a leftover server connection cannot keep it
alive) and the scratch Redis DB is emptied. Nothing but loopback services is touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_PREFIX = "pbx_bench_"
# Redis DBs the benchmarks may take (the application and the tests use DB 0). The first empty
# one is used and emptied again at the end, so snapshots published by the actions under test
# never land in a developer's Redis DB.
REDIS_DBS = range(15, 7, -1)


_MAIN_PID = os.getpid()


def _sigterm(signum, frame):
    if os.getpid() != _MAIN_PID:
        # A forked worker (the multiprocessing migration executor's pool): just go.
        os._exit(128 + signum)
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Scratch:
    name: str
    db_name: str
    redis_url: str


def _admin_connection():
    """A connection to the maintenance DB, as the settings' role (CREATEDB) with its password."""
    import psycopg
    from django.conf import settings

    db = settings.DATABASES["default"]
    return psycopg.connect(
        dbname="postgres",
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
        autocommit=True,
        connect_timeout=5,
    )


def drop_database(db_name: str) -> None:
    if not db_name.startswith(DB_PREFIX):
        raise ValueError(f"refusing to drop {db_name!r}: not a benchmark database")
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _pick_redis_db() -> str:
    import redis

    base = os.environ.get("PBX_REDIS_BASE_URL", "redis://127.0.0.1:6379")
    for n in REDIS_DBS:
        url = f"{base}/{n}"
        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        # A marker key claims the DB, so two concurrent benchmark runs never share one.
        if client.dbsize() == 0 and client.set("pbx_bench:claimed", os.getpid(), nx=True):
            return url
    raise RuntimeError(f"no empty Redis DB among {list(REDIS_DBS)} for the benchmark")


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    if client.exists("pbx_bench:claimed"):
        client.flushdb()


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextlib.contextmanager
def scratch(name: str) -> Iterator[Scratch]:
    """Set Django up against a fresh database ``pbx_bench_<name>``, migrated by ``setup_pbx``."""
    db_name = f"{DB_PREFIX}{name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pbx.settings.test")
    os.environ["PBX_DB_NAME"] = db_name
    os.environ.setdefault("PBX_LOG_LEVEL", "WARNING")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)  # the subprocess migration executor looks for ./manage.py
    signal.signal(signal.SIGTERM, _sigterm)

    redis_url = _pick_redis_db()
    os.environ["PBX_REDIS_URL"] = redis_url
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    created = False
    try:
        drop_database(db_name)
        with _admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{db_name}"')
        created = True
        with timed() as t:
            call_command("setup_pbx", verbosity=0)
        print(
            f"[{name}] scratch database {db_name}, Redis {redis_url}; setup_pbx {t.s:.1f} s; "
            f"load average {_load()}",
            flush=True,
        )
        yield Scratch(name=name, db_name=db_name, redis_url=redis_url)
    finally:
        if os.getpid() != _MAIN_PID:
            os._exit(1)  # a forked child unwinding here must not drop the parent's database
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        connections.close_all()
        if created:
            drop_database(db_name)
        _flush_redis(redis_url)
        print(f"[{name}] dropped {db_name}, emptied {redis_url}; load average {_load()}")
        signal.signal(signal.SIGINT, signal.default_int_handler)


# --- timing and reporting -----------------------------------------------------------------------


class Stopwatch:
    """Adds up the time spent in one function and counts its calls, by wrapping it in place
    for the duration of a ``with`` block (behaviour unchanged)."""

    def __init__(self, owner, name: str):
        self.total = 0.0
        self.calls = 0
        self.owner, self.name = owner, name
        self.original = getattr(owner, name)

    def __enter__(self):
        original = self.original
        watch = self

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                watch.total += time.perf_counter() - start
                watch.calls += 1

        setattr(self.owner, self.name, wrapper)
        return self

    def __exit__(self, *exc):
        setattr(self.owner, self.name, self.original)


class _Timer:
    s: float = 0.0


@contextlib.contextmanager
def timed() -> Iterator[_Timer]:
    t = _Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.s = time.perf_counter() - start


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: every figure is one that was measured)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(samples_s: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "min": min(ms),
        "p50": statistics.median(ms),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def table(title: str, headers: list[str], rows: list[list[object]]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        first = values[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
        return "| " + " | ".join([first, *rest]) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    out = [f"\n### {title}\n", line(headers), sep, *(line(r) for r in cells)]
    text = "\n".join(out) + "\n"
    print(text, flush=True)
    return text


# --- the web server under test and the load generator -------------------------------------------

SERVERS = {
    # What `make run` started before: one daphne process.
    "daphne": "daphne, 1 process",
    # What it starts now (pbx/processes.py): uvicorn with PBX_WEB_WORKERS workers.
    "uvicorn": "uvicorn, {workers} workers",
}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    base: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and all its processes."""
        return tree_cpu_seconds(self.pid)


def tree_cpu_seconds(root_pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (from /proc).

    The server's CPU per request is what decides its capacity; unlike requests/s on a machine
    shared with other work, it hardly depends on the load: ``cores / cpu_per_request`` is the
    throughput the same server would reach on idle cores."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # After the name: state ppid ... utime(14th field overall) stime(15th).
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(child for child, (ppid, _) in stats.items() if ppid == pid)
    return total / tick


@contextlib.contextmanager
def web_server(kind: str = "uvicorn", workers: int | None = None, env: dict | None = None):
    """A web server subprocess on a free loopback port, serving the scratch database.

    ``uvicorn``: the command line ``make run`` uses (``pbx.processes.web_argv``), with
    ``workers`` (default: ``PBX_WEB_WORKERS`` or the number of cores); ``daphne``: the single
    process ``make run`` used before. Yields a :class:`Server` (base URL, pid).
    """
    import subprocess
    import tempfile

    import httpx

    from pbx.processes import web_argv, web_workers

    port = free_port()
    log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept open for the server's lifetime
        prefix=f"pbx-bench-{kind}-", suffix=".log", delete=False
    )
    bin_dir = Path(sys.executable).parent
    if kind == "daphne":
        argv = [str(bin_dir / "daphne"), "-b", "127.0.0.1", "-p", str(port)]
        argv.append("pbx.asgi:application")
    else:
        argv = web_argv(bin_dir, "127.0.0.1", port, workers or web_workers())
    full_env = {
        **os.environ,
        "PBX_ACCESS_TOKEN_MINUTES": "120",
        # The throttles still run (a cache round trip each); they must not answer 429.
        "PBX_API_RATE_PER_TOKEN": "100000000/min",
        "PBX_API_RATE_PER_ADDRESS": "100000000/min",
        "PBX_API_RATE_SIGNIN": "1000/min",
        # As in production (the test settings, which the benchmarks use, turn it off).
        "PBX_HOST_CACHE_SECONDS": "60",
        **(env or {}),
    }
    proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    ok = False
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited with {proc.returncode}; see {log.name}")
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"Host": "localhost"}, timeout=2
                )
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{kind} did not answer within 60 s; see {log.name}")
            time.sleep(0.2)
        print(f"  {kind} pid {proc.pid} on 127.0.0.1:{port} (log {log.name})", flush=True)
        yield Server(f"http://127.0.0.1:{port}", proc.pid)
        ok = True
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        if not ok or proc.returncode not in (0, -15):
            print(f"  {kind} exited {proc.returncode}; log kept at {log.name}")
        else:
            os.unlink(log.name)


WRK_SCRIPT = r"""
-- Cycles through request lines "<path>\t<header>\t<value>" read from a file.
local lines = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do table.insert(lines, line) end
  i = math.random(#lines)
end
request = function()
  i = i % #lines + 1
  local path, name, value = lines[i]:match("([^\t]*)\t([^\t]*)\t(.*)")
  local headers = {}
  if name ~= "" then headers[name] = value end
  return wrk.format("GET", path, headers)
end
"""


def wrk(
    base: str,
    host: str,
    requests: list[tuple[str, str, str]],
    *,
    seconds: int = 10,
    connections: int = 8,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    warmup: int = 3,
    on_start: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Throughput with ``wrk`` (C, epoll: the load generator costs the 2 cores little):
    ``requests`` are (path, header name, header value), cycled by every connection.
    ``on_start`` is called after the warm-up, just before the measured run: read CPU
    counters there, so that the warm-up's requests are not charged to the measured ones."""
    import re
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (scripts/bootstrap.sh test installs it)")
    with tempfile.TemporaryDirectory(prefix="pbx-wrk-") as tmp:
        script, data = Path(tmp) / "cycle.lua", Path(tmp) / "requests.tsv"
        script.write_text(WRK_SCRIPT)
        data.write_text("".join(f"{p}\t{n}\t{v}\n" for p, n, v in requests))

        def run(secs: int) -> str:
            return subprocess.run(
                [
                    exe,
                    f"-t{threads}",
                    f"-c{connections}",
                    f"-d{secs}s",
                    "--latency",
                    "-H",
                    f"Host: {host}",
                    *(arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")),
                    "-s",
                    str(script),
                    base,
                    "--",
                    str(data),
                ],
                capture_output=True,
                text=True,
                timeout=secs + 60,
                check=True,
            ).stdout

        if warmup:
            run(warmup)  # every worker process compiles its templates, opens its pool, ...
        if on_start is not None:
            on_start()
        out = run(seconds)

    def latency(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return {
        "rps": rps,
        "p50": latency("50"),
        "p99": latency("99"),
        "non2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def db_cpu_seconds() -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to the scratch database
    (the database's share of a request; the servers' pools keep their backends open)."""
    from django.conf import settings
    from django.db import connection

    tick = os.sysconf("SC_CLK_TCK")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [settings.DATABASES["default"]["NAME"]],
        )
        pids = [row[0] for row in cursor.fetchall()]
    total = 0
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


THROUGHPUT_COLUMNS = ["req/s", "p50 ms", "p99 ms"] + [
    "server CPU ms/req",
    "PostgreSQL CPU ms/req",
    "2 idle cores, req/s",
]


def throughput_row(
    server, host: str, requests, *, seconds: int, connections: int, headers=None
) -> list:
    """One ``wrk`` run against ``server`` (a ``web_server``) as ``host``: requests/s, p50, p99,
    then the server's and PostgreSQL's CPU per request over the measured run (not the warm-up)
    and the rate two idle cores would reach at that cost. Any non-2xx answer is an error."""
    start: dict[str, float] = {}
    w = wrk(
        server.base,
        host,
        requests,
        seconds=seconds,
        connections=connections,
        headers=headers,
        on_start=lambda: start.update(cpu=server.cpu_seconds(), db=db_cpu_seconds()),
    )
    if w["non2xx"]:
        raise RuntimeError(f"{w['non2xx']} non-2xx answers")
    done = w["rps"] * seconds
    cpu_ms = (server.cpu_seconds() - start["cpu"]) * 1000 / done
    db_ms = (db_cpu_seconds() - start["db"]) * 1000 / done
    return [w["rps"], w["p50"], w["p99"], cpu_ms, db_ms, 2000 / (cpu_ms + db_ms)]
