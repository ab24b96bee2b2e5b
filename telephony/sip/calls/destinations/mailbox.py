"""``mailbox``: the voicemail menu (``target``: the mailbox's number, "" = ask for it).

Reached by the voicemail feature code (the caller's own mailbox) or an IVR option. The caller
proves the mailbox is theirs with its PIN (three tries; a mailbox without a PIN opens only to
its own extension's phones, without asking), hears how many new and saved messages it has and
the main menu: 1 new messages, 2 saved messages, 0 greetings, * hang up. Each message is
announced (its number and the caller's) and played, then: 1 again, 2 save, 7 delete, 9 next,
* back. A new message heard to its end is saved when the caller moves on. Greetings: 1 the
"unavailable" one, 2 the "busy" one, recorded after a beep until #.

The messages come from the mailbox index the Django side keeps in Redis
(``contract.VOICEMAIL_BOX``); what the caller does is sent back as requests
(``voicemail.updated``, ``voicemail.greeting``), which also update the phones' lamps.
"""

from __future__ import annotations

import logging
import secrets

from telephony.media.client import MediaSession
from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import (
    VOICEMAIL_BOX,
    EventType,
    MailboxAction,
    MailboxIndex,
    VoicemailMessage,
    VoicemailSettings,
    key,
)

from .base import register

__all__ = ["Mailbox"]

log = logging.getLogger(__name__)

MENU_TIMEOUT = 8.0
GREETING_SECONDS = 60.0


@register("mailbox")
class Mailbox:
    def __init__(self, services: CallServices) -> None:
        self.s = services

    async def connect(self, call: Call, destination: Destination) -> None:
        media = self.s.media
        session = await media.take(call)
        if session is None:
            self.s.calls.fail(call, 480, reason="voicemail unavailable")
            return
        box = destination.target
        if not box:
            await session.play(media.prompts(call.tenant, "mailbox-number"), barge=True)
            box = await session.collect(10, timeout=4.0, first_timeout=MENU_TIMEOUT)
        ext = call.tenant.extensions.get(box)
        settings = ext.voicemail if ext is not None else None
        own = not call.inbound and call.caller.number == box and ext is not None
        if settings is None or not await self.unlock(call, session, settings, own):
            await media.goodbye(call, "mailbox refused", "no-mailbox", "goodbye")
            return
        await self.main(call, session, box)

    async def unlock(
        self, call: Call, session: MediaSession, settings: VoicemailSettings, own: bool
    ) -> bool:
        """The PIN, when the mailbox has one; without one, only its own phones get in."""
        if not settings.pin:
            return own
        return await self.s.media.ask_pin(call, session, settings.pin)

    async def index(self, call: Call, box: str) -> MailboxIndex:
        ctx = self.s.ctx
        name = key(ctx.config.redis_prefix, VOICEMAIL_BOX, schema=call.tenant.schema, box=box)
        return MailboxIndex.from_json(await ctx.redis.get(name))

    async def main(self, call: Call, session: MediaSession, box: str) -> None:
        media, tenant = self.s.media, call.tenant
        index = await self.index(call, box)
        new, saved = list(index.new), list(index.saved)
        if new or saved:
            summary = media.prompts(tenant, "you-have") + media.digits(tenant, str(len(new)))
            summary += media.prompts(tenant, "new-messages") + media.digits(tenant, str(len(saved)))
            summary += media.prompts(tenant, "saved-messages")
        else:
            summary = media.prompts(tenant, "no-messages")
        await session.play(summary, barge=True)
        idle = 0
        while call.state != "ended" and not session.closed and idle < 3:
            await session.play(media.prompts(tenant, "main-menu"), barge=True)
            digit = await session.next_digit(MENU_TIMEOUT)
            if digit is None:
                idle += 1
                continue
            idle = 0
            if digit == "1":
                await self.listen(call, session, box, new, saved, fresh=True)
            elif digit == "2":
                await self.listen(call, session, box, saved, saved, fresh=False)
            elif digit == "0":
                await self.greetings(call, session, box)
            elif digit == "*":
                break
            else:
                await session.play(media.prompts(tenant, "invalid"))
        if call.state != "ended":
            await media.goodbye(call, "mailbox done")

    async def listen(
        self,
        call: Call,
        session: MediaSession,
        box: str,
        messages: list[VoicemailMessage],
        saved: list[VoicemailMessage],
        *,
        fresh: bool,
    ) -> None:
        """Play ``messages`` one by one with the message menu; ``fresh``: they are the new
        ones, saved once heard."""
        media, tenant = self.s.media, call.tenant
        i = 0
        while i < len(messages) and call.state != "ended" and not session.closed:
            msg = messages[i]
            intro = media.prompts(tenant, "message") + media.digits(tenant, str(i + 1))
            if msg.caller:
                intro += media.prompts(tenant, "from") + media.digits(tenant, msg.caller)
            session.flush_digits()
            await session.play(intro, barge=True)
            await session.play([{"file": msg.path}], barge=True)
            digit = await self.choose(call, session)
            if digit == "1":
                continue  # again
            if digit == "7":
                self.update(call, box, msg, MailboxAction.DELETE)
                messages.pop(i)
                await session.play(media.prompts(tenant, "deleted"))
                continue
            if fresh:  # heard: it is saved, the next one moves up
                self.update(call, box, msg, MailboxAction.SAVE)
                saved.append(messages.pop(i))
            else:
                i += 1
            if digit == "2":
                await session.play(media.prompts(tenant, "saved"))
            if digit in ("*", None):
                return
        if call.state != "ended" and not session.closed:
            await session.play(media.prompts(tenant, "no-more-messages"))

    async def choose(self, call: Call, session: MediaSession) -> str | None:
        """The message menu's key (None: none pressed)."""
        digit = await session.next_digit(0.1)
        if digit is not None:
            return digit
        await session.play(self.s.media.prompts(call.tenant, "message-menu"), barge=True)
        return await session.next_digit(MENU_TIMEOUT)

    def update(self, call: Call, box: str, msg: VoicemailMessage, action: MailboxAction) -> None:
        self.s.media.request(call, EventType.VOICEMAIL_UPDATED, box=box, message=msg.id,
                             action=action.value)  # fmt: skip

    async def greetings(self, call: Call, session: MediaSession, box: str) -> None:
        media, tenant = self.s.media, call.tenant
        await session.play(media.prompts(tenant, "greeting-menu"), barge=True)
        digit = await session.next_digit(MENU_TIMEOUT)
        kind = {"1": "unavailable", "2": "busy"}.get(digit or "")
        if kind is None:
            return
        await session.play(media.prompts(tenant, "record-greeting"))
        path = media.tenant_path(call, "greetings", f"{box}-{kind}-{secrets.token_hex(6)}.wav")
        seconds, _why = await session.record(path, max_seconds=GREETING_SECONDS)
        if seconds >= 1.0 and call.state != "ended":
            media.request(call, EventType.VOICEMAIL_GREETING, box=box, greeting=kind, path=path)
            await session.play(media.prompts(tenant, "greeting-saved"))
