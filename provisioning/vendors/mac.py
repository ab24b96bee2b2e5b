"""MAC address helpers shared by the HTTP, TFTP and PnP provisioning paths."""

from __future__ import annotations

import re

__all__ = ["format_mac", "normalize_mac"]

_SEPARATED = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")
_CISCO_DOTTED = re.compile(r"^[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}$")
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


def normalize_mac(value: str) -> str:
    """Return ``value`` as twelve lower-case hex digits.

    Accepts ``00:15:65:A1:B2:C3``, ``00-15-65-a1-b2-c3``, ``0015.65a1.b2c3`` and
    ``001565a1b2c3``. Raises :class:`ValueError` naming the problem (wrong length, a
    non-hex character, mixed separators, or a group/broadcast address, which no phone
    can own and which would otherwise match a shared configuration file).
    """
    if not isinstance(value, str):
        raise ValueError(f"MAC address must be a string, not {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ValueError("MAC address is empty")
    if _SEPARATED.match(text) or _CISCO_DOTTED.match(text):
        digits = re.sub(r"[:.\-]", "", text)
    elif any(sep in text for sep in ":-."):
        raise ValueError(
            f"MAC address {value!r} is not in a recognised form "
            "(aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff, aabb.ccdd.eeff or aabbccddeeff)"
        )
    else:
        digits = text
    if not _HEX.match(digits):
        bad = next(ch for ch in digits if ch not in "0123456789abcdefABCDEF")
        raise ValueError(f"MAC address {value!r} contains a non-hex character {bad!r}")
    if len(digits) != 12:
        raise ValueError(f"MAC address {value!r} has {len(digits)} hex digits, expected 12")
    digits = digits.lower()
    if int(digits[:2], 16) & 0x01:
        # The I/G bit marks group addresses; ff:ff:ff:ff:ff:ff is one of them.
        kind = "broadcast" if digits == "ffffffffffff" else "multicast"
        raise ValueError(f"MAC address {value!r} is a {kind} address, not a device address")
    if digits == "000000000000":
        raise ValueError(f"MAC address {value!r} is all zeros, not a device address")
    return digits


def format_mac(mac: str, style: str = "plain") -> str:
    """Format a MAC for a vendor's notation.

    ``style`` is ``plain`` (``001565a1b2c3``), ``upper`` (``001565A1B2C3``), ``colon``
    (``00:15:65:a1:b2:c3``) or ``colon_upper``.
    """
    digits = normalize_mac(mac)
    if style == "plain":
        return digits
    if style == "upper":
        return digits.upper()
    pairs = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    if style == "colon":
        return pairs
    if style == "colon_upper":
        return pairs.upper()
    raise ValueError(f"unknown MAC style {style!r}")
