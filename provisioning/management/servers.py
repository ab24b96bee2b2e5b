"""The TFTP server and PnP responder as the management commands run them.

Both call into :mod:`provisioning.delivery` from worker threads (the servers' executors), so
each call first drops a database connection that went stale between two phones booting.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections

from provisioning import delivery
from provisioning.vendors.pnp import PNP_MULTICAST_GROUP, PNP_PORT, PnpResponder, PnpResponderThread
from provisioning.vendors.tftp import Lookup, TftpServerThread


def _with_fresh_connection(func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()

    return call


def tftp_server(
    host: str | None = None, port: int | None = None, *, lookup: Lookup | None = None
) -> TftpServerThread:
    """The read-only TFTP server over :func:`delivery.tftp_lookup` (not started)."""
    return TftpServerThread(
        lookup or _with_fresh_connection(delivery.tftp_lookup),
        settings.PBX_PROV_TFTP_HOST if host is None else host,
        settings.PBX_PROV_TFTP_PORT if port is None else port,
    )


def pnp_responder(
    host: str = PNP_MULTICAST_GROUP,
    port: int = PNP_PORT,
    *,
    interface: str | None = None,
    advertise_host: str | None = None,
    url_for: Callable[[str, str, str, tuple[str, int]], str | None] | None = None,
    **options: Any,
) -> PnpResponderThread:
    """The SIP PnP responder over :func:`delivery.pnp_url_for` (not started)."""
    responder = PnpResponder(
        url_for or _with_fresh_connection(delivery.pnp_url_for),
        host,
        port,
        interface=interface or settings.PBX_PROV_PNP_INTERFACE,
        advertise_host=advertise_host,
        **options,
    )
    return PnpResponderThread(responder)


def run_until_signalled(start: Callable[[], object], stop: Callable[[], None]) -> None:
    """Start a server thread and block until SIGINT/SIGTERM, then stop it."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    start()
    try:
        done.wait()
    finally:
        stop()
