"""Readers for the file formats phones fetch, used to validate rendered output.

They are deliberately strict: a custom template whose output would be half-ignored by
the phone (a stray line, a duplicated key, broken XML) is reported before it is saved.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # noqa: S405 - parses our own rendered output, not input
from enum import StrEnum

__all__ = [
    "FileFormat",
    "FormatError",
    "check_output",
    "parse_fanvil_cfg",
    "parse_xml",
    "parse_yealink_cfg",
]


class FileFormat(StrEnum):
    """Syntax of a provisioning file."""

    YEALINK_CFG = "yealink_cfg"  # "#!version:1.0.0.1" then "key = value" lines
    FANVIL_CFG = "fanvil_cfg"  # "<<VOIP CONFIG FILE>>" sections of "Key :value" lines
    XML = "xml"


class FormatError(ValueError):
    """A rendered file does not parse in its vendor's format."""


_YEALINK_KEY = re.compile(r"^[A-Za-z0-9_.\-\[\]]+$")
_FANVIL_ENTRY = re.compile(r"^(?P<key>[A-Za-z0-9][A-Za-z0-9 _\-/.()#]*?)\s*:(?P<value>.*)$")


def parse_yealink_cfg(text: str) -> dict[str, str]:
    """Parse a Yealink ``.cfg`` file into ``{key: value}``.

    Raises :class:`FormatError` for a missing version header, an unreadable line or a
    key given twice (the phone would silently keep only one of them).
    """
    lines = text.splitlines()
    if not lines or not lines[0].startswith("#!version:"):
        raise FormatError("line 1: Yealink files must start with '#!version:1.0.0.1'")
    values: dict[str, str] = {}
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _YEALINK_KEY.match(key):
            raise FormatError(f"line {number}: expected 'key = value', got {raw!r}")
        if key in values:
            raise FormatError(f"line {number}: key {key!r} is set twice")
        values[key] = value.strip()
    return values


def parse_fanvil_cfg(text: str) -> dict[str, str]:
    """Parse a Fanvil text config into ``{"<SECTION>/Key": value}``."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("<<VOIP CONFIG FILE>>"):
        raise FormatError("line 1: Fanvil files must start with '<<VOIP CONFIG FILE>>'")
    if lines[-1].strip() != "<<END OF FILE>>":
        raise FormatError(f"line {len(lines)}: Fanvil files must end with '<<END OF FILE>>'")
    section = ""
    values: dict[str, str] = {}
    for number, raw in enumerate(lines[1:-1], start=2):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("<") and line.endswith(">"):
            section = line
            continue
        if line.startswith("--"):
            continue  # list markers such as "--SIP Line List--  :" carry no value
        match = _FANVIL_ENTRY.match(line)
        if not match or not section:
            raise FormatError(f"line {number}: expected 'Key :value' in a section, got {raw!r}")
        key = f"{section}/{match['key'].strip()}"
        if key in values:
            raise FormatError(f"line {number}: key {match['key'].strip()!r} is set twice")
        values[key] = match["value"].strip()
    return values


def parse_xml(text: str) -> ET.Element:
    """Parse XML output; raises :class:`FormatError` with the parser's line/column."""
    try:
        return ET.fromstring(text)  # noqa: S314 - our own output; no external entities
    except ET.ParseError as exc:
        raise FormatError(f"XML is not well-formed: {exc}") from exc


def check_output(file_format: FileFormat | str, text: str) -> list[str]:
    """Return a list of problems with ``text`` as ``file_format`` (empty when it parses)."""
    try:
        match FileFormat(file_format):
            case FileFormat.YEALINK_CFG:
                parse_yealink_cfg(text)
            case FileFormat.FANVIL_CFG:
                parse_fanvil_cfg(text)
            case FileFormat.XML:
                parse_xml(text)
    except FormatError as exc:
        return [str(exc)]
    return []
