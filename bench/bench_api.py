"""``GET /api/v1/extensions/`` with 10,000 extensions in one tenant, through a real server.

The extensions are bulk-inserted inside the tenant's schema (each with its HA1s and encrypted
SIP password from ``Extension.set_sip_password``). Throughput: the web server as ``make run``
starts it (uvicorn, ``--workers``, default one per core) and, for comparison, the single daphne
process it started before, each on a free loopback port against the scratch database; a tenant
admin signs in and ``wrk`` (C, little CPU of its own) sends the default page and random detail
GETs over 8 keep-alive connections, printing requests/s beside the server's and PostgreSQL's
CPU time per request (from /proc: robust to a busy machine, unlike requests/s) and the rate
two idle cores would reach at that CPU cost. Latency: one keep-alive httpx client sends
sequential requests to uvicorn: the default page (50), ``?limit=1000``, a ``?q=`` search and a
detail GET; a last run sends the default page from 4 concurrent clients.

The number of SQL queries per request is counted in-process (Django test client under
``CaptureQueriesContext``) for small and large pages: equal counts mean no N+1. The PostgreSQL
sessions opened during each run (``pg_stat_database.sessions``) show whether the server reuses
its database connection.

    python bench/bench_api.py [--extensions 10000] [--requests 500] [--budget 60]
                              [--workers N] [--seconds 10] [--connections 8]
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    SERVERS,
    THROUGHPUT_COLUMNS,
    scratch,
    summary_ms,
    table,
    throughput_row,
    timed,
    web_server,
)

HOST = "bench.test"
ADMIN_EMAIL = "admin@bench.test"
ADMIN_PASSWORD = "Orbit-Lamp-Seven-42"
SIP_PASSWORD = "Bench-Sip-Secret-77"
FIRST = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dennis",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Olga",
    "Peter",
    "Radia",
    "Sophie",
    "Tim",
    "Ursula",
    "Vint",
    "Whitfield",
    "Xavier",
    "Yukihiro",
    "Zoe",
]
LAST = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Ritchie",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "Clarke",
    "Thompson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Ladyzhenskaya",
    "Naur",
    "Perlman",
    "Wilson",
    "Berners",
    "Franklin",
    "Cerf",
    "Diffie",
    "Leroy",
    "Matsumoto",
    "Kernighan",
    "Knuth",
    "Backus",
    "Hoare",
    "Codd",
    "Kay",
    "Engelbart",
    "Lamport",
    "Stonebraker",
    "Cocke",
    "Floyd",
    "Karp",
    "Rivest",
    "Shamir",
    "Adleman",
    "Hellman",
    "Milner",
    "Pnueli",
    "Sifakis",
    "Emerson",
    "Valiant",
    "Yao",
    "Tarjan",
    "Hartmanis",
    "Stearns",
]
SEARCH = "Knuth"  # one surname of 50: about 200 of 10,000 match


def build_world(count: int):
    from django.db import connection
    from django_tenants.utils import tenant_context

    from pbx.audit import SYSTEM
    from telephony.models import Extension
    from tenants.actions import do_create_tenant, do_create_user
    from tenants.choices import Role

    tenant = do_create_tenant(
        name="Bench", slug="bench", sip_domain=HOST, actor=SYSTEM, max_extensions=count
    )
    admin = do_create_user(
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        role=Role.TENANT_ADMIN,
        tenant=tenant,
        actor=SYSTEM,
    )
    rng = random.Random(7)
    with timed() as t, tenant_context(tenant):
        batch = []
        for i in range(count):
            number = str(10000 + i)
            first, last = rng.choice(FIRST), rng.choice(LAST)
            ext = Extension(
                number=number,
                display_name=f"{first} {last}",
                email=f"{first.lower()}.{last.lower()}.{number}@{HOST}",
                caller_id_number=f"+4420794{number}",
            )
            ext.set_sip_password(SIP_PASSWORD, tenant.sip_domain)
            batch.append(ext)
            if len(batch) == 1000:
                Extension.objects.bulk_create(batch)
                batch = []
        Extension.objects.bulk_create(batch)
        ids = list(Extension.objects.values_list("id", flat=True))
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE telephony_extension")
    connection.set_schema_to_public()
    print(f"  {count} extensions bulk-created in {t.s:.1f} s ({count / t.s:,.0f}/s)", flush=True)
    return tenant, admin, ids


def count_queries(admin, detail_id: int) -> list[list[object]]:
    """Queries per request, in-process, warm (each request made once before counting)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from pbx.credentials import issue_tokens

    token = issue_tokens(admin, admin.tenant.schema_name)["access"]
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token}")
    cases = [
        ("list, limit=10", "/api/v1/extensions/?limit=10"),
        ("list, default page (50)", "/api/v1/extensions/"),
        ("list, limit=1000", "/api/v1/extensions/?limit=1000"),
        (f"search ?q={SEARCH}", f"/api/v1/extensions/?q={SEARCH}"),
        ("detail", f"/api/v1/extensions/{detail_id}/"),
    ]
    rows = []
    detail_sql = []
    for label, path in cases:
        client.get(path)
        connection.set_schema_to_public()
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        connection.set_schema_to_public()
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.content[:300]!r}")
        body = response.json()
        items = len(body["items"]) if "items" in body else 1
        rows.append([label, items, len(ctx.captured_queries)])
        if label.startswith("list, default"):
            detail_sql = [q["sql"] for q in ctx.captured_queries]
    print("  SQL of one default list request:")
    for sql in detail_sql:
        print(f"    {sql[:160]}{'...' if len(sql) > 160 else ''}")
    return rows


