"""``manage.py provisioning_pnp``: answer SIP PnP (ua-profile) SUBSCRIBEs from booting phones.

A phone multicasting to 224.0.1.75:5060 is told its token URL on its tenant's host, when its
MAC is registered and its provisioning window is open (or it is in the device's allow-list).
Joining the group on port 5060 beside the SIP engine needs SO_REUSEPORT and usually root; it is
not among the processes ``make run`` starts (``pbx/processes.py``) for that reason (see
``provisioning/README.md``).
"""

from django.core.management.base import BaseCommand

from provisioning.management.servers import pnp_responder, run_until_signalled
from provisioning.vendors.pnp import PNP_MULTICAST_GROUP, PNP_PORT


class Command(BaseCommand):
    help = "Run the SIP plug-and-play responder (multicast 224.0.1.75:5060), until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=PNP_MULTICAST_GROUP, help="group or unicast address")
        parser.add_argument("--port", type=int, default=PNP_PORT)
        parser.add_argument("--interface", default=None, help="interface address for the group")
        parser.add_argument("--advertise", default=None, help="address written into Contact/Via")

    def handle(self, *args, **options):
        responder = pnp_responder(
            options["host"],
            options["port"],
            interface=options["interface"],
            advertise_host=options["advertise"],
        )

        def start():
            host, port = responder.start()
            self.stdout.write(f"SIP PnP responder on {host}:{port} (Ctrl-C to stop)")

        run_until_signalled(start, responder.stop)
