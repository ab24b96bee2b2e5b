"""``python -m telephony.media``: run the media server (``manage.py mediaserver`` does the same
from Django's settings).

    python -m telephony.media [--control HOST:PORT] [--rtp-host H] [--rtp-port-min N]
                              [--rtp-port-max N] [--rtp-timeout S] [--cache-mb N]

Defaults come from the environment the settings read: ``PBX_MEDIA_CONTROL`` (127.0.0.1:2230),
``PBX_MEDIA_RTP_HOST`` (127.0.0.1), ``PBX_MEDIA_RTP_PORT_MIN``/``MAX`` (20000-29999). A control
port of 0 takes a free one; the line ``media server ready on HOST:PORT`` on stdout says which.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys

from telephony.media.server import MediaConfig, MediaServer, serve

__all__ = ["main", "parse_hostport", "run"]


def parse_hostport(text: str, default_port: int = 2230) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        return text.strip() or "127.0.0.1", default_port
    return host.strip("[]") or "127.0.0.1", int(port)


def _ready(server: MediaServer) -> None:
    sys.stdout.write(f"media server ready on {server.config.control_host}:{server.control_port}\n")
    sys.stdout.flush()


def run(config: MediaConfig) -> None:
    """Serve until interrupted, on uvloop when it is installed."""
    # What was made at start-up (modules, codec tables) stays: no collection walks it again.
    gc.collect()
    gc.freeze()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in requirements
        runner = asyncio.run
    else:
        runner = uvloop.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(serve(config, _ready))


def config_from_args(argv: list[str] | None = None) -> MediaConfig:
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="python -m telephony.media", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--control", default=env.get("PBX_MEDIA_CONTROL") or "127.0.0.1:2230")
    parser.add_argument("--rtp-host", default=env.get("PBX_MEDIA_RTP_HOST") or "127.0.0.1")
    parser.add_argument(
        "--rtp-port-min", type=int, default=int(env.get("PBX_MEDIA_RTP_PORT_MIN") or 20000)
    )
    parser.add_argument(
        "--rtp-port-max", type=int, default=int(env.get("PBX_MEDIA_RTP_PORT_MAX") or 29999)
    )
    parser.add_argument("--rtp-timeout", type=float, default=60.0, help="seconds without RTP")
    parser.add_argument("--cache-mb", type=int, default=64, help="encoded prompt cache size")
    args = parser.parse_args(argv)
    host, port = parse_hostport(args.control)
    return MediaConfig(
        control_host=host,
        control_port=port,
        rtp_host=args.rtp_host,
        rtp_port_min=args.rtp_port_min,
        rtp_port_max=args.rtp_port_max,
        rtp_timeout=args.rtp_timeout,
        cache_bytes=args.cache_mb * 1024 * 1024,
    )


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(
        level=os.environ.get("PBX_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    run(config_from_args(argv))


if __name__ == "__main__":
    main()
