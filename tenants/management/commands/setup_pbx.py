"""Bring the database up to date: shared and tenant schemas, the template schema, the public
tenant's host names, and the SIP engine's routing snapshots. Safe to run again and again."""

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tenants.actions import ensure_public_tenant, ensure_template_schema


class Command(BaseCommand):
    help = "Migrate every schema and prepare the platform (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--parallel",
            type=int,
            default=None,
            help="migrate tenant schemas with this many workers",
        )

    def handle(self, *args, parallel=None, **options):
        verbosity = options.get("verbosity", 1)
        call_command("migrate_schemas", shared=True, interactive=False, verbosity=0)
        ensure_public_tenant()
        ensure_template_schema()
        tenant_opts = {"tenant": True, "interactive": False, "verbosity": 0}
        if parallel and parallel > 1:
            from django.test.utils import override_settings

            # django-tenants reads its pool size from settings, not from the command line.
            with override_settings(TENANT_MULTIPROCESSING_MAX_PROCESSES=parallel):
                call_command("migrate_schemas", executor="multiprocessing", **tenant_opts)
        else:
            call_command("migrate_schemas", **tenant_opts)
        from telephony.engine.snapshots import publish_all

        published = publish_all()
        if verbosity:
            self.stdout.write(f"schemas migrated; {published} tenant snapshots published")
