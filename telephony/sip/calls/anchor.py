"""Media anchoring: which calls have their media pass through rtpengine, and the ng commands
for them (the client is ``telephony/sip/media.py``).

A call is anchored when the engine has an rtpengine and either the deployment or the tenant
asks for every call, the call may be recorded (``record_policy.py``), or a phone is behind
NAT (its SDP address is not where its packets come from, or it registered from another
address than its Contact names). When rtpengine fails,
media goes direct (logged); a transferred anchored call stays anchored (a new rtpengine
pairing of the parties that remain, under its own call-id).
"""

from __future__ import annotations

import contextlib
import logging

from telephony.sip.config import CallConfig
from telephony.sip.contract import RecordingPolicy
from telephony.sip.media import MediaError, RtpEngine, connection_address
from telephony.sip.message import SipURI, parse_uri
from telephony.sip.registrar import Binding

from .call import Call, Calls
from .record_policy import effective_policy

__all__ = ["Anchor", "recordable_codecs"]

log = logging.getLogger(__name__)

# What a recording is decoded from (audio.recordings): G.711. A call that may be recorded keeps
# only these (and DTMF events) of the caller's offer, when the caller offers one of them; an
# offer without G.711 (a WebRTC client with Opus alone) is left as it is, and its recording
# will hold what the converter cannot decode (it logs it).
_G711 = {b"PCMU/8000", b"PCMA/8000"}
_RECORDABLE = {"strip": ["all"], "except": ["PCMU", "PCMA", "telephone-event"]}


def recordable_codecs(sdp: bytes) -> dict[str, list[str]] | None:
    """The codec manipulation of a recorded call's offer (None: leave the offer as it is)."""
    for line in sdp.splitlines():
        if line.startswith(b"m=audio "):
            if {b"0", b"8"} & set(line.split()[3:]):
                return _RECORDABLE  # static payload types of PCMU and PCMA
        elif line.startswith(b"a=rtpmap:"):
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[1].strip().upper() in _G711:
                return _RECORDABLE
    return None


class Anchor:
    """The call layer's rtpengine (None without one): anchoring decisions and ng commands."""

    def __init__(self, calls: Calls, config: CallConfig) -> None:
        self.calls = calls
        self.config = config
        self.media: RtpEngine | None = None

    async def start(self) -> None:
        if self.config.rtpengine is not None:
            self.media = RtpEngine(*self.config.rtpengine)
            await self.media.open()

    async def stop(self) -> None:
        if self.media is not None:
            self.media.close()

    def recordable(self, call: Call) -> bool:
        """The call may be recorded (always, or on demand later), as far as its parties are
        known before it rings."""
        return bool(self.config.recording_dir) and effective_policy(call) != RecordingPolicy.NEVER

    def needed(self, call: Call, caller_host: str, sdp: bytes, bindings: list[Binding]) -> bool:
        if self.media is None:
            return False
        if self.config.anchor_all or call.tenant.anchor_media:
            return True
        # A call that may be recorded (always, or on demand later): rtpengine records it.
        if self.recordable(call):
            return True
        # NAT: the SDP address is not where the packets come from, or the phone registered
        # from another address than its Contact says.
        if sdp and connection_address(sdp) not in (caller_host, None):
            return True
        for b in bindings:
            try:
                uri = parse_uri(b.contact)
            except ValueError:
                continue
            if isinstance(uri, SipURI) and uri.host != b.source_host:
                return True
        return False

    async def offer(
        self,
        sdp: bytes,
        media_id: str,
        from_tag: str,
        *,
        failure: str = "",
        codec: dict[str, list[str]] | None = None,
    ) -> bytes | None:
        """rtpengine's version of an offer; None when it failed (logged as ``failure``)."""
        assert self.media is not None
        try:
            return await self.media.offer(sdp, media_id, from_tag, codec=codec)
        except MediaError as exc:
            if failure:
                log.warning("%s: %s", failure, exc)
            return None

    async def answer(
        self, sdp: bytes, media_id: str, from_tag: str, to_tag: str, *, failure: str = ""
    ) -> bytes | None:
        """rtpengine's version of an answer; None when it failed (logged as ``failure``)."""
        assert self.media is not None
        try:
            return await self.media.answer(sdp, media_id, from_tag, to_tag)
        except MediaError as exc:
            if failure:
                log.warning("%s: %s", failure, exc)
            return None

    async def anchor_offer(self, call: Call, caller_host: str, bindings: list[Binding]) -> None:
        """Anchor a call about to ring, if it needs it: ``call.offer`` becomes rtpengine's."""
        a = call.a
        assert a is not None
        if call.anchored or not call.offer:
            return
        if not self.needed(call, caller_host, a.remote_sdp, bindings):
            return
        await self.anchor(call, failure="rtpengine offer failed, media goes direct")

    async def anchor(self, call: Call, *, failure: str) -> None:
        """Anchor a call about to ring: ``call.offer`` becomes rtpengine's version of the
        caller's; unchanged when rtpengine fails (logged as ``failure``: media goes direct)."""
        a = call.a
        assert a is not None
        codec = recordable_codecs(a.remote_sdp) if self.recordable(call) else None
        offer = await self.offer(
            a.remote_sdp, call.media_id, a.local_tag, failure=failure, codec=codec
        )
        if offer is not None:
            call.offer, call.anchored = offer, True

    def switch(self, call: Call, media_id: str) -> str:
        """Make ``media_id`` the call's rtpengine session; returns the one it replaces (to
        delete once the phones have moved), or "" when nothing changes."""
        if not media_id or media_id == call.media_id:
            return ""
        old = call.media_id if call.anchored else ""
        call.media_id = media_id
        call.anchored = True
        return old

    def delete(self, media_id: str) -> None:
        """End an rtpengine session in the background."""
        if media_id and self.media is not None:
            self.calls.spawn(self._delete(self.media, media_id))

    @staticmethod
    async def _delete(media: RtpEngine, media_id: str) -> None:
        with contextlib.suppress(MediaError):
            await media.delete(media_id)

    def call_changed(self, call: Call) -> None:
        # A recorded call's session is deleted by the recorder, which reads it first.
        if call.state == "ended" and call.anchored and not call.recording:
            self.delete(call.media_id)
