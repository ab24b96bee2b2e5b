"""Media profiles: how each leg of a call carries its audio, and the one map from a profile to
rtpengine's ng parameters.

- ``RTP``: plain RTP (RTP/AVP): desk phones, trunks, the media server.
- ``SRTP``: SDES-SRTP (RTP/SAVP with ``a=crypto``, RFC 4568): phones over TLS whose extension
  requires encryption.
- ``OSRTP``: RTP/AVP with keys offered (opportunistic SRTP, RFC 8643): phones over TLS whose
  extension makes encryption optional; rtpengine 10.5 offers it (``OSRTP: offer``) and accepts
  a plain answer to it.
- ``WEBRTC``: UDP/TLS/RTP/SAVPF with ICE, DTLS-SRTP and rtcp-mux: browsers (SIP over WS/WSS).

An inbound leg's profile is read from its offer; an outbound leg's from where it goes
(:func:`of_binding`). Every ng ``offer`` names its target's profile and every ``answer`` the
offerer's (:func:`ng_params`): rtpengine then converts between the two sides, so a browser's
offer reaches a desk phone as plain RTP and the phone's answer reaches the browser as WebRTC.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from telephony.sip.contract import ExtensionSnapshot, SrtpMode, TenantSnapshot
from telephony.sip.registrar import Binding
from telephony.sip.transport import BROWSER

__all__ = [
    "Profile",
    "codec_names",
    "has_g711",
    "ng_params",
    "of_binding",
    "of_sdp",
    "transcoding",
]


class Profile(StrEnum):
    """How a leg carries its audio (see the module's docstring)."""

    RTP = "rtp"
    SRTP = "srtp"
    OSRTP = "osrtp"
    WEBRTC = "webrtc"


def _audio_line(sdp: bytes) -> list[bytes] | None:
    for line in sdp.splitlines():
        if line.startswith(b"m=audio "):
            return line.split()
    return None


def of_sdp(sdp: bytes) -> Profile:
    """The profile of an offer (or answer): from its audio stream's transport and attributes.
    No SDP (a late offer) or no audio: RTP."""
    m = _audio_line(sdp)
    if m is None or len(m) < 3:
        return Profile.RTP
    proto = m[2].upper()
    if b"DTLS" in proto or b"TLS" in proto:
        return Profile.WEBRTC
    if proto.startswith(b"RTP/SAVP"):
        # A fingerprint with RTP/SAVPF is DTLS-SRTP too (older WebRTC stacks).
        return Profile.WEBRTC if b"\na=fingerprint:" in sdp else Profile.SRTP
    if b"\na=crypto:" in sdp:
        return Profile.OSRTP
    return Profile.RTP


def of_binding(binding: Binding, ext: ExtensionSnapshot | None, tenant: TenantSnapshot) -> Profile:
    """The profile of a phone we call: a browser (WS/WSS) gets WebRTC; a phone over TLS gets
    SRTP when its extension requires it, keys offered when it makes it optional; any other
    plain RTP (keys over UDP or TCP would be readable by anyone on the path)."""
    transport = binding.transport.upper()
    if transport in BROWSER:
        return Profile.WEBRTC
    if transport == "TLS" and ext is not None:
        mode = ext.srtp_mode(tenant)
        if mode == SrtpMode.REQUIRED:
            return Profile.SRTP
        if mode == SrtpMode.OPTIONAL:
            return Profile.OSRTP
    return Profile.RTP


# rtpengine's ng parameters per profile, towards a leg of that profile. SDES never offers the
# NULL ciphers (authentication without encryption); the other suites rtpengine adds itself.
_NO_NULL = ["no-NULL_HMAC_SHA1_80", "no-NULL_HMAC_SHA1_32"]
_PLAIN = {"transport-protocol": "RTP/AVP", "ICE": "remove", "rtcp-mux": ["demux"]}
_NG: dict[Profile, dict[str, Any]] = {
    Profile.RTP: _PLAIN,
    Profile.SRTP: {
        "transport-protocol": "RTP/SAVP",
        "ICE": "remove",
        "rtcp-mux": ["demux"],
        "DTLS": "off",
        "SDES": _NO_NULL,
    },
    Profile.OSRTP: {**_PLAIN, "DTLS": "off", "SDES": _NO_NULL},
    Profile.WEBRTC: {
        "transport-protocol": "UDP/TLS/RTP/SAVPF",
        "ICE": "force",
        "rtcp-mux": ["require"],
        "SDES": ["off"],
        "flags": ["generate-mid"],
    },
}


def ng_params(profile: Profile, *, answer: bool = False) -> dict[str, Any]:
    """rtpengine's parameters for an ng ``offer`` (``answer``: an ng ``answer``) whose SDP goes
    to a leg of ``profile``. The one place that maps a profile to ng flags."""
    params = {k: list(v) if isinstance(v, list) else v for k, v in _NG[profile].items()}
    if profile is Profile.OSRTP:
        # Offer keys on RTP/AVP; answering a phone that offered so, take its keys (SRTP to it)
        # even when the other side answered plain RTP.
        params["OSRTP"] = ["accept"] if answer else ["offer"]
    return params


# ---------------------------------------------------------------------------------- codecs

_G711 = {"PCMU", "PCMA"}
_STATIC = {b"0": "PCMU", b"8": "PCMA", b"9": "G722", b"18": "G729", b"3": "GSM"}
_NOT_AUDIO = {"TELEPHONE-EVENT", "CN"}


def codec_names(sdp: bytes) -> list[str]:
    """The audio codecs (encoding names, upper case) an SDP offers, DTMF events and comfort
    noise excepted, in its order."""
    m = _audio_line(sdp)
    if m is None:
        return []
    names: dict[bytes, str] = {pt: name for pt, name in _STATIC.items() if pt in m[3:]}
    for line in sdp.splitlines():
        if line.startswith(b"a=rtpmap:"):
            pt, _, rest = line[9:].partition(b" ")
            if pt in m[3:]:
                names[pt] = rest.split(b"/", 1)[0].decode("ascii", "replace").upper()
    out = [names[pt] for pt in m[3:] if pt in names]
    return [n for n in out if n not in _NOT_AUDIO]


def has_g711(sdp: bytes) -> bool:
    return bool(_G711 & set(codec_names(sdp)))


def transcoding(offer: bytes, target: Profile, *, recorded: bool) -> dict[str, list[str]] | None:
    """rtpengine's codec manipulation for ``offer`` going to a leg of ``target``, when the
    audio must be transcoded: an offer without G.711 (a browser's Opus alone) to anything but
    a browser (phones, trunks and the media server take G.711), or to a recorded call (a
    recording is decoded from G.711). The offer's own codecs are masked towards the target
    (rtpengine still takes them from the offerer) and PCMU/PCMA offered instead. None: no
    transcoding (G.711 in the offer goes through as it is)."""
    names = codec_names(offer)
    if not names or has_g711(offer):
        return None
    if target is Profile.WEBRTC and not recorded:
        return None
    return {"transcode": ["PCMU", "PCMA"], "mask": sorted(set(names))}
