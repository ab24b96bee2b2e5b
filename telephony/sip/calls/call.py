"""Calls and their legs: the tables of live calls, how a call's requests are sent, and how a
call ends.

A :class:`Call` is two dialogs we own, linked: the caller's (the A leg, we are its UAS) and
the callee's (the B leg, we are its UAC; while ringing, one fork per phone, the first answer
wins). :class:`Calls` holds every live call and leg of the engine and the operations every
destination and feature shares: sending on a leg (User-Agent: the tenant's product), our own
SDP origin per leg, call events, and teardown (CANCEL, BYE, the caller's final answer, the end
of a call). What else must happen when a call changes (the Redis mirror, the call-limit
counter, rtpengine's session) is done by observers (:class:`CallObserver`), so features plug
in without this module knowing them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from telephony.sip.context import EngineContext
from telephony.sip.contract import EventType, ExtensionSnapshot, TenantSnapshot
from telephony.sip.dialog import Dialog
from telephony.sip.media import connection_address
from telephony.sip.message import Address, Request, Response, SipURI, parse_address, parse_uri
from telephony.sip.transaction import ClientTransaction, ServerTransaction, make_cancel
from telephony.sip.transport import Target

from .forwarding import Path
from .profiles import Profile

__all__ = [
    "Call",
    "CallObserver",
    "Calls",
    "Leg",
    "sdp_body",
    "sendrecv",
    "status_for",
]

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class Leg:
    """One side of a call: a dialog between us and one phone."""

    call: Call
    name: str  # "a" (we answered it) or "b<n>" (we called it)
    user: str  # extension number at the far end
    target: Target
    local_tag: str
    sip_call_id: str
    contact: str  # our Contact on this leg
    dialog: Dialog | None = None
    server_tx: ServerTransaction | None = None  # the caller's INVITE (A leg)
    client_tx: ClientTransaction | None = None  # our INVITE (B legs)
    invite: Request | None = None
    remote_sdp: bytes = b""  # the last SDP this phone sent us
    sess_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    sess_ver: int = 0
    last_sent: bytes = b""
    ack: Request | None = None  # our ACK for its 2xx, re-sent if the 2xx is retransmitted
    provisional: bool = False
    early_tag: str = ""  # the phone's To-tag of its early dialog (180/183), for BLF pickup
    busy: bool = False  # an in-dialog INVITE/UPDATE of ours is pending (491 for a second one)
    gone: bool = False
    # A blind transfer this leg asked for is under way: its BYE (many desk phones hang up on
    # the 202) lets only this leg go; the transfer decides what becomes of the call.
    transferring: bool = False
    # A leg a feature owns beside the call's two (a page's listener, later a conference
    # member): its BYE is told to the feature, and only that leg ends.
    on_bye: Callable[[Leg], None] | None = None
    # How this phone carries its audio (``profiles.py``): from its offer (the A leg), or from
    # where we call it; and, while it rings, the rtpengine pairing of its own when its profile
    # is not the one of ``Call.offer`` (forks of mixed profiles: a desk phone and a browser).
    profile: Profile = Profile.RTP
    media_id: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """The leg's entry in :attr:`Calls.legs`: (SIP Call-ID, our tag)."""
        return (self.sip_call_id, self.local_tag)

    def info(self) -> dict[str, Any]:
        return {"leg": self.name, "user": self.user, "sip_call_id": self.sip_call_id}


