"""A raw BLF watcher for the tests: the presence tests' raw subscriber
(:mod:`tests.sip.subscribekit`) for ``dialog`` or ``presence`` of a resource; plus readers of
the NOTIFY bodies.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - our own engine's output, parsed to check it
from typing import Any

from telephony.sip.message import Request
from tests.sip.subscribekit import ACCEPT, Subscriber

__all__ = ["DIALOG_NS", "Watcher", "dialogs_of", "pidf_of"]

DIALOG_NS = "{urn:ietf:params:xml:ns:dialog-info}"
PIDF_NS = "{urn:ietf:params:xml:ns:pidf}"


class Watcher(Subscriber):
    """Extension ``user`` of ``domain`` watching ``resource`` (``event``: dialog/presence)."""

    def __init__(
        self, host: str, port: int, user: str, resource: str, *, event: str = "dialog", **kw: Any
    ) -> None:
        super().__init__(host, port, user, resource, event=event, **kw)
        # Another package (the 489 tests) still asks for dialog-info, as a BLF phone does.
        self.accept = ACCEPT.get(event, ACCEPT["dialog"])


def dialogs_of(notify: Request) -> tuple[ET.Element, list[ET.Element]]:
    """The dialog-info root and its ``<dialog>`` elements (the body must be well formed)."""
    assert notify.get("Content-Type") == "application/dialog-info+xml"
    root = ET.fromstring(notify.body)  # noqa: S314 - see the import
    assert root.tag == f"{DIALOG_NS}dialog-info"
    return root, root.findall(f"{DIALOG_NS}dialog")


def pidf_of(notify: Request) -> tuple[str, bool, str]:
    """(basic status, on-the-phone, note) of a PIDF body."""
    assert notify.get("Content-Type") == "application/pidf+xml"
    root = ET.fromstring(notify.body)  # noqa: S314 - see the import
    basic = root.find(f"{PIDF_NS}tuple/{PIDF_NS}status/{PIDF_NS}basic")
    note = root.find(f"{PIDF_NS}tuple/{PIDF_NS}note")
    assert basic is not None
    assert note is not None
    on_phone = root.find(".//{urn:ietf:params:xml:ns:pidf:rpid}on-the-phone") is not None
    return basic.text or "", on_phone, note.text or ""
