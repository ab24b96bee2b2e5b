"""SDP for the media server: read the first audio stream of an offer or answer, write ours.

Only what an RTP endpoint for G.711 needs: the connection address (session or media level), the
port, payload types with their rtpmap, ptime and the direction. We speak PCMU (0) and PCMA (8),
20 ms frames, and RFC 4733 telephone-events. The text we write holds only numbers and the
address we were configured with, never anything from the remote.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from telephony.media.codecs import PCMA, PCMU

__all__ = ["Answer", "RemoteMedia", "SdpError", "build", "negotiate", "parse"]

TELEPHONE_EVENT = 101  # the payload type we offer for telephone-event/8000
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_STATIC = {PCMU: "PCMU", PCMA: "PCMA"}
UNSPECIFIED = "0.0.0.0"  # noqa: S104 - c= 0.0.0.0 is the old way to put a call on hold
_REVERSE = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}


class SdpError(Exception):
    """An SDP we cannot use; the message is the control reply's error text."""


@dataclass
class RemoteMedia:
    """The remote's first audio stream."""

    address: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)  # pt -> (NAME, rate)
    direction: str = "sendrecv"
    ptime: int | None = None

    def codec_name(self, pt: int) -> str | None:
        if pt in self.rtpmap:
            return self.rtpmap[pt][0]
        return _STATIC.get(pt)

    @property
    def sends(self) -> bool:
        """Whether the remote sends audio to us."""
        return self.direction in ("sendrecv", "sendonly")

    @property
    def receives(self) -> bool:
        """Whether the remote wants our audio (hold: sendonly or inactive, or c= 0.0.0.0)."""
        return self.direction in ("sendrecv", "recvonly") and self.address != UNSPECIFIED


def parse(text: str | bytes) -> RemoteMedia:
    """The first audio m-line of ``text``; :class:`SdpError` when there is none usable."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError("SDP is not UTF-8") from exc
    session_addr: str | None = None
    session_dir = "sendrecv"
    media: dict | None = None
    in_audio = False
    seen_media = False
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        kind, value = line[0], line[2:].strip()
        if kind == "m":
            seen_media = True
            if media is not None:
                break  # only the first audio stream
            parts = value.split()
            in_audio = bool(parts) and parts[0] == "audio"
            if in_audio:
                if len(parts) < 4:
                    raise SdpError("malformed m=audio line")
                try:
                    port = int(parts[1].split("/")[0])
                    pts = [int(p) for p in parts[3:]]
                except ValueError as exc:
                    raise SdpError("malformed m=audio line") from exc
                if not 0 <= port <= 65535 or any(not 0 <= p <= 127 for p in pts):
                    raise SdpError("malformed m=audio line")
                if parts[2] not in ("RTP/AVP", "RTP/AVPF"):
                    raise SdpError(f"unsupported transport {parts[2][:20]}")
                media = {"port": port, "pts": pts, "addr": None, "dir": None, "rtpmap": {}}
                media["ptime"] = None
            continue
        if kind == "c":
            addr = _connection(value)
            if not seen_media:
                session_addr = addr
            elif in_audio and media is not None:
                media["addr"] = addr
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in DIRECTIONS:
                if not seen_media:
                    session_dir = name
                elif in_audio and media is not None:
                    media["dir"] = name
            elif in_audio and media is not None and name == "rtpmap":
                pt_text, _, enc = arg.partition(" ")
                codec, _, rest = enc.strip().partition("/")
                try:
                    media["rtpmap"][int(pt_text)] = (codec.upper(), int(rest.split("/")[0]))
                except ValueError:
                    continue
            elif in_audio and media is not None and name == "ptime":
                try:
                    media["ptime"] = int(float(arg))
                except ValueError:
                    continue
    if media is None:
        raise SdpError("no audio stream in SDP")
    if media["port"] == 0:
        raise SdpError("audio stream rejected (port 0)")
    address: str | None = media["addr"] or session_addr
    if address is None:
        raise SdpError("no connection address in SDP")
    return RemoteMedia(
        address=address,
        port=media["port"],
        payload_types=media["pts"],
        rtpmap=media["rtpmap"],
        direction=media["dir"] or session_dir,
        ptime=media["ptime"],
    )


def _connection(value: str) -> str:
    parts = value.split()
    if len(parts) < 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("malformed c= line")
    addr = parts[2].split("/")[0]
    try:
        ipaddress.ip_address(addr)
    except ValueError as exc:
        raise SdpError("c= address is not an IP address") from exc
    return addr


@dataclass(frozen=True)
class Answer:
    """What we send with, chosen from the remote's SDP."""

    codec: int  # PCMU or PCMA
    telephone_event: int | None  # the remote's payload type for RFC 4733 events
    direction: str  # our direction attribute


def negotiate(remote: RemoteMedia) -> Answer:
    """PCMU or PCMA, whichever the remote lists first, and telephone-event/8000 if offered."""
    codec = None
    for pt in remote.payload_types:
        name = remote.codec_name(pt)
        rate = remote.rtpmap.get(pt, ("", 8000))[1]
        if name in ("PCMU", "PCMA") and rate == 8000:
            codec = PCMU if name == "PCMU" else PCMA
            break
    if codec is None:
        raise SdpError("no common codec")
    events = None
    for pt in remote.payload_types:
        name, rate = remote.rtpmap.get(pt, ("", 0))
        if name == "TELEPHONE-EVENT" and rate == 8000:
            events = pt
            break
    return Answer(codec, events, _REVERSE[remote.direction])


def build(
    address: str,
    port: int,
    *,
    session_id: int,
    version: int,
    codecs: tuple[int, ...] = (PCMU, PCMA),
    telephone_event: int | None = TELEPHONE_EVENT,
    direction: str = "sendrecv",
) -> str:
    """Our SDP: an offer (default codecs) or an answer (the one negotiated codec)."""
    family = "IP6" if ":" in address else "IP4"
    pts = list(codecs) + ([telephone_event] if telephone_event is not None else [])
    lines = [
        "v=0",
        f"o=- {int(session_id)} {int(version)} IN {family} {address}",
        "s=-",
        f"c=IN {family} {address}",
        "t=0 0",
        f"m=audio {int(port)} RTP/AVP {' '.join(str(int(p)) for p in pts)}",
    ]
    lines += [f"a=rtpmap:{int(pt)} {_STATIC[pt]}/8000" for pt in codecs]
    if telephone_event is not None:
        lines.append(f"a=rtpmap:{int(telephone_event)} telephone-event/8000")
        lines.append(f"a=fmtp:{int(telephone_event)} 0-16")
    lines += ["a=ptime:20", f"a={DIRECTIONS[DIRECTIONS.index(direction)]}"]
    return "\r\n".join(lines) + "\r\n"
