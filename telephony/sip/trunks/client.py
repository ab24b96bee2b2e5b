"""What the trunk clients share: where a trunk's requests go (its outbound proxy, else its
host; names resolved here, off the hot path) and a request of ours to the carrier."""

from __future__ import annotations

import secrets

from telephony.sip.contract import TrunkSnapshot
from telephony.sip.message import Request, SipURI
from telephony.sip.transport import Target

from .index import resolve

__all__ = ["TargetError", "registrar_uri", "target_of"]


class TargetError(Exception):
    """The carrier's address cannot be found (the reason in words)."""


def _split(hostport: str, default: int) -> tuple[str, int]:
    text = hostport.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host.lower(), int(port) if port.isdigit() and 0 < int(port) < 65536 else default


def default_port(trunk: TrunkSnapshot) -> int:
    return trunk.port or (5061 if trunk.transport == "tls" else 5060)


async def target_of(trunk: TrunkSnapshot) -> Target:
    """Where this trunk's requests are sent: the outbound proxy when set, else host:port."""
    if trunk.outbound_proxy:
        host, port = _split(trunk.outbound_proxy, 5061 if trunk.transport == "tls" else 5060)
    else:
        host, port = trunk.host, default_port(trunk)
    if not host:
        raise TargetError("the trunk has no host")
    addrs = await resolve(host)
    if not addrs:
        raise TargetError(f"DNS lookup of {host} failed")
    return Target(trunk.transport.upper(), addrs[0], port)


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
