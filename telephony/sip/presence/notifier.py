"""The notifier side of RFC 6665 as every event package we serve does it: :mod:`.mwi`
(``message-summary``) and :mod:`.dialog` (``dialog`` and ``presence``) build on
:class:`Notifier` and supply only what is theirs: which resource a SUBSCRIBE may watch, the
state a NOTIFY carries and its body, and where (if anywhere) a subscription is stored.

What is the same for all of them, and so lives here once:

- **Authentication.** The subscriber authenticates by digest in its own tenant's domain (the
  From domain; realm = that domain), answered exactly as the registrar answers: the same 401
  for a wrong password, an unknown user or an unknown domain (nothing can be enumerated), 403
  only after the right password (suspended tenant, disabled extension, transport not allowed).
- **Expires** is clamped to ``min_expires..max_expires`` (``default_expires`` when absent);
  0 is a fetch (RFC 6665 4.4.3): one final NOTIFY with the state, no subscription held.
- **In-dialog SUBSCRIBE.** A refresh resets the expiry, refreshes the dialog's target (RFC
  6665 4.1.2.1) and where NOTIFYs go (where it came from: NAT), and is answered with a full
  NOTIFY; ``Expires: 0`` ends it (200, then ``terminated;reason=timeout``), as does expiry
  without refresh. Unknown dialogs, and subscribers whose extension is gone or disabled since,
  are answered 481.
- **NOTIFY.** One NOTIFY is outstanding per subscription; a change meanwhile sends one more
  with the latest state when it completes, and an unchanged state sends nothing. A NOTIFY
  answered with an error (481, 408, a timeout...) ends the subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from telephony.sip.context import EngineContext
from telephony.sip.contract import ExtensionSnapshot, TenantSnapshot
from telephony.sip.dialog import Dialog
from telephony.sip.message import Request, Response, SipURI
from telephony.sip.transaction import ServerTransaction
from telephony.sip.transport import Target

from .subscriptions import Held, SubscriptionTable, TableFull

__all__ = ["Notified", "Notifier", "accepts", "parse_event"]

log = logging.getLogger(__name__)


def parse_event(req: Request) -> tuple[str | None, str | None]:
    """(package, ``id`` parameter) of the Event header, the package lower-cased; (None, None)
    when there is none."""
    raw = req.get("Event")
    if raw is None:
        return None, None
    package, _, params = raw.partition(";")
    event_id = None
    for p in params.split(";"):
        name, _, value = p.partition("=")
        if name.strip().lower() == "id":
            event_id = value.strip() or None
    return package.strip().lower(), event_id


def accepts(req: Request, ours: str) -> bool:
    """False when an Accept header lists types and ours is not among them (RFC 6665 8.3.1)."""
    accept = req.get_all("Accept")
    types = {t.split(";", 1)[0].strip().lower() for v in accept for t in v.split(",")}
    types.discard("")
    return not types or bool(types & {ours, "application/*", "*/*"})


class Notified(Held, Protocol):
    """What the notifier needs of one held subscription (its package's own dataclass), beyond
    what its table needs (:class:`~.subscriptions.Held`: its keys, its expiry timer)."""

    event: str  # the event package, echoed in every NOTIFY
    event_id: str | None  # the Event header's ``id`` parameter, echoed in every NOTIFY
    dialog: Dialog
    domain: str
    contact: str  # the subscriber's Contact URI
    target: Target  # where NOTIFYs go: where the last SUBSCRIBE came from (NAT)
    expires_at: float  # on the notifier's clock
    last: Any  # the state of the last NOTIFY sent
    force: bool  # the next NOTIFY goes out even if the state is the same (a refresh)
    final: str | None  # the next NOTIFY ends it: ``terminated;reason=<final>``
    busy: bool  # a NOTIFY transaction is outstanding (one at a time per dialog)
    again: bool  # something changed while it was: NOTIFY again when it completes
    ended: bool

    @property
    def subscriber(self) -> str: ...  # the extension that subscribed


S = TypeVar("S", bound=Notified)


class Notifier(Generic[S]):
    """The SUBSCRIBE handling and NOTIFY sending shared by the event packages; a package
    subclasses it with its subscription type, its ``table`` and the hooks below."""

    label: ClassVar[str]  # names the package in logs
    table: SubscriptionTable[S]

    def __init__(
        self, ctx: EngineContext, *, min_expires: int, max_expires: int, default_expires: int
    ) -> None:
        self.ctx = ctx
        self.min_expires = min_expires
        self.max_expires = max_expires
        self.default_expires = default_expires
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- what each package supplies ------------------------------------------------------
    def clock(self) -> float:
        """The clock of ``expires_at``."""
        raise NotImplementedError

    def describe(self, sub: S) -> str:
        """``sub`` for the logs."""
        raise NotImplementedError

    def state(self, sub: S) -> Any:
        """The state the next NOTIFY of ``sub`` carries (compared with the last one sent)."""
        raise NotImplementedError

    def content_type(self, sub: S) -> str:
        raise NotImplementedError

    def body(self, sub: S, state: Any) -> bytes:
        """The NOTIFY body for ``state`` (built once per NOTIFY sent)."""
        raise NotImplementedError

    async def _prepare(self, sub: S) -> None:
        """What a new subscription needs read before it is answered (raises: 500)."""

    async def _refreshing(self, sub: S) -> None:
        """What an in-dialog SUBSCRIBE needs read before it is answered (raises: 500)."""

    def _held(self, sub: S) -> None:
        """``sub`` was taken or refreshed (its expiry changed)."""

    def _released(self, sub: S) -> None:
        """``sub`` left the table."""

    def _notified(self, sub: S) -> None:
        """A NOTIFY of ``sub`` was answered with success."""

    # --- names ---------------------------------------------------------------------------
    def server(self, tenant: TenantSnapshot | None = None) -> tuple[str, str]:
        """The tenant's product for its answers; the engine's before authentication."""
        return ("Server", self.ctx.product_for(tenant.domain if tenant is not None else None))

    def contact(self, user: str, kind: str) -> str:
        host, port = self.ctx.engine.transport.via_for(kind)
        t = "" if kind.upper() == "UDP" else f";transport={kind.lower()}"
        return f"<{SipURI(host, user=user, port=port)}{t}>"

    # --- tasks ---------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s task failed", self.label, exc_info=task.exception())

    async def _follow(
        self,
        channels: tuple[str, ...],
        ready: asyncio.Event,
        received: Callable[[str, Any], None],
        subscribed: Callable[[], None] | None = None,
    ) -> None:
        """Hand each message of the Redis ``channels`` to ``received(channel, data)``,
        resubscribing (with a backoff) whenever the connection is lost; ``subscribed`` runs
        each time the subscription is (again) in place, then ``ready`` is set."""
        backoff = 0.1
        while True:
            pubsub = self.ctx.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                if subscribed is not None:
                    subscribed()
                ready.set()
                backoff = 0.1
                async for msg in pubsub.listen():
                    if msg.get("type") != "message":
                        continue
                    channel = msg.get("channel")
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    received(str(channel), msg.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s channels lost (%s), resubscribing", self.label, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # --- SUBSCRIBE -----------------------------------------------------------------------
    def _malformed(self, req: Request) -> str | None:
        """Why a new SUBSCRIBE cannot be understood (the reason phrase of its 400), or None;
        asked before authentication."""
        return None

    def _authenticate(
        self, tx: ServerTransaction
    ) -> tuple[TenantSnapshot, ExtensionSnapshot, tuple[str, str]] | None:
        """(tenant, extension, Server header) of a new SUBSCRIBE's subscriber; None when it
        has been answered."""
        req = tx.request
        frm = req.from_.uri
        if not isinstance(frm, SipURI) or not frm.user:
            tx.respond(400, "Bad From", headers=[self.server()])
            return None
        bad = self._malformed(req)
        if bad:
            tx.respond(400, bad, headers=[self.server()])
            return None
        # The subscriber authenticates in its own domain, so it can only ever reach its own
        # tenant; answers before a correct password are the registrar's.
        tenant = self.ctx.directory.tenant(frm.host)
        realm = tenant.domain if tenant is not None else frm.host.lower()
        result = self.ctx.auth.authenticate(
            tx, tenant, realm, proxy=False, server=self.server(), failed=self.ctx.guard.auth_failed
        )
        if result is None:
            return None
        ext = result.extension
        assert tenant is not None
        assert ext is not None
        server = self.server(tenant)
        if not tenant.active or not ext.enabled or result.username != ext.number:
            tx.respond(403, headers=[server])
            return None
        if not result.web and tx.source.kind.lower() not in ext.allowed_transports:
            tx.respond(403, "Transport Not Allowed", headers=[server])
            return None
        return tenant, ext, server

    async def _accept(
        self, tx: ServerTransaction, sub: S, expires: int, server: tuple[str, str]
    ) -> None:
        """Answer a new, authenticated SUBSCRIBE for ``sub`` (its ``expires_at`` set) and
        send its first NOTIFY: a fetch's final one, or the full state of a held one."""
        contact = sub.dialog.contact or self.contact(sub.watched[1], tx.source.kind)
        try:
            # A task of its own: a SIP handler's first step runs outside any task (the
            # transaction layer saves one for handlers that finish at once), and redis-py's
            # timeouts need one.
            await asyncio.ensure_future(self._prepare(sub))
        except Exception as exc:
            log.warning("%s: state of %s unreadable (%s)", self.label, self.describe(sub), exc)
            tx.respond(500, headers=[server, ("Retry-After", "5")])
            return
        if expires == 0:
            tx.respond(200, headers=[server, ("Expires", "0"), ("Contact", contact)])
            self.push(sub, final="timeout")
            return
        try:
            dropped = self.table.add(sub)
        except TableFull:
            log.warning("%s: %d subscriptions held (%s: %d), refusing more", self.label,
                        len(self.table), self.describe(sub),
                        len(self.table.of(*sub.watched)))  # fmt: skip
            tx.respond(503, headers=[server, ("Retry-After", "60")])
            return
        for old in dropped:
            old.ended = True
            self._released(old)
            log.info("%s: too many subscriptions, dropped %s", self.label, self.describe(old))
        self._arm(sub)
        self._held(sub)
        tx.respond(200, headers=[server, ("Expires", str(expires)), ("Contact", contact)])
        log.info("%s: %s subscribed for %ds", self.label, self.describe(sub), expires)
        self.push(sub, force=True)

    def _expires(self, req: Request) -> int:
        value = req.expires
        if value is None:
            return self.default_expires
        if value <= 0:
            return 0
        return max(self.min_expires, min(self.max_expires, value))

    def _arm(self, sub: S) -> None:
        """(Re)start the expiry timer of ``sub`` for its ``expires_at``."""
        if sub.timer is not None:
            sub.timer.cancel()
        delay = max(0.0, sub.expires_at - self.clock())
        sub.timer = asyncio.get_running_loop().call_later(delay, self._expired, sub)

    def _expired(self, sub: S) -> None:
        sub.timer = None
        if not sub.ended:
            log.info("%s: subscription of %s expired", self.label, self.describe(sub))
            self.end(sub, "timeout")

    async def _in_dialog(self, tx: ServerTransaction, package: str) -> None:
        req = tx.request
        sub = self.table.get((req.call_id, req.to.tag or ""))
        if (
            sub is None
            or sub.ended
            or sub.event != package
            or req.from_.tag != sub.dialog.remote_tag
        ):
            tx.respond(481, headers=[self.server()])
            return
        tenant = self.ctx.directory.tenant(sub.domain)
        ext = tenant.extensions.get(sub.subscriber) if tenant is not None else None
        if tenant is None or ext is None or not ext.enabled or not tenant.active:
            # The subscriber is gone or disabled since: the subscription ends with it.
            self._forget(sub)
            tx.respond(481, headers=[self.server()])
            return
        server = self.server(tenant)
        if not sub.dialog.receive_request(req):
            tx.respond(500, headers=[server])
            return
        # A SUBSCRIBE refreshes the target (RFC 6665 4.1.2.1); NAT: answer where it came from.
        sub.dialog.refresh_target(req)
        if req.contacts:
            sub.contact = str(req.contacts[0].uri)
        sub.target = Target(tx.source.kind, *tx.source.remote)
        expires = self._expires(req)
        try:
            await asyncio.ensure_future(self._refreshing(sub))  # a task: as in _accept
        except Exception as exc:
            log.warning("%s: state of %s unreadable (%s)", self.label, self.describe(sub), exc)
            tx.respond(500, headers=[server, ("Retry-After", "5")])
            return
        contact = sub.dialog.contact or self.contact(sub.watched[1], tx.source.kind)
        if expires == 0:
            tx.respond(200, headers=[server, ("Expires", "0"), ("Contact", contact)])
            log.info("%s: %s unsubscribed", self.label, self.describe(sub))
            self.end(sub, "timeout")
            return
        sub.expires_at = self.clock() + expires
        self._arm(sub)
        self._held(sub)
        tx.respond(200, headers=[server, ("Expires", str(expires)), ("Contact", contact)])
        self.push(sub, force=True)

    # --- NOTIFY --------------------------------------------------------------------------
    def end(self, sub: S, reason: str) -> None:
        """Forget ``sub`` and send its final NOTIFY (``terminated;reason=...``)."""
        self.table.remove(sub)
        self._released(sub)
        self.push(sub, final=reason)

    def _forget(self, sub: S) -> None:
        """Forget ``sub`` without a NOTIFY (its subscriber is gone or refuses them)."""
        self.table.remove(sub)
        self._released(sub)
        sub.ended = True

    def push(self, sub: S, *, force: bool = False, final: str | None = None) -> None:
        """Have ``sub`` notified of its current state: now, or when its outstanding NOTIFY
        completes. Without ``force`` or ``final`` nothing is sent when the state is the one
        it was last sent."""
        if sub.ended:
            return
        sub.force = sub.force or force
        if final is not None:
            sub.final = final
        if sub.busy:
            sub.again = True
            return
        sub.busy = True
        self._spawn(self._notify_loop(sub))

    async def _notify_loop(self, sub: S) -> None:
        try:
            while not sub.ended:
                sub.again = False
                state = self.state(sub)
                final = sub.final
                if final is None and not sub.force and state == sub.last:
                    return
                sub.force = False
                resp = await self._send(sub, state, final)
                sub.last = state
                if final is not None:
                    sub.ended = True
                    return
                if resp.status >= 300:
                    log.info("%s: NOTIFY to %s answered %d: subscription ended", self.label,
                             self.describe(sub), resp.status)  # fmt: skip
                    self._forget(sub)
                    return
                self._notified(sub)
                if not sub.again:
                    return
        finally:
            sub.busy = False

    async def _send(self, sub: S, state: Any, final: str | None) -> Response:
        if final is None:
            remaining = max(0, int(sub.expires_at - self.clock() + 0.5))
            sub_state = f"active;expires={remaining}"
        else:
            sub_state = f"terminated;reason={final}"
        event = sub.event if sub.event_id is None else f"{sub.event};id={sub.event_id}"
        req = sub.dialog.create_request(
            "NOTIFY",
            headers=[
                ("Event", event),
                ("Subscription-State", sub_state),
                ("User-Agent", self.ctx.product_for(sub.domain)),
                ("Content-Type", self.content_type(sub)),
            ],
            body=self.body(sub, state),
        )
        tx = self.ctx.engine.transactions.send_request(req, sub.target)
        return await tx.future
