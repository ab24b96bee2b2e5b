"""What each extension of a tenant is doing, as this engine's calls show it: the dialogs BLF
keys light up for (``presence``), ring groups skip (busy members) and automatic callback
waits on (an extension that becomes free).

:class:`ExtensionStates` observes the live calls (a :class:`~.call.CallObserver`) and keeps,
per ``(schema, number)``, the :class:`~telephony.sip.contract.DialogView` of each leg that
involves it: the caller's own leg (``confirmed``, initiator: the line is in use from the first
ring, as BLF keys show it), each phone rung for it (``early``, recipient) and the phone that
answered (``confirmed``). Features with resources of their own (park slots) set dialogs with
:meth:`ExtensionStates.put`. Every change is told to the ``listeners`` as
``(schema, number)`` at once, in the loop, with no I/O: the presence service fans it out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telephony.sip.contract import DialogView

from .call import Call, Leg

__all__ = ["ExtensionStates", "Listener", "dialog_view", "views_of"]

log = logging.getLogger(__name__)

Listener = Callable[[str, str], None]
Resource = tuple[str, str]  # (schema, number)


def dialog_view(call: Call, leg: Leg, state: str, direction: str, view_id: str = "") -> DialogView:
    """``leg``'s dialog as its extension's BLF shows it (``view_id``: the view's id when a
    feature puts it, default ``<Call-ID>:<our tag>``)."""
    if direction == "initiator":
        remote, name = call.target or call.callee, ""
    else:
        remote, name = call.caller.caller_id_number, call.caller.caller_id_name
    return DialogView(
        id=view_id or f"{leg.sip_call_id}:{leg.local_tag}",
        state=state,
        direction=direction,
        call_id=leg.sip_call_id,
        local_tag=leg.dialog.remote_tag if leg.dialog is not None else leg.early_tag,
        remote_tag=leg.local_tag,
        remote=remote,
        remote_name=name,
    )


def views_of(call: Call) -> dict[Resource, dict[str, DialogView]]:
    """The dialogs ``call`` puts on its tenant's extensions (none once it ended)."""
    out: dict[Resource, dict[str, DialogView]] = {}
    if call.state == "ended":
        return out
    schema = call.tenant.schema
    extensions = call.tenant.extensions

    def add(leg: Leg | None, state: str, direction: str) -> None:
        if leg is None or leg.gone or leg.user not in extensions:
            return
        view = dialog_view(call, leg, state, direction)
        out.setdefault((schema, leg.user), {})[view.id] = view

    a = call.a
    if a is not None and not call.inbound and a.user == call.caller.number:
        add(a, "confirmed", "initiator")
    b = call.b
    if b is not None and call.state == "answered":
        add(b, "confirmed", "recipient" if b.client_tx is not None else "initiator")
    for fork in call.forks:
        if fork is not b:
            add(fork, "early", "recipient")
    return out


class ExtensionStates:
    """Per extension of each tenant, the dialogs this engine's calls (and features) give it."""

    def __init__(self) -> None:
        self.dialogs: dict[Resource, dict[str, DialogView]] = {}
        # What each live call contributed, to take it back when the call changes.
        self._by_call: dict[str, dict[Resource, dict[str, DialogView]]] = {}
        # Dialogs put by features (park slots): (schema, number) -> key -> view.
        self._extra: dict[Resource, dict[str, DialogView]] = {}
        self.listeners: list[Listener] = []
        # (schema, number) -> when it last became idle (epoch seconds; ring groups' longest idle).
        self.idle_since: dict[Resource, float] = {}

    # --- reading -------------------------------------------------------------------------
    def of(self, schema: str, number: str) -> list[DialogView]:
        """The dialogs of ``number`` on this engine, oldest first."""
        return list(self.dialogs.get((schema, number), {}).values())

    def busy(self, schema: str, number: str) -> bool:
        """On a call or ringing on this engine."""
        return bool(self.dialogs.get((schema, number)))

    # --- changes -------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        new = views_of(call)
        old = self._by_call.pop(call.id, {})
        if new:
            self._by_call[call.id] = new
        if new == old:
            return
        touched = set(old) | set(new)
        for res in touched:
            mine = self.dialogs.setdefault(res, {})
            for key in old.get(res, {}):
                mine.pop(key, None)
            mine.update(new.get(res, {}))
        self._settle(touched, old, new)

    def put(self, schema: str, number: str, key: str, view: DialogView | None) -> None:
        """A feature's own dialog on ``number`` (a parked call on its slot); None removes it."""
        res = (schema, number)
        extra = self._extra.setdefault(res, {})
        mine = self.dialogs.setdefault(res, {})
        if view is None:
            if extra.pop(key, None) is None:
                return
            mine.pop(key, None)
        else:
            if extra.get(key) == view:
                return
            extra[key] = view
            mine[key] = view
        if not extra:
            del self._extra[res]
        self._settle({res}, {}, {})

    def _settle(
        self,
        touched: set[Resource],
        old: dict[Resource, dict[str, DialogView]],
        new: dict[Resource, dict[str, DialogView]],
    ) -> None:
        for res in touched:
            if not self.dialogs.get(res):
                self.dialogs.pop(res, None)
                self.idle_since[res] = time.time()
            if old.get(res) == new.get(res) and res in old:
                continue
            for listener in self.listeners:
                try:
                    listener(*res)
                except Exception:
                    log.exception("extension state listener failed")
