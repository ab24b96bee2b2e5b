"""Request body parsers of the API: bounded JSON, and only text that the rest of the stack can hold.

Every string of a body (keys too) is checked once here, where data enters, instead of in each
serializer: PostgreSQL refuses NUL in ``text`` and ``jsonb``, and a lone UTF-16 surrogate (JSON
allows ``"\\ud800"``) cannot be encoded as UTF-8 by the database driver or a token decoder. Both
answer 400 with the field that carried them. Nesting is limited before the body is decoded (the
standard decoder recurses once per level), and so is the size of a body.
"""

import json
import math
import re

from django.conf import settings
from rest_framework import exceptions, parsers
from rest_framework.settings import api_settings

MAX_DEPTH = 32

# A JSON string: quote, then runs of ordinary characters or backslash escapes, then quote, or
# the end of the text. Without that end, an unterminated string would be retried from every
# escaped quote inside it: quadratic time on a body of ``"\\"\\"\\"...``.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_AS_PARENS = str.maketrans("[{]}", "(())")


class BodyTooLarge(exceptions.ParseError):
    status_code = 413
    default_detail = "The request body is too large."


def nesting_too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether the JSON ``text`` nests arrays/objects deeper than ``limit`` (or leaves brackets
    unbalanced, which would make the decoder descend without end). Runs at C speed: strings are
    cut out, brackets reduced to parentheses, and one level of ``()`` pairs removed per round."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).translate(_AS_PARENS)
    for _ in range(limit):
        if not brackets:
            return False
        reduced = brackets.replace("()", "")
        if reduced == brackets:
            return True  # unbalanced: not JSON anyway
        brackets = reduced
    return bool(brackets)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored or decoded, or ``None``."""
    if "\x00" in value:
        return "must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (no lone surrogate \\ud800-\\udfff)"
    return None


def _walk(value, path: str, errors: dict, top: str) -> None:
    if isinstance(value, str):
        problem = text_problem(value)
        if problem:
            errors.setdefault(top, []).append(f"{path}: {problem}" if path != top else problem)
    elif isinstance(value, dict):
        for key, item in value.items():
            key_problem = text_problem(key) if isinstance(key, str) else None
            if key_problem:
                errors.setdefault(top or "non_field_errors", []).append(f"a key {key_problem}")
                continue
            sub = f"{path}.{key}" if path else key
            _walk(item, sub, errors, top or key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]" if path else f"[{index}]", errors, top)


def check_text(data) -> None:
    """Raise a validation error naming each field whose text the database could not store."""
    errors: dict[str, list[str]] = {}
    if hasattr(data, "lists"):  # a QueryDict (form or multipart body)
        data = {key: values for key, values in data.lists()}
    _walk(data, "", errors, "")
    if errors:
        if "" in errors:
            errors["non_field_errors"] = errors.pop("")
        raise exceptions.ValidationError(errors)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _strict_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with a size and a nesting limit, finite numbers, storable text."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        limit = settings.PBX_API_MAX_BODY
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise BodyTooLarge(f"The request body is larger than {limit} bytes.")
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        if nesting_too_deep(text):
            raise exceptions.ParseError(
                f"JSON parse error - arrays and objects nest at most {MAX_DEPTH} levels deep."
            )
        try:
            data = json.loads(
                text,
                parse_float=_finite,
                parse_constant=_strict_constant if api_settings.STRICT_JSON else None,
            )
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        check_text(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_text(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        check_text(result.data)
        return result
