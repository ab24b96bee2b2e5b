"""``manage.py sipengine``: run the SIP engine (registrar, call layer, NAT keep-alive).

Settings give every address and port (``SIP_HOST``, ``SIP_UDP_PORT`` — TCP shares it —,
``SIP_TLS_PORT``, ``SIP_WS_PORT``, ``SIP_WSS_PORT``, ``SIP_TLS_CERT``/``SIP_TLS_KEY``,
``REDIS_URL``, ``PBX_PRODUCT_NAME``) and the call layer's ``SIP_RTPENGINE_NG`` (the same
``PBX_RTPENGINE_NG`` the rtpengine of ``pbx/processes.py`` listens on), ``SIP_NO_ANSWER_TIMEOUT``,
``SIP_ANCHOR_ALL``, ``SIP_NAT_PING_INTERVAL``, ``SIP_RECORDING_DIR`` and
``SIP_RTPENGINE_DTMF`` (rtpengine's recording directory and DTMF reports, as
``pbx/processes.py`` starts it); options override them. Before the event loop starts, every
tenant's routing snapshot is published (in a thread, so the ORM never runs on the loop and no
database connection is left open in the engine's thread).
"""

import contextlib
import hashlib
import hmac
import logging
import os
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connections

from telephony.sip.app import PbxConfig, parse_hostport, run
from telephony.sip.contract import WEB_CREDENTIAL_LABEL, derive_secret
from telephony.sip.security import GuardConfig
from telephony.sip.server import EngineConfig

log = logging.getLogger(__name__)


def nonce_secret() -> bytes:
    """Derived from SECRET_KEY, so every engine of an installation accepts the others' nonces."""
    return hmac.new(settings.SECRET_KEY.encode(), b"sip-digest-nonce", hashlib.sha256).digest()


def web_secret() -> bytes:
    """The key of the web softphone's credentials: the one the web app issues them with."""
    return derive_secret(settings.SECRET_KEY, WEB_CREDENTIAL_LABEL)


def digest_algorithms() -> tuple[str, ...]:
    """Digest algorithms every tenant is challenged with, in order: ``PBX_SIP_DIGEST_ALGORITHMS``
    (default ``MD5``; tenants opt in to SHA-256 one by one, ``Tenant.sip_digest_sha256``)."""
    raw = os.environ.get("PBX_SIP_DIGEST_ALGORITHMS", "MD5")
    return tuple(a.strip().upper() for a in raw.split(",") if a.strip()) or ("MD5",)


def _port(value: int | None) -> int | None:
    """A port of 0 or less in settings/options disables that transport (None in the engine)."""
    return value if value is not None and value > 0 else None


