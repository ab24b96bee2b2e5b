"""Media anchoring: which calls have their media pass through rtpengine, and the ng commands
for them (the client is ``telephony/sip/media.py``).

A call is anchored when the engine has an rtpengine and either the deployment or the tenant
asks for every call, the call may be recorded (``record_policy.py``), a phone is behind
NAT (its SDP address is not where its packets come from, or it registered from another
address than its Contact names), or its sides have different media profiles
(``profiles.py``: a browser and a desk phone, an SRTP phone and a plain one) or codecs that
need transcoding. When rtpengine fails, media goes direct (logged), except on a call that
cannot work without it: that one is refused 488. A transferred anchored call stays anchored
(a new rtpengine pairing of the parties that remain, under its own call-id).

Every ng offer names its target's profile and every answer its offerer's; phones of
different profiles ringing for one call each get an offer from a pairing of their own
(:meth:`Anchor.prepare`), and the one that answers keeps its pairing (:meth:`Anchor.adopt`).
"""

from __future__ import annotations

import contextlib
import logging

from telephony.sip.config import CallConfig
from telephony.sip.contract import RecordingPolicy
from telephony.sip.media import MediaError, RtpEngine, connection_address
from telephony.sip.message import SipURI, parse_uri
from telephony.sip.registrar import Binding

from .call import Call, Calls, Leg
from .profiles import Profile, ng_params, transcoding
from .record_policy import effective_policy

__all__ = ["Anchor", "recordable_codecs"]

MEDIA_REFUSED = 488

log = logging.getLogger(__name__)

