"""What the trunk clients share (registration, health checks, the calls out through a trunk):
where a trunk's requests go (:meth:`~telephony.sip.contract.TrunkSnapshot.next_hop`, names
resolved here, off the hot path), the credentials it answers challenges with, and a request
of ours to the carrier."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket

from telephony.sip.auth import Credentials
from telephony.sip.contract import TrunkSnapshot
from telephony.sip.message import Request, SipURI
from telephony.sip.transport import Target

__all__ = ["TargetError", "credentials", "new_call_id", "registrar_uri", "resolve", "target_of"]

log = logging.getLogger(__name__)

LOOKUP_SECONDS = 5.0


class TargetError(Exception):
    """The carrier's address cannot be found (the reason in words)."""


async def resolve(host: str) -> list[str]:
    """The addresses of ``host`` (an IP is itself, without a lookup); [] when the lookup
    fails."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(LOOKUP_SECONDS):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except (OSError, TimeoutError, UnicodeError) as exc:
        log.warning("trunk host %s does not resolve: %s", host, exc)
        return []
    return sorted({str(info[4][0]) for info in infos})


async def target_of(trunk: TrunkSnapshot) -> Target:
    """Where this trunk's requests are sent: the outbound proxy when set, else host:port."""
    host, port = trunk.next_hop()
    if not host:
        raise TargetError("the trunk has no host")
    addrs = await resolve(host)
    if not addrs:
        raise TargetError(f"DNS lookup of {host} failed")
    return Target(trunk.transport.upper(), addrs[0], port)


def credentials(trunk: TrunkSnapshot) -> Credentials:
    """What we answer the carrier's challenges with."""
    return Credentials(trunk.auth_username or trunk.username, trunk.password, trunk.realm)


def registrar_uri(trunk: TrunkSnapshot) -> SipURI:
    return SipURI(trunk.host, port=trunk.port or None)


def new_call_id() -> str:
    return secrets.token_hex(12) + "@pbx"


def transport_param(trunk: TrunkSnapshot) -> str:
    return "" if trunk.transport == "udp" else f";transport={trunk.transport}"


def out_of_dialog(
    method: str, uri: SipURI, frm: str, to: str, call_id: str, cseq: int, contact: str
) -> Request:
    return Request(
        method,
        uri,
        [
            ("Max-Forwards", "70"),
            ("From", frm),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", contact),
        ],
    )