class Command(BaseCommand):
    help = "Run the SIP engine (registrar, call layer, NAT keep-alive)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SIP_HOST)
        parser.add_argument("--udp-port", type=int, default=settings.SIP_UDP_PORT)
        parser.add_argument("--tcp-port", type=int, default=None, help="default: the UDP port")
        parser.add_argument("--tls-port", type=int, default=settings.SIP_TLS_PORT)
        parser.add_argument("--ws-port", type=int, default=settings.SIP_WS_PORT)
        parser.add_argument("--wss-port", type=int, default=settings.SIP_WSS_PORT)
        parser.add_argument("--redis-url", default=settings.REDIS_URL)
        parser.add_argument("--redis-prefix", default=settings.SIP_REDIS_PREFIX)
        parser.add_argument(
            "--allow",
            default=os.environ.get("PBX_SIP_ALLOW", ""),
            help="comma-separated addresses never banned (e.g. a trusted SBC)",
        )
        parser.add_argument(
            "--rtpengine",
            default=settings.SIP_RTPENGINE_NG,
            help='rtpengine ng address host:port ("" = media always direct)',
        )
        parser.add_argument(
            "--media-server",
            default=settings.MEDIA_CONTROL,
            help='the media server\'s control address host:port ("" = no media features)',
        )
        parser.add_argument(
            "--no-publish", action="store_true", help="do not publish snapshots at start"
        )

    def handle(self, *args, **opts):
        if not opts["no_publish"]:
            self._publish_all()
        cert, key = settings.SIP_TLS_CERT, settings.SIP_TLS_KEY
        have_tls = bool(cert and key and os.path.exists(cert) and os.path.exists(key))
        if not have_tls:
            log.warning("no TLS certificate at %s: TLS and WSS are off", cert)
        udp = _port(opts["udp_port"])
        tcp = _port(opts["tcp_port"]) if opts["tcp_port"] is not None else udp
        engine = EngineConfig(
            host=opts["host"],
            udp_port=udp,
            tcp_port=tcp,
            tls_port=_port(opts["tls_port"]) if have_tls else None,
            ws_port=_port(opts["ws_port"]),
            wss_port=_port(opts["wss_port"]) if have_tls else None,
            tls_cert=cert if have_tls else None,
            tls_key=key if have_tls else None,
            product=settings.PBX_PRODUCT_NAME,
        )
        allow = tuple(a.strip() for a in opts["allow"].split(",") if a.strip())
        config = PbxConfig(
            engine=engine,
            redis_url=opts["redis_url"],
            redis_prefix=opts["redis_prefix"],
            nonce_secret=nonce_secret(),
            web_secret=web_secret(),
            digest_algorithms=digest_algorithms(),
            guard=GuardConfig(allow_list=allow),
            event_stream_cap=int(os.environ.get("PBX_SIP_EVENT_STREAM_CAP", "1000000")),
            rtpengine_ng=parse_hostport(opts["rtpengine"]),
            no_answer_timeout=float(settings.SIP_NO_ANSWER_TIMEOUT),
            anchor_all=bool(settings.SIP_ANCHOR_ALL),
            nat_ping_interval=float(settings.SIP_NAT_PING_INTERVAL),
            media_server=parse_hostport(opts["media_server"]),
            media_dir=str(settings.MEDIA_ROOT),
            recording_dir=str(settings.SIP_RECORDING_DIR),
            dtmf_listen=parse_hostport(settings.SIP_RTPENGINE_DTMF),
            max_transcoded_calls=int(os.environ.get("PBX_MAX_TRANSCODED_CALLS", "20")),
        )
        if opts["rtpengine"] and config.rtpengine_ng is None:
            log.warning("rtpengine address %r has no port: media goes direct", opts["rtpengine"])
        self._close_orphaned_calls(config)
        ng = config.rtpengine_ng
        self.stdout.write(
            f"SIP engine on {opts['host']} udp/tcp {udp}; Redis {opts['redis_url']}; "
            f"rtpengine {f'{ng[0]}:{ng[1]}' if ng else 'off'}"
        )
        with contextlib.suppress(KeyboardInterrupt):
            run(config)

    def _close_orphaned_calls(self, config: PbxConfig) -> None:
        """Calls the previous run left open (a crash, ``kill -9``) get their end now."""
        import redis

        from telephony.engine.state import close_orphaned_calls

        try:
            client = redis.Redis.from_url(config.redis_url, socket_timeout=5)
            closed = close_orphaned_calls(
                client,
                prefix=config.redis_prefix,
                engine_id=config.engine_id,
                stream=config.event_stream,
            )
            client.close()
        except redis.RedisError as exc:
            log.warning("could not close the previous run's calls: %s", exc)
            return
        if closed:
            self.stdout.write(f"closed {closed} calls left open by the previous run")

    def _publish_all(self) -> None:
        from telephony.engine.snapshots import publish_all

        result: dict[str, int] = {}

        def work() -> None:
            try:
                result["count"] = publish_all()
            finally:
                connections.close_all()

        t = threading.Thread(target=work, name="publish-snapshots")
        t.start()
        t.join()
        self.stdout.write(f"published {result.get('count', 0)} routing snapshots")
