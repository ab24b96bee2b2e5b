"""The data a phone's configuration is rendered from.

The Django side builds one :class:`ProvisioningContext` per request from the device, its
extensions and the resolved settings; templates never see ORM objects, so they cannot
reach the database or lazy-load anything from inside the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .mac import normalize_mac
from .timezones import time_zone_info

__all__ = ["KEY_KINDS", "TRANSPORTS", "BlfKey", "Branding", "Line", "ProvisioningContext"]

#: Transports a context may ask for; each template maps them to vendor values.
TRANSPORTS = ("udp", "tcp", "tls")
#: What a programmable key does: ``blf`` watches an extension (pressed while it rings: picks
#: the call up with the tenant's pickup code; else calls it), ``park`` watches a park slot
#: (lit while a call is parked there; pressed: takes it), ``intercom`` calls the extension
#: with the tenant's intercom code (auto-answer).
KEY_KINDS = ("blf", "park", "intercom")


@dataclass(frozen=True)
class Line:
    """One SIP account on the device (``index`` is the 1-based account number)."""

    index: int
    extension: str
    display_name: str
    auth_user: str
    password: str
    label: str = ""

    def __post_init__(self) -> None:
        if self.index < 1:
            raise ValueError(f"line index must be 1 or more, got {self.index}")
        if not self.extension:
            raise ValueError(f"line {self.index} has no extension number")


@dataclass(frozen=True)
class BlfKey:
    """A busy-lamp-field key watching ``extension`` (placed after the line keys): an
    extension's or a park slot's number, or the extension an intercom key calls (``kind``,
    one of :data:`KEY_KINDS`)."""

    label: str
    extension: str
    kind: str = "blf"

    def __post_init__(self) -> None:
        if self.kind not in KEY_KINDS:
            raise ValueError(f"key kind must be one of {KEY_KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Branding:
    """Look of the phone: shown product name and optional images fetched by URL."""

    product_name: str = ""
    logo_url: str | None = None
    background_url: str | None = None


def _freeze_handsets(
    value: Mapping[int, int] | Iterable[tuple[int, int]],
) -> tuple[tuple[int, int], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((int(h), int(li)) for h, li in pairs))


@dataclass(frozen=True)
class ProvisioningContext:
    """Everything one device's files are rendered from.

    ``lines``, ``blf_keys`` and ``handsets`` may be given as lists/dicts; they are stored
    as tuples so a context can be shared between threads (TFTP, PnP) without copying.
    ``handsets`` maps a DECT handset number (1-based) to a line ``index``. ``settings`` holds
    resolved layered settings (see :func:`resolve_settings`); templates read them as
    ``settings.<key>``. ``codes`` are the tenant's enabled feature codes (feature -> code,
    the engine contract's ``Feature`` names); templates read the ones keys use as
    ``features.<name>`` (empty when switched off).
    """

    mac: str
    model_id: str
    lines: tuple[Line, ...]
    sip_domain: str
    sip_server: str
    sip_port: int = 5060
    transport: str = "udp"
    outbound_proxy: str | None = None
    time_zone: str = "UTC"
    language: str = "en"
    ntp_server: str = "pool.ntp.org"
    blf_keys: tuple[BlfKey, ...] = ()
    firmware_url: str | None = None
    branding: Branding = field(default_factory=Branding)
    provisioning_url: str = ""
    admin_password: str = ""
    handsets: tuple[tuple[int, int], ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    codes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen dataclasses forbid assignment, so normalising goes through object.__setattr__.
        object.__setattr__(self, "mac", normalize_mac(self.mac))
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "blf_keys", tuple(self.blf_keys))
        object.__setattr__(self, "handsets", _freeze_handsets(self.handsets))
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))
        object.__setattr__(self, "codes", MappingProxyType(dict(self.codes)))
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, got {self.transport!r}")
        if not 0 < self.sip_port < 65536:
            raise ValueError(f"SIP port {self.sip_port} is out of range")
        indexes = [line.index for line in self.lines]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"duplicate line index in {indexes}")
        for handset, line_index in self.handsets:
            if handset < 1:
                raise ValueError(f"handset number must be 1 or more, got {handset}")
            if line_index not in indexes:
                raise ValueError(f"handset {handset} points at missing line {line_index}")
        time_zone_info(self.time_zone)  # raises ValueError for an unknown zone

    @property
    def handset_map(self) -> dict[int, int]:
        """Handset number -> line index."""
        return dict(self.handsets)

    def line(self, index: int) -> Line:
        """The line with account number ``index``."""
        for line in self.lines:
            if line.index == index:
                return line
        raise KeyError(index)
