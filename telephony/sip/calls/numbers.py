"""Telephone numbers read with ``phonenumbers``, pure: the DID and the caller of a trunk's
call (:func:`e164`) and a number an extension dials (:func:`classify`) are read the same way
(:func:`_read`). Both are cached: the same few DIDs, callers and dialled numbers come again
and again, and a parse costs some 15 µs on the SIP hot path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

__all__ = ["Number", "classify", "e164"]

_DIGITS = re.compile(r"\+?[0-9]+")


def _read(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """``text`` read as dialled in ``region`` (ISO 3166; None: only E.164 can be read), or
    None when it is no possible telephone number."""
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return parsed if phonenumbers.is_possible_number(parsed) else None


def _format(parsed: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def e164(number: str, country: str = "") -> str | None:
    """``number`` in E.164 read as ``country`` dials it (ISO 3166; "" = international only),
    or None when it is no possible telephone number."""
    text = number.strip()
    if not text or len(text) > 32:
        return None
    region = country.upper() or None
    if region is None and not text.startswith("+"):
        text = "+" + text.removeprefix("00")
    parsed = _read(text, region)
    return None if parsed is None else _format(parsed)


@dataclass(frozen=True, slots=True)
class Number:
    """A dialled number read in a country: its E.164 form ("" when it cannot be read), the
    ISO 3166 region it belongs to ("" when unknown) and whether it is of the home country."""

    e164: str = ""
    region: str = ""
    national: bool = False


@lru_cache(maxsize=4096)
def classify(number: str, country: str) -> Number:
    """``number`` as dialled in ``country`` (ISO 3166; "" = only E.164 numbers can be read)."""
    if not number or not _DIGITS.fullmatch(number):
        return Number()
    parsed = _read(number, country.upper() or None)
    if parsed is None or not parsed.country_code:
        return Number()
    code = parsed.country_code
    region = phonenumbers.region_code_for_number(parsed) or ""
    if not region or region == phonenumbers.UNKNOWN_REGION:
        region = phonenumbers.region_code_for_country_code(code)
    if region == phonenumbers.UNKNOWN_REGION:
        region = ""
    home = phonenumbers.country_code_for_region(country.upper()) if country else 0
    return Number(e164=_format(parsed), region=region, national=bool(home) and code == home)
