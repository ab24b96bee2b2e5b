"""``disa``: direct inward system access (``target``: the entry's id, ``media.disa``).

Reached through a DID's inbound rule or an IVR key. The caller is taken by the media server
and asked for the entry's PIN (three tries; an entry without a PIN never opens), then for a
number, ended by # or a pause. The number is routed as if the entry's extension had dialled it:
its outbound rules, call barring and caller ID apply, and the phones of an extension ring as
for any call. Wrong PINs are logged; the caller hears nothing that tells a PIN from a number.
"""

from __future__ import annotations

import logging

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices

from .base import register
from .caller import unavailable
from .ivr import forward_taken

__all__ = ["DisaAccess"]

log = logging.getLogger(__name__)


@register("disa")
class DisaAccess:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        s, media, tenant = self.s, self.s.media, call.tenant
        entry = tenant.media.disa.get(destination.target)
        ext = tenant.extensions.get(entry.extension) if entry is not None else None
        if entry is None or ext is None or not ext.enabled or not entry.pin:
            warning = f"DISA {destination.target!r} of {tenant.schema} is gone or has no PIN"
            await unavailable(s, call, warning, "disa unavailable")
            return
        session = await media.take(call)
        if session is None:
            s.calls.fail(call, 480, reason="disa unavailable")
            return
        if not await media.ask_pin(call, session, entry.pin):
            if call.state != "ended":
                await media.goodbye(call, "disa pin refused")
            return
        await session.play(media.prompts(tenant, "enter-number"), barge=True)
        number = await session.collect(32, timeout=4.0, first_timeout=10.0)
        if call.state == "ended" or session.closed:
            return
        if not number:
            await media.goodbye(call, "disa no number")
            return
        # From here on the call is the extension's: its rules, barring and caller ID.
        call.caller = ext
        await forward_taken(s, call, number, reason="disa", via=entry.extension)