@dataclass(slots=True, eq=False)
class Call:
    """A call in progress: the two linked legs (plus forks while ringing) and its record."""

    id: str
    tenant: TenantSnapshot
    caller: ExtensionSnapshot
    callee: str
    a: Leg | None = None
    b: Leg | None = None
    forks: list[Leg] = field(default_factory=list)
    state: str = "routing"  # routing, ringing, answered, ended
    started_at: float = field(default_factory=time.time)
    answered_at: float | None = None
    segment: int = 1
    anchored: bool = False
    timer: asyncio.TimerHandle | None = None
    statuses: list[int] = field(default_factory=list)
    end_status: str = ""
    # Forwarding: the extension being rung now (the callee, or where the call was forwarded),
    # every extension the call was routed to (a forward back to one of them is a loop), the
    # forwarding steps taken and the Diversion entries (RFC 5806) the target is shown.
    target: str = ""
    visited: list[str] = field(default_factory=list)
    hops: int = 0
    diversions: list[str] = field(default_factory=list)
    max_forwards: int = 70
    offer: bytes = b""  # the SDP offered to the callee's phones (rtpengine's when anchored)
    # The profile ``offer`` is for (the caller's, until rtpengine converts it), and the offers
    # to phones of other profiles while they ring: profile -> (rtpengine call-id, SDP).
    offer_profile: Profile = Profile.RTP
    pairings: dict[Profile, tuple[str, bytes]] = field(default_factory=dict)
    transcoded: bool = False  # rtpengine transcodes its audio (counted against the cap)
    segment_kind: str = "call"  # call, forward, blind, attended: the CDR segment's kind
    media_id: str = ""  # rtpengine's call-id of the current leg pairing
    leg_seq: int = 0
    # The call came in on a trunk: its CDR's direction stays inbound (a forward or transfer
    # out through a trunk included); any other call's trunk legs make it outbound.
    inbound: bool = False
    # A media feature (IVR, voicemail, ...) answered the caller: its 200 is sent, so what
    # follows reaches the caller in re-INVITEs and BYE (``media_app.py``), and ``media`` is
    # the media server's session the caller hears while no phone is connected.
    answered_a: bool = False
    media: Any = None
    # rtpengine's pairing of a taken caller with the media server, while phones ring for it
    # under a new one (deleted when one answers or the call ends).
    media_handoff: str = ""
    hold: Any = None  # media_app.Hold: the call is on hold with music
    # The trunks the call went through (ids: the one it came in on, those tried out), for
    # its recording policy; and its recording (recording.Recording) when it may be recorded
    # (False: it should be, but its media is not anchored).
    trunks: list[int] = field(default_factory=list)
    recording: Any = None
    # Contact centre: the queue (its number) whose agent answered this call, once one did (its
    # supervisors may join it; the agent wraps up after it), and the supervision in progress
    # (``supervision.Supervision``: the parties' and the supervisor's media server sessions).
    queue: str = ""
    supervision: Any = None

    def next_leg_name(self, prefix: str = "b") -> str:
        self.leg_seq += 1
        return f"{prefix}{self.leg_seq}"

    def peer(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None

    def legs(self) -> list[Leg]:
        return [leg for leg in (self.a, self.b) if leg is not None]

    def path(self, max_forward_hops: int) -> Path:
        """Where the call has been, for routing's forwarding decisions."""
        return Path(tuple(self.visited), self.hops, min(max_forward_hops, self.max_forwards))


class CallObserver(Protocol):
    """Told of every change of a call worth showing: started, answered, transferred, ended
    (``call.state == "ended"``, once)."""

    def call_changed(self, call: Call) -> None: ...


def _release(call: Call) -> None:
    """Drop the references from an ended call to its legs and theirs to transactions (not
    of a leg that moved on to another call: an attended transfer's target)."""
    for leg in (call.a, call.b, *call.forks):
        if leg is not None and leg.call is call:
            leg.server_tx = leg.client_tx = None
    call.a = call.b = None
    call.forks = []
    call.timer = None


def sdp_body(msg: Request | Response) -> bytes:
    ct = (msg.content_type or "").lower()
    return msg.body if msg.body and "application/sdp" in ct else b""


def sendrecv(sdp: bytes) -> bytes:
    """The SDP with every direction attribute back to sendrecv: a transfer joins parties that
    were on hold (their last SDP says recvonly/sendonly) into a live conversation."""
    for d in (b"a=sendonly", b"a=recvonly", b"a=inactive"):
        sdp = sdp.replace(d, b"a=sendrecv")
    return sdp


def status_for(code: int) -> str:
    """The CDR status of a call refused with ``code``."""
    if code in (486, 600, 603):
        return "busy"
    if code == 487:
        return "cancelled"
    if code in (408, 480):
        return "no_answer"
    return "failed"


class Calls:
    """The engine's live calls and legs, and what every destination and feature does with
    them: send on a leg, emit the call's events, end it."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.tl = ctx.engine.transactions
        self.by_id: dict[str, Call] = {}
        self.legs: dict[tuple[str, str], Leg] = {}  # (SIP Call-ID, our tag) -> leg
        self.observers: list[CallObserver] = []
        self.tasks: set[asyncio.Future[Any]] = set()
        self.stats = {"calls": 0, "answered": 0, "failed": 0}

    # --- background work -----------------------------------------------------------------
    def spawn(self, aw: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(aw)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    # --- the table -----------------------------------------------------------------------
    def add(self, call: Call) -> None:
        self.stats["calls"] += 1
        self.by_id[call.id] = call

    def add_leg(self, leg: Leg) -> None:
        self.legs[leg.key] = leg

    def replaced(self, replaces: str) -> tuple[Leg | None, dict[str, str]]:
        """The leg a ``Replaces`` value (RFC 3891: ``call-id;to-tag=..;from-tag=..``) names,
        by its to-tag, else its from-tag (either side may be ours), and the value's
        parameters (names lower-cased: ``early-only``...)."""
        parts = replaces.split(";")
        params: dict[str, str] = {}
        for p in parts[1:]:
            name, _, value = p.partition("=")
            params[name.strip().lower()] = value.strip()
        sip_call_id = parts[0].strip()
        leg = self.legs.get((sip_call_id, params.get("to-tag", "")))
        if leg is None:
            leg = self.legs.get((sip_call_id, params.get("from-tag", "")))
        return leg, params

    def drop_leg(self, leg: Leg) -> None:
        self.legs.pop(leg.key, None)

    def changed(self, call: Call) -> None:
        for observer in self.observers:
            observer.call_changed(call)

    def early(self, leg: Leg, resp: Response) -> None:
        """A phone's provisional answer on ``leg``: its early dialog's tag is kept (BLF
        watchers pick the call up with ``Replaces`` naming it) and the change is told."""
        tag = resp.to.tag or ""
        if tag and tag != leg.early_tag and not leg.gone:
            leg.early_tag = tag
            self.changed(leg.call)

    # --- what we send --------------------------------------------------------------------
    def product(self, tenant: TenantSnapshot | None) -> str:
        if tenant is not None and tenant.product:
            return tenant.product
        return self.ctx.config.engine.product

    def server(self, tenant: TenantSnapshot | None = None) -> tuple[str, str]:
        """Server header: the tenant's white-label product for answers that belong to it;
        the engine's for answers before authentication (the same for every domain)."""
        return ("Server", self.product(tenant))

    def stamp(self, req: Request, tenant: TenantSnapshot | None) -> Request:
        if req.get("User-Agent") is None:
            req.add("User-Agent", self.product(tenant))
        return req

    def send(
        self,
        leg: Leg,
        req: Request,
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        """Send a request of ours on ``leg`` (User-Agent: the tenant's product)."""
        self.stamp(req, leg.call.tenant)
        return self.tl.send_request(req, leg.target, on_response=on_response)

    async def send_ack(self, leg: Leg, ack: Request) -> None:
        self.stamp(ack, leg.call.tenant)
        await self.tl.send_stateless(ack, leg.target)

    async def confirm(self, leg: Leg, resp: Response) -> bool:
        """A 2xx to our INVITE on ``leg``: its dialog (with our Contact), our ACK (kept to be
        re-sent when the 2xx is) and its SDP as ``leg.remote_sdp``. False when the 2xx makes
        no dialog (nothing sent)."""
        assert leg.invite is not None
        try:
            leg.dialog = Dialog.from_uac(leg.invite, resp)
        except ValueError:
            leg.dialog = None
            return False
        leg.dialog.contact = leg.contact
        leg.ack = leg.dialog.ack_for_2xx(leg.invite.cseq.seq)
        await self.send_ack(leg, leg.ack)
        leg.remote_sdp = sdp_body(resp)
        return True

    def contact(self, user: str, kind: str) -> str:
        host, port = self.ctx.engine.transport.via_for(kind)
        t = "" if kind.upper() == "UDP" else f";transport={kind.lower()}"
        return f"<{SipURI(host, user=user, port=port)}{t}>"

    def sdp_for(self, leg: Leg, sdp: bytes) -> bytes:
        """Give the SDP our own origin for this leg, its version bumped whenever the session
        description changes (RFC 3264 8: a re-offer must carry a higher version)."""
        if not sdp:
            return sdp
        lines = sdp.split(b"\r\n") if b"\r\n" in sdp else sdp.split(b"\n")
        body = [ln for ln in lines if not ln.startswith(b"o=")]
        key = b"\n".join(body)
        if key != leg.last_sent:
            leg.sess_ver += 1
            leg.last_sent = key
        addr = connection_address(sdp) or "127.0.0.1"
        origin = f"o=- {leg.sess_id} {leg.sess_ver} IN IP4 {addr}".encode()
        out = [origin if ln.startswith(b"o=") else ln for ln in lines]
        return b"\r\n".join(out)

    def invite(self, leg: Leg, contact: str, caller: ExtensionSnapshot, offer: bytes) -> Request:
        """Our INVITE for a new outgoing leg to ``contact``, from ``caller``'s caller ID."""
        tenant = leg.call.tenant
        uri = parse_address(contact).uri if contact.startswith("<") else parse_uri(contact)
        # Built as an Address: the name is quoted and escaped, the number %-escaped (RFC 3261
        # 25.1), so snapshot text can never add a header line (header injection).
        identity = Address(
            SipURI(tenant.domain, user=caller.caller_id_number), caller.caller_id_name or None
        )
        headers = [
            ("Max-Forwards", "70"),
            ("From", f"{identity};tag={leg.local_tag}"),
            ("To", f"<{SipURI(tenant.domain, user=leg.user)}>"),
            ("Call-ID", leg.sip_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", leg.contact),
            ("P-Asserted-Identity", str(identity)),
            ("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, REFER, NOTIFY"),
            ("Supported", "replaces"),
        ]
        body = self.sdp_for(leg, offer)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request("INVITE", uri, headers, body)

    async def reoffer(self, leg: Leg, sdp: bytes) -> Response | None:
        """Send ``sdp`` to ``leg`` in a re-INVITE (its media now goes to someone else); the
        phone's final answer (None: nothing sent, the leg is gone). A 2xx is ACKed and its
        SDP becomes ``leg.remote_sdp``."""
        if leg.dialog is None or not sdp or leg.gone:
            return None
        out = leg.dialog.reinvite(self.sdp_for(leg, sendrecv(sdp)))
        leg.busy = True
        try:
            resp = await self.send(leg, out).future
        finally:
            leg.busy = False
        if 200 <= resp.status < 300:
            await self.send_ack(leg, leg.dialog.ack_for_2xx(out.cseq.seq))
            answer = sdp_body(resp)
            if answer:
                leg.remote_sdp = answer
        return resp

    def emit(self, call: Call, event_type: EventType, **fields: Any) -> None:
        if call.segment_kind != "call":
            # Every event of a forwarded segment names its kind, so the CDR consumer (which may
            # apply events in any order) creates that segment with it.
            fields.setdefault("kind", call.segment_kind)
        self.ctx.events.emit(
            event_type,
            call_id=call.id,
            schema=call.tenant.schema,
            tenant_id=call.tenant.tenant_id,
            segment=call.segment,
            legs=json.dumps([leg.info() for leg in call.legs()]),
            **fields,
        )

    # --- teardown ------------------------------------------------------------------------
    def cancel_fork(self, leg: Leg, *, answered_elsewhere: bool = False) -> None:
        leg.gone = True
        self.drop_leg(leg)
        if leg.client_tx is not None and leg.client_tx.state in ("calling", "proceeding"):
            assert leg.invite is not None
            cancel = make_cancel(leg.invite)
            if answered_elsewhere:
                # RFC 3326: phones then do not list the call as missed.
                cancel.add("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
            self.send(leg, cancel)

    def fork_failed(self, leg: Leg) -> bool:
        """A fork's final refusal: ``leg`` is gone from its call. Returns whether it was gone
        already (we CANCELled it: answered elsewhere, no answer...), its refusal no verdict."""
        cancelled = leg.gone
        leg.gone = True
        if leg in leg.call.forks:
            leg.call.forks.remove(leg)
        self.drop_leg(leg)
        return cancelled

    def cancel_forks(self, call: Call) -> None:
        for leg in list(call.forks):
            self.cancel_fork(leg)
        call.forks = []

    def bye(self, leg: Leg) -> None:
        if leg.gone or leg.dialog is None:
            return
        leg.gone = True
        self.send(leg, leg.dialog.bye())

    def caller_cancelled(self, call: Call) -> None:
        if call.state == "answered" or call.answered_a:
            return  # a CANCEL that crossed our 200: the caller's BYE follows
        self.cancel_forks(call)
        call.end_status = "cancelled"
        self.finish(call, "cancelled", "caller cancelled")

    def fail(
        self,
        call: Call,
        code: int,
        *,
        status: str = "",
        reason: str = "",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Answer the caller ``code`` (with ``headers``: a Warning...) and end the call (hang
        it up, when a media feature answered it already)."""
        a = call.a
        if call.answered_a and a is not None:
            self.bye(a)
        elif a is not None and a.server_tx is not None:
            a.server_tx.respond(code, headers=[self.server(call.tenant), *headers])
        self.stats["failed"] += 1
        self.finish(call, status or status_for(code), reason or str(code))

    def end(self, call: Call, reason: str, code: int = 487) -> None:
        """End a call from our side (API hang-up, shutdown): BYE the answered legs, or
        CANCEL the forks and answer the caller."""
        if call.state == "ended":
            return
        if call.state == "answered":
            for leg in call.legs():
                self.bye(leg)
            self.finish(call, "answered", reason)
            return
        self.cancel_forks(call)
        if call.answered_a:
            self.fail(call, code, status="answered", reason=reason)
            return
        self.fail(call, code, status="cancelled", reason=reason)

    def finish(self, call: Call, status: str, reason: str) -> None:
        if call.state == "ended":
            return
        if call.timer is not None:
            call.timer.cancel()
        call.state = "ended"
        for leg in (call.a, call.b, *call.forks):
            if leg is not None:
                self.drop_leg(leg)
        self.by_id.pop(call.id, None)
        self.emit(call, EventType.CALL_ENDED, status=status, reason=reason)
        self.changed(call)
        # Break the call <-> legs cycles once its last transactions are over (Timers H, J, M:
        # 64*T1), so reference counting frees it. Left to the cycle collector, which the
        # engine tunes to run full collections rarely (app.tune_gc), every call was kept.
        linger = 64 * self.tl.timers.t1 + 1.0
        asyncio.get_running_loop().call_later(linger, _release, call)
