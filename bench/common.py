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
from collections.abc import Iterator
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
