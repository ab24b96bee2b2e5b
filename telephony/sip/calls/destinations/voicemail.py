"""``voicemail``: a caller leaves a message in a mailbox (``target``: the extension number).

The caller is taken by the media server (``media_app``), hears the mailbox's greeting for
``data["reason"]`` (its own recording, else the default "unavailable" or "busy" prompt and
"leave a message"), a beep, and is recorded until it presses #, hangs up, or the mailbox's
longest message is reached (without a media server: the answer routing would have given
without a mailbox, ``data["code"]``). A message of a second or more is handed to the Django side
(``voicemail.left``: the message row, the e-mail, the MWI), a shorter one is thrown away.
Reached by routing (an extension that is busy, does not answer or is not registered, as its
mailbox says), inbound rules, IVR options and the direct-voicemail feature code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import EventType

from .base import register
from .caller import unavailable

__all__ = ["Voicemail"]

log = logging.getLogger(__name__)

MIN_SECONDS = 1.0  # shorter recordings are hang-ups, not messages


@register("voicemail")
class Voicemail:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        media = self.s.media
        box = destination.target
        ext = call.tenant.extensions.get(box)
        settings = ext.voicemail if ext is not None else None
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        if settings is None or not settings.enabled:
            warning = f"mailbox {box!r} of {call.tenant.schema} takes no messages"
            await unavailable(self.s, call, warning, "no mailbox", "no-mailbox", "goodbye")
            return
        session = await media.take(call)
        if session is None:
            # No media server: the caller hears what it would have without a mailbox.
            code = int(destination.data.get("code") or 480)
            self.s.calls.fail(call, code, reason="voicemail unavailable")
            return
        busy = destination.data.get("reason") == "busy"
        greeting = settings.greeting_busy if busy else settings.greeting_unavailable
        items = (
            [{"file": greeting}]
            if greeting
            else media.prompts(call.tenant, "busy" if busy else "unavailable")
        )
        items += media.prompts(call.tenant, "leave-message")
        session.flush_digits()
        await session.play(items, barge=True)  # any key skips the greeting
        if call.state == "ended" or session.closed:
            return
        message = secrets.token_hex(16)
        path = media.tenant_path(call, "voicemail", box, f"{message}.wav")
        seconds, why = await session.record(
            path, max_seconds=settings.max_seconds, silence_seconds=10.0, stop_digits="#*"
        )
        if seconds >= MIN_SECONDS:
            media.request(
                call,
                EventType.VOICEMAIL_LEFT,
                box=box,
                message=message,
                path=path,
                seconds=f"{seconds:.1f}",
                caller=call.caller.caller_id_number,
                caller_name=call.caller.caller_id_name,
            )
            log.info("call %s: a %.1f s message for %s (%s)", call.id, seconds, box, why)
        else:
            await asyncio.to_thread(_remove, path)
        if call.state != "ended":
            await media.goodbye(call, "voicemail left")


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
