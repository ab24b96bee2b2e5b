"""``extension``: ring every phone registered for an extension.

One B leg (fork) per registered contact, each offered the caller's SDP (rtpengine's when the
call is anchored); the first 180/183 is relayed to the caller, the first 2xx wins and the other
forks are CANCELled (``Reason: ... Call completed elsewhere``, RFC 3326). When every phone
refuses, the best answer (RFC 3261 16.7) decides what follows (``routing.after_refusal``:
a busy or no-answer forward, or that answer to the caller); after the extension's
``no_answer_timeout`` every fork is CANCELled (``routing.after_no_answer``). No phone
registered: ``routing.unavailable``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence

from telephony.sip.calls import profiles, routing
from telephony.sip.calls.call import Call, Leg
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.profiles import Profile
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType, ExtensionSnapshot
from telephony.sip.message import Response
from telephony.sip.registrar import Binding
from telephony.sip.transaction import new_tag

from .base import register
from .caller import answer_caller, ring_caller
from .hotdesk import phones_of

__all__ = ["Extension", "best_status"]

log = logging.getLogger(__name__)


def best_status(statuses: list[int]) -> int:
    """The answer the caller gets when every fork failed (RFC 3261 16.7): 6xx first, then
    busy (the callee is there but cannot take it), then the lowest class."""
    if any(s >= 600 for s in statuses):
        return min(s for s in statuses if s >= 600)
    if 486 in statuses:
        return 486
    return min(statuses) if statuses else 480


@register("extension")
class Extension:
    """Rings every binding of the extension, first answer wins."""

    def __init__(self, services: CallServices) -> None:
        self.s = services
        self.calls = services.calls

    def path(self, call: Call) -> Path:
        return call.path(self.s.config.max_forward_hops)

    async def connect(self, call: Call, destination: Destination) -> None:
        ext: ExtensionSnapshot = destination.data["extension"]
        number = destination.target
        tenant = call.tenant
        bindings = await phones_of(self.s.ctx.locations, tenant, number)  # with its hot desks
        if call.state == "ended":
            return  # the caller gave up meanwhile
        if not bindings:
            self.s.router.divert(call, routing.unavailable(ext, self.path(call)))
            return
        if not await self.offer(call, bindings):
            return  # cancelled while we waited for rtpengine
        call.state = "ringing"
        for binding in bindings:
            self.fork(call, binding)
        self.calls.changed(call)  # its phones ring (BLF)
        timeout = ext.no_answer_timeout or self.s.config.no_answer_timeout
        call.timer = asyncio.get_running_loop().call_later(timeout, self.no_answer, call)

    async def offer(
        self, call: Call, bindings: list[Binding], users: list[str] | None = None
    ) -> bool:
        """``call.offer``, the one its phones (``bindings``) get: the caller's, rtpengine's
        when the call needs anchoring for them (``users``: the extension of each phone, when
        they are not all the call's target, as a page's). False: the call ended meanwhile."""
        a = call.a
        assert a is not None
        owners = users or [""] * len(bindings)
        return await self.s.anchor.prepare(
            call,
            [self.profile(call, b, u) for b, u in zip(bindings, owners, strict=True)],
            caller_host=a.target.host,
            bindings=bindings,
            failure="rtpengine offer failed, media goes direct",
        )

    def profile(self, call: Call, binding: Binding, user: str = "") -> Profile:
        """The media profile of one of the phones of extension ``user`` (default: the call's
        target)."""
        ext = call.tenant.extensions.get(user or call.target)
        return profiles.of_binding(binding, ext, call.tenant)

    def fork(
        self,
        call: Call,
        binding: Binding,
        *,
        user: str = "",
        caller: ExtensionSnapshot | None = None,
        on_response: Callable[[Leg, Response], None] | None = None,
        offer: bytes | None = None,
        headers: Sequence[tuple[str, str]] = (),
        name: str = "",
        tag: str = "",
        on_bye: Callable[[Leg], None] | None = None,
    ) -> Leg:
        """INVITE one phone (``binding``) for ``call``: a fork of the call's B side. A ring
        group rings several extensions: ``user`` is the one this phone is of (default: the
        call's target), ``caller`` the identity it is shown (default: the call's caller) and
        ``on_response`` takes its answers (default: this extension's). A page offers each
        phone an ``offer`` of its own (default: the call's) with auto-answer ``headers``, under
        a leg ``name`` and our ``tag`` it chose, and lets a listener go with ``on_bye``."""
        target, _flow = self.s.ctx.locations.target_for(binding)
        caller = caller or call.caller
        leg = Leg(
            call=call,
            name=name or call.next_leg_name(),
            user=user or call.target,
            target=target,
            local_tag=tag or new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=self.calls.contact(caller.caller_id_number, target.kind),
            on_bye=on_bye,
        )
        leg.profile = self.profile(call, binding, leg.user)
        sdp = self.s.anchor.offer_of(call, leg) if offer is None else offer
        leg.invite = self.calls.invite(leg, binding.contact, caller, sdp)
        hops_left = call.max_forwards - call.hops
        leg.invite.set("Max-Forwards", str(max(hops_left, 0)))
        for entry in call.diversions:
            leg.invite.add("Diversion", entry)
        for header, value in headers:
            leg.invite.add(header, value)
        call.forks.append(leg)
        self.calls.add_leg(leg)
        handler = on_response or self.response
        leg.client_tx = self.calls.send(
            leg, leg.invite, on_response=lambda resp: handler(leg, resp)
        )
        return leg

    # --- responses to our INVITEs --------------------------------------------------------
    def response(self, leg: Leg, resp: Response) -> None:
        call = leg.call
        status = resp.status
        if status < 200:
            if status != 100:
                self.provisional(leg, resp)
            return
        if status < 300:
            self.calls.spawn(self.answered(leg, resp))
            return
        # a fork failed
        cancelled = self.calls.fork_failed(leg)
        if cancelled:
            return  # we CANCELled it (answered elsewhere, no answer, forwarded): no verdict
        self.calls.changed(call)  # that phone stopped ringing (BLF)
        call.statuses.append(status)
        if call.state == "ringing" and not call.forks and call.b is None:
            code = best_status(call.statuses)
            self.s.router.divert(
                call, routing.after_refusal(call.tenant, call.target, code, self.path(call))
            )

    def provisional(self, leg: Leg, resp: Response) -> None:
        call = leg.call
        status = resp.status
        leg.provisional = True
        self.calls.early(leg, resp)
        if call.state != "ringing" or call.b is not None:
            return
        if status not in (180, 183):
            return
        first = not any(f.provisional for f in call.forks if f is not leg)
        ring_caller(self.s, call, resp)
        if first:
            self.calls.emit(call, EventType.CALL_RINGING, leg=leg.name, callee=call.target)

    async def answered(self, leg: Leg, resp: Response) -> None:
        if await self.confirm(leg, resp):
            await self.win(leg)

    async def confirm(self, leg: Leg, resp: Response) -> bool:
        """A fork's 2xx: its dialog and our ACK. True when the call still wants it; a 2xx
        that came too late (another fork won, the caller left, or our CANCEL crossed it) is
        hung up."""
        call = leg.call
        if call.b is leg:
            return False  # this fork won already
        if not await self.calls.confirm(leg, resp):
            return False
        if call.b is not None or call.state != "ringing" or leg.gone or leg not in call.forks:
            # Another fork won, the caller left, or we gave this phone up (our CANCEL
            # crossed its 2xx): it answered too late and is hung up.
            leg.gone = False
            self.calls.bye(leg)
            return False
        return True

    async def win(self, leg: Leg) -> None:
        """``leg`` (confirmed) takes the call: the other forks are CANCELled as answered
        elsewhere, and the caller is answered."""
        call = leg.call
        call.b = leg
        if call.timer is not None:
            call.timer.cancel()
        for other in list(call.forks):
            if other is not leg:
                self.calls.cancel_fork(other, answered_elsewhere=True)
        await answer_caller(self.s, leg, failure="rtpengine answer failed")

    def no_answer(self, call: Call) -> None:
        if call.state != "ringing":
            return
        call.timer = None
        self.calls.cancel_forks(call)
        destination = routing.after_no_answer(call.tenant, call.target, self.path(call))
        self.s.router.divert(call, destination)
