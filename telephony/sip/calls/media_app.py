"""The call layer's media server (``telephony/media/``): callers answered by the PBX itself.

A media feature (IVR, voicemail, the mailbox menu, a feature code's confirmation) *takes* the
caller: its INVITE is answered with the media server's audio, through rtpengine when the engine
has one (rtpengine stays the edge of every call: NAT, and later SRTP, are its business), and
``call.media`` is the session the feature plays on, records from and reads digits from. A
caller that was taken can be *handed off* to a number (an IVR's choice): the phones ring while
the caller hears ringback from the media server, and the one that answers is joined to the
caller by a re-INVITE (a new rtpengine pairing when anchored), after which the session closes.

Music on hold: a party put on hold hears the tenant's music from a session of its own while
the holder's audio goes to a second, silent one (``hold``/``unhold``, used by the bridge).

Prompts are files: the tenant's own recording of a name (``media.prompts``) or the shipped set
(``prompts/<language>/<name>.wav``, English where the tenant's language has none).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from telephony.media.client import MediaClient, MediaError, MediaSession
from telephony.media.prompts import default_path
from telephony.sip.config import CallConfig
from telephony.sip.contract import EventType, TenantSnapshot, pin_matches

from .anchor import Anchor
from .call import Call, Calls, Leg, sendrecv
from .profiles import Profile

__all__ = ["Hold", "MediaFeatures", "is_hold"]

log = logging.getLogger(__name__)

PIN_TRIES = 3  # wrong PINs before a caller is hung up on


def is_hold(sdp: bytes) -> bool:
    """Whether an offer puts the other party on hold: ``sendonly`` / ``inactive``, or the
    old way, a connection address of 0.0.0.0 (RFC 3264 8.4)."""
    if not sdp:
        return False
    lines = sdp.splitlines()
    if any(ln.strip() in (b"a=sendonly", b"a=inactive") for ln in lines):
        return True
    return any(ln.startswith(b"c=") and ln.rstrip().endswith(b" 0.0.0.0") for ln in lines)


@dataclass(slots=True, eq=False)
class Hold:
    """A call on hold with music: who put it on hold, the session the held party hears and
    the silent one the holder's offer was answered by."""

    holder: Leg
    music: MediaSession
    sink: MediaSession


