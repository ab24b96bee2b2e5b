"""Calls between extensions of one tenant, as a back-to-back user agent.

Every call is two dialogs we own, linked: the caller's (A leg, we are its UAS) and the callee's
(B leg, we are its UAC; one per registered contact while forking, the first answer wins and
the other forks are CANCELled). Requests inside one dialog are re-issued in the other (re-INVITE
and UPDATE for hold, INFO), never proxied, so each side only ever sees our Call-ID, tags,
Contact and SDP origin.

Also here: 407 digest challenge for the caller, caller ID from the calling extension, DND (486),
no registration (480), a no-answer timer, BYE/CANCEL from either side, blind transfer (REFER:
a new leg from us to the target, NOTIFY sipfrag progress to the transferor) and attended
transfer (REFER with Replaces naming the transferor's other call: the two remote parties are
joined). Media passes through unchanged, or through rtpengine (``media.RtpEngine``) when either
side is behind NAT or the tenant asks for it.

Side effects for the rest of the platform, all non-blocking: call events on the event stream
(``call.started|ringing|answered|transferred|ended``, the CDR consumer's input), the calls in
progress mirrored in Redis hash ``sip:calls:<schema>``, and commands from channel
``sip:control`` (``{"op": "hangup", "schema", "call_id"}``) from the REST API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from .dialog import Dialog
from .directory import ExtensionSnapshot, TenantSnapshot
from .media import MediaError, RtpEngine, connection_address
from .message import Request, Response, SipURI, parse_address, parse_uri
from .registrar import Binding
from .transaction import ClientTransaction, ServerTransaction, make_cancel, new_tag
from .transport import Source, Target

if TYPE_CHECKING:
    from .app import PbxEngine

__all__ = ["B2BUA", "B2buaConfig", "Call", "Leg"]

log = logging.getLogger(__name__)

CALLS_KEY = "sip:calls:{schema}"
CONTROL_CHANNEL = "sip:control"


@dataclass(slots=True)
class B2buaConfig:
    """Call-layer settings (every value comes from settings/environment upstream)."""

    no_answer_timeout: float = 30.0
    rtpengine: tuple[str, int] | None = None  # ng address; None: media always direct
    anchor_all: bool = False  # anchor every call (otherwise: NAT or the tenant's anchor_media)
    mirror_calls: bool = True  # keep sip:calls:<schema> current for the API

    @classmethod
    def from_env(cls) -> B2buaConfig:
        """``PBX_RTPENGINE_NG`` (host:port), ``PBX_NO_ANSWER_TIMEOUT``, ``PBX_ANCHOR_ALL``."""
        ng = os.environ.get("PBX_RTPENGINE_NG", "")
        host, _, port = ng.rpartition(":")
        return cls(
            no_answer_timeout=float(os.environ.get("PBX_NO_ANSWER_TIMEOUT", "30")),
            rtpengine=(host or "127.0.0.1", int(port)) if port.isdigit() else None,
            anchor_all=os.environ.get("PBX_ANCHOR_ALL", "") in ("1", "true", "yes"),
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

    def peer(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        if leg is self.b:
            return self.a
        return None

    def legs(self) -> list[Leg]:
        return [leg for leg in (self.a, self.b) if leg is not None]


def _sdp_body(msg: Request | Response) -> bytes:
    ct = (msg.content_type or "").lower()
    return msg.body if msg.body and "application/sdp" in ct else b""


def _sendrecv(sdp: bytes) -> bytes:
    """The SDP with every direction attribute back to sendrecv: a transfer joins parties that
    were on hold (their last SDP says recvonly/sendonly) into a live conversation."""
    for d in (b"a=sendonly", b"a=recvonly", b"a=inactive"):
        sdp = sdp.replace(d, b"a=sendrecv")
    return sdp


def _user_of(value: str) -> str:
    try:
        uri = parse_uri(value)
    except ValueError:
        return ""
    return uri.user or "" if isinstance(uri, SipURI) else ""


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
        self.config = config or B2buaConfig.from_env()
        self.tl = pbx.engine.transactions
        self.calls: dict[str, Call] = {}
        self.legs: dict[tuple[str, str], Leg] = {}  # (SIP Call-ID, our tag) -> leg
        self.media: RtpEngine | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._control: asyncio.Task[None] | None = None
        self.stats = {"calls": 0, "answered": 0, "failed": 0}
        self._mirror_pending: dict[tuple[str, str], str | None] = {}
        self._mirror_task: asyncio.Future[None] | None = None
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

    def _contact(self, user: str, kind: str) -> str:
        host, port = self.pbx.engine.transport.via_for(kind)
        t = "" if kind.upper() == "UDP" else f";transport={kind.lower()}"
        return f"<sip:{user}@{host}:{port}{t}>"

    def _server(self) -> tuple[str, str]:
        return ("Server", self.pbx.config.engine.product)

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
                    "started_at": call.started_at,
                    "answered_at": call.answered_at,
                    "legs": [leg.info() for leg in call.legs()],
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
        self, call: Call, source: Source, sdp: bytes, bindings: list[Binding]
    ) -> bool:
        if self.media is None:
            return False
        if self.config.anchor_all or call.tenant.anchor_media:
            return True
        # NAT: the SDP address is not where the packets come from, or the phone registered
        # from another address than its Contact says.
        if sdp and connection_address(sdp) not in (source.remote[0], None):
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
        result = self.pbx.auth.verify(req, realm, lookup, proxy=True)
        if not result.ok:
            if result.failed:
                self.pbx.guard.auth_failed(tx.source.remote[0])
            challenge = self.pbx.auth.challenge(realm, proxy=True, stale=result.stale)
            tx.respond(407, headers=[self._server(), *challenge])
            return
        caller = result.extension
        assert tenant is not None
        assert caller is not None
        if not tenant.active or not caller.enabled:
            tx.respond(403, headers=[self._server()])
            return
        if ruri.host.lower() != tenant.domain and self.pbx.directory.tenant(ruri.host):
            tx.respond(404, headers=[self._server()])  # another tenant: as if it did not exist
            return
        tx.respond(100)
        number = unquote(ruri.user)
        call = Call(id=secrets.token_hex(12), tenant=tenant, caller=caller, callee=number)
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
            tx.respond(400, headers=[self._server()])
            return
        self.stats["calls"] += 1
        self.calls[call.id] = call
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

        ext = tenant.extensions.get(number)
        if ext is None or not ext.enabled:
            self._fail(call, 404)
            return
        if ext.dnd:
            self._fail(call, 486)
            return
        bindings = await self.pbx.locations.lookup(tenant.domain, number)
        if not bindings:
            self._fail(call, 480)
            return
        offer = a.remote_sdp
        if self._needs_anchor(call, tx.source, offer, bindings) and offer and self.media:
            try:
                offer = await self.media.offer(offer, call.id, a.local_tag)
                call.anchored = True
            except MediaError as exc:
                log.warning("rtpengine offer failed, media goes direct: %s", exc)
        if call.state == "ended":
            return  # cancelled while we waited for rtpengine
        call.state = "ringing"
        for n, binding in enumerate(bindings, start=1):
            self._fork(call, binding, n, offer)
        call.timer = asyncio.get_running_loop().call_later(
            self.config.no_answer_timeout, self._no_answer, call
        )

    def _fork(self, call: Call, binding: Binding, n: int, offer: bytes) -> Leg:
        target, _flow = self.pbx.locations.target_for(binding)
        tenant = call.tenant
        caller = call.caller
        leg = Leg(
            call=call,
            name=f"b{n}",
            user=call.callee,
            target=target,
            local_tag=new_tag(),
            sip_call_id=secrets.token_hex(12) + "@pbx",
            contact=self._contact(caller.caller_id_number, target.kind),
        )
        leg.invite = self._new_invite(
            leg, binding.contact, caller.caller_id_number, caller.caller_id_name, tenant, offer
        )
        call.forks.append(leg)
        self.legs[(leg.sip_call_id, leg.local_tag)] = leg
        leg.client_tx = self.tl.send_request(
            leg.invite, target, on_response=lambda resp: self._fork_response(leg, resp)
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
        name = from_name.replace('"', "")
        uri = parse_address(contact).uri if contact.startswith("<") else parse_uri(contact)
        from_value = f'"{name}" <sip:{from_number}@{tenant.domain}>;tag={leg.local_tag}'
        headers = [
            ("Max-Forwards", "70"),
            ("From", from_value),
            ("To", f"<sip:{leg.user}@{tenant.domain}>"),
            ("Call-ID", leg.sip_call_id),
            ("CSeq", "1 INVITE"),
            ("Contact", leg.contact),
            ("P-Asserted-Identity", f'"{name}" <sip:{from_number}@{tenant.domain}>'),
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
                    a.server_tx.respond(180, headers=[("Contact", a.contact)])
                if first:
                    self._emit(call, "call.ringing", leg=leg.name)
            return
        if status < 300:
            self._spawn(self._fork_answered(leg, resp))
            return
        # a fork failed
        leg.gone = True
        if leg in call.forks:
            call.forks.remove(leg)
        self.legs.pop((leg.sip_call_id, leg.local_tag), None)
        call.statuses.append(status)
        if call.state == "ringing" and not call.forks and call.b is None:
            self._fail(call, self._best_status(call.statuses))

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
                sdp = await self.media.answer(sdp, call.id, a.local_tag, resp.to.tag or "")
        a.server_tx.respond(
            183,
            headers=[("Contact", a.contact), ("Content-Type", "application/sdp")],
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
        await self.tl.send_stateless(leg.ack, leg.target)
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
                self._cancel_fork(other)
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
                answer = await self.media.answer(answer, call.id, a.local_tag, leg.local_tag)
            except MediaError as exc:
                log.warning("rtpengine answer failed: %s", exc)
        headers = [("Contact", a.contact), self._server()]
        body = self._sdp_for(a, answer)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        if a.server_tx.respond(200, headers=headers, body=body) is None:
            # The caller cancelled at the same moment: hang the answered callee up.
            self._end(call, "cancelled", 487)
            return
        self._emit(call, "call.answered", leg=leg.name, callee=call.callee)
        self._mirror(call)

    def _cancel_fork(self, leg: Leg) -> None:
        leg.gone = True
        self.legs.pop((leg.sip_call_id, leg.local_tag), None)
        if leg.client_tx is not None and leg.client_tx.state in ("calling", "proceeding"):
            assert leg.invite is not None
            cancel = make_cancel(leg.invite)
            cancel.add("Reason", 'SIP;cause=200;text="Call completed elsewhere"')
            self.tl.send_request(cancel, leg.target)

    def _no_answer(self, call: Call) -> None:
        if call.state != "ringing":
            return
        for leg in list(call.forks):
            self._cancel_fork(leg)
        call.forks = []
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
            a.server_tx.respond(code, headers=[self._server()])
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
        self.calls.pop(call.id, None)
        if call.anchored and self.media is not None:
            self._spawn(self._media_delete(call.id))
        self._emit(call, "call.ended", status=status, reason=reason)
        self._mirror(call)

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
        self.tl.send_request(leg.dialog.bye(), leg.target)

    # --- in-dialog requests --------------------------------------------------------------
    def _leg_for(self, tx: ServerTransaction) -> Leg | None:
        req = tx.request
        leg = self.legs.get((req.call_id, req.to.tag or ""))
        if leg is None or leg.dialog is None or leg.gone:
            tx.respond(481, headers=[self._server()])
            return None
        if not leg.dialog.receive_request(req):
            tx.respond(500, headers=[self._server()])
            return None
        return leg

    async def on_bye(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is None:
            return
        tx.respond(200, headers=[self._server()])
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
            tx.respond(481, headers=[self._server()])
            return
        if peer.busy:
            tx.respond(491, headers=[self._server()])
            return
        method = tx.request.method
        sdp = _sdp_body(tx.request)
        if sdp:
            leg.remote_sdp = sdp
        if call.anchored and self.media is not None and sdp:
            with contextlib.suppress(MediaError):
                sdp = await self.media.offer(sdp, call.id, leg.local_tag)
        headers: list[tuple[str, str]] = []
        body = self._sdp_for(peer, sdp)
        if body:
            headers.append(("Content-Type", "application/sdp"))
        out = peer.dialog.create_request(method, headers=headers, body=body)
        peer.busy = True
        try:
            resp = await self.tl.send_request(out, peer.target).future
        finally:
            peer.busy = False
        if method == "INVITE" and 200 <= resp.status < 300:
            peer.dialog.refresh_target(resp)
            await self.tl.send_stateless(peer.dialog.ack_for_2xx(out.cseq.seq), peer.target)
        if resp.status >= 300:
            tx.respond(resp.status, headers=[self._server()])
            return
        answer = _sdp_body(resp)
        if answer:
            peer.remote_sdp = answer
        if call.anchored and self.media is not None and answer:
            with contextlib.suppress(MediaError):
                answer = await self.media.answer(answer, call.id, leg.local_tag, peer.local_tag)
        rh = [("Contact", leg.contact), self._server()]
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
            tx.respond(481, headers=[self._server()])
            return
        req = tx.request
        headers = [(n, v) for n, v in req.headers if n in ("Content-Type", "Info-Package")]
        out = peer.dialog.create_request("INFO", headers=headers, body=req.body)
        resp = await self.tl.send_request(out, peer.target).future
        tx.respond(resp.status, headers=[self._server()])

    def on_ack(self, ack: Request, source: Source) -> None:
        """ACKs for our 2xx need nothing more: the server transaction already stopped
        retransmitting it."""

    def on_stray_response(self, resp: Response, source: Source) -> None:
        """A retransmitted 2xx to one of our INVITEs: our ACK was lost, send it again."""
        if resp.cseq.method != "INVITE" or not 200 <= resp.status < 300:
            return
        leg = self.legs.get((resp.call_id, resp.from_.tag or ""))
        if leg is not None and leg.ack is not None:
            self._spawn(self.tl.send_stateless(leg.ack, leg.target))
        elif leg is None and resp.to.tag:
            # A fork that answered after losing the race and was forgotten: ACK and BYE it.
            self._spawn(self._ack_and_bye(resp, source))

    async def _ack_and_bye(self, resp: Response, source: Source) -> None:
        if not resp.contacts:
            return
        fake = Request(
            "INVITE",
            resp.contacts[0].uri,
            [
                ("From", resp.get("From") or ""),
                ("To", resp.get("To") or ""),
                ("Call-ID", resp.call_id),
                ("CSeq", f"{resp.cseq.seq} INVITE"),
                ("Contact", "<sip:pbx@127.0.0.1>"),
            ],
        )
        dialog = Dialog.from_uac(fake, resp)
        target = Target(source.kind, *source.remote)
        await self.tl.send_stateless(dialog.ack_for_2xx(resp.cseq.seq), target)
        self.tl.send_request(dialog.bye(), target)

    # --- transfers -----------------------------------------------------------------------
    async def on_refer(self, tx: ServerTransaction) -> None:
        leg = self._leg_for(tx)
        if leg is None:
            return
        call = leg.call
        transferee = call.peer(leg)
        refer_to = tx.request.get("Refer-To")
        if transferee is None or call.state != "answered" or not refer_to:
            tx.respond(400 if not refer_to else 603, headers=[self._server()])
            return
        try:
            addr = parse_address(refer_to)
        except ValueError:
            tx.respond(400, headers=[self._server()])
            return
        uri = addr.uri
        if not isinstance(uri, SipURI) or not uri.user:
            tx.respond(400, headers=[self._server()])
            return
        tx.respond(202, headers=[("Contact", leg.contact), self._server()])
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
            await self.tl.send_request(req, leg.target).future

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
        new.invite = self._new_invite(
            new, bindings[0].contact, caller.caller_id_number, caller.caller_id_name, tenant, offer
        )
        self.legs[(new.sip_call_id, new.local_tag)] = new
        new.client_tx = self.tl.send_request(new.invite, target)
        resp = await new.client_tx.future
        if resp.status >= 300 or call.state == "ended":
            self.legs.pop((new.sip_call_id, new.local_tag), None)
            await self._notify(transferor, f"SIP/2.0 {resp.status} {resp.reason}", active=False)
            return
        new.dialog = Dialog.from_uac(new.invite, resp)
        new.dialog.contact = new.contact
        new.ack = new.dialog.ack_for_2xx(new.invite.cseq.seq)
        await self.tl.send_stateless(new.ack, new.target)
        new.remote_sdp = _sdp_body(resp)
        await self._notify(transferor, "SIP/2.0 200 OK", active=False)
        self._swap(call, transferor, transferee, new, kind="blind")
        await self._reoffer(transferee, new.remote_sdp)

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
        self._emit(
            call,
            "call.transferred",
            kind=kind,
            **{"from": stays.user, "to": new.user},
        )
        self._emit(call, "call.answered", leg=new.name)
        call.callee = new.user
        self._mirror(call)

    async def _reoffer(self, leg: Leg, sdp: bytes) -> None:
        """Send ``sdp`` to ``leg`` in a re-INVITE (its media now goes to someone else)."""
        if leg.dialog is None or not sdp:
            return
        out = leg.dialog.reinvite(self._sdp_for(leg, _sendrecv(sdp)))
        leg.busy = True
        try:
            resp = await self.tl.send_request(out, leg.target).future
        finally:
            leg.busy = False
        if 200 <= resp.status < 300:
            await self.tl.send_stateless(leg.dialog.ack_for_2xx(out.cseq.seq), leg.target)
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
        if other_leg is None or other_leg.call is call or other_leg.call.tenant is not call.tenant:
            await self._notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
        consult = other_leg.call
        target = consult.peer(other_leg)
        if target is None or consult.state != "answered":
            await self._notify(transferor, "SIP/2.0 481 Call Does Not Exist", active=False)
            return
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
        # One after the other: the transferee's fresh answer is what the target is offered.
        await self._reoffer(transferee, target.remote_sdp)
        await self._reoffer(target, transferee.remote_sdp)

    async def on_notify(self, tx: ServerTransaction) -> None:
        if self._leg_for(tx) is not None:
            tx.respond(200, headers=[self._server()])

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
        try:
            cmd = json.loads(data)
        except (TypeError, ValueError):
            return
        if not isinstance(cmd, dict) or cmd.get("op") != "hangup":
            return
        call = self.calls.get(str(cmd.get("call_id")))
        # The schema must match: a command can only ever end a call of its own tenant.
        if call is not None and call.tenant.schema == cmd.get("schema"):
            self._end(call, "api hangup", 487)


def _nobody(_user: str) -> None:
    return None
