"""Fast ways to build the large worlds the benchmarks measure against (Django must be set up).

Background tenants are not what is measured, so they skip ``do_create_tenant``: the template
schema's DDL is dumped once with ``pg_dump`` and replayed under each new schema name, its rows
(the ``django_migrations`` history) are copied with ``INSERT ... SELECT``, and the ``Tenant`` and
``Domain`` rows are bulk-inserted. The resulting schemas have exactly the template's tables,
indexes, constraints, sequences and migration history -- what a clone produces -- so the
catalogue a measured creation or migration run sees is the same as after real creations.
"""

from __future__ import annotations

import re
import subprocess

BACKGROUND_PREFIX = "bg"


def _db():
    from django.conf import settings

    return settings.DATABASES["default"]


def template_ddl() -> str:
    """The template schema's DDL with the schema name left as ``{schema}``."""
    from django.conf import settings

    db = _db()
    template = settings.TENANT_BASE_SCHEMA
    dump = subprocess.run(
        [
            "pg_dump",
            "--schema-only",
            f"--schema={template}",
            "--no-owner",
            "--no-privileges",
            "-h",
            db["HOST"],
            "-p",
            str(db["PORT"]),
            "-U",
            db["USER"],
            db["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"PGPASSWORD": db["PASSWORD"], "PATH": "/usr/bin:/bin"},
    ).stdout
    keep = []
    for line in dump.splitlines():
        # Session settings, psql meta-commands (\restrict) and the schema itself are ours to do.
        if line.startswith(("--", "\\", "SET ", "SELECT pg_catalog.set_config", "CREATE SCHEMA")):
            continue
        keep.append(line)
    text = "\n".join(keep).replace("{", "{{").replace("}", "}}")
    return re.sub(rf"(?<![\w\"]){re.escape(template)}(?![\w\"])", "{schema}", text)


def _template_data_sql() -> str:
    """Statements copying the template's rows and sequence positions into ``{schema}``."""
    from django.conf import settings
    from django.db import connection

    template = settings.TENANT_BASE_SCHEMA
    statements = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY c.relname",
            [template],
        )
        for (table,) in cursor.fetchall():
            # Identifiers from the catalogue and settings, never from input.
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{template}"."{table}")')  # noqa: S608
            if cursor.fetchone()[0]:
                statements.append(
                    f'INSERT INTO "{{schema}}"."{table}" OVERRIDING SYSTEM VALUE '  # noqa: S608
                    f'SELECT * FROM "{template}"."{table}";'
                )
        cursor.execute(
            "SELECT sequencename, last_value FROM pg_sequences "
            "WHERE schemaname = %s AND last_value IS NOT NULL",
            [template],
        )
        for sequence, last_value in cursor.fetchall():
            statements.append(f'SELECT setval(\'"{{schema}}"."{sequence}"\', {int(last_value)});')
    return "\n".join(statements)


def _template_relations() -> int:
    from django.conf import settings
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s",
            [settings.TENANT_BASE_SCHEMA],
        )
        return cursor.fetchone()[0]


def create_background_tenants(count: int, *, start: int = 0) -> list[str]:
    """Create ``count`` tenants ``bg<start>..`` the fast way; returns their schema names."""
    import psycopg
    from django.db import connection

    from tenants.models import Domain, Tenant

    if count <= 0:
        return []
    script = template_ddl() + "\n" + _template_data_sql()
    # Each new relation holds a lock until commit; the shared lock table has room for
    # max_locks_per_transaction (64) x max_connections (100) of them, shared with everyone.
    batch = max(1, min(100, 1000 // max(1, _template_relations())))
    db = _db()
    names = [f"{BACKGROUND_PREFIX}{i:05d}" for i in range(start, start + count)]
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"],
        host=db["HOST"],
        port=db["PORT"],
    ) as raw:
        for i in range(0, len(names), batch):
            chunk = names[i : i + batch]
            sql = "\n".join(
                f'CREATE SCHEMA "t_{slug}";\n' + script.format(schema=f"t_{slug}") for slug in chunk
            )
            with raw.cursor() as cursor:
                cursor.execute(sql)  # many statements, no parameters: one round trip
            raw.commit()
    connection.set_schema_to_public()
    tenants = Tenant.objects.bulk_create(
        [
            Tenant(
                name=f"Background {slug}",
                slug=slug,
                schema_name=f"t_{slug}",
                sip_domain=f"{slug}.bench",
            )
            for slug in names
        ],
        batch_size=500,
    )
    Domain.objects.bulk_create(
        [Domain(domain=f"{t.slug}.bench", tenant=t, is_primary=True) for t in tenants],
        batch_size=500,
    )
    return [f"t_{slug}" for slug in names]


def schema_shape(schema: str) -> tuple:
    """(relations by kind, constraints, migration rows) of a schema: to compare clone and copy."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind, count(*) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s GROUP BY 1 ORDER BY 1",
            [schema],
        )
        kinds = tuple(cursor.fetchall())
        cursor.execute(
            "SELECT count(*) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace "
            "WHERE n.nspname = %s",
            [schema],
        )
        constraints = cursor.fetchone()[0]
        cursor.execute(f'SELECT count(*) FROM "{schema}".django_migrations')  # noqa: S608
        migrations = cursor.fetchone()[0]
    return kinds, constraints, migrations


def catalogue_size() -> int:
    """Rows in pg_class: what catalogue-scanning code (the clone function) walks over."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class")
        return cursor.fetchone()[0]