class MediaFeatures:
    """The engine's media server client, and what the media features share: take a caller,
    hand it off, prompts, music on hold."""

    def __init__(self, calls: Calls, anchor: Anchor, config: CallConfig) -> None:
        self.calls = calls
        self.anchor = anchor
        self.config = config
        self.client: MediaClient | None = None
        self._languages: dict[str, bool] = {}
        self._seq = 0

    async def start(self) -> None:
        if self.config.media_server is not None:
            self.client = MediaClient(*self.config.media_server)
            await self.client.start()

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.stop()

    @property
    def available(self) -> bool:
        return self.client is not None and self.client.connected

    def _session_id(self, call: Call, what: str) -> str:
        self._seq += 1
        return f"{call.id}-{what}{self._seq}"

    # --- prompts -------------------------------------------------------------------------
    def _language(self, language: str) -> str:
        """The tenant's language when the shipped set has it, else English (looked up once
        per language)."""
        found = self._languages.get(language)
        if found is None:
            path = os.path.join(self.config.media_dir, "prompts", language)
            found = self._languages[language] = os.path.isdir(path)
        return language if found else "en"

    def prompt(self, tenant: TenantSnapshot, name: str) -> dict[str, str]:
        """The play item of prompt ``name`` for the tenant: its own recording, else the
        shipped one."""
        own = tenant.media.prompts.get(name)
        if own:
            return {"file": own}
        language = self._language(tenant.media.language)
        return {"file": default_path(self.config.media_dir, language, name)}

    def prompts(self, tenant: TenantSnapshot, *names: str) -> list[dict[str, Any]]:
        return [self.prompt(tenant, n) for n in names]

    def digits(self, tenant: TenantSnapshot, number: str) -> list[dict[str, Any]]:
        """``number`` said digit by digit."""
        return [self.prompt(tenant, f"digit-{d}") for d in number if d.isdigit()]

    def music(self, tenant: TenantSnapshot, music_class: str = "") -> list[dict[str, Any]]:
        """The tenant's music on hold (a class's, its default, or the shipped music)."""
        files = tenant.media.moh_classes.get(music_class) if music_class else None
        files = files or tenant.media.moh
        if not files:
            files = (os.path.join(self.config.media_dir, "moh", "default.wav"),)
        return [{"file": f} for f in files]

    # --- taking a caller -----------------------------------------------------------------
    async def take(self, call: Call) -> MediaSession | None:
        """The caller's media to the media server: its INVITE is answered (200) with the
        media server's audio. The session already there when the caller was taken before.
        None: no media server, or it or rtpengine refused (the caller is not answered)."""
        session: MediaSession | None = call.media
        if session is not None and not session.closed:
            return session
        a = call.a
        client = self.client
        if a is None or a.server_tx is None or call.answered_a or not self.available:
            return None
        assert client is not None
        if not a.remote_sdp:
            return None
        anchor = self.anchor
        # The media server takes plain RTP with G.711: a browser's or an SRTP phone's offer is
        # converted (transcoded when it has no G.711), or the call refused 488.
        if not await anchor.prepare(
            call,
            [Profile.RTP],
            force=anchor.media is not None,
            failure="rtpengine offer failed",
        ):
            return None
        offer = call.offer if call.anchored and call.offer else a.remote_sdp
        sid = self._session_id(call, "m")
        try:
            session, answer = await client.open(sid, offer=offer, tenant=call.tenant.schema)
        except MediaError as exc:
            log.warning("call %s: the media server refused it: %s", call.id, exc)
            return None
        if call.state == "ended":
            await session.close()
            return None
        if call.anchored and anchor.media is not None:
            anchored = await anchor.answer(
                answer,
                call.media_id,
                a.local_tag,
                sid,
                to=a.profile,
                failure="rtpengine answer failed",
            )
            if anchored is None:
                await session.close()
                return None
            answer = anchored
        headers = [("Contact", a.contact), self.calls.server(call.tenant)]
        headers.append(("Content-Type", "application/sdp"))
        if a.server_tx.respond(200, headers=headers, body=self.calls.sdp_for(a, answer)) is None:
            await session.close()  # the caller cancelled at that moment
            return None
        call.media = session
        call.answered_a = True
        call.state = "answered"
        call.answered_at = call.answered_at or time.time()
        self.calls.emit(call, EventType.CALL_ANSWERED, leg="media", callee=call.target)
        self.calls.changed(call)
        return session

    async def retake(self, call: Call, leg: Leg) -> MediaSession | None:
        """Take a party that is already answered (a blind transfer's transferee) to the
        media server: the media server's offer reaches it in a re-INVITE (through a new
        rtpengine pairing when the engine has one) and ``call.media`` becomes that session
        (``call.answered_a`` semantics from then on). None: no media server, or the party,
        the media server or rtpengine refused (nothing changed for the party)."""
        client = self.client
        if client is None or not self.available or leg.dialog is None or leg.gone:
            return None
        await self.unhold(call)
        sid = self._session_id(call, "m")
        try:
            session, offer = await client.open(sid, tenant=call.tenant.schema)
        except MediaError as exc:
            log.warning("call %s: the media server refused it: %s", call.id, exc)
            return None
        anchor = self.anchor
        media_id = ""
        if anchor.media is not None:
            media_id = self._session_id(call, "r")
            anchored = await anchor.offer(
                offer, media_id, sid, to=leg.profile, failure="rtpengine offer failed"
            )
            if anchored is None:
                await session.close()
                return None
            offer = anchored
        elif leg.profile is not Profile.RTP:
            await session.close()
            log.warning("call %s: no rtpengine to take a %s party", call.id, leg.profile)
            return None
        resp = await self.calls.reoffer(leg, offer)
        answer = leg.remote_sdp
        if media_id and resp is not None and 200 <= resp.status < 300:
            anchored = await anchor.answer(
                answer,
                media_id,
                sid,
                leg.local_tag,
                to=Profile.RTP,
                failure="rtpengine answer failed",
            )
            answer = anchored or b""
        ok = resp is not None and 200 <= resp.status < 300 and bool(answer)
        if ok and call.state != "ended":
            try:
                await session.answer(answer)
            except MediaError as exc:
                log.warning("call %s: the media server refused the answer: %s", call.id, exc)
                ok = False
        if not ok or call.state == "ended":
            await session.close()
            anchor.delete(media_id)
            return None
        anchor.delete(anchor.switch(call, media_id))
        call.media = session
        call.answered_a = True
        return session

    async def reanswer(self, call: Call, offer: bytes) -> bytes | None:
        """The taken caller re-offered (a session refresh, a codec change): the media
        server's answer to it (through rtpengine when anchored); None when it cannot."""
        session: MediaSession | None = call.media
        a = call.a
        if session is None or session.closed or a is None:
            return None
        anchor = self.anchor
        try:
            if call.anchored and anchor.media is not None:
                anchored = await anchor.offer(offer, call.media_id, a.local_tag, to=Profile.RTP)
                if anchored is None:
                    return None
                answer = await session.update(anchored)
                return await anchor.answer(
                    answer, call.media_id, a.local_tag, session.id, to=a.profile
                )
            return await session.update(offer)
        except MediaError as exc:
            log.warning("call %s: media server re-offer failed: %s", call.id, exc)
            return None

    async def goodbye(self, call: Call, reason: str, *names: str) -> None:
        """Play ``names`` (default: goodbye) to a taken caller, then hang up."""
        session = call.media
        if session is not None and not session.closed and call.state != "ended":
            await session.play(self.prompts(call.tenant, *(names or ("goodbye",))))
        self.calls.end(call, reason)

    async def ask_pin(self, call: Call, session: MediaSession, stored: str) -> bool:
        """Ask for the PIN whose hash is ``stored`` (``contract.pin_hash``), up to
        :data:`PIN_TRIES` times; whether it was given."""
        for _ in range(PIN_TRIES):
            session.flush_digits()
            await session.play(self.prompts(call.tenant, "enter-pin"), barge=True)
            pin = await session.collect(12, timeout=4.0, first_timeout=10.0)
            if call.state == "ended" or session.closed:
                return False
            if pin and pin_matches(stored, pin):
                return True
            await session.play(self.prompts(call.tenant, "wrong-pin"))
        log.warning("call %s: a wrong PIN %d times (%s, caller %r)", call.id, PIN_TRIES,
                    call.tenant.schema, call.caller.caller_id_number)  # fmt: skip
        return False

    def request(self, call: Call, event_type: EventType, **fields: Any) -> None:
        """Ask the Django side for something (``contract.EventType``'s requests)."""
        self.calls.ctx.events.emit(
            event_type,
            schema=call.tenant.schema,
            tenant_id=call.tenant.tenant_id,
            call_id=call.id,
            **{k: str(v) for k, v in fields.items()},
        )

    def tenant_path(self, call: Call, *parts: str) -> str:
        """A file of the call's tenant under the media directory."""
        return os.path.join(self.config.media_dir, "tenants", call.tenant.schema, *parts)

    async def release(self, call: Call) -> None:
        """Close the caller's session and end a hand-off's old pairing to it (the caller is
        joined to a phone now, or gone)."""
        old, call.media_handoff = call.media_handoff, ""
        self.anchor.delete(old)
        session, call.media = call.media, None
        if session is not None:
            await session.close()

    def ringback(self, call: Call) -> None:
        """The caller (taken) hears ringback while phones ring for it."""
        session = call.media
        if session is not None and not session.closed:
            self.calls.spawn(_quietly(session.start_play([{"tone": "ringback"}], loop=True)))

    async def join(self, call: Call, leg: Leg, answer: bytes) -> bool:
        """``leg`` answered a taken caller: the caller is re-INVITEd to it (``answer`` is
        the phone's SDP, through rtpengine's new pairing when anchored), and its session
        closes. False: the caller refused the re-INVITE or left (the call is ended)."""
        a = call.a
        assert a is not None
        if call.anchored and self.anchor.media is not None and answer:
            anchored = await self.anchor.answer(
                answer,
                call.media_id,
                a.local_tag,
                leg.local_tag,
                to=a.profile,
                failure="rtpengine answer failed",
            )
            answer = answer if anchored is None else anchored
        resp = await self.calls.reoffer(a, answer)
        joined = resp is not None and 200 <= resp.status < 300
        await self.release(call)
        if not joined:
            self.calls.end(call, "caller refused the re-INVITE")
        return joined

    async def hand_off(self, call: Call, *, codec: dict[str, list[str]] | None = None) -> None:
        """Make a taken caller ready to ring a phone: the phones are offered the caller's
        SDP (rtpengine's side of a new pairing when the call is anchored, with rtpengine's
        ``codec`` manipulation; the old pairing, to the media server, stays until a phone
        answers)."""
        a = call.a
        assert a is not None
        call.state = "routing"
        call.b = None
        call.offer = sendrecv(a.remote_sdp)
        call.offer_profile = a.profile
        anchor = self.anchor
        for media_id, _ in call.pairings.values():
            anchor.delete(media_id)  # a previous hand-off's phones of other profiles
        call.pairings = {}
        if anchor.media is not None and call.anchored:
            # Towards plain RTP; phones of other profiles get pairings of their own when they
            # are rung (``Anchor.prepare``).
            allowed, own = anchor.codec(call, call.offer, Profile.RTP)
            if not allowed:
                anchor.refuse(call, "transcoding refused: the engine's cap is reached")
                return
            if own is not None and "transcode" in own:
                codec = own
            media_id = self._session_id(call, "p")
            offer = await anchor.offer(
                call.offer,
                media_id,
                a.local_tag,
                to=Profile.RTP,
                failure="rtpengine offer failed (hand-off)",
                codec=codec,
            )
            if offer is not None:
                old = anchor.switch(call, media_id)
                if call.media_handoff:
                    anchor.delete(old)  # a previous hand-off's pairing: its phones failed
                else:
                    call.media_handoff = old  # the caller still hears the media server
                call.offer = offer
                call.offer_profile = Profile.RTP

    # --- music on hold -------------------------------------------------------------------
    async def hold(self, call: Call, holder: Leg, offer: bytes) -> tuple[bytes, bytes] | None:
        """``holder`` offered hold: open the music (to be offered to the held party) and the sink
        (answering ``holder``'s offer). Returns (SDP for the held party, answer for the
        holder), or None when the media server cannot (the offer is then relayed as it is)."""
        client = self.client
        if client is None or not self.available:
            return None
        try:
            music, music_offer = await client.open(
                self._session_id(call, "h"), tenant=call.tenant.schema
            )
        except MediaError as exc:
            log.warning("call %s: no music on hold: %s", call.id, exc)
            return None
        try:
            sink, sink_answer = await client.open(
                self._session_id(call, "s"), offer=offer, tenant=call.tenant.schema
            )
        except MediaError as exc:
            log.warning("call %s: no music on hold: %s", call.id, exc)
            await music.close()
            return None
        call.hold = Hold(holder, music, sink)
        return music_offer, sink_answer

    async def music_answered(self, call: Call, answer: bytes) -> None:
        """The held party answered the music's offer: the music starts."""
        hold: Hold | None = call.hold
        if hold is None:
            return
        try:
            await hold.music.answer(answer)
            await hold.music.start_play(self.music(call.tenant), loop=True)
        except MediaError as exc:
            log.warning("call %s: music on hold failed: %s", call.id, exc)

    async def unhold(self, call: Call) -> None:
        hold: Hold | None = call.hold
        call.hold = None
        if hold is not None:
            await hold.music.close()
            await hold.sink.close()

    def call_changed(self, call: Call) -> None:
        """An ended call's sessions close."""
        if call.state != "ended":
            return
        if call.media is not None:
            self.calls.spawn(self.release(call))
        if call.hold is not None:
            self.calls.spawn(self.unhold(call))
        if call.media_handoff:
            self.anchor.delete(call.media_handoff)
            call.media_handoff = ""


async def _quietly(aw: Any) -> None:
    with contextlib.suppress(MediaError):
        await aw
