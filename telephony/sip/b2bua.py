"""Calls between extensions of one tenant, as a back-to-back user agent.

Every call is two dialogs we own, linked: the caller's (A leg, we are its UAS) and the callee's
(B leg, we are its UAC; one per registered contact while forking, the first answer wins and
the other forks are CANCELled). Requests inside one dialog are re-issued in the other (re-INVITE
and UPDATE for hold, INFO), never proxied, so each side only ever sees our Call-ID, tags,
Contact and SDP origin.

Also here: 407 digest challenge for the caller, caller ID from the calling extension, DND (486),
no registration (480), a no-answer timer (the extension's ``no_answer_timeout``), BYE/CANCEL
from either side, blind transfer (REFER: a new leg from us to the target, NOTIFY sipfrag
progress to the transferor) and attended transfer (REFER with Replaces naming the transferor's
other call: the two remote parties are joined). Media passes through unchanged, or through
rtpengine (``media.RtpEngine``) when either side is behind NAT or the tenant asks for it; a
transferred anchored call stays anchored (a new rtpengine pairing of the parties that remain).

Call forwarding (see :meth:`B2BUA._route`): always (the extension does not ring), busy (every
phone answers 486/600/603, or DND), no answer (after the extension's timeout its phones are
CANCELled), unavailable (no phone registered: the no-answer target). Targets are extensions of
the same tenant; anything else is 480 and logged (outside numbers need trunks). A forward back
to an extension the call already rang, or beyond ``max_forward_hops`` / the caller's
Max-Forwards, is not followed. The target sees ``Diversion`` (RFC 5806).

Side effects for the rest of the platform, all non-blocking: call events on the event stream
(``call.started|ringing|answered|transferred|ended``, the CDR consumer's input, plus
``call.forwarded`` with ``reason``, ``from`` and ``to``; after a forward the call's events
carry the next ``segment`` and ``kind=forward``, so the CDR shows the forwarded part as a
segment of its own), the calls in progress mirrored in Redis hash ``sip:calls:<schema>``, and
commands from channel ``sip:control``: ``{"op": "hangup", "schema", "call_id"}`` from the REST
API and ``{"op": "notify", "domain", "user", "event": "check-sync", "reboot"}`` from
provisioning (an out-of-dialog NOTIFY to each registered contact).

White label: answers that belong to a tenant carry its snapshot ``product`` as Server, and
requests we send to its phones as User-Agent; answers before authentication carry the engine's
product (the same for every domain, so domains cannot be probed). Never a version.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from . import contract
from .contract import CheckSync, ControlMessage, HangUpCall
from .dialog import Dialog
from .directory import ExtensionSnapshot, TenantSnapshot
from .media import MediaError, RtpEngine, connection_address
from .message import Address, Request, Response, SipURI, parse_address, parse_uri
from .registrar import Binding
from .transaction import ClientTransaction, ServerTransaction, make_cancel, new_tag
from .transport import Source, Target

if TYPE_CHECKING:
    from .app import PbxConfig, PbxEngine

__all__ = ["B2BUA", "B2buaConfig", "Call", "Leg"]

log = logging.getLogger(__name__)

CALLS_KEY = contract.CALLS
CONTROL_CHANNEL = contract.CONTROL


@dataclass(slots=True)
class B2buaConfig:
    """Call-layer settings (``PbxConfig`` carries them from Django settings, see
    ``manage.py sipengine``)."""

    no_answer_timeout: float = 30.0  # when the extension's snapshot gives none
    rtpengine: tuple[str, int] | None = None  # ng address; None: media always direct
    anchor_all: bool = False  # anchor every call (otherwise: NAT or the tenant's anchor_media)
    mirror_calls: bool = True  # keep sip:calls:<schema> current for the API
    max_forward_hops: int = 5  # forwarding steps one call may take (loop protection)

    @classmethod
    def from_pbx(cls, config: PbxConfig) -> B2buaConfig:
        return cls(
            no_answer_timeout=config.no_answer_timeout,
            rtpengine=config.rtpengine_ng,
            anchor_all=config.anchor_all,
            max_forward_hops=config.max_forward_hops,
        )


# ------------------------------------------------------------------------------------- legs


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
    busy: bool = False  # an in-dialog INVITE/UPDATE of ours is pending (491 for a second one)
    gone: bool = False

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
    segment_kind: str = "call"  # call, forward, blind, attended: the CDR segment's kind
    media_id: str = ""  # rtpengine's call-id of the current leg pairing
    leg_seq: int = 0

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


def _release(call: Call) -> None:
    """Drop the references from an ended call to its legs and theirs to transactions (not
    of a leg that moved on to another call: an attended transfer's target)."""
    for leg in (call.a, call.b, *call.forks):
        if leg is not None and leg.call is call:
            leg.server_tx = leg.client_tx = None
    call.a = call.b = None
    call.forks = []
    call.timer = None


def _sdp_body(msg: Request | Response) -> bytes:
    ct = (msg.content_type or "").lower()
    return msg.body if msg.body and "application/sdp" in ct else b""


def _sendrecv(sdp: bytes) -> bytes:
    """The SDP with every direction attribute back to sendrecv: a transfer joins parties that
    were on hold (their last SDP says recvonly/sendonly) into a live conversation."""
    for d in (b"a=sendonly", b"a=recvonly", b"a=inactive"):
        sdp = sdp.replace(d, b"a=sendrecv")
    return sdp


# Why a call was forwarded, as RFC 5806 Diversion reasons.
DIVERSION_REASONS = {
    "always": "unconditional",
    "busy": "user-busy",
    "no_answer": "no-answer",
    "unavailable": "unavailable",
}
BUSY_CODES = frozenset({486, 600, 603})


def _status_for(code: int) -> str:
    if code in (486, 600, 603):
        return "busy"
    if code == 487:
        return "cancelled"
    if code in (408, 480):
        return "no_answer"
    return "failed"


# --------------------------------------------------------------------------------- the B2BUA


class B2BUA:
    """The call layer: plug into :class:`~telephony.sip.app.PbxEngine` with
    ``pbx.register_handlers(B2BUA(pbx))``."""

    def __init__(self, pbx: PbxEngine, config: B2buaConfig | None = None) -> None:
        self.pbx = pbx
        self.config = config or B2buaConfig.from_pbx(pbx.config)
        self.tl = pbx.engine.transactions
        self.calls: dict[str, Call] = {}
        self.tenant_calls: dict[str, int] = {}  # schema -> calls in progress on this engine
        self.legs: dict[tuple[str, str], Leg] = {}  # (SIP Call-ID, our tag) -> leg
        self.media: RtpEngine | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._control: asyncio.Task[None] | None = None
        self.stats = {"calls": 0, "answered": 0, "failed": 0}
        self._mirror_pending: dict[tuple[str, str], str | None] = {}
        self._mirror_task: asyncio.Future[None] | None = None
        self._tag_key = secrets.token_bytes(16)
        pbx.components["b2bua"] = self
        self._wrap_lifecycle()

    # --- lifecycle -----------------------------------------------------------------------
    def _wrap_lifecycle(self) -> None:
        # The engine knows nothing of us beyond handlers: hook its start/stop to run ours.
        start, stop = self.pbx.start, self.pbx.stop

        async def started() -> dict[str, tuple[str, int]]:
            addrs = await start()
            await self.start()
            return addrs

        async def stopped() -> None:
            await self.stop()
            await stop()

        self.pbx.start = started  # type: ignore[method-assign]
        self.pbx.stop = stopped  # type: ignore[method-assign]

    async def start(self) -> None:
        if self.config.rtpengine is not None:
            self.media = RtpEngine(*self.config.rtpengine)
            await self.media.open()
        self._control = asyncio.create_task(self._listen_control(), name="b2bua-control")

    async def stop(self) -> None:
        for call in list(self.calls.values()):
            self._end(call, "shutdown", 503)
        if self._control is not None:
            self._control.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._control
        if self.media is not None:
            self.media.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call task failed", exc_info=task.exception())

    # --- helpers -------------------------------------------------------------------------
    @property
    def _prefix(self) -> str:
        return self.pbx.config.redis_prefix

    def _caller_tag(self, req: Request) -> str:
        """A To-tag derived from the call's Call-ID and From-tag with a secret key:
        unpredictable and unique per call, yet the same for each INVITE of one call."""
        material = f"{req.call_id}\n{req.from_.tag or ''}".encode()
        return hmac.new(self._tag_key, material, hashlib.sha256).hexdigest()[:16]

    def _contact(self, user: str, kind: str) -> str:
        host, port = self.pbx.engine.transport.via_for(kind)
        t = "" if kind.upper() == "UDP" else f";transport={kind.lower()}"
        return f"<{SipURI(host, user=user, port=port)}{t}>"

    def _product(self, tenant: TenantSnapshot | None) -> str:
        if tenant is not None and tenant.product:
            return tenant.product
        return self.pbx.config.engine.product

    def _server(self, tenant: TenantSnapshot | None = None) -> tuple[str, str]:
        """Server header: the tenant's white-label product for answers that belong to it;
        the engine's for answers before authentication (the same for every domain)."""
        return ("Server", self._product(tenant))

    def _stamp(self, req: Request, tenant: TenantSnapshot | None) -> Request:
        if req.get("User-Agent") is None:
            req.add("User-Agent", self._product(tenant))
        return req

    def _send(
        self,
        leg: Leg,
        req: Request,
        on_response: Callable[[Response], None] | None = None,
    ) -> ClientTransaction:
        """Send a request of ours on ``leg`` (User-Agent: the tenant's product)."""
        self._stamp(req, leg.call.tenant)
        return self.tl.send_request(req, leg.target, on_response=on_response)

    async def _send_ack(self, leg: Leg, ack: Request) -> None:
        self._stamp(ack, leg.call.tenant)
        await self.tl.send_stateless(ack, leg.target)

    def _sdp_for(self, leg: Leg, sdp: bytes) -> bytes:
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

    def _emit(self, call: Call, event_type: str, **fields: Any) -> None:
        if call.segment_kind != "call":
            # Every event of a forwarded segment names its kind, so the CDR consumer (which may
            # apply events in any order) creates that segment with it.
            fields.setdefault("kind", call.segment_kind)
        self.pbx.events.emit(
            event_type,
            call_id=call.id,
            schema=call.tenant.schema,
            tenant_id=call.tenant.tenant_id,
            segment=call.segment,
            legs=json.dumps([leg.info() for leg in call.legs()]),
            **fields,
        )

    def _mirror(self, call: Call) -> None:
        """Queue the call's current state for the Redis mirror. Changes are coalesced per call
        and written by one task in pipelined batches: one Redis round trip per batch, not per
        call event, and never more than one connection."""
        if not self.config.mirror_calls:
            return
        key = self._prefix + CALLS_KEY.format(schema=call.tenant.schema)
        value: str | None = None
        if call.state != "ended":
            value = json.dumps(
                {
                    "call_id": call.id,
                    "state": call.state,
                    "caller": call.caller.caller_id_number,
                    "caller_name": call.caller.caller_id_name,
                    "callee": call.callee,
                    "target": call.target or call.callee,
                    "started_at": call.started_at,
                    "answered_at": call.answered_at,
                    "legs": [leg.info() for leg in call.legs()],
                    # Which engine carries the call: a restarted engine closes the calls its
                    # previous run left here (telephony.engine.state.close_orphaned_calls).
                    "engine": self.pbx.config.engine_id,
                    "segment": call.segment,
                    "tenant_id": call.tenant.tenant_id,
                }
            )
        self._mirror_pending[(key, call.id)] = value
        if self._mirror_task is None or self._mirror_task.done():
            self._mirror_task = asyncio.ensure_future(self._mirror_writer())

    async def _mirror_writer(self) -> None:
        while self._mirror_pending:
            batch, self._mirror_pending = self._mirror_pending, {}
            try:
                pipe = self.pbx.redis.pipeline(transaction=False)
                for (key, call_id), value in batch.items():
                    if value is None:
                        pipe.hdel(key, call_id)
                    else:
                        pipe.hset(key, call_id, value)
                await pipe.execute()
            except Exception as exc:
                # The mirror is a view for the API; calls go on without it.
                log.warning("could not update the active-call mirror: %s", exc)
                for k, v in batch.items():
                    self._mirror_pending.setdefault(k, v)
                await asyncio.sleep(0.5)

    def _needs_anchor(
        self, call: Call, caller_host: str, sdp: bytes, bindings: list[Binding]
    ) -> bool:
        if self.media is None:
            return False
        if self.config.anchor_all or call.tenant.anchor_media:
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

    # --- new calls -----------------------------------------------------------------------
    async def on_invite(self, tx: ServerTransaction) -> None:
        req = tx.request
        if req.to.tag:
            await self._in_dialog_offer(tx)
            return
        # The caller's dialog gets the same To-tag in the 407 and in the answer to its
        # authenticated retry (same Call-ID and From-tag): some UACs (SIPp among them) keep the
        # first tag they saw and would send their BYE with the 407's.
        tx.to_tag = self._caller_tag(req)
        frm = req.from_.uri
        ruri = req.uri
        if not isinstance(frm, SipURI) or not isinstance(ruri, SipURI) or not ruri.user:
            tx.respond(404, headers=[self._server()])
            return
        # The caller's tenant is the one of its own domain; it is authenticated there, so it
        # can only ever reach extensions of that tenant.
        tenant = self.pbx.directory.tenant(frm.host)
        realm = tenant.domain if tenant is not None else frm.host.lower()
        lookup = tenant.extensions.get if tenant is not None else _nobody
        sha256 = tenant is not None and tenant.sip_digest_sha256
        result = self.pbx.auth.verify(req, realm, lookup, proxy=True, sha256=sha256)
        if not result.ok:
            if result.failed:
                self.pbx.guard.auth_failed(tx.source.remote[0])
            challenge = self.pbx.auth.challenge(
                realm, proxy=True, stale=result.stale, sha256=sha256
            )
            tx.respond(407, headers=[self._server(), *challenge])
            return
        caller = result.extension
        assert tenant is not None
        assert caller is not None
        server = self._server(tenant)
        if not tenant.active or not caller.enabled:
            tx.respond(403, headers=[server])
            return
        if ruri.host.lower() != tenant.domain and self.pbx.directory.tenant(ruri.host):
            tx.respond(404, headers=[server])  # another tenant: as if it did not exist
            return
        max_forwards = req.max_forwards
        if max_forwards is not None and max_forwards <= 0:
            tx.respond(483, headers=[server])  # a loop through other servers
            return
        limit = tenant.max_concurrent_calls
        if limit and self.tenant_calls.get(tenant.schema, 0) >= limit:
            # The tenant's capability "max concurrent calls": refused before anything rings.
            log.info("tenant %s at its %d concurrent calls: INVITE refused", tenant.schema,
                     limit)  # fmt: skip
            tx.respond(
                503,
                "Too Many Calls",
                headers=[server, ("Warning", '399 pbx "concurrent call limit reached"')],
            )
            return
        tx.respond(100)
        number = unquote(ruri.user)
        call_id = secrets.token_hex(12)
        call = Call(
            id=call_id,
            tenant=tenant,
            caller=caller,
            callee=number,
            media_id=call_id,
            max_forwards=min(70, 70 if max_forwards is None else max_forwards - 1),
        )
        a = Leg(
            call=call,
            name="a",
            user=caller.number,
            target=Target(tx.source.kind, *tx.source.remote),
            local_tag=tx.to_tag,
            sip_call_id=req.call_id,
            contact=self._contact(number, tx.source.kind),
            server_tx=tx,
            invite=req,
            remote_sdp=_sdp_body(req),
        )
        call.a = a
        try:
            a.dialog = Dialog.from_uas(req, tx.to_tag, contact=a.contact)
        except ValueError:
            tx.respond(400, headers=[server])
            return
        self.stats["calls"] += 1
        self.calls[call.id] = call
        self.tenant_calls[tenant.schema] = self.tenant_calls.get(tenant.schema, 0) + 1
        self.legs[(a.sip_call_id, a.local_tag)] = a
        tx.on_cancel = lambda _tx: self._caller_cancelled(call)
        self._emit(
            call,
            "call.started",
            direction="internal",
            caller=caller.caller_id_number,
            caller_name=caller.caller_id_name,
            callee=number,
        )
        self._mirror(call)

        await self._route(call, number)

    # --- routing and forwarding ----------------------------------------------------------
    async def _route(self, call: Call, number: str) -> None:
        """Ring extension ``number`` for ``call``, applying its forwarding rules.

        - forward always: straight on to the target, the extension does not ring;
        - DND counts as busy: the busy target if there is one (as PortSIP sends a DND
          extension's calls to its forward/voicemail), else 486;
        - no phone registered: the no-answer target if there is one (the extension cannot
          answer), else 480;
        - otherwise its phones ring; busy (486/600/603 from every phone) and no answer within
          its ``no_answer_timeout`` go on to the busy and no-answer targets (see
          :meth:`_forks_failed` and :meth:`_no_answer`).

        A forward to an extension this call already rang (A->B->A), or beyond
        ``max_forward_hops`` steps or the caller's Max-Forwards, is not followed: the call is
        handled where it is, as if that forward were off.
        """
        if call.state == "ended":
            return  # the caller gave up before the forward was taken
        tenant = call.tenant
        call.target = number
        call.visited.append(number)
        call.statuses = []
        ext = tenant.extensions.get(number)
        if ext is None or not ext.enabled:
            if call.hops:
                # Targets outside the tenant's extensions need trunks, which the engine does
                # not have yet: the caller hears "unavailable", the admin reads why.
                log.warning(
                    "call %s: forward target %r of tenant %s is not an extension",
                    call.id,
                    number,
                    tenant.schema,
                )
                self._fail(call, 480, reason=f"forward target {number} not found")
            else:
                self._fail(call, 404)
            return
        if ext.forward_always and self._forward(call, ext, "always", ext.forward_always):
            return
        if ext.dnd:
            if not (ext.forward_busy and self._forward(call, ext, "busy", ext.forward_busy)):
                self._fail(call, 486)
            return
        bindings = await self.pbx.locations.lookup(tenant.domain, number)
        if call.state == "ended":
            return  # the caller gave up meanwhile
        if not bindings:
            target = ext.forward_no_answer
            if not (target and self._forward(call, ext, "unavailable", target)):
                self._fail(call, 480)
            return
        a = call.a
        assert a is not None
        if not call.offer:
            call.offer = a.remote_sdp
        if (
            not call.anchored
            and call.offer
            and self.media is not None
            and self._needs_anchor(call, a.target.host, a.remote_sdp, bindings)
        ):
            try:
                call.offer = await self.media.offer(a.remote_sdp, call.media_id, a.local_tag)
                call.anchored = True
            except MediaError as exc:
                log.warning("rtpengine offer failed, media goes direct: %s", exc)
            if call.state == "ended":
                return  # cancelled while we waited for rtpengine
        call.state = "ringing"
        for binding in bindings:
            self._fork(call, binding, call.offer)
        timeout = ext.no_answer_timeout or self.config.no_answer_timeout
        call.timer = asyncio.get_running_loop().call_later(timeout, self._no_answer, call)

    def _forward(self, call: Call, ext: ExtensionSnapshot, reason: str, target: str) -> bool:
        """Send ``call`` on from ``ext`` to extension ``target``; False when that would loop
        or take too many steps (the caller then goes on as if the forward were off)."""
        if target in call.visited:
            log.info("call %s: forward %s -> %s would loop; not followed", call.id, ext.number,
                     target)  # fmt: skip
            return False
        if call.hops >= self.config.max_forward_hops or call.hops >= call.max_forwards:
            log.info("call %s: forwarding stops after %d steps", call.id, call.hops)
            return False
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.hops += 1
        call.segment += 1
        call.segment_kind = "forward"
        call.diversions.insert(
            0,
            f"<{SipURI(call.tenant.domain, user=ext.number)}>;reason={DIVERSION_REASONS[reason]}"
            f";counter={call.hops}",
        )
        self._emit(
            call,
            "call.forwarded",
            reason=reason,
            callee=target,
            **{"from": ext.number, "to": target},
        )
        self._spawn(self._route(call, target))
        return True

    def _fork(self, call: Call, binding: Binding, offer: bytes) -> Leg:
        target, _flow = self.pbx.locations.target_for(binding)
        tenant = call.tenant
        caller = call.caller
        leg = Leg(
            call=call,
            name=call.next_leg_name(),
            user=call.target,
            target=target,
            local_tag=new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=self._contact(caller.caller_id_number, target.kind),
        )
        leg.invite = self._new_invite(
            leg, binding.contact, caller.caller_id_number, caller.caller_id_name, tenant, offer
        )
        hops_left = call.max_forwards - call.hops
        leg.invite.set("Max-Forwards", str(max(hops_left, 0)))
        for diversion in call.diversions:
            leg.invite.add("Diversion", diversion)
        call.forks.append(leg)
        self.legs[(leg.sip_call_id, leg.local_tag)] = leg
        leg.client_tx = self._send(
            leg, leg.invite, on_response=lambda resp: self._fork_response(leg, resp)
        )
        return leg

    def _new_invite(
        self,
        leg: Leg,
        contact: str,
        from_number: str,
        from_name: str,
        tenant: TenantSnapshot,
        offer: bytes,
    ) -> Request:
        uri = parse_address(contact).uri if contact.startswith("<") else parse_uri(contact)
        # Built as an Address: the name is quoted and escaped, the number %-escaped (RFC 3261
        # 25.1), so snapshot text can never add a header line (header injection).
        identity = Address(SipURI(tenant.domain, user=from_number), from_name or None)
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
        body = self._sdp_for(leg, offer)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        return Request("INVITE", uri, headers, body)

    # --- responses to our INVITEs --------------------------------------------------------
    def _fork_response(self, leg: Leg, resp: Response) -> None:
        call = leg.call
        status = resp.status
        if status < 200:
            if status == 100:
                return
            leg.provisional = True
            if call.state != "ringing" or call.b is not None:
                return
            a = call.a
            assert a is not None
            assert a.server_tx is not None
            if status in (180, 183):
                first = not any(f.provisional for f in call.forks if f is not leg)
                sdp = _sdp_body(resp)
                if sdp and status == 183:
                    self._spawn(self._relay_early(call, leg, resp, sdp))
                else:
                    a.server_tx.respond(
                        180, headers=[("Contact", a.contact), self._server(call.tenant)]
                    )
                if first:
                    self._emit(call, "call.ringing", leg=leg.name, callee=call.target)
            return
        if status < 300:
            self._spawn(self._fork_answered(leg, resp))
            return
        # a fork failed
        cancelled = leg.gone
        leg.gone = True
        if leg in call.forks:
            call.forks.remove(leg)
        self.legs.pop((leg.sip_call_id, leg.local_tag), None)
        if cancelled:
            return  # we CANCELled it (answered elsewhere, no answer, forwarded): no verdict
        call.statuses.append(status)
        if call.state == "ringing" and not call.forks and call.b is None:
            self._forks_failed(call)

    def _forks_failed(self, call: Call) -> None:
        """Every phone of the extension being rung refused: forward or give up."""
        code = self._best_status(call.statuses)
        ext = call.tenant.extensions.get(call.target)
        if ext is not None:
            if code in BUSY_CODES:
                reason, target = "busy", ext.forward_busy
            elif code in (408, 480):
                reason, target = "no_answer", ext.forward_no_answer
            else:
                reason, target = "", ""
            if target and self._forward(call, ext, reason, target):
                return
        self._fail(call, code)

    @staticmethod
    def _best_status(statuses: list[int]) -> int:
        # RFC 3261 16.7: 6xx first, then busy (the callee is there but cannot take it), then
        # the lowest class.
        if any(s >= 600 for s in statuses):
            return min(s for s in statuses if s >= 600)
        if 486 in statuses:
            return 486
        return min(statuses) if statuses else 480

    async def _relay_early(self, call: Call, leg: Leg, resp: Response, sdp: bytes) -> None:
        a = call.a
        assert a is not None
        assert a.server_tx is not None
        if call.anchored and self.media is not None:
            with contextlib.suppress(MediaError):
                sdp = await self.media.answer(sdp, call.media_id, a.local_tag, resp.from_.tag or "")
        a.server_tx.respond(
            183,
            headers=[
                ("Contact", a.contact),
                self._server(call.tenant),
                ("Content-Type", "application/sdp"),
            ],
            body=self._sdp_for(a, sdp),
        )

    async def _fork_answered(self, leg: Leg, resp: Response) -> None:
        call = leg.call
        assert leg.invite is not None
        try:
            leg.dialog = Dialog.from_uac(leg.invite, resp)
        except ValueError:
            leg.dialog = None
        if leg.dialog is None:
            return
        leg.dialog.contact = leg.contact
        leg.ack = leg.dialog.ack_for_2xx(leg.invite.cseq.seq)
        await self._send_ack(leg, leg.ack)
        leg.remote_sdp = _sdp_body(resp)
        if call.b is not None or call.state != "ringing":
            # Another fork won (or the caller left): this one answered too late.
            self._bye(leg)
            return
        call.b = leg
        if call.timer is not None:
            call.timer.cancel()
        for other in list(call.forks):
            if other is not leg:
                self._cancel_fork(other, answered_elsewhere=True)
        call.forks = [leg]
        call.state = "answered"
        call.answered_at = time.time()
        self.stats["answered"] += 1
        a = call.a
        assert a is not None
        assert a.server_tx is not None
        answer = leg.remote_sdp
        if call.anchored and self.media is not None and answer:
            try:
                answer = await self.media.answer(answer, call.media_id, a.local_tag, leg.local_tag)
            except MediaError as exc:
                log.warning("rtpengine answer failed: %s", exc)
        headers = [("Contact", a.contact), self._server(call.tenant)]
        body = self._sdp_for(a, answer)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        if a.server_tx.respond(200, headers=headers, body=body) is None:
            # The caller cancelled at the same moment: hang the answered callee up.
            self._end(call, "cancelled", 487)
            return
        self._emit(call, "call.answered", leg=leg.name, callee=call.target)
        self._mirror(call)

    def _cancel_fork(self, leg: Leg, *, answered_elsewhere: bool = False) -> None:
        leg.gone = True
        self.legs.pop((leg.sip_call_id, leg.local_tag), None)
        if leg.client_tx is not None and leg.client_tx.state in ("calling", "proceeding"):
            assert leg.invite is not None
            cancel = make_cancel(leg.invite)
            if answered_elsewhere:
                # RFC 3326: phones then do not list the call as missed.
                cancel.add("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
            self._send(leg, cancel)

    def _no_answer(self, call: Call) -> None:
        if call.state != "ringing":
            return
        call.timer = None
        for leg in list(call.forks):
            self._cancel_fork(leg)
        call.forks = []
        ext = call.tenant.extensions.get(call.target)
        target = ext.forward_no_answer if ext is not None else ""
        if ext is not None and target and self._forward(call, ext, "no_answer", target):
            return
        self._fail(call, 480, status="no_answer", reason="no answer")

    def _caller_cancelled(self, call: Call) -> None:
        if call.state == "answered":
            return
        for leg in list(call.forks):
            self._cancel_fork(leg)
        call.forks = []
        call.end_status = "cancelled"
        self._finish(call, "cancelled", "caller cancelled")

    def _fail(self, call: Call, code: int, *, status: str = "", reason: str = "") -> None:
        a = call.a
        if a is not None and a.server_tx is not None:
            a.server_tx.respond(code, headers=[self._server(call.tenant)])
        self.stats["failed"] += 1
        self._finish(call, status or _status_for(code), reason or str(code))

    def _finish(self, call: Call, status: str, reason: str) -> None:
        if call.state == "ended":
            return
        if call.timer is not None:
            call.timer.cancel()
        call.state = "ended"
        for leg in (call.a, call.b, *call.forks):
            if leg is not None:
                self.legs.pop((leg.sip_call_id, leg.local_tag), None)
        if self.calls.pop(call.id, None) is not None:
            left = self.tenant_calls.get(call.tenant.schema, 1) - 1
            if left > 0:
                self.tenant_calls[call.tenant.schema] = left
            else:
                self.tenant_calls.pop(call.tenant.schema, None)
        if call.anchored and self.media is not None:
            self._spawn(self._media_delete(call.media_id))
        self._emit(call, "call.ended", status=status, reason=reason)
        self._mirror(call)
        # Break the call <-> legs cycles once its last transactions are over (Timers H, J, M:
        # 64*T1), so reference counting frees it. Left to the cycle collector, which the
        # engine tunes to run full collections rarely (app.tune_gc), every call was kept.
        linger = 64 * self.tl.timers.t1 + 1.0
        asyncio.get_running_loop().call_later(linger, _release, call)

    async def _media_delete(self, call_id: str) -> None:
        with contextlib.suppress(MediaError):
            assert self.media is not None
            await self.media.delete(call_id)

    def _end(self, call: Call, reason: str, code: int = 487) -> None:
        """End a call from our side (API hang-up, shutdown): BYE the answered legs, or
        CANCEL the forks and answer the caller."""
        if call.state == "ended":
            return
        if call.state == "answered":
            for leg in call.legs():
                self._bye(leg)
            self._finish(call, "answered", reason)
            return
        for leg in list(call.forks):
            self._cancel_fork(leg)
        call.forks = []
        self._fail(call, code, status="cancelled", reason=reason)

    def _bye(self, leg: Leg) -> None:
        if leg.gone or leg.dialog is None:
            return
        leg.gone = True
        self._send(leg, leg.dialog.bye())

    # --- in-dialog requests --------------------------------------------------------------
    def _leg_for(self, tx: ServerTransaction) -> Leg | None:
        req = tx.request
        leg = self.legs.get((req.call_id, req.to.tag or ""))
        if leg is None or leg.dialog is None or leg.gone:
            tx.respond(481, headers=[self._server()])
            return None
        if not leg.dialog.receive_request(req):
            tx.respond(500, headers=[self._server(leg.call.tenant)])
            return None
        return leg

    async def on_bye(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is None:
            return
        tx.respond(200, headers=[self._server(leg.call.tenant)])
        leg.gone = True
        call = leg.call
        peer = call.peer(leg)
        if peer is not None:
            self._bye(peer)
        self._finish(call, "answered", "bye " + ("caller" if leg is call.a else "callee"))

    async def _in_dialog_offer(self, tx: ServerTransaction) -> None:
        """re-INVITE or UPDATE (hold, unhold, codec change): re-offer on the other leg and
        answer with its answer."""
        leg = self._leg_for(tx)
        if leg is None:
            return
        call = leg.call
        peer = call.peer(leg)
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[self._server(leg.call.tenant)])
            return
        if peer.busy:
            tx.respond(491, headers=[self._server(leg.call.tenant)])
            return
        method = tx.request.method
        sdp = _sdp_body(tx.request)
        if sdp:
            leg.remote_sdp = sdp
        if call.anchored and self.media is not None and sdp:
            with contextlib.suppress(MediaError):
                sdp = await self.media.offer(sdp, call.media_id, leg.local_tag)
        headers: list[tuple[str, str]] = []
        body = self._sdp_for(peer, sdp)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        out = peer.dialog.create_request(method, headers=headers, body=body)
        peer.busy = True
        try:
            resp = await self._send(peer, out).future
        finally:
            peer.busy = False
        if method == "INVITE" and 200 <= resp.status < 300:
            peer.dialog.refresh_target(resp)
            await self._send_ack(peer, peer.dialog.ack_for_2xx(out.cseq.seq))
        if resp.status >= 300:
            tx.respond(resp.status, headers=[self._server(leg.call.tenant)])
            return
        answer = _sdp_body(resp)
        if answer:
            peer.remote_sdp = answer
        if call.anchored and self.media is not None and answer:
            with contextlib.suppress(MediaError):
                answer = await self.media.answer(
                    answer, call.media_id, leg.local_tag, peer.local_tag
                )
        rh = [("Contact", leg.contact), self._server(leg.call.tenant)]
        rbody = self._sdp_for(leg, answer)
        if rbody:
            rh.append(("Content-Type", "application/sdp"))
        tx.respond(resp.status, headers=rh, body=rbody)

    async def on_update(self, tx: ServerTransaction) -> None:
        await self._in_dialog_offer(tx)

    async def on_info(self, tx: ServerTransaction) -> None:
        """INFO (SIP INFO DTMF, picture updates...) goes to the other party as it came."""
        leg = self._leg_for(tx)
        if leg is None:
            return
        peer = leg.call.peer(leg)
        if peer is None or peer.dialog is None or peer.gone:
            tx.respond(481, headers=[self._server(leg.call.tenant)])
            return
        req = tx.request
        headers = [(n, v) for n, v in req.headers if n in ("Content-Type", "Info-Package")]
        out = peer.dialog.create_request("INFO", headers=headers, body=req.body)
        resp = await self._send(peer, out).future
        tx.respond(resp.status, headers=[self._server(leg.call.tenant)])

    def on_ack(self, ack: Request, source: Source) -> None:
        """ACKs for our 2xx need nothing more: the server transaction already stopped
        retransmitting it."""

    def on_stray_response(self, resp: Response, source: Source) -> None:
        """A response matching no client transaction (RFC 3261 17.1.3, 18.1.2: discard it),
        except a retransmitted 2xx to an INVITE of a leg we hold: our ACK was lost, send it
        again. Nothing else is answered: an ACK and a BYE to whoever sent a stray 200 would
        make the engine a reflector for spoofed sources."""
        if resp.cseq.method != "INVITE" or not 200 <= resp.status < 300:
            return
        leg = self.legs.get((resp.call_id, resp.from_.tag or ""))
        if leg is None or leg.ack is None or leg.dialog is None:
            return
        if leg.dialog.remote_tag == resp.to.tag:
            self._spawn(self._send_ack(leg, leg.ack))

    # --- transfers -----------------------------------------------------------------------
    async def on_refer(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is None:
            return
        call = leg.call
        transferee = call.peer(leg)
        refer_to = tx.request.get("Refer-To")
        if transferee is None or call.state != "answered" or not refer_to:
            tx.respond(400 if not refer_to else 603, headers=[self._server(leg.call.tenant)])
            return
        try:
            addr = parse_address(refer_to)
        except ValueError:
            tx.respond(400, headers=[self._server(leg.call.tenant)])
            return
        uri = addr.uri
        if not isinstance(uri, SipURI) or not uri.user:
            tx.respond(400, headers=[self._server(leg.call.tenant)])
            return
        tx.respond(202, headers=[("Contact", leg.contact), self._server(leg.call.tenant)])
        # URI headers are stored unescaped: Replaces reads "call-id;to-tag=..;from-tag=..".
        replaces = next((v for k, v in uri.headers.items() if k.lower() == "replaces"), None)
        await self._notify(leg, "SIP/2.0 100 Trying", active=True)
        if replaces:
            await self._attended(call, leg, transferee, replaces)
        else:
            await self._blind(call, leg, transferee, unquote(uri.user))

    async def _notify(self, leg: Leg, frag: str, *, active: bool) -> None:
        if leg.dialog is None:
            return
        state = "active;expires=60" if active else "terminated;reason=noresource"
        req = leg.dialog.create_request(
            "NOTIFY",
            headers=[
                ("Event", "refer"),
                ("Subscription-State", state),
                ("Content-Type", "message/sipfrag;version=2.0"),
            ],
            body=(frag + "\r\n").encode(),
        )
        with contextlib.suppress(Exception):
            await self._send(leg, req).future

    async def _blind(self, call: Call, transferor: Leg, transferee: Leg, number: str) -> None:
        """A new leg from us to ``number``; once it answers, the transferee is re-offered its
        media and the transferor is let go."""
        tenant = call.tenant
        ext = tenant.extensions.get(number)
        bindings = (
            await self.pbx.locations.lookup(tenant.domain, number)
            if ext is not None and ext.enabled and not ext.dnd
            else []
        )
        if not bindings:
            code = 486 if ext is not None and ext.dnd else 404 if ext is None else 480
            await self._notify(transferor, f"SIP/2.0 {code} Unavailable", active=False)
            return
        caller = tenant.extensions.get(transferee.user) or call.caller
        target, _flow = self.pbx.locations.target_for(bindings[0])
        new = Leg(
            call=call,
            name=f"t{call.segment + 1}",
            user=number,
            target=target,
            local_tag=new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=self._contact(caller.caller_id_number, target.kind),
        )
        offer = _sendrecv(transferee.remote_sdp)
        # An anchored call stays anchored: the transferee and the new party are a new pairing
        # in rtpengine (its own call-id), offered the transferee's SDP and answered with the
        # new party's, so neither phone is ever given the other's address.
        media_id = f"{call.id}-{call.segment + 1}" if call.anchored and self.media else ""
        if media_id:
            offer = await self._media_offer(offer, media_id, transferee.local_tag)
            if offer is None:
                await self._notify(transferor, "SIP/2.0 503 Service Unavailable", active=False)
                return
        new.invite = self._new_invite(
            new, bindings[0].contact, caller.caller_id_number, caller.caller_id_name, tenant, offer
        )
        self.legs[(new.sip_call_id, new.local_tag)] = new
        new.client_tx = self._send(new, new.invite)
        resp = await new.client_tx.future
        if resp.status >= 300 or call.state == "ended":
            self.legs.pop((new.sip_call_id, new.local_tag), None)
            if media_id:
                self._spawn(self._media_delete(media_id))
            await self._notify(transferor, f"SIP/2.0 {resp.status} {resp.reason}", active=False)
            return
        new.dialog = Dialog.from_uac(new.invite, resp)
        new.dialog.contact = new.contact
        new.ack = new.dialog.ack_for_2xx(new.invite.cseq.seq)
        await self._send_ack(new, new.ack)
        new.remote_sdp = _sdp_body(resp)
        answer = new.remote_sdp
        if media_id and answer:
            assert self.media is not None
            try:
                answer = await self.media.answer(
                    answer, media_id, transferee.local_tag, new.local_tag
                )
            except MediaError as exc:
                log.warning("rtpengine answer for a transfer failed: %s", exc)
        await self._notify(transferor, "SIP/2.0 200 OK", active=False)
        self._swap(call, transferor, transferee, new, kind="blind")
        old_media = self._switch_media(call, media_id)
        await self._reoffer(transferee, answer)
        if old_media:
            self._spawn(self._media_delete(old_media))

    async def _media_offer(self, sdp: bytes, media_id: str, from_tag: str) -> bytes | None:
        assert self.media is not None
        try:
            return await self.media.offer(sdp, media_id, from_tag)
        except MediaError as exc:
            log.warning("rtpengine offer for a transfer failed: %s", exc)
            return None

    def _switch_media(self, call: Call, media_id: str) -> str:
        """Make ``media_id`` the call's rtpengine session; returns the one it replaces (to
        delete once the phones have moved), or "" when nothing changes."""
        if not media_id or media_id == call.media_id:
            return ""
        old = call.media_id if call.anchored else ""
        call.media_id = media_id
        call.anchored = True
        return old

    def _swap(self, call: Call, gone: Leg, stays: Leg, new: Leg, *, kind: str) -> None:
        """The transferor's leg leaves, ``new`` takes its place opposite ``stays``."""
        self._bye(gone)
        self.legs.pop((gone.sip_call_id, gone.local_tag), None)
        if call.a is gone:
            call.a = new
        else:
            call.b = new
        new.call = call
        call.segment += 1
        call.segment_kind = kind
        self._emit(
            call,
            "call.transferred",
            kind=kind,
            **{"from": stays.user, "to": new.user},
        )
        self._emit(call, "call.answered", leg=new.name)
        call.callee = call.target = new.user
        self._mirror(call)

    async def _reoffer(self, leg: Leg, sdp: bytes) -> None:
        """Send ``sdp`` to ``leg`` in a re-INVITE (its media now goes to someone else)."""
        if leg.dialog is None or not sdp:
            return
        out = leg.dialog.reinvite(self._sdp_for(leg, _sendrecv(sdp)))
        leg.busy = True
        try:
            resp = await self._send(leg, out).future
        finally:
            leg.busy = False
        if 200 <= resp.status < 300:
            await self._send_ack(leg, leg.dialog.ack_for_2xx(out.cseq.seq))
            answer = _sdp_body(resp)
            if answer:
                leg.remote_sdp = answer

    async def _attended(self, call: Call, transferor: Leg, transferee: Leg, replaces: str) -> None:
        """Refer-To names (through Replaces) the transferor's dialog of its consultation call:
        join the transferee with the consultation call's other party."""
        parts = replaces.split(";")
        params = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        other_leg = self.legs.get((parts[0], params.get("to-tag", "")))
        if other_leg is None:
            other_leg = self.legs.get((parts[0], params.get("from-tag", "")))
        if (
            other_leg is None
            or other_leg.call is call
            or other_leg.call.tenant.schema != call.tenant.schema
        ):
            await self._notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
        consult = other_leg.call
        target = consult.peer(other_leg)
        if target is None or consult.state != "answered":
            await self._notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
        # Anchored if either call was: a new rtpengine pairing of transferee and target, set
        # up before anything changes (if rtpengine fails, nothing has).
        to_transferee, to_target = target.remote_sdp, b""
        media_id = ""
        if (call.anchored or consult.anchored) and self.media is not None:
            media_id = f"{call.id}-{call.segment + 1}"
            offer = await self._media_offer(
                _sendrecv(transferee.remote_sdp), media_id, transferee.local_tag
            )
            try:
                if offer is None:
                    raise MediaError("offer failed")
                to_transferee = await self.media.answer(
                    _sendrecv(target.remote_sdp), media_id, transferee.local_tag, target.local_tag
                )
                to_target = offer
            except MediaError as exc:
                log.warning("attended transfer: media not anchored: %s", exc)
                media_id, to_transferee = "", target.remote_sdp
        # The consultation call ends; its far party moves into this call.
        if consult.a is target:
            consult.a = None
        else:
            consult.b = None
        self.legs.pop((target.sip_call_id, target.local_tag), None)
        self._bye(other_leg)
        self._finish(consult, "answered", "attended transfer")
        self.legs[(target.sip_call_id, target.local_tag)] = target
        await self._notify(transferor, "SIP/2.0 200 OK", active=False)
        self._swap(call, transferor, transferee, target, kind="attended")
        old_media = self._switch_media(call, media_id)
        # One after the other: the transferee's fresh answer is what the target is offered
        # (anchored: rtpengine's side of the pairing, set up above).
        await self._reoffer(transferee, to_transferee)
        await self._reoffer(target, to_target or transferee.remote_sdp)
        if old_media:
            self._spawn(self._media_delete(old_media))

    async def on_notify(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is not None:
            tx.respond(200, headers=[self._server(leg.call.tenant)])

    # --- control channel -----------------------------------------------------------------
    async def _listen_control(self) -> None:
        channel = self._prefix + CONTROL_CHANNEL
        while True:
            pubsub = self.pbx.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        self._control_message(msg.get("data"))
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                log.warning("control channel lost (%s), resubscribing", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1.0)

    def _control_message(self, data: Any) -> None:
        cmd = ControlMessage.from_json(data)
        if isinstance(cmd, CheckSync):
            self._spawn(self._notify_aor(cmd))
        elif isinstance(cmd, HangUpCall):
            call = self.calls.get(cmd.call_id)
            # The schema must match: a command can only ever end a call of its own tenant.
            if call is not None and call.tenant.schema == cmd.schema:
                self._end(call, "api hangup", 487)

    async def _notify_aor(self, cmd: CheckSync) -> int:
        """A check-sync command (from provisioning): an out-of-dialog NOTIFY
        (``Event: check-sync;reboot=true|false``, ``Subscription-State: terminated``) to every
        contact registered for ``user@domain``, over the flow it registered on. Only a served
        domain's users are reached; a connection held by another engine is left to that
        engine. Returns how many NOTIFYs went out."""
        domain, user = cmd.domain, cmd.user
        tenant = self.pbx.directory.tenant(domain)
        if tenant is None or user not in tenant.extensions:
            log.info("control: ignoring check-sync for %r@%r", user, domain)
            return 0
        reboot = "true" if cmd.reboot else "false"
        locations = self.pbx.locations
        sent = 0
        for binding in await locations.lookup(tenant.domain, user):
            target, flow = locations.target_for(binding)
            if binding.flow and flow is None and binding.engine != locations.engine_id:
                # Its connection is held by another engine, which notifies it. (UDP bindings
                # are sent to from any engine: after a restart no engine "holds" them.)
                continue
            try:
                uri = (
                    parse_address(binding.contact).uri
                    if binding.contact.startswith("<")
                    else parse_uri(binding.contact)
                )
            except ValueError:
                continue
            host, port = self.pbx.engine.transport.via_for(target.kind)
            t = "" if target.kind.upper() == "UDP" else f";transport={target.kind.lower()}"
            req = Request(
                "NOTIFY",
                uri,
                [
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:{user}@{tenant.domain}>;tag={new_tag()}"),
                    ("To", f"<sip:{user}@{tenant.domain}>"),
                    ("Call-ID", secrets.token_hex(12) + "@pbx"),
                    ("CSeq", "1 NOTIFY"),
                    ("Contact", f"<sip:{user}@{host}:{port}{t}>"),
                    ("Event", f"check-sync;reboot={reboot}"),
                    ("Subscription-State", "terminated"),
                    ("User-Agent", self._product(tenant)),
                ],
            )
            tx = self.tl.send_request(req, target)
            tx.future.add_done_callback(_notify_result(binding.contact))
            sent += 1
        log.info("check-sync (reboot=%s) sent to %d contacts of %s@%s", reboot, sent, user,
                 domain)  # fmt: skip
        return sent


def _notify_result(contact: str) -> Callable[[asyncio.Future[Response]], None]:
    def done(fut: asyncio.Future[Response]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().status >= 300:
            log.info("check-sync NOTIFY to %s answered %d", contact, fut.result().status)

    return done


def _nobody(_user: str) -> None:
    return None
