"""A raw SIP subscriber for the presence tests (MWI and BLF): a blocking UDP (or TCP) client
that subscribes to an event package of a resource, answers the digest challenge, and collects
(and answers) the NOTIFYs it receives.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from telephony.sip.message import Request, Response, make_response, parse_uri
from tests.sip.engine_fixtures import SIP_PASSWORD, SipTestClient, digest_authorization

__all__ = ["Subscriber"]

ACCEPT = {
    "dialog": "application/dialog-info+xml",
    "presence": "application/pidf+xml",
    "message-summary": "application/simple-message-summary",
}
_OWN: Any = object()  # request(): the subscriber's own event package


class Subscriber:
    """Extension ``user`` of ``domain`` subscribing to ``event`` of ``resource`` (in
    ``resource_domain``, its own domain by default)."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        resource: str,
        *,
        domain: str = "acme.test",
        resource_domain: str | None = None,
        event: str,
        transport: str = "UDP",
    ) -> None:
        self.client = SipTestClient(host, port, transport)
        self.transport = transport
        self.user = user
        self.domain = domain
        self.event = event
        self.from_tag = secrets.token_hex(4)
        self.call_id = f"{secrets.token_hex(8)}@{event}-test"
        self.cseq = 0
        self.to_tag: str | None = None
        self.notifies: list[Request] = []
        self.answer_code = 200
        rd = resource_domain or domain
        self.ruri = f"sip:{resource}@{rd}"
        self.to = f"<sip:{resource}@{rd}>"
        self.accept: str | None = ACCEPT.get(event)
        lhost, lport = self.client.local
        self.contact = f"<sip:{user}@{lhost}:{lport};transport={transport.lower()}>"

    def close(self) -> None:
        self.client.close()

    def retarget(self, host: str, port: int) -> None:
        """Send the next requests to another engine (same socket, same dialog)."""
        self.client.host, self.client.port = host, port

    def request(
        self,
        *,
        expires: int | None = 600,
        event: str | None = _OWN,
        authorization: str | None = None,
        extra: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> Request:
        self.cseq += 1
        lhost, lport = self.client.local
        to = self.to + (f";tag={self.to_tag}" if self.to_tag else "")
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        headers = [
            ("Via", f"SIP/2.0/{self.transport} {lhost}:{lport};branch={branch};rport"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{self.user}@{self.domain}>;tag={self.from_tag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} SUBSCRIBE"),
            ("Contact", self.contact),
        ]
        event = self.event if event is _OWN else event
        if event:
            headers.append(("Event", event))
        if self.accept is not None:
            headers.append(("Accept", self.accept))
        if expires is not None:
            headers.append(("Expires", str(expires)))
        if authorization is not None:
            headers.append(("Authorization", authorization))
        headers += extra or []
        return Request("SUBSCRIBE", parse_uri(self.ruri), headers, body)

    def pump(self, timeout: float) -> Request | Response | None:
        """Receive one message; NOTIFYs are answered and kept. None on timeout."""
        try:
            msg = self.client.recv(timeout)
        except (TimeoutError, OSError):
            return None
        if isinstance(msg, Request) and msg.method == "NOTIFY":
            self.notifies.append(msg)
            answer = bytes(make_response(msg, self.answer_code))
            if self.transport == "UDP":
                # To the top Via's sent-by (RFC 3261 18.2.2): the engine that sent it, which
                # after an adoption is not the one this watcher subscribed on.
                sent_by = msg.get("Via").split()[1].split(";")[0]
                host, _, port = sent_by.rpartition(":")
                self.client.sock.sendto(answer, (host, int(port)))
            else:
                self.client.send_raw(answer)
        return msg

    def send(self, req: Request, timeout: float = 3.0) -> Response:
        self.client.send_raw(bytes(req))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.pump(max(0.05, deadline - time.monotonic()))
            if (
                isinstance(msg, Response)
                and msg.status >= 200
                and msg.cseq.seq == req.cseq.seq
                and msg.call_id == req.call_id
            ):
                return msg
        raise AssertionError(f"no answer to {req.method} {req.cseq.seq}")

    def subscribe(self, password: str = SIP_PASSWORD, **kw: Any) -> Response:
        """SUBSCRIBE, answer the 401 (MD5), return the final answer."""
        first = self.send(self.request(**kw))
        if first.status != 401:
            return first
        challenge = next(
            v for v in first.get_all("WWW-Authenticate") if "algorithm=MD5" in v.replace('"', "")
        )
        auth = digest_authorization(
            challenge, method="SUBSCRIBE", uri=self.ruri, username=self.user, password=password
        )
        resp = self.send(self.request(authorization=auth, **kw))
        if resp.status == 200:
            self.to_tag = resp.to.tag
        return resp

    def refresh(self, expires: int) -> Response:
        return self.send(self.request(expires=expires))

    def next_notify(self, timeout: float = 3.0) -> Request:
        deadline = time.monotonic() + timeout
        while not self.notifies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no NOTIFY")
            self.pump(left)
        return self.notifies.pop(0)

    def notify_until(self, predicate: Any, timeout: float = 5.0) -> Request:
        """The first NOTIFY (skipping others) whose parsed body satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no NOTIFY with the expected state")
            n = self.next_notify(left)
            if predicate(n):
                return n

    def quiet(self, seconds: float) -> None:
        """No NOTIFY arrives for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.pump(left)
        assert self.notifies == [], [n.body for n in self.notifies]
