"""The one rule for short texts that leave the database in a protocol line.

A caller ID name becomes part of a SIP ``From:`` header, a device label a line of a phone's
configuration file, a brand name an e-mail ``From:`` name and a SIP ``User-Agent``. A line break in
any of them starts a new header or a new setting: a tenant user who writes
``"Inj\\r\\nCall-Info: <sip:x>;answer-after=0"`` into a name makes a colleague's phone answer by
itself. So every such field is refused, as a field error of the action, when it holds:

- a control character (C0 including TAB, CR, LF and NUL; DEL; C1) — a line break or a cut;
- a Unicode line or paragraph separator (U+2028, U+2029), which some parsers treat as a newline;
- a bidirectional override, embedding or isolate (U+202A-U+202E, U+2066-U+2069), which makes a
  name shown on a phone or in a mail read differently from what is stored;
- a lone surrogate (not encodable as UTF-8: the writer would fail mid-message).

The actions call :func:`require_single_line` (or :func:`single_line_problem` per value) where data
enters, so the API, the portal, CSV imports and the admin all answer with the same field error.
The writers escape as well (defence in depth); this module keeps the stored data clean.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pbx.errors import ValidationFailed

_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_SEPARATORS = frozenset("\u2028\u2029")
# Emitted as the field error: one sentence an admin can act on.
SINGLE_LINE_MESSAGE = "one line of text: no line breaks, tabs or other control characters"


def _bad_char(ch: str) -> bool:
    code = ord(ch)
    return (
        code < 0x20  # C0, with TAB, LF, CR and NUL
        or 0x7F <= code <= 0x9F  # DEL and C1 (U+0085 is a "next line")
        or ch in _SEPARATORS
        or ch in _BIDI_CONTROLS
        or 0xD800 <= code <= 0xDFFF  # lone surrogates
    )


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a character no single-line protocol field may carry."""
    return any(_bad_char(ch) for ch in value)


def single_line_problem(value: Any, *, max_length: int | None = None) -> str | None:
    """What is wrong with ``value`` as a single-line text, or None when it is fine.

    Non-strings are left to the caller's own type check (None, numbers and booleans pass).
    """
    if not isinstance(value, str):
        return None
    if has_control_characters(value):
        return SINGLE_LINE_MESSAGE
    if max_length is not None and len(value) > max_length:
        return f"at most {max_length} characters"
    return None


def single_line_errors(
    fields: Mapping[str, Any], names: Iterable[str] | Mapping[str, int | None]
) -> dict[str, list[str]]:
    """Field errors for those of ``names`` present in ``fields`` (a mapping gives max lengths).

    A list value (outbound caller IDs, say) is checked item by item.
    """
    limits = names if isinstance(names, Mapping) else dict.fromkeys(names)
    errors: dict[str, list[str]] = {}
    for name, limit in limits.items():
        if name not in fields:
            continue
        value = fields[name]
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            problem = single_line_problem(item, max_length=limit)
            if problem:
                errors[name] = [problem]
                break
    return errors


def require_single_line(
    fields: Mapping[str, Any],
    names: Iterable[str] | Mapping[str, int | None],
    message: str = "Invalid text.",
) -> None:
    """Raise :class:`ValidationFailed` with a field error per offending field."""
    errors = single_line_errors(fields, names)
    if errors:
        raise ValidationFailed(message, fields=errors)


#: What a spreadsheet reads as the start of a formula (OWASP's CSV injection advice).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text, not a formula it evaluates: one starting like a
    formula gets a leading ``'`` (None: empty). Every CSV writer's text cells go through here."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
