"""``manage.py events_fanout``: the long-running fan-out of engine events (see events.fanout)."""

import signal

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

from events.fanout import Fanout


class Command(BaseCommand):
    help = "Fan engine events out to live WebSockets, the live-state cache and webhook outboxes."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="drain what is there and exit")
        parser.add_argument("--consumer", default=None, help="consumer name in the group")

    def handle(self, *args, **options):
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=30)
        fanout = Fanout(client, consumer=options["consumer"])
        if options["once"]:
            self.stdout.write(f"{fanout.drain()} entries handled")
            return
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        # Finish the entry in hand on SIGTERM/SIGINT (honcho stops processes that way).
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        fanout.run(stop=lambda: stopping)
