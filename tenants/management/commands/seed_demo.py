"""The demo tenant: ``demo`` on demo.localhost with extensions 1001–1003 (each with its
mailbox), the main menu 800 its DID answers with, the ring group 600 (key 4 of the menu),
one pickup group of the three extensions, park slots 701–710 (the defaults), and a tenant
admin."""

import os
import secrets

from django.core.management.base import BaseCommand
from django_tenants.utils import tenant_context

from pbx.audit import SYSTEM
from tenants import actions
from tenants.choices import Role
from tenants.models import Tenant, User, login_key


class Command(BaseCommand):
    help = "Create the demo tenant and its extensions if they are missing (idempotent)."

    def handle(self, *args, **options):
        host = os.environ.get("PBX_DEMO_HOST", "demo.localhost")
        tenant = Tenant.objects.filter(slug="demo").first()
        if tenant is None:
            tenant = actions.do_create_tenant(
                name="Demo Company", slug="demo", sip_domain=host, web_host=host, actor=SYSTEM
            )
            self.stdout.write(f"demo tenant created on {host}")
        sip_password = os.environ.get("PBX_DEMO_SIP_PASSWORD") or None
        admin_email = os.environ.get("PBX_DEMO_ADMIN_EMAIL", "admin@demo.localhost")
        admin_password = os.environ.get("PBX_DEMO_ADMIN_PASSWORD")
        admin = User.objects.filter(login_key=login_key(admin_email, tenant.id)).first()
        if admin is not None and admin_password and not admin.check_password(admin_password):
            # As for SIP passwords: the environment's password wins over an older one.
            actions.do_update_user(admin, password=admin_password, actor=SYSTEM)
            self.stdout.write(f"demo tenant admin {admin_email}: password updated")
        if admin is None:
            # The policy wants a digit, which a random token may lack.
            suffix = secrets.randbelow(90) + 10
            admin_password = admin_password or f"Demo-{secrets.token_urlsafe(10)}-{suffix}"
            actions.do_create_user(
                email=admin_email,
                password=admin_password,
                role=Role.TENANT_ADMIN,
                tenant=tenant,
                full_name="Demo Admin",
                actor=SYSTEM,
            )
            self.stdout.write(f"demo tenant admin: {admin_email} / {admin_password}")
        with tenant_context(tenant):
            from telephony.actions import do_create_extension, do_update_extension
            from telephony.models import Extension

            for number, name in (("1001", "Alice"), ("1002", "Bob"), ("1003", "Carol")):
                ext = Extension.objects.filter(number=number).first()
                if ext is None:
                    ext, password = do_create_extension(
                        number=number,
                        display_name=name,
                        sip_password=sip_password,
                        actor=SYSTEM,
                    )
                    self.stdout.write(f"extension {number}@{host} SIP password: {password}")
                elif sip_password and ext.sip_password != sip_password:
                    do_update_extension(ext, sip_password=sip_password, actor=SYSTEM)
                    self.stdout.write(f"extension {number}@{host} SIP password updated")
            self.seed_alice(tenant, host, Extension.objects.get(number="1001"))
        self.seed_team(tenant)
        self.seed_queue(tenant)
        self.seed_menu(tenant)
        self.seed_numbers(tenant)

    def seed_alice(self, tenant, host: str, ext) -> None:
        """Alice (1001) signs in to the web app as ``alice@<host>`` and calls from its Phone
        page: ``PBX_DEMO_USER_PASSWORD``, or a generated password printed once. An extension
        that already has a sign-in keeps it."""
        from telephony.actions import do_update_extension

        email = f"alice@{host}"
        if (
            ext.user_id is not None
            or User.objects.filter(login_key=login_key(email, tenant.id)).exists()
        ):
            return
        suffix = secrets.randbelow(90) + 10  # the policy wants a digit
        password = os.environ.get("PBX_DEMO_USER_PASSWORD") or (
            f"Phone-{secrets.token_urlsafe(10)}-{suffix}"
        )
        do_update_extension(ext, email=email, web_password=password, actor=SYSTEM)
        self.stdout.write(f"demo user (extension 1001, web softphone): {email} / {password}")

    def seed_team(self, tenant) -> None:
        """Sales, 600: Alice and Bob rung at once, Carol's mailbox when nobody answers; and
        a pickup group of the three extensions (``*98`` answers a colleague's ringing call)."""
        with tenant_context(tenant):
            from telephony.models import PickupGroup, RingGroup
            from telephony.team import do_create_pickup_group, do_create_ring_group

            if not RingGroup.objects.filter(number="600").exists():
                members = [{"number": n} for n in ("1001", "1002")]
                overflow = {"kind": "voicemail", "target": "1003"}
                fields = {"number": "600", "name": "Sales", "members": members}
                do_create_ring_group(actor=SYSTEM, fields={**fields, "overflow": overflow})
                self.stdout.write("ring group 600 (Sales) created")
            if not PickupGroup.objects.exists():
                fields = {"name": "Office", "members": ["1001", "1002", "1003"]}
                do_create_pickup_group(actor=SYSTEM, fields=fields)
                self.stdout.write("pickup group Office created")

    def seed_queue(self, tenant) -> None:
        """Support, 500: a call queue answered by the three extensions (the longest idle
        first, ready as soon as their phones register), Carol its supervisor, Carol's mailbox
        after five minutes of waiting."""
        with tenant_context(tenant):
            from callcenter.actions import do_create_queue
            from callcenter.models import Queue

            if Queue.objects.filter(number="500").exists():
                return
            fields = {
                "number": "500",
                "name": "Support",
                "agents": ["1001", "1002", "1003"],
                "supervisors": ["1003"],
                "max_wait_seconds": 300,
                "overflow": {"kind": "voicemail", "target": "1003"},
            }
            do_create_queue(actor=SYSTEM, fields=fields)
            self.stdout.write("call queue 500 (Support) created")

    def seed_menu(self, tenant) -> None:
        """The main menu, 800: 1, 2 and 3 for the three extensions, 4 for Sales (600), 5 for
        the Support queue (500), 0 for Alice's mailbox, any extension's number dialled
        straight; what the demo DID answers with."""
        with tenant_context(tenant):
            from routing.ivr import do_create_ivr
            from routing.models import IvrMenu

            if IvrMenu.objects.filter(number="800").exists():
                return
            options = [
                {"digit": d, "target": {"kind": "extension", "target": n}}
                for d, n in (("1", "1001"), ("2", "1002"), ("3", "1003"))
            ]
            options.append({"digit": "4", "target": {"kind": "ring_group", "target": "600"}})
            options.append({"digit": "5", "target": {"kind": "queue", "target": "500"}})
            options.append({"digit": "0", "target": {"kind": "voicemail", "target": "1001"}})
            fields = {"number": "800", "name": "Main menu", "options": options}
            do_create_ivr(actor=SYSTEM, fields=fields)
            self.stdout.write("IVR menu 800 (the main menu) created")

    def seed_numbers(self, tenant) -> None:
        """A DID of the fictional +1 555 0100 range with a rule to the main menu (800) and the
        emergency number 911: what an admin sees first on the routing pages. Calls reach it
        once a trunk to a carrier is added (README: Outside calls)."""
        from trunks.actions import do_add_numbers, do_assign_number
        from trunks.models import DidNumber

        did = os.environ.get("PBX_DEMO_DID", "+15550100100")
        number = DidNumber.objects.filter(number=did).first()
        if number is None:
            (number,) = do_add_numbers(actor=SYSTEM, number=did, description="Demo main line")
        if number.tenant_id is None:
            do_assign_number(number, tenant, actor=SYSTEM)
            self.stdout.write(f"DID {did} assigned to the demo tenant")
        with tenant_context(tenant):
            from routing.actions import do_create, do_update_settings
            from routing.models import EmergencyNumber, InboundRule

            if not tenant.country:  # through the action: audited, in the engine's snapshot
                do_update_settings(actor=SYSTEM, fields={}, country="US")
            if not InboundRule.objects.filter(number=did).exists():
                menu = {"kind": "ivr", "target": "800"}
                do_create(
                    "inbound",
                    actor=SYSTEM,
                    fields={"name": "Main line", "number": did, "in_hours": menu},
                )
            if not EmergencyNumber.objects.filter(number="911").exists():
                do_create("emergency", actor=SYSTEM, fields={"number": "911"})
