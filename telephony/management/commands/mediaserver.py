"""``manage.py mediaserver``: run the media server (prompts, tones, music on hold, recording,
DTMF) that the SIP engine drives over TCP.

Settings give the addresses: ``MEDIA_CONTROL`` (host:port of the control listener),
``MEDIA_RTP_HOST`` and ``MEDIA_RTP_PORT_MIN``/``MAX`` (the RTP ports); options override them.
The server itself (``telephony.media``) has no Django in it: ``python -m telephony.media`` runs
the same thing from environment variables.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from telephony.media.__main__ import parse_hostport, run
from telephony.media.server import MediaConfig


class Command(BaseCommand):
    help = "Run the media server (RTP endpoints for prompts, music on hold, recording, DTMF)."

    def add_arguments(self, parser):
        parser.add_argument("--control", default=settings.MEDIA_CONTROL or "127.0.0.1:2230")
        parser.add_argument("--rtp-host", default=settings.MEDIA_RTP_HOST)
        parser.add_argument("--rtp-port-min", type=int, default=settings.MEDIA_RTP_PORT_MIN)
        parser.add_argument("--rtp-port-max", type=int, default=settings.MEDIA_RTP_PORT_MAX)
        parser.add_argument("--rtp-timeout", type=float, default=60.0)

    def handle(self, *args, **opts):
        try:
            host, port = parse_hostport(opts["control"])
        except ValueError as exc:
            raise CommandError(f"bad control address {opts['control']!r}") from exc
        config = MediaConfig(
            control_host=host,
            control_port=port,
            rtp_host=opts["rtp_host"],
            rtp_port_min=opts["rtp_port_min"],
            rtp_port_max=opts["rtp_port_max"],
            rtp_timeout=opts["rtp_timeout"],
        )
        self.stdout.write(
            f"media server: control {host}:{port}, RTP {config.rtp_host} "
            f"{config.rtp_port_min}-{config.rtp_port_max}"
        )
        run(config)
