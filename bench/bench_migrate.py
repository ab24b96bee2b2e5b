"""``migrate_schemas`` over 1,000 tenant schemas when there is nothing to migrate.

This is the fixed cost every deployment pays (``make run``/``make setup`` call ``setup_pbx``,
which runs it): django-tenants visits each schema, sets the search path, makes sure the
``django_migrations`` table exists, builds the migration plan and finds it empty. Runs:

- ``standard`` executor (the default: one process, schema after schema);
- ``multiprocessing`` executor (a fork pool of ``TENANT_MULTIPROCESSING_MAX_PROCESSES``, 2);
- ``subprocess`` executor with ``--parallel 2`` (one ``manage.py migrate_schemas --schema X``
  process per tenant). Spawning 1,000 Django processes takes longer than this benchmark may, so
  it runs the executor's own code over a sample of schemas and extrapolates linearly (marked);
- with ``--setup-pbx``, ``setup_pbx`` as a whole (shared + template + every tenant + snapshots).

The standard and multiprocessing runs stop after ``--budget`` seconds each and extrapolate from
the schemas done (marked), so the benchmark stays bounded on a busy machine.

    python bench/bench_migrate.py [--tenants 1000] [--budget 120] [--subprocess-sample 40]
                                  [--profile] [--setup-pbx]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stopwatch, scratch, table, timed  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--subprocess-sample", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile the standard run")
    parser.add_argument("--budget", type=float, default=120, help="seconds per executor at most")
    parser.add_argument("--chunk", type=int, default=50, help="schemas per executor call")
    parser.add_argument(
        "--setup-pbx", action="store_true", help="also time setup_pbx as a whole (unbounded)"
    )
    args = parser.parse_args(argv)

    with scratch("migrate"):
        from django.conf import settings
        from django.core.management import call_command, load_command_class
        from django.db import connection
        from django_tenants.migration_executors import get_executor
        from django_tenants.migration_executors.subproc import SubprocessExecutor

        from bench.fixtures import create_background_tenants

        with timed() as t:
            schemas = create_background_tenants(args.tenants)
        n = len(schemas)
        print(f"  {n} background tenants in {t.s:.1f} s", flush=True)
        rows = []

        def run(label: str, codename: str) -> int:
            """The executor over every schema, in chunks, stopping after ``--budget`` seconds.

            This is what ``migrate_schemas --tenant [--executor=...]`` does after listing the
            tenants, with the options its own parser produces. The per-schema cost depends on
            the catalogue, which stays the same during the run, so a stopped run extrapolates
            linearly (and says so)."""
            options = {**base_options, "executor": codename}
            executor_class = get_executor(codename)
            done = 0
            start = time.perf_counter()
            with timed() as t:
                for i in range(0, n, args.chunk):
                    connection.set_schema_to_public()
                    executor_class((), options).run_migrations(tenants=schemas[i : i + args.chunk])
                    done = min(n, i + args.chunk)
                    if time.perf_counter() - start > args.budget:
                        break
            per_schema = t.s / done
            how = "measured" if done == n else f"extrapolated from {done} ({t.s:.0f} s)"
            rows.append([label, n, per_schema * n, per_schema * 1000, how])
            print(f"  {label}: {per_schema * n:.1f} s ({how})", flush=True)
            return done

        command = load_command_class("django_tenants", "migrate_schemas")
        parser = command.create_parser("manage.py", "migrate_schemas")
        base_options = {
            **vars(parser.parse_args(["--tenant", "--noinput", "--verbosity", "0"])),
            "skip_checks": True,  # as call_command() passes it
        }

        profile_text = ""
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run("standard (under cProfile)", "standard")
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            profile_text = out.getvalue()
        from django_tenants.postgresql_backend.introspection import DatabaseSchemaIntrospection

        with Stopwatch(DatabaseSchemaIntrospection, "get_table_list") as listing:
            done = run("standard", "standard")
        rows[-1][-1] += (
            f"; get_table_list: {listing.calls / done:.0f} calls, "
            f"{listing.total / done * 1000:.1f} ms per schema"
        )
        processes = getattr(settings, "TENANT_MULTIPROCESSING_MAX_PROCESSES", 2)
        run(f"multiprocessing ({processes} processes)", "multiprocessing")

        sample = schemas[: args.subprocess_sample]
        if sample:
            connection.set_schema_to_public()
            executor = SubprocessExecutor((), {"interactive": False, "verbosity": 0, "parallel": 2})
            with timed() as t:
                executor.run_migrations(tenants=list(sample))
            per_schema = t.s / len(sample)
            rows.append(
                [
                    "subprocess --parallel 2",
                    n,
                    per_schema * n,
                    per_schema * 1000,
                    f"extrapolated from {len(sample)} schemas ({t.s:.1f} s)",
                ]
            )
            print(f"  subprocess sample: {t.s:.1f} s for {len(sample)}", flush=True)

        if args.setup_pbx:
            connection.set_schema_to_public()
            with timed() as t:
                call_command("setup_pbx", verbosity=0)
            rows.append(["setup_pbx (whole)", n, t.s, t.s / n * 1000, "measured"])

        table(
            f"migrate_schemas --tenant, nothing to migrate, {n} tenant schemas",
            ["run", "schemas", "total s", "ms/schema", "how"],
            rows,
        )
        if profile_text:
            print(profile_text)


if __name__ == "__main__":
    main()
