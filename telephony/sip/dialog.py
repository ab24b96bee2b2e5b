"""Dialog state (RFC 3261 section 12) and in-dialog request building.

A :class:`Dialog` is created from the dialog-creating request/response pair on either side
(UAC: our INVITE and its 1xx/2xx; UAS: the received INVITE and the To-tag we answer with).
It builds BYE, re-INVITE, ACK for 2xx, INFO, UPDATE, REFER... with the right Call-ID, tags,
CSeq, Request-URI and Route set (loose and strict routing, 12.2.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .message import URI, Address, Request, Response, SipURI

__all__ = ["Dialog"]


@dataclass(slots=True)
class Dialog:
    """State of one dialog, from our point of view."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: Address
    remote_uri: Address
    remote_target: URI
    local_seq: int
    remote_seq: int | None = None
    route_set: list[Address] = field(default_factory=list)
    secure: bool = False
    early: bool = False
    contact: str | None = None  # our Contact value for target-refresh requests

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # --- creation ------------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """We sent ``request``; ``response`` (101-299 with To-tag) creates the dialog.
        Route set = Record-Route of the response, reversed (12.1.2)."""
        if response.to.tag is None:
            raise ValueError("response without To-tag cannot create a dialog")
        if not response.contacts:
            raise ValueError("dialog-creating response without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=response.to.tag,
            local_uri=_strip(request.from_),
            remote_uri=_strip(response.to),
            remote_target=response.contacts[0].uri,
            local_seq=request.cseq.seq,
            route_set=list(reversed(response.record_routes)),
            secure=isinstance(request.uri, SipURI) and request.uri.scheme == "sips",
            early=response.status < 200,
            contact=request.get("Contact"),
        )

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, contact: str | None = None) -> Dialog:
        """We received ``request`` and answer with To-tag ``local_tag``. Route set =
        Record-Route of the request in order (12.1.1)."""
        if not request.contacts:
            raise ValueError("dialog-creating request without Contact")
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_strip(request.to),
            remote_uri=_strip(request.from_),
            remote_target=request.contacts[0].uri,
            local_seq=0,
            remote_seq=request.cseq.seq,
            route_set=list(request.record_routes),
            secure=isinstance(request.uri, SipURI) and request.uri.scheme == "sips",
            contact=contact,
        )

    # --- updates -------------------------------------------------------------------------
    def confirm(self, response: Response) -> None:
        """A 2xx for the dialog-creating request: leave early state, refresh the target.
        (The route set is fixed at creation for UAC early dialogs per 12.1.2; a 2xx after an
        early dialog recomputes it, as 13.2.2.4 says.)"""
        if self.early and response.status < 300:
            self.route_set = list(reversed(response.record_routes))
            self.early = False
        self.refresh_target(response)

    def refresh_target(self, msg: Request | Response) -> None:
        """Target refresh (re-INVITE, UPDATE and their 2xx): new remote Contact."""
        if msg.contacts:
            self.remote_target = msg.contacts[0].uri

    def receive_request(self, request: Request) -> bool:
        """Check and record the remote CSeq of an in-dialog request (12.2.2). False means the
        caller should answer 500 (lower CSeq than before)."""
        seq = request.cseq.seq
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_seq is not None and seq <= self.remote_seq:
            return False
        self.remote_seq = seq
        if request.method in ("INVITE", "UPDATE"):
            self.refresh_target(request)
        return True

    def matches(self, msg: Request | Response, *, incoming: bool = True) -> bool:
        """Does an in-dialog message belong here (Call-ID and both tags)?"""
        if msg.call_id != self.call_id:
            return False
        if incoming and isinstance(msg, Request):
            return msg.from_.tag == self.remote_tag and msg.to.tag == self.local_tag
        return msg.from_.tag == self.local_tag and msg.to.tag == self.remote_tag

    # --- building requests ---------------------------------------------------------------
    def create_request(
        self,
        method: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        cseq: int | None = None,
    ) -> Request:
        """Build an in-dialog request (12.2.1.1). The caller's transaction layer adds Via.
        ACK for 2xx and CANCEL reuse the INVITE's CSeq number: pass ``cseq``."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        to = self.remote_uri.copy()
        to.params["tag"] = self.remote_tag
        frm = self.local_uri.copy()
        frm.params["tag"] = self.local_tag
        uri: URI = self.remote_target
        routes = list(self.route_set)
        if routes and isinstance(routes[0].uri, SipURI) and not routes[0].uri.lr:
            # strict router: it becomes the Request-URI; the remote target goes last
            uri = routes[0].uri
            routes = routes[1:] + [Address(self.remote_target)]
        out: list[tuple[str, str]] = [("Route", str(r)) for r in routes]
        out += [
            ("Max-Forwards", "70"),
            ("From", str(frm)),
            ("To", str(to)),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if self.contact and method in ("INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"):
            out.append(("Contact", self.contact))
        out += headers or []
        return Request(method, uri.copy() if isinstance(uri, SipURI) else uri, out, body)

    def ack_for_2xx(self, invite_cseq: int, body: bytes = b"") -> Request:
        """ACK for a 2xx to INVITE (13.2.2.4): a new transaction-less request with the
        INVITE's CSeq number."""
        return self.create_request("ACK", cseq=invite_cseq, body=body)

    def bye(self) -> Request:
        return self.create_request("BYE")

    def reinvite(self, sdp: bytes, content_type: str = "application/sdp") -> Request:
        return self.create_request("INVITE", headers=[("Content-Type", content_type)], body=sdp)

    def info(self, body: bytes, content_type: str) -> Request:
        return self.create_request("INFO", headers=[("Content-Type", content_type)], body=body)

    def update(self, sdp: bytes | None = None) -> Request:
        if sdp is None:
            return self.create_request("UPDATE")
        return self.create_request(
            "UPDATE", headers=[("Content-Type", "application/sdp")], body=sdp
        )

    def refer(self, refer_to: str, referred_by: str | None = None) -> Request:
        headers = [("Refer-To", refer_to)]
        if referred_by:
            headers.append(("Referred-By", referred_by))
        return self.create_request("REFER", headers=headers)


def _strip(addr: Address) -> Address:
    out = addr.copy()
    out.params.pop("tag", None)
    return out
