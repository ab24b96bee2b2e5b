"""Tenant creation time through ``tenants.actions.do_create_tenant`` with 1, 100 and 1,000
tenants already present.

Each measured creation is the real path: validation, the ``Tenant`` row, the schema cloned from
``tenant_template`` by django-tenants' ``clone_schema`` PL/pgSQL function, the faked migration
run, the ``Domain`` row, the audit entry and the snapshot published on commit. The clone and the
faked ``migrate_schemas`` are timed on the side (by wrapping them, not changing them) so the table
says what dominates. Background tenants are created the fast way (see ``fixtures``) and that
time is printed too.

    python bench/bench_tenants.py [--levels 1,100,1000] [--samples 10] [--budget 150]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stopwatch, scratch, summary_ms, table, timed  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="1,100,1000")
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument(
        "--budget", type=float, default=150, help="seconds of measured creations per level at most"
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]

    with scratch("tenants"):
        from django.db import connection
        from django_tenants import clone
        from django_tenants import models as tenant_models

        from bench.fixtures import catalogue_size, create_background_tenants, schema_shape
        from pbx.audit import SYSTEM
        from tenants.actions import do_create_tenant
        from tenants.models import Tenant

        rows, background_rows = [], []
        created = 0
        measured_schema = None
        for level in levels:
            present = Tenant.objects.exclude(schema_name="public").count()
            need = level - present
            if need > 0:
                with timed() as t:
                    create_background_tenants(need, start=present)
                background_rows.append(
                    [f"{present} -> {level}", need, t.s, need / t.s, t.s / need * 1000]
                )
            present = Tenant.objects.exclude(schema_name="public").count()
            pg_class = catalogue_size()
            samples, clone_s, migrate_s = [], [], []
            started = time.perf_counter()
            for _ in range(args.samples):
                slug = f"m{created:04d}"
                created += 1
                with (
                    Stopwatch(clone.CloneSchema, "clone_schema") as clone_watch,
                    Stopwatch(tenant_models, "call_command") as migrate_watch,
                    timed() as t,
                ):
                    tenant = do_create_tenant(
                        name=f"Measured {slug}",
                        slug=slug,
                        sip_domain=f"{slug}.bench",
                        actor=SYSTEM,
                    )
                samples.append(t.s)
                clone_s.append(clone_watch.total)
                migrate_s.append(migrate_watch.total)
                measured_schema = tenant.schema_name
                if time.perf_counter() - started > args.budget and len(samples) >= 3:
                    break
            s = summary_ms(samples)
            clone_share = statistics.median(clone_s) / statistics.median(samples) * 100
            rows.append(
                [
                    present,
                    pg_class,
                    s["n"],
                    s["min"],
                    s["p50"],
                    s["p95"],
                    s["max"],
                    statistics.median(clone_s) * 1000,
                    statistics.median(migrate_s) * 1000,
                    f"{clone_share:.0f}%",
                ]
            )
            print(f"  level {level}: p50 {s['p50']:.0f} ms, p95 {s['p95']:.0f} ms", flush=True)

        connection.set_schema_to_public()
        if measured_schema and background_rows:
            cloned = schema_shape(measured_schema)
            copied = schema_shape("t_bg00000")
            same = "same" if cloned == copied else f"DIFFERENT: {cloned} vs {copied}"
            print(
                f"background schema vs cloned schema (relations, constraints, migrations): {same}"
            )

        if background_rows:
            table(
                "Background tenants (fast path: template DDL replay + bulk rows)",
                ["tenants", "created", "total s", "tenants/s", "ms/tenant"],
                background_rows,
            )
        table(
            "do_create_tenant (real path, schema clone included), ms",
            [
                "tenants present",
                "pg_class rows",
                "n",
                "min",
                "p50",
                "p95",
                "max",
                "clone_schema p50",
                "fake migrate p50",
                "clone share",
            ],
            rows,
        )


if __name__ == "__main__":
    main()