# What a recording is decoded from (audio.recordings): G.711. A call that may be recorded keeps
# only these (and DTMF events) of the caller's offer, when the caller offers one of them; an
# offer without G.711 (a WebRTC client with Opus alone) is transcoded to G.711 by rtpengine
# (``profiles.transcoding``), so its recording decodes too. A browser is offered the same
# G.711-only list when the far end has G.711 (nothing to transcode).
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
        self.transcoding: set[str] = set()  # ids of the calls rtpengine transcodes

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

    @staticmethod
    def must(*profiles: Profile) -> bool:
        """Media between legs of these profiles only works through rtpengine."""
        return len(set(profiles)) > 1

    async def offer(
        self,
        sdp: bytes,
        media_id: str,
        from_tag: str,
        *,
        to: Profile,
        failure: str = "",
        codec: dict[str, list[str]] | None = None,
    ) -> bytes | None:
        """rtpengine's version of an offer for a leg of profile ``to``; None when it failed
        (logged as ``failure``)."""
        assert self.media is not None
        try:
            return await self.media.offer(
                sdp, media_id, from_tag, codec=codec, profile=ng_params(to)
            )
        except MediaError as exc:
            if failure:
                log.warning("%s: %s", failure, exc)
            return None

    async def answer(
        self,
        sdp: bytes,
        media_id: str,
        from_tag: str,
        to_tag: str,
        *,
        to: Profile,
        failure: str = "",
    ) -> bytes | None:
        """rtpengine's version of an answer for the offerer, a leg of profile ``to``; None when
        it failed (logged as ``failure``)."""
        assert self.media is not None
        try:
            return await self.media.answer(
                sdp, media_id, from_tag, to_tag, profile=ng_params(to, answer=True)
            )
        except MediaError as exc:
            if failure:
                log.warning("%s: %s", failure, exc)
            return None

    def refuse(self, call: Call, why: str) -> None:
        """End a call whose media cannot work: 488 with a Warning (RFC 3261 20.43)."""
        log.warning("call %s (%s): refused 488: %s", call.id, call.tenant.schema, why)
        warning = why.replace('"', "'").replace("\\", "/")
        self.calls.fail(
            call,
            MEDIA_REFUSED,
            status="failed",
            reason=why,
            headers=[("Warning", f'399 pbx "{warning}"')],
        )

    def codec(
        self, call: Call, source: bytes, target: Profile
    ) -> tuple[bool, dict[str, list[str]] | None]:
        """The codec manipulation of an offer of ``source`` to a leg of ``target``: transcoding
        when the target cannot take its codecs (counted against ``max_transcoded_calls``), G.711
        alone to a browser or of a recorded call. (False, None): over the transcoding cap."""
        recorded = self.recordable(call)
        codec = transcoding(source, target, recorded=recorded)
        if codec is None:
            # A browser is offered G.711 alone when the offer has it (a desk phone's speex or
            # G.729 first would be no use to it): what it takes, with nothing to transcode.
            keep = recorded or target is Profile.WEBRTC
            return True, recordable_codecs(source) if keep else None
        if not call.transcoded:
            if len(self.transcoding) >= self.config.max_transcoded_calls:
                return False, None
            call.transcoded = True
            self.transcoding.add(call.id)
        return True, codec

    async def prepare(
        self,
        call: Call,
        targets: list[Profile],
        *,
        failure: str,
        caller_host: str = "",
        bindings: list[Binding] | None = None,
        force: bool = False,
        source: bytes | None = None,
    ) -> bool:
        """Make ``call.offer`` (and ``call.pairings``) ready for phones of ``targets`` about to
        ring: anchored when ``force``, when :meth:`needed` says so for ``bindings``, and always
        when a target's profile is not the caller's or its codecs need transcoding. The offer
        comes from ``source`` (default: the caller's SDP). Phones of another profile than the
        call's offer get a pairing of their own. False: the call ended meanwhile or was refused
        488 (media that cannot work without rtpengine, and rtpengine is missing or failed; the
        transcoding cap reached)."""
        a = call.a
        assert a is not None
        source = a.remote_sdp if source is None else source
        if not call.offer:
            call.offer = source
        if not source:
            return call.state != "ended"  # a late offer: the phone's offer comes in its 200
        wanted = list(dict.fromkeys(targets)) or [Profile.RTP]
        differ = any(self.must(a.profile, t) for t in wanted)
        recorded = self.recordable(call)
        transcode = any(transcoding(source, t, recorded=recorded) for t in wanted)
        if not call.anchored:
            call.offer_profile = a.profile
            if not (
                force
                or differ
                or transcode
                or self.needed(call, caller_host, source, bindings or [])
            ):
                return True
            if self.media is None:
                if differ:
                    names = "/".join(sorted({a.profile, *wanted}))
                    self.refuse(call, f"media of profiles {names} needs rtpengine")
                    return False
                return True
        # The call's own offer: the profile it has when a phone takes it, else plain RTP when
        # one does (a ring group's carrier dials ``call.offer``), else the first phone's.
        primary = call.offer_profile if call.offer_profile in wanted else wanted[0]
        if primary not in (call.offer_profile, Profile.RTP) and Profile.RTP in wanted:
            primary = Profile.RTP
        if not call.anchored or primary != call.offer_profile:
            offer = await self._offer_for(call, source, call.media_id, primary, failure)
            if call.state == "ended":
                return self._ended_meanwhile(call, call.media_id)
            if offer is None:
                if call.state == "ended":
                    return False
                if differ or transcode:
                    self.refuse(call, f"rtpengine cannot convert {a.profile} to {primary}")
                    return False
                return True  # media goes direct (logged)
            call.offer, call.anchored, call.offer_profile = offer, True, primary
        for target in wanted:
            if target == call.offer_profile or target in call.pairings:
                continue
            media_id = f"{call.media_id}-{target.value}"
            offer = await self._offer_for(call, source, media_id, target, failure)
            if call.state == "ended":
                return self._ended_meanwhile(call, media_id)
            if offer is None:
                if call.state != "ended":
                    self.refuse(call, f"rtpengine cannot convert {a.profile} to {target}")
                return False
            call.pairings[target] = (media_id, offer)
        return call.state != "ended"

    def _ended_meanwhile(self, call: Call, media_id: str) -> bool:
        """The call ended (the caller gave up) while rtpengine made ``media_id``: what the
        end freed before it existed (the session, a transcoding slot taken since, the other
        pairings) goes now. False, for :meth:`prepare`."""
        self.delete(media_id)
        self.call_changed(call)
        return False

    async def _offer_for(
        self, call: Call, source: bytes, media_id: str, target: Profile, failure: str
    ) -> bytes | None:
        a = call.a
        assert a is not None
        allowed, codec = self.codec(call, source, target)
        if not allowed:
            self.refuse(
                call,
                f"transcoding refused: {self.config.max_transcoded_calls} transcoded calls",
            )
            return None
        if self.media is None:
            return None
        return await self.offer(source, media_id, a.local_tag, to=target, failure=failure,
                                codec=codec)  # fmt: skip

    def offer_of(self, call: Call, leg: Leg) -> bytes:
        """The offer a fork gets: the call's, or the one of its profile's own pairing (whose
        id the leg keeps, for its answers)."""
        pairing = call.pairings.get(leg.profile) if leg.profile != call.offer_profile else None
        if pairing is None:
            return call.offer
        leg.media_id = pairing[0]
        return pairing[1]

    def media_id_of(self, leg: Leg) -> str:
        """The rtpengine session a ringing fork's answers go through."""
        return leg.media_id or leg.call.media_id

    def adopt(self, call: Call, leg: Leg) -> None:
        """``leg`` answered: its pairing becomes the call's; the pairings of the other forks'
        profiles end."""
        pairings = {media_id for media_id, _ in call.pairings.values()}
        if leg.media_id and leg.media_id != call.media_id:
            pairings.add(call.media_id)
            call.media_id = leg.media_id
            call.offer = call.pairings[leg.profile][1]
            call.offer_profile = leg.profile
        pairings.discard(call.media_id)
        call.pairings = {}
        leg.media_id = ""
        for media_id in pairings:
            self.delete(media_id)

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
        if call.state != "ended":
            return
        self.transcoding.discard(call.id)
        for media_id, _ in call.pairings.values():
            self.delete(media_id)
        call.pairings = {}
        # A recorded call's session is deleted by the recorder, which reads it first.
        if call.anchored and not call.recording:
            self.delete(call.media_id)
