"""The rules for a tenant's names: its identifier (which becomes its schema name) and its host
names (SIP domain, web host). One module, called by the tenant actions; the API, the portal and
the admin show the actions' field errors and repeat none of these rules."""

import re

import idna

IDENTIFIER_RE = re.compile(r"^[a-z][a-z0-9]{1,30}$")
IDENTIFIER_HINT = "2–31 lower-case letters and digits, starting with a letter."
# Tombstones of deleted tenants take ``deleted<id>``: a live tenant may not.
_RESERVED_IDENTIFIER = re.compile(r"^(deleted[0-9]+|public)$")

HOSTNAME_HINT = "A host name such as pbx.example.com: letters, digits, hyphens and dots."
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def normalize_identifier(value) -> str:
    return str(value or "").strip().lower()


def identifier_problems(value: str) -> list[str]:
    """What is wrong with an (already normalised) tenant identifier; empty when it is valid."""
    if not IDENTIFIER_RE.match(value):
        return [IDENTIFIER_HINT]
    if _RESERVED_IDENTIFIER.match(value):
        return ["this identifier is reserved"]
    return []


def normalize_hostname(value) -> str:
    """Lower case, no surrounding blanks or final dot; an internationalised name in its ASCII
    (punycode) form, which is what DNS, SIP and HTTP carry. Unconvertible input is returned
    as typed so that :func:`hostname_problems` can say why."""
    text = str(value or "").strip().rstrip(".").lower()
    if text.isascii():
        return text
    try:
        return idna.encode(text, uts46=True).decode("ascii")
    except idna.IDNAError:
        return text


def hostname_problems(value: str) -> list[str]:
    """What is wrong with a (normalised) host name; empty when it is valid.

    RFC 1123 host names: dot-separated labels of 1–63 letters, digits and hyphens, no hyphen
    at either end of a label, at most 253 characters; punycode labels must decode. An address
    (all-numeric last label), a port, a path, blanks or underscores are not host names.
    """
    if not value:
        return ["required"]
    if len(value) > 253:
        return ["at most 253 characters"]
    if any(c.isspace() for c in value):
        return ["must not contain spaces. " + HOSTNAME_HINT]
    if ":" in value or "/" in value or "@" in value:
        return ["a host name only: no scheme, port, path or user. " + HOSTNAME_HINT]
    if not value.isascii():
        return ["not a valid internationalised domain name"]
    labels = value.split(".")
    for label in labels:
        if not label:
            return ["empty label (two dots in a row). " + HOSTNAME_HINT]
        if len(label) > 63:
            return ["each part between dots has at most 63 characters"]
        if not _LABEL_RE.match(label):
            return [HOSTNAME_HINT + " A part may not start or end with a hyphen."]
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except idna.IDNAError:
                return ["not a valid internationalised domain name"]
    if labels[-1].isdigit():
        return ["a host name, not an address"]
    return []


def clean_identity(**values) -> tuple[dict, dict]:
    """Normalise and check the given ``slug``, ``sip_domain`` and ``web_host`` values.

    Returns ``(clean values, field errors)``; only the names passed are looked at.
    """
    clean, errors = {}, {}
    for name, raw in values.items():
        if name == "slug":
            value = normalize_identifier(raw)
            problems = identifier_problems(value)
        else:
            value = normalize_hostname(raw)
            problems = hostname_problems(value)
        clean[name] = value
        if problems:
            errors[name] = problems
    return clean, errors
