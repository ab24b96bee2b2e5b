"""A browser's SIP signalling for tests: SIP over WebSocket (RFC 7118) with the SDP Chrome
sends and answers (ICE candidates, a DTLS fingerprint, ``setup:actpass``, rtcp-mux, BUNDLE,
``a=mid``, Opus + PCMU + PCMA + telephone-event).

It speaks SDP, not media: what the engine and rtpengine make of a browser's offers and answers
is checked at the SDP level here; real browsers with real audio are ``tests/e2e``'s.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

from websockets.sync.client import connect

from telephony.sip.message import Request, Response, parse, parse_uri
from tests.sip.engine_fixtures import SIP_PASSWORD, EngineHandle, digest_authorization

__all__ = ["WsPhone", "audio", "chrome_answer", "chrome_offer"]

_FINGERPRINT = ":".join(f"{b:02X}" for b in bytes(range(1, 33)))


def chrome_offer(*, opus_only: bool = False, port: int = 46243) -> bytes:
    """An audio offer as Chrome makes it (unified plan, one audio transceiver, ICE gathered)."""
    pts = "111 126" if opus_only else "111 0 8 126"
    g711 = "" if opus_only else "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    return (
        "v=0\r\n"
        f"o=- {secrets.randbelow(2**62)} 2 IN IP4 127.0.0.1\r\n"
        "s=-\r\nt=0 0\r\n"
        "a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS stream\r\n"
        f"m=audio 9 UDP/TLS/RTP/SAVPF {pts}\r\n"
        "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n"
        f"a=candidate:1467250027 1 udp 2122260223 127.0.0.1 {port} typ host generation 0\r\n"
        "a=ice-ufrag:Xk7q\r\na=ice-pwd:b2UUzkAZ4QkiJN3X1kgk4Y8Q\r\na=ice-options:trickle\r\n"
        f"a=fingerprint:sha-256 {_FINGERPRINT}\r\n"
        "a=setup:actpass\r\na=mid:0\r\n"
        "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
        "a=sendrecv\r\na=msid:stream track\r\na=rtcp-mux\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
        "a=fmtp:111 minptime=10;useinbandfec=1\r\n"
        f"{g711}"
        "a=rtpmap:126 telephone-event/8000\r\n"
        "a=ssrc:1001 cname:pbxtest\r\n"
    ).encode()


def chrome_answer(offer: bytes, port: int = 46244) -> bytes:
    """Chrome's answer to ``offer``: the first codec it knows (Opus, PCMU, PCMA), DTLS
    ``setup:active``, its own ICE candidate, rtcp-mux."""
    m = audio(offer)
    assert m is not None, "no audio in the offer"
    known = {"OPUS", "PCMU", "PCMA"}
    names = rtpmaps(offer)
    enc = {pt: names.get(pt, "").split("/")[0].upper() for pt in m[3:]}
    chosen = next(pt for pt in m[3:] if enc[pt] in known)
    dtmf = [pt for pt in m[3:] if enc[pt] == "TELEPHONE-EVENT"]
    pts = " ".join([chosen, *dtmf])
    mid = re.search(rb"a=mid:(\S+)", offer)
    lines = [
        "v=0",
        f"o=- {secrets.randbelow(2**62)} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"m=audio 9 UDP/TLS/RTP/SAVPF {pts}",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        f"a=candidate:2 1 udp 2122260223 127.0.0.1 {port} typ host generation 0",
        "a=ice-ufrag:Yq3z",
        "a=ice-pwd:c3VVzkAZ4QkiJN3X1kgk4Y8Q",
        f"a=fingerprint:sha-256 {_FINGERPRINT}",
        "a=setup:active",
        *([f"a=mid:{mid.group(1).decode()}"] if mid else []),
        "a=sendrecv",
        "a=rtcp-mux",
        *[f"a=rtpmap:{pt} {names[pt]}" for pt in [chosen, *dtmf] if pt in names],
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def audio(sdp: bytes | str) -> list[str] | None:
    """The ``m=audio`` line's fields (``["m=audio", port, proto, pt...]``)."""
    text = sdp.decode() if isinstance(sdp, bytes) else sdp
    for line in text.splitlines():
        if line.startswith("m=audio "):
            return line.split()
    return None


def rtpmaps(sdp: bytes | str) -> dict[str, str]:
    """Payload type -> encoding (``opus/48000/2``), static types included."""
    text = sdp.decode() if isinstance(sdp, bytes) else sdp
    names = {"0": "PCMU/8000", "8": "PCMA/8000"}
    for line in text.splitlines():
        if line.startswith("a=rtpmap:"):
            pt, _, name = line[9:].partition(" ")
            names[pt] = name.strip()
    return names


