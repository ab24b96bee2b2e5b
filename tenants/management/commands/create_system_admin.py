"""Create (or update) a system admin without prompts, for automation.

The e-mail and password come from the options, else from PBX_ADMIN_EMAIL / PBX_ADMIN_PASSWORD;
a missing password is generated and printed once.
"""

import os
import secrets

from django.core.management.base import BaseCommand, CommandError

from pbx.audit import SYSTEM
from pbx.errors import PbxError
from tenants import actions
from tenants.choices import Role
from tenants.models import User, login_key


class Command(BaseCommand):
    help = "Create or update the system admin (no prompts)."

    def add_arguments(self, parser):
        parser.add_argument("--email", default=os.environ.get("PBX_ADMIN_EMAIL"))
        parser.add_argument("--password", default=os.environ.get("PBX_ADMIN_PASSWORD"))

    def handle(self, *args, email=None, password=None, **options):
        email = (email or "admin@localhost").lower()
        generated = password is None or password == ""
        if generated:
            password = "Pbx-" + secrets.token_urlsafe(12)
        existing = User.objects.filter(login_key=login_key(email, None)).first()
        try:
            if existing is None:
                actions.do_create_user(
                    email=email, password=password, role=Role.SYSTEM_ADMIN, actor=SYSTEM
                )
                verb = "created"
            elif generated:
                self.stdout.write(f"system admin {email} exists; password unchanged")
                return
            else:
                actions.do_update_user(existing, actor=SYSTEM, password=password)
                verb = "updated"
        except PbxError as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        self.stdout.write(f"system admin {verb}: {email}")
        if generated:
            self.stdout.write(f"generated password: {password}")
