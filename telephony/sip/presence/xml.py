"""The bodies of BLF NOTIFYs: ``application/dialog-info+xml`` (RFC 4235) and
``application/pidf+xml`` (RFC 3863, with the RPID ``on-the-phone`` activity of RFC 4480).

Pure functions of the state, written by hand rather than with an XML library: the documents
are small and fixed in shape, and one writer that escapes every piece of text that did not
come from us (display names and numbers reach here from callers' From headers) is easier to
audit than a tree. Text is escaped for both element content and attribute values, and the
characters XML 1.0 forbids (controls other than TAB, CR, LF; CR and LF are made spaces so a
display name stays on one line) are dropped rather than written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from telephony.sip.contract import DialogView

__all__ = ["DIALOG_INFO", "PIDF", "dialog_info", "escape", "pidf"]

DIALOG_INFO = "application/dialog-info+xml"
PIDF = "application/pidf+xml"

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff\ud800-\udfff]")
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": " ", "\n": " "}
)


def escape(text: str) -> str:
    """``text`` safe inside an element or a (double- or single-quoted) attribute value."""
    return _FORBIDDEN.sub("", text).translate(_ESCAPES)


def _uri(user: str, domain: str) -> str:
    # The user part comes from a number; anything that would break the URI or the XML is
    # escaped (a number is digits, but a remote party of a trunk call is what the carrier said).
    return escape(f"sip:{user}@{domain}")


def dialog_info(
    number: str, domain: str, version: int, dialogs: Iterable[DialogView], *, full: bool = True
) -> bytes:
    """A dialog-info document for ``number`` at ``domain``: one ``<dialog>`` per view (none
    when idle). Each dialog carries what a phone needs to pick a ringing call up with
    ``Replaces`` (call-id, local-tag, remote-tag of the watched phone's dialog)."""
    entity = _uri(number, domain)
    state = "full" if full else "partial"
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="{version}" '
        f'state="{state}" entity="{entity}">\n',
    ]
    for d in dialogs:
        attrs = f'id="{escape(d.id)}"'
        if d.call_id:
            attrs += f' call-id="{escape(d.call_id)}"'
        if d.local_tag:
            attrs += f' local-tag="{escape(d.local_tag)}"'
        if d.remote_tag:
            attrs += f' remote-tag="{escape(d.remote_tag)}"'
        attrs += f' direction="{"initiator" if d.direction == "initiator" else "recipient"}"'
        out.append(f"  <dialog {attrs}>\n")
        out.append(f"    <state>{'confirmed' if d.state == 'confirmed' else 'early'}</state>\n")
        if d.remote:
            name = f' display="{escape(d.remote_name)}"' if d.remote_name else ""
            out.append(
                f"    <remote><identity{name}>{_uri(d.remote, domain)}</identity>"
                f'<target uri="{_uri(d.remote, domain)}"/></remote>\n'
            )
        out.append(
            f"    <local><identity>{entity}</identity>"
            f'<target uri="{entity}"/></local>\n'
            "  </dialog>\n"
        )
    out.append("</dialog-info>\n")
    return "".join(out).encode()


def pidf(number: str, domain: str, *, online: bool, on_phone: bool) -> bytes:
    """A PIDF document for ``number``: basic ``open`` while it has a registered phone (or,
    for a park slot, always), with the RPID activity ``on-the-phone`` and a note while it has
    dialogs."""
    entity = _uri(number, domain)
    basic = "open" if online else "closed"
    if on_phone:
        note = "On the phone"
        activity = "<rpid:on-the-phone/>"
    elif online:
        note, activity = "Available", ""
    else:
        note, activity = "Offline", ""
    person = ""
    if activity:
        person = (
            f'  <dm:person id="p-{escape(number)}">\n'
            f"    <rpid:activities>{activity}</rpid:activities>\n"
            "  </dm:person>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" '
        'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        'xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" '
        f'entity="{entity}">\n'
        f'  <tuple id="t-{escape(number)}">\n'
        f"    <status><basic>{basic}</basic></status>\n"
        f"    <contact>{entity}</contact>\n"
        f"    <note>{note}</note>\n"
        "  </tuple>\n"
        f"{person}"
        "</presence>\n"
    ).encode()
