"""``migrate_schemas`` over 1,000 tenant schemas when there is nothing to migrate.

This is the fixed cost every deployment pays (``make run``/``make setup`` call ``setup_pbx``,
which runs it): django-tenants visits each schema, sets the search path, makes sure the
``django_migrations`` table exists, builds the migration plan and finds it empty. Runs:

- ``standard`` executor (the default: one process, schema after schema);
- ``multiprocessing`` executor (a fork pool of ``TENANT_MULTIPROCESSING_MAX_PROCESSES``, 2);
- ``subprocess`` executor with ``--parallel 2`` (one ``manage.py migrate_schemas --schema X``
  process per tenant). Spawning 1,000 Django processes takes longer than this benchmark may, so
  it runs the executor's own code over a sample of schemas and extrapolates linearly (marked);
- ``setup_pbx`` as a whole (shared + template + every tenant + snapshot publishing).

    python bench/bench_migrate.py [--tenants 1000] [--subprocess-sample 40] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Stopwatch, scratch, table, timed  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--subprocess-sample", type=int, default=40)
    parser.add_argument("--profile", action="store_true", help="cProfile the standard run")
    args = parser.parse_args(argv)

    with scratch("migrate"):
        from django.conf import settings
        from django.core.management import call_command
        from django.db import connection
        from django_tenants.migration_executors.subproc import SubprocessExecutor

        from bench.fixtures import create_background_tenants

        with timed() as t:
            schemas = create_background_tenants(args.tenants)
        n = len(schemas)
        print(f"  {n} background tenants in {t.s:.1f} s", flush=True)
        rows = []

        def run(label: str, **options) -> None:
            connection.set_schema_to_public()
            with timed() as t:
                call_command(
                    "migrate_schemas", tenant=True, interactive=False, verbosity=0, **options
                )
            rows.append([label, n, t.s, t.s / n * 1000, "measured"])
            print(f"  {label}: {t.s:.1f} s", flush=True)

        profile_text = ""
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            run("standard (under cProfile)")
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            profile_text = out.getvalue()
        from django_tenants.postgresql_backend.introspection import DatabaseSchemaIntrospection

        with Stopwatch(DatabaseSchemaIntrospection, "get_table_list") as listing:
            run("standard")
        rows[-1][-1] = (
            f"measured; get_table_list: {listing.calls / n:.0f} calls/schema, "
            f"{listing.total / n * 1000:.1f} ms/schema"
        )
        processes = getattr(settings, "TENANT_MULTIPROCESSING_MAX_PROCESSES", 2)
        run(f"multiprocessing ({processes} processes)", executor="multiprocessing")

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

        connection.set_schema_to_public()
        with timed() as t:
            call_command("setup_pbx", verbosity=0)
        rows.append(["setup_pbx (whole, standard executor)", n, t.s, t.s / n * 1000, "measured"])

        table(
            f"migrate_schemas --tenant, nothing to migrate, {n} tenant schemas",
            ["run", "schemas", "total s", "ms/schema", "how"],
            rows,
        )
        if profile_text:
            print(profile_text)


if __name__ == "__main__":
    main()
