"""``manage.py provisioning_tftp``: serve phones' files over TFTP (read-only).

TFTP has no host name and no secret, so a device is served only while its provisioning window
is open or to an address in its allow-list (see ``provisioning/README.md``). Port 69 needs root
or CAP_NET_BIND_SERVICE; it is not among the processes ``make run`` starts
(``pbx/processes.py``) for that reason.
"""

from django.core.management.base import BaseCommand

from provisioning.management.servers import run_until_signalled, tftp_server


class Command(BaseCommand):
    help = "Serve phone configuration files over TFTP (read-only), until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=None, help="address to bind (PBX_PROV_TFTP_HOST)")
        parser.add_argument("--port", type=int, default=None, help="port (PBX_PROV_TFTP_PORT)")

    def handle(self, *args, **options):
        server = tftp_server(options["host"], options["port"])

        def start():
            host, port = server.start()
            self.stdout.write(f"TFTP provisioning on {host}:{port} (Ctrl-C to stop)")

        run_until_signalled(start, server.stop)
