"""``ivr``: a virtual receptionist (``target``: the menu's number, ``media.ivrs``).

The caller is taken by the media server and hears the menu's greeting; a key pressed during
it or within the menu's timeout picks an option (``IvrMenu.options``), or, with dial by
extension, starts an extension's (or another menu's) number, ended by # or a pause. No key:
the greeting again; an unknown key: the "invalid" prompt and the greeting again; after the
menu's tries, its timeout target or goodbye. Outside office hours (``use_hours``) the closed
greeting plays, and the call goes to the closed target when there is one.

Where an option leads: an extension or an outside number (the phones ring while the caller
hears ringback; the one that answers is joined to the caller: ``media_app.hand_off``), a
mailbox, another menu, repeat, hang up. Dial by extension reaches only the tenant's
extensions and menus, never an outside number.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from telephony.sip.calls import inbound, routing
from telephony.sip.calls.call import Call
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import (
    EventType,
    ExtensionSnapshot,
    IvrMenu,
    RouteTarget,
    TenantSnapshot,
)

from .base import register
from .caller import unavailable

__all__ = ["FORWARD_KINDS", "Ivr", "forward_taken", "go"]

log = logging.getLogger(__name__)

INTER_DIGIT = 2.5  # seconds between the digits of an extension number
MAX_MENUS = 10  # menus one call may pass through (a loop of menus ends)
# The target kinds a taken caller is forwarded to (``forward_taken``): IVR options, overflows.
FORWARD_KINDS = ("extension", "external", "ring_group", "queue")


async def go(s: CallServices, call: Call, target: RouteTarget, via: str) -> None:
    """Send a taken caller to ``target`` (an IVR option, timeout or closed target, or an
    inbound rule's); ``via`` names where it was (the menu) for the CDR's forward segment."""
    media = s.media
    kind, number = target.kind, target.target
    if kind == "hangup":
        await media.goodbye(call, "ivr hang-up")
        return
    if kind == "reject":
        s.calls.end(call, "ivr reject")
        return
    if kind in FORWARD_KINDS:
        await forward_taken(s, call, number, reason="ivr", via=via)
        return
    if kind in ("voicemail", "ivr", "mailbox", "disa"):
        pending = s.router.connect(call, Destination(kind, number))
        if pending is not None:
            await pending
        return
    log.warning("call %s: IVR %s has a target of unknown kind %r", call.id, via, kind)
    await media.goodbye(call, "ivr target unknown")


async def forward_taken(s: CallServices, call: Call, number: str, *, reason: str, via: str) -> None:
    """A taken caller goes on to ``number`` (an IVR's choice, a DISA caller's number): the
    call's next CDR segment (``forward`` from ``via``), then the number is routed as for
    any call while the caller hears the media server until a phone answers."""
    call.hops += 1
    call.segment += 1
    call.segment_kind = "forward"
    s.calls.emit(
        call, EventType.CALL_FORWARDED, reason=reason, callee=number, **{"from": via, "to": number}
    )
    await s.media.hand_off(call)
    await s.router.route(call, number)


@routing.rule
def menu_numbers(
    tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
) -> Destination | None:
    """A menu's number, dialled by a phone or reached by a forward."""
    return Destination("ivr", number) if number in tenant.media.ivrs else None


@register("ivr")
class Ivr:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        menu = call.tenant.media.ivrs.get(destination.target)
        if menu is None:
            # A rule or option still names a menu that was deleted: the caller hears
            # "unavailable", the admin reads why.
            warning = f"no IVR menu {destination.target!r} in {call.tenant.schema}"
            await unavailable(self.s, call, warning, "ivr missing")
            return
        call.visited.append(menu.number)
        if call.visited.count(menu.number) > MAX_MENUS or len(call.visited) > 4 * MAX_MENUS:
            log.warning("call %s: IVR loop through %s", call.id, menu.number)
            await self.s.media.goodbye(call, "ivr loop")
            return
        session = await self.s.media.take(call)
        if session is None:
            self.s.calls.fail(call, 480, reason="ivr unavailable")
            return
        await self.menu(call, menu)

    async def menu(self, call: Call, menu: IvrMenu) -> None:
        s, media, tenant = self.s, self.s.media, call.tenant
        session = call.media
        assert session is not None
        if menu.use_hours and inbound.time_slot(tenant.routing, datetime.now(UTC)) != "in_hours":
            closed = (
                [{"file": menu.closed_greeting}]
                if menu.closed_greeting
                else media.prompts(tenant, "closed")
            )
            await session.play(closed)
            if menu.closed_target is not None and call.state != "ended":
                await go(s, call, menu.closed_target, menu.number)
            elif call.state != "ended":
                await media.goodbye(call, "ivr closed")
            return
        greeting = [{"file": menu.greeting}] if menu.greeting else media.prompts(tenant, "welcome")
        invalid = [{"file": menu.invalid}] if menu.invalid else media.prompts(tenant, "invalid")
        session.flush_digits()
        tries = 0
        while tries < menu.tries:
            if call.state == "ended" or session.closed:
                return
            await session.play(greeting, barge=True)
            digit = await session.next_digit(menu.timeout)
            if call.state == "ended" or session.closed:
                return
            if digit is None:
                tries += 1
                continue
            target = menu.option(digit)
            if target is None and menu.dial_extension and digit.isdigit():
                rest = await session.collect(
                    12, timeout=INTER_DIGIT, first_timeout=INTER_DIGIT, terminators="#"
                )
                target = self.dialled(call, digit + rest)
            if target is None:
                tries += 1
                await session.play(invalid)
                continue
            if target.kind == "repeat":
                continue
            await go(s, call, target, menu.number)
            return
        if menu.timeout_target is not None:
            await go(s, call, menu.timeout_target, menu.number)
        else:
            await media.goodbye(call, "ivr timeout")

    @staticmethod
    def dialled(call: Call, number: str) -> RouteTarget | None:
        """A number keyed in: an enabled extension or a menu of the tenant, else None."""
        tenant = call.tenant
        ext = tenant.extensions.get(number)
        if ext is not None and ext.enabled:
            return RouteTarget("extension", number)
        if number in tenant.media.ivrs:
            return RouteTarget("ivr", number)
        return None