def codecs(sdp: bytes | str) -> list[str]:
    """The offered encodings' names, upper case, in order."""
    m = audio(sdp)
    names = rtpmaps(sdp)
    return [names.get(pt, "?").split("/")[0].upper() for pt in (m or [])[3:]]


class WsPhone:
    """A browser softphone's SIP: one WebSocket to the engine, digest auth, one call at a
    time (enough for SDP-level tests)."""

    def __init__(self, engine: EngineHandle, user: str, domain: str = "acme.test") -> None:
        assert engine.ws_port is not None
        self.user, self.domain = user, domain
        self.ws = connect(
            f"ws://{engine.host}:{engine.ws_port}",
            subprotocols=["sip"],  # type: ignore[list-item]
            legacy=True,
        )
        self.host = f"{secrets.token_hex(6)}.invalid"
        self.contact = f"<sip:{user}@{self.host};transport=ws>"
        self.call_id = ""
        self.tag = secrets.token_hex(4)
        self.to_tag = ""
        self.remote_contact = ""
        self.cseq = 0
        self.pending: list[Request | Response] = []
        self.dialog_invite: Request | None = None  # an INVITE we received

    def close(self) -> None:
        self.ws.close()

    # --- wire ----------------------------------------------------------------------------
    def send(self, msg: Request | Response) -> None:
        self.ws.send(bytes(msg).decode())

    def recv(self, timeout: float = 5.0) -> Request | Response:
        if self.pending:
            return self.pending.pop(0)
        frame = self.ws.recv(timeout)
        return parse(frame.encode() if isinstance(frame, str) else frame)

    def wait(self, match: Any, timeout: float = 10.0) -> Request | Response:
        """The next message for which ``match(msg)`` holds (others are kept for later)."""
        deadline = time.monotonic() + timeout
        kept: list[Request | Response] = []
        try:
            while True:
                msg = self.recv(max(0.05, deadline - time.monotonic()))
                if match(msg):
                    return msg
                if isinstance(msg, Request) and msg.method == "OPTIONS":
                    self.send(self.reply(msg, 200))
                    continue
                kept.append(msg)
        finally:
            self.pending[:0] = kept

    def _final(self, call_id: str, cseq: int, timeout: float = 10.0) -> Response:
        msg = self.wait(
            lambda m: (
                isinstance(m, Response)
                and m.status >= 200
                and m.call_id == call_id
                and m.cseq.seq == cseq
            ),
            timeout,
        )
        assert isinstance(msg, Response)
        return msg

    def _headers(self, to: str, method: str, branch: str = "") -> list[tuple[str, str]]:
        branch = branch or "z9hG4bK" + secrets.token_hex(8)
        return [
            ("Via", f"SIP/2.0/WS {self.host};branch={branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{self.domain}>;tag={self.tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} {method}"),
            ("Contact", self.contact),
            ("User-Agent", "pytest-browser"),
        ]

    # --- registration --------------------------------------------------------------------
    def register(self) -> Response:
        self.call_id = secrets.token_hex(8) + "@ws"
        uri = f"sip:{self.domain}"
        auth = None
        for _ in range(2):
            self.cseq += 1
            headers = self._headers(f"<sip:{self.user}@{self.domain}>", "REGISTER")
            headers.append(("Expires", "300"))
            if auth:
                headers.append(("Authorization", auth))
            self.send(Request("REGISTER", parse_uri(uri), headers))
            resp = self._final(self.call_id, self.cseq)
            if resp.status != 401:
                return resp
            challenge = next(
                v for v in resp.get_all("WWW-Authenticate") if "MD5" in v.replace('"', "")
            )
            auth = digest_authorization(
                challenge, method="REGISTER", uri=uri, username=self.user, password=SIP_PASSWORD
            )
        return resp

    # --- calls we make -------------------------------------------------------------------
    def invite(self, number: str, sdp: bytes, timeout: float = 15.0) -> Response:
        """INVITE ``number`` with ``sdp`` (the 407 answered); the final answer, a 2xx ACKed."""
        self.call_id = secrets.token_hex(8) + "@ws"
        self.tag = secrets.token_hex(4)
        uri = f"sip:{number}@{self.domain}"
        auth = None
        for _ in range(2):
            self.cseq += 1
            branch = "z9hG4bK" + secrets.token_hex(8)
            headers = self._headers(f"<sip:{number}@{self.domain}>", "INVITE", branch)
            headers.append(("Content-Type", "application/sdp"))
            if auth:
                headers.append(("Proxy-Authorization", auth))
            self.send(Request("INVITE", parse_uri(uri), headers, sdp))
            resp = self._final(self.call_id, self.cseq, timeout)
            if resp.status != 407:
                break
            ack = self._headers(resp.get("To") or "", "ACK", branch)
            self.send(Request("ACK", parse_uri(uri), ack))
            challenge = next(
                v for v in resp.get_all("Proxy-Authenticate") if "MD5" in v.replace('"', "")
            )
            auth = digest_authorization(
                challenge, method="INVITE", uri=uri, username=self.user, password=SIP_PASSWORD
            )
        if 200 <= resp.status < 300:
            self.to_tag = resp.to.tag or ""
            self.remote_contact = (resp.get("Contact") or "").strip("<>")
            self.remote_to = resp.get("To") or ""
            ack = self._headers(self.remote_to, "ACK")
            self.send(Request("ACK", parse_uri(self.remote_contact), ack))
        elif resp.status >= 300:
            ack = self._headers(resp.get("To") or "", "ACK")
            self.send(Request("ACK", parse_uri(uri), ack))
        return resp

    def invite_and_cancel(self, number: str, sdp: bytes, after: float) -> Response:
        """INVITE ``number`` (the 407 answered), CANCEL it ``after`` seconds later; the
        INVITE's final answer (ACKed)."""
        self.call_id = secrets.token_hex(8) + "@ws"
        self.tag = secrets.token_hex(4)
        uri = f"sip:{number}@{self.domain}"
        to = f"<sip:{number}@{self.domain}>"
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        headers = self._headers(to, "INVITE", branch) + [("Content-Type", "application/sdp")]
        self.send(Request("INVITE", parse_uri(uri), headers, sdp))
        challenge = self._final(self.call_id, self.cseq)
        assert challenge.status == 407, challenge.status
        self.send(
            Request("ACK", parse_uri(uri), self._headers(challenge.get("To") or "", "ACK", branch))
        )
        auth = digest_authorization(
            next(v for v in challenge.get_all("Proxy-Authenticate") if "MD5" in v.replace('"', "")),
            method="INVITE", uri=uri, username=self.user, password=SIP_PASSWORD,
        )  # fmt: skip
        self.cseq += 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        headers = self._headers(to, "INVITE", branch)
        headers += [("Content-Type", "application/sdp"), ("Proxy-Authorization", auth)]
        self.send(Request("INVITE", parse_uri(uri), headers, sdp))
        time.sleep(after)
        self.send(Request("CANCEL", parse_uri(uri), self._headers(to, "CANCEL", branch)))
        call_id, seq = self.call_id, self.cseq
        final = self.wait(
            lambda m: (
                isinstance(m, Response)
                and m.status >= 200
                and m.call_id == call_id
                and m.cseq.seq == seq
                and m.cseq.method == "INVITE"
            )
        )
        assert isinstance(final, Response)
        self.send(
            Request("ACK", parse_uri(uri), self._headers(final.get("To") or "", "ACK", branch))
        )
        return final

    def reinvite(self, sdp: bytes) -> Response:
        """A re-INVITE in the call this phone made (hold, unhold); a 2xx is ACKed."""
        self.cseq += 1
        headers = self._headers(self.remote_to, "INVITE")
        headers.append(("Content-Type", "application/sdp"))
        self.send(Request("INVITE", parse_uri(self.remote_contact), headers, sdp))
        resp = self._final(self.call_id, self.cseq)
        if 200 <= resp.status < 300:
            ack = self._headers(self.remote_to, "ACK")
            self.send(Request("ACK", parse_uri(self.remote_contact), ack))
        return resp

    def bye(self) -> Response:
        """Hang up the call this phone made."""
        self.cseq += 1
        req = Request("BYE", parse_uri(self.remote_contact), self._headers(self.remote_to, "BYE"))
        self.send(req)
        return self._final(self.call_id, self.cseq)

    # --- calls we get --------------------------------------------------------------------
    def incoming(self, timeout: float = 10.0) -> Request:
        msg = self.wait(lambda m: isinstance(m, Request) and m.method == "INVITE", timeout)
        assert isinstance(msg, Request)
        self.dialog_invite = msg
        return msg

    def reply(self, req: Request, status: int, body: bytes = b"", to_tag: str = "") -> Response:
        headers = [(n, v) for n, v in req.headers if n in ("Via", "From", "Call-ID", "CSeq")]
        to = req.get("To") or ""
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        headers.insert(2, ("To", to))
        headers.append(("Contact", self.contact))
        if body:
            headers.append(("Content-Type", "application/sdp"))
        reason = {180: "Ringing", 200: "OK", 486: "Busy Here"}.get(status, "OK")
        return Response(status, reason, headers, body)

    def answer(self, req: Request, status: int, body: bytes = b"") -> None:
        self.send(self.reply(req, status, body, to_tag=self.tag))

    def wait_request(self, method: str, timeout: float = 10.0) -> Request:
        msg = self.wait(lambda m: isinstance(m, Request) and m.method == method, timeout)
        assert isinstance(msg, Request)
        return msg