def in_process(admin, requests: int, profile: bool) -> list[list[object]]:
    """Where a request's time goes without the server: the view stack in-process on a warm
    connection, and what opening a new database connection costs on its own."""
    import cProfile
    import pstats

    from django.db import connection
    from django.test import Client

    from pbx.credentials import issue_tokens

    token = issue_tokens(admin, admin.tenant.schema_name)["access"]
    client = Client(HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token}")
    rows = []
    for label, path in (
        ("in-process list, default page (50)", "/api/v1/extensions/"),
        ("in-process list, limit=1000", "/api/v1/extensions/?limit=1000"),
    ):
        for _ in range(5):
            client.get(path)
        latencies = []
        for _ in range(requests):
            t0 = time.perf_counter()
            client.get(path)
            latencies.append(time.perf_counter() - t0)
        connection.set_schema_to_public()
        s = summary_ms(latencies)
        rows.append([label, s["n"], s["p50"], s["p95"]])

    latencies = []
    for _ in range(50):
        connection.close()
        t0 = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        latencies.append(time.perf_counter() - t0)
    s = summary_ms(latencies)
    rows.append(["new DB connection (connect + init + SELECT 1)", s["n"], s["p50"], s["p95"]])

    if profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(100):
            client.get("/api/v1/extensions/")
        profiler.disable()
        connection.set_schema_to_public()
        print("  cProfile of 100 in-process default list requests:")
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(15)
    return rows


def db_sessions() -> int:
    from django.db import connection

    time.sleep(1.2)  # statistics are flushed by backends about once a second
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def run_case(client, paths, requests: int, warmup: int, budget: float):
    for _ in range(warmup):
        client.get(next(paths)).raise_for_status()
    latencies, size = [], 0
    started = time.perf_counter()
    for _ in range(requests):
        path = next(paths)
        t0 = time.perf_counter()
        response = client.get(path)
        latencies.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        size += len(response.content)
        if time.perf_counter() - started > budget and len(latencies) >= 50:
            break
    elapsed = time.perf_counter() - started
    return latencies, elapsed, size // len(latencies)


