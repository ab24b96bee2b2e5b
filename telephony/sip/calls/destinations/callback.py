"""``callback``: automatic callback on busy (PortSIP's "call back when free", ``*33``/``*43``).

The engine remembers, per caller, the last extension of its tenant that answered busy (in
memory, per engine). ``*33`` arms a callback to it (``*33<number>``: to that extension); one
pending callback per requester (a new one replaces it), ``*43`` cancels it, it expires after
:data:`EXPIRY` seconds. When both the target and the requester are free on this engine
(``services.states``), the engine calls back:

1. the requester's phones ring with a call *from the target* (the media server's offer, so
   nothing else is needed to answer it);
2. answered, the requester hears ringback and the call is routed to the target as if the
   requester had dialled it (its forwards, DND and mailbox apply), showing the requester;
3. the target answers: the requester is re-INVITEd to it, exactly as a caller an IVR took is
   joined to the phone it chose (``MediaFeatures.join``).

So the call is one of ours whose A leg is our own INVITE (a UAC dialog) rather than the
caller's: it is a "taken caller" from the start, and the machinery of ringing, joining,
hanging up and the CDR is the one every taken caller uses. A requester that does not answer
(:data:`RING_SECONDS`) or is unreachable loses the callback.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from telephony.sip.calls.call import Call
from telephony.sip.calls.originate import ring_phones
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import Feature

from .base import register
from .feature import handled_by
from .hotdesk import phones_of

__all__ = ["EXPIRY", "Callback", "Pending"]

log = logging.getLogger(__name__)

EXPIRY = 30 * 60.0  # seconds a callback waits for the target to become free
RING_SECONDS = 30.0  # how long the requester's phones ring
BUSY = frozenset({486, 600})

Key = tuple[str, str]  # (schema, number)


@dataclass(slots=True)
class Pending:
    """A callback waiting: ``requester`` wants ``target`` (both of tenant ``domain``)."""

    domain: str
    schema: str
    requester: str
    target: str
    expires: float
    ringing: bool = False


@register("callback")
class Callback:
    """Arms and cancels callbacks, remembers busy targets, and places the callback calls."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.last_busy: dict[Key, str] = {}
        self.pending: dict[Key, Pending] = {}  # by requester
        # (schema, number) -> the requesters whose callback it is a party of: an extension's
        # state change looks at its own callbacks only (it is told on every call change).
        self.parties: dict[Key, set[Key]] = {}
        services.calls.observers.append(self)
        services.states.listeners.append(self.state_changed)

    # --- the codes -----------------------------------------------------------------------
    async def connect(self, call: Call, destination: Destination) -> None:
        feature = str(destination.data.get("feature") or "")
        tenant, caller = call.tenant, call.caller.number
        key = (tenant.schema, caller)
        prompt = "goodbye"
        if feature == Feature.CALLBACK_OFF:
            if self._drop(key) is not None:
                log.info("call %s: %s cancelled its callback", call.id, caller)
        else:
            target = destination.target or self.last_busy.get(key, "")
            ext = tenant.extensions.get(target)
            if ext is None or target == caller or not ext.enabled:
                log.info("call %s: callback to %r refused", call.id, target)
                prompt = "feature-failed"
            else:
                self._drop(key)
                self._add(
                    Pending(tenant.domain, tenant.schema, caller, target, time.time() + EXPIRY)
                )
                log.info("call %s: %s wants a callback from %s", call.id, caller, target)
        media = self.s.media
        if await media.take(call) is None:
            self.s.calls.fail(call, 480, reason="feature code without confirmation")
            return
        await media.goodbye(call, f"feature {feature}", prompt)

    def _add(self, p: Pending) -> None:
        key = (p.schema, p.requester)
        self.pending[key] = p
        for number in (p.requester, p.target):
            self.parties.setdefault((p.schema, number), set()).add(key)

    def _drop(self, key: Key) -> Pending | None:
        """The requester's callback is over (cancelled, expired, placed or failed)."""
        p = self.pending.pop(key, None)
        if p is not None:
            for number in (p.requester, p.target):
                keys = self.parties.get((p.schema, number))
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.parties[(p.schema, number)]
        return p

    # --- watching ------------------------------------------------------------------------
    def call_changed(self, call: Call) -> None:
        """An ended call that an extension of its tenant answered busy: remember it for the
        caller's ``*33``."""
        if call.state != "ended" or call.inbound or not call.target:
            return
        if call.target in call.tenant.extensions and BUSY & set(call.statuses):
            self.last_busy[(call.tenant.schema, call.caller.number)] = call.target
            if len(self.last_busy) > 100_000:  # bounded: the oldest half goes
                for k in list(self.last_busy)[:50_000]:
                    del self.last_busy[k]

    def state_changed(self, schema: str, number: str) -> None:
        """An extension's calls changed: a callback whose parties are both free now rings."""
        keys = self.parties.get((schema, number))
        if not keys:
            return
        now = time.time()
        for key in list(keys):
            p = self.pending[key]
            if p.expires < now:
                self._drop(key)
                log.info("callback of %s to %s expired", p.requester, p.target)
                continue
            if p.ringing:
                continue
            states = self.s.states
            if states.busy(schema, p.requester) or states.busy(schema, p.target):
                continue
            p.ringing = True
            self.s.calls.spawn(self.call_back(p))

    # --- the callback call ---------------------------------------------------------------
    async def call_back(self, p: Pending) -> None:
        key = (p.schema, p.requester)
        tenant = self.s.ctx.directory.tenant(p.domain)
        requester = tenant.extensions.get(p.requester) if tenant is not None else None
        target = tenant.extensions.get(p.target) if tenant is not None else None
        media = self.s.media
        if tenant is None or requester is None or target is None or not media.available:
            self._drop(key)
            return
        bindings = await phones_of(self.s.ctx.locations, tenant, p.requester)
        if not bindings:
            self._drop(key)
            log.info("callback of %s to %s: no phone registered", p.requester, p.target)
            return
        if self.pending.get(key) is not p:
            return  # cancelled meanwhile
        # Before the requester answers the call is only ours: it rings "from" the target.
        call = await ring_phones(
            self.s, tenant, requester, bindings, shown=target, callee=p.target,
            seconds=RING_SECONDS, name="cb",
        )  # fmt: skip
        self._drop(key)
        if call is None:
            log.info("callback of %s to %s: not answered", p.requester, p.target)
            return
        # From here on it is a caller the media server answered (see the module's docstring).
        log.info("callback: %s answered, calling %s", p.requester, p.target)
        await media.hand_off(call)
        media.ringback(call)
        await self.s.router.route(call, p.target)


handled_by("callback", Feature.CALLBACK_ON, Feature.CALLBACK_OFF)
