"""Phone numbers as the PBX stores them: E.164, read with ``phonenumbers`` (never by hand).

A number is accepted when it is *possible* for its country (right length and country code):
carriers hand out test and fictional ranges (``+1 555 01xx``) that Google's validity metadata
rejects, and a PBX must route them all the same.
"""

import phonenumbers

__all__ = ["COUNTRIES", "NOT_A_RANGE", "country_problem", "range_size", "to_e164"]

COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


def to_e164(text: str, country: str = "") -> str:
    """``text`` (international ``+...`` / ``00...``, or national for ``country``) in E.164.
    Raises ValueError saying why not."""
    raw = str(text or "").strip()
    if not raw:
        raise ValueError("a phone number is required")
    if len(raw) > 32 or not raw.isascii():
        raise ValueError("not a phone number")
    region = country.upper() if country else None
    if not raw.startswith("+") and region is None:
        raise ValueError("in international form (+ and the country code), or set a country")
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("not a possible number for its country (wrong length?)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_problem(code: str) -> str | None:
    """What is wrong with ``code`` as the country national numbers are read in ("" = none)."""
    if code and code.upper() not in COUNTRIES:
        return "an ISO 3166 country code (US, DE, GB...)"
    return None


NOT_A_RANGE = "the same length as the first, and not before it"


def range_size(first: str, last: str) -> int | None:
    """How many numbers the E.164 range ``first``..``last`` holds; None when it is no range
    (``last`` of another length, or before ``first``)."""
    if len(first) != len(last) or int(last[1:]) < int(first[1:]):
        return None
    return int(last[1:]) - int(first[1:]) + 1