def cycle(values):
    while True:
        yield from values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extensions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--budget", type=float, default=60, help="seconds per case at most")
    parser.add_argument("--profile", action="store_true", help="cProfile in-process requests")
    parser.add_argument("--workers", type=int, default=None, help="web workers (default: cores)")
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per case")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections")
    args = parser.parse_args(argv)
    from pbx.processes import web_workers

    args.workers = args.workers or web_workers()

    with scratch("api"):
        import httpx

        tenant, admin, ids = build_world(args.extensions)
        rng = random.Random(11)
        detail_ids = rng.sample(ids, min(len(ids), 1000))
        query_rows = count_queries(admin, detail_ids[0])
        table(
            "SQL queries per request (in-process test client, warm)",
            ["request", "items", "queries"],
            query_rows,
        )

        table(
            "Without the server (in-process test client, warm connection), ms",
            ["what", "n", "p50", "p95"],
            in_process(admin, min(args.requests, 200), args.profile),
        )

        throughput_rows = []
        for kind in ("daphne", "uvicorn"):
            label = SERVERS[kind].format(workers=args.workers)
            with web_server(kind, args.workers) as server:
                base = server.base
                token = httpx.post(
                    f"{base}/api/v1/auth/signin/",
                    headers={"Host": HOST},
                    json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                ).json()["access"]
                auth = ("Authorization", f"Bearer {token}")
                for case, paths in (
                    ("list, default page (50)", ["/api/v1/extensions/"]),
                    ("detail (random ids)", [f"/api/v1/extensions/{i}/" for i in detail_ids]),
                ):
                    row = throughput_row(
                        server,
                        HOST,
                        [(path, *auth) for path in paths],
                        seconds=args.seconds,
                        connections=args.connections,
                    )
                    throughput_rows.append([label, case, *row])
                    print(f"  {label}, {case}: {row[0]:.1f} req/s", flush=True)
        table(
            f"Throughput, GET /api/v1/extensions/, {args.extensions:,} extensions, wrk "
            f"{args.connections} connections for {args.seconds} s (target >= 300 req/s on 2 cores)",
            ["server", "request", *THROUGHPUT_COLUMNS],
            throughput_rows,
        )

        rows = []
        with web_server("uvicorn", args.workers) as server:
            base = server.base
            headers = {"Host": HOST}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                signin = client.post(
                    "/api/v1/auth/signin/",
                    json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
                )
                signin.raise_for_status()
                token = signin.json()["access"]
                client.headers["Authorization"] = f"Bearer {token}"
                cases = [
                    ("list, default page (50)", cycle(["/api/v1/extensions/"])),
                    ("list, limit=1000", cycle(["/api/v1/extensions/?limit=1000"])),
                    (f"search ?q={SEARCH}", cycle([f"/api/v1/extensions/?q={SEARCH}"])),
                    (
                        "detail (random ids)",
                        cycle([f"/api/v1/extensions/{i}/" for i in detail_ids]),
                    ),
                ]
                for label, paths in cases:
                    before = db_sessions()
                    latencies, elapsed, size = run_case(
                        client, paths, args.requests, args.warmup, args.budget
                    )
                    opened = (db_sessions() - before) / (len(latencies) + args.warmup)
                    s = summary_ms(latencies)
                    rows.append(
                        [
                            label,
                            s["n"],
                            s["p50"],
                            s["p95"],
                            s["p99"],
                            s["max"],
                            s["n"] / elapsed,
                            size,
                            f"{opened:.2f}",
                        ]
                    )
                    print(f"  {label}: p50 {s['p50']:.1f} ms, p95 {s['p95']:.1f} ms", flush=True)

            rows.append(concurrent_run(base, token, args))

        table(
            f"GET /api/v1/extensions/ via uvicorn, {args.extensions:,} extensions, one keep-alive "
            "client (ms)",
            ["request", "n", "p50", "p95", "p99", "max", "req/s", "bytes", "DB sessions/req"],
            rows,
        )


def concurrent_run(base: str, token: str, args) -> list[object]:
    import httpx

    per_client = max(1, args.requests // args.concurrency)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker():
        headers = {"Host": HOST, "Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            client.get("/api/v1/extensions/")
            mine = []
            for _ in range(per_client):
                t0 = time.perf_counter()
                response = client.get("/api/v1/extensions/")
                mine.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}")
                    break
            with lock:
                latencies.extend(mine)

    before = db_sessions()
    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    opened = (db_sessions() - before) / (len(latencies) + args.concurrency)
    if errors:
        raise RuntimeError(f"concurrent run: {len(errors)} errors, e.g. {errors[0]}")
    s = summary_ms(latencies)
    return [
        f"list, default page, {args.concurrency} concurrent clients",
        s["n"],
        s["p50"],
        s["p95"],
        s["p99"],
        s["max"],
        s["n"] / elapsed,
        "",
        f"{opened:.2f}",
    ]


if __name__ == "__main__":
    main()
