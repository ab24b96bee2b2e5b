"""Message-waiting indication: ``message-summary`` subscriptions (RFC 6665, RFC 3842) and the
NOTIFYs that light a phone's lamp.

**Subscribing.** A phone sends ``SUBSCRIBE`` with ``Event: message-summary`` for its own
mailbox. It authenticates by digest in its own tenant's domain (the From domain; realm = that
domain), answered exactly as the registrar answers: the same 401 for a wrong password, an
unknown user or an unknown domain (nothing can be enumerated), 403 only after the right
password (suspended tenant, disabled extension, transport not allowed, or another extension's
mailbox). The watched mailbox is the subscriber's own: the To user (the resource, RFC 6665) or
the Request-URI user must be its number, and neither may name another extension; a resource
in another tenant's domain is 404, as if it did not exist, so no count ever leaks across
tenants. Expires is clamped to 60..3600 s (3600 when absent). The 200 carries Expires, the
dialog's To-tag and our Contact, and a NOTIFY with the current counts follows at once.

**Refresh and end.** An in-dialog SUBSCRIBE resets the expiry and is answered with a full
NOTIFY; ``Expires: 0`` ends the subscription (200, then ``Subscription-State:
terminated;reason=timeout``), as does its expiry without refresh (the same final NOTIFY, then
it is forgotten). A NOTIFY answered with an error (481, 408, a timeout...) ends it too. One
NOTIFY is outstanding per dialog at a time; a change meanwhile sends one more with the latest
counts when it completes.

**Changes.** Django writes a mailbox's :class:`contract.MailboxIndex` at
``contract.VOICEMAIL_BOX`` and publishes ``"<schema> <box>"`` on ``contract.VOICEMAIL_CHANGED``.
Every engine receives it; each reads the index once and notifies its own subscriptions of that
mailbox whose last NOTIFY carried other counts. Registered contacts of the mailbox that hold no
subscription here get an unsolicited (out-of-dialog) NOTIFY with the same body — many desk
phones (Yealink, Polycom, Grandstream) light their lamp from it without subscribing — from the
engine that took the registration, and only when the counts differ from the last ones sent for
that mailbox (kept in memory, bounded).

**State.** Subscriptions live in this engine's memory (:mod:`.subscriptions`): after an engine
restart the phones' next refresh is answered 481 and they subscribe again (RFC 6665 4.1.2.2),
so at most one refresh interval passes without a lamp update. No ORM, no blocking call: one
Redis GET per change of a mailbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any
from urllib.parse import unquote

from telephony.sip import contract
from telephony.sip.context import EngineContext
from telephony.sip.contract import TenantSnapshot
from telephony.sip.dialog import Dialog
from telephony.sip.message import Address, Request, Response, SipURI, parse_address, parse_uri
from telephony.sip.registrar import Binding
from telephony.sip.transaction import ServerTransaction, new_tag
from telephony.sip.transport import Target

from .notifier import Notifier, accepts
from .subscriptions import Counts, Subscription, SubscriptionTable

__all__ = ["EVENT", "MessageWaiting", "summary"]

log = logging.getLogger(__name__)

EVENT = "message-summary"
CONTENT_TYPE = "application/simple-message-summary"


def summary(new: int, saved: int, account: str) -> bytes:
    """An ``application/simple-message-summary`` body (RFC 3842 5.2) for a voice mailbox:
    ``Voice-Message: new/old (urgent new/urgent old)``; we keep no urgent messages."""
    waiting = "yes" if new > 0 else "no"
    return (
        f"Messages-Waiting: {waiting}\r\nMessage-Account: {account}\r\n"
        f"Voice-Message: {new}/{saved} (0/0)\r\n"
    ).encode()


class MessageWaiting(Notifier[Subscription]):
    """The ``SUBSCRIBE`` handler for ``message-summary`` and the MWI notifier (a service:
    it follows ``VOICEMAIL_CHANGED`` while started)."""

    label = "MWI"
    table: SubscriptionTable[Subscription]

    def __init__(
        self,
        ctx: EngineContext,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        per_extension: int = 10,
        cap: int = 100_000,
        remembered_boxes: int = 100_000,
    ) -> None:
        super().__init__(
            ctx, min_expires=min_expires, max_expires=max_expires, default_expires=default_expires
        )
        self.table = SubscriptionTable(per_resource=per_extension, cap=cap)
        # (schema, box) -> counts of the last unsolicited NOTIFYs, oldest first (bounded).
        self.sent: dict[tuple[str, str], Counts] = {}
        # (schema, box, contact) -> the counts that contact was last sent out of dialog
        # (bounded): a phone told on registration is not told the same again by a change
        # that crossed it, nor the other way round.
        self.told: dict[tuple[str, str, str], Counts] = {}
        self.remembered_boxes = remembered_boxes
        self._task: asyncio.Task[None] | None = None

    @property
    def prefix(self) -> str:
        return self.ctx.config.redis_prefix

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self.ctx.registrar.registered.append(self.on_registered)
        ready = asyncio.Event()
        channel = contract.key(self.prefix, contract.VOICEMAIL_CHANGED)
        self._task = asyncio.create_task(
            self._follow((channel,), ready, lambda _channel, data: self.received(data)),
            name="mwi-listen",
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for task in list(self._tasks):
            task.cancel()
        self.table.clear()

    # --- counts --------------------------------------------------------------------------
    async def counts(self, schema: str, box: str) -> Counts:
        """(new, saved) of a mailbox from its index in Redis; no index: (0, 0). Awaited in a
        task only (redis-py's timeouts need one): the notifier runs ``_prepare`` and
        ``_refreshing`` in one, the changes run in tasks of their own."""
        raw = await self.ctx.redis.get(
            contract.key(self.prefix, contract.VOICEMAIL_BOX, schema=schema, box=box)
        )
        index = contract.MailboxIndex.from_json(raw)
        return len(index.new), len(index.saved)

    # --- the notifier's hooks -------------------------------------------------------------
    def clock(self) -> float:
        return asyncio.get_running_loop().time()

    def describe(self, sub: Subscription) -> str:
        return f"{sub.user}@{sub.domain}"

    def state(self, sub: Subscription) -> Counts:
        return sub.wanted or sub.last or (0, 0)

    def content_type(self, sub: Subscription) -> str:
        return CONTENT_TYPE

    def body(self, sub: Subscription, state: Counts) -> bytes:
        return summary(state[0], state[1], str(SipURI(sub.domain, user=sub.user)))

    async def _prepare(self, sub: Subscription) -> None:
        sub.wanted = await self.counts(sub.schema, sub.user)

    _refreshing = _prepare  # a refresh's NOTIFY carries the counts read now, as the first

    # --- SUBSCRIBE -----------------------------------------------------------------------
    async def on_subscribe(self, tx: ServerTransaction, package: str, event_id: str | None) -> None:
        """A SUBSCRIBE for ``message-summary`` (the router's choice)."""
        req = tx.request
        if req.to.tag:
            await self._in_dialog(tx, EVENT)
            return
        subscriber = self._authenticate(tx)
        if subscriber is None:
            return
        tenant, ext, server = subscriber
        box = ext.number
        refused = self._resource_refused(req, tenant, box)
        if refused:
            tx.respond(refused, headers=[server])
            return
        if not accepts(req, CONTENT_TYPE):
            tx.respond(406, headers=[server, ("Accept", CONTENT_TYPE)])
            return
        expires = self._expires(req)
        contact = self.contact(box, tx.source.kind)
        try:
            dialog = Dialog.from_uas(req, tx.to_tag, contact=contact)
        except ValueError:
            tx.respond(400, "Missing Contact", headers=[server])
            return
        sub = Subscription(
            event=EVENT,
            event_id=event_id,
            dialog=dialog,
            schema=tenant.schema,
            domain=tenant.domain,
            user=box,
            target=Target(tx.source.kind, *tx.source.remote),
            contact=str(req.contacts[0].uri),
            expires_at=self.clock() + expires,
        )
        await self._accept(tx, sub, expires, server)

    def _resource_refused(self, req: Request, tenant: TenantSnapshot, box: str) -> int:
        """0 when the request's resource is the subscriber's own mailbox; else the answer:
        404 for a resource of another tenant (as if it did not exist), 403 for another
        extension's mailbox or a request that names none of its own."""
        named: set[str] = set()
        for uri in (req.to.uri, req.uri):
            if not isinstance(uri, SipURI):
                continue
            owner = self.ctx.directory.tenant(uri.host)
            if owner is not None and owner.schema != tenant.schema:
                return 404
            if uri.user:
                user = unquote(uri.user)
                if user != box and user in tenant.extensions:
                    return 403
                named.add(user)
        return 0 if box in named else 403

    # --- changes -------------------------------------------------------------------------
    def received(self, data: Any) -> None:
        """A ``VOICEMAIL_CHANGED`` message: ``"<schema> <box>"``."""
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        parts = text.split()
        if len(parts) != 2:
            log.warning("MWI: ignoring malformed %s message %r", contract.VOICEMAIL_CHANGED,
                        text[:100])  # fmt: skip
            return
        self._spawn(self.changed(parts[0], parts[1]))

    async def changed(self, schema: str, box: str) -> int:
        """Notify the subscriptions and registered contacts of a changed mailbox; returns
        how many unsolicited NOTIFYs went out."""
        tenant = self.ctx.directory.by_schema(schema)
        ext = tenant.extensions.get(box) if tenant is not None else None
        subs = self.table.of(schema, box)
        if tenant is None or ext is None:
            for sub in subs:
                self.end(sub, "noresource")  # the extension is gone
            return 0
        counts = await self.counts(schema, box)
        for sub in subs:
            sub.wanted = counts
            self.push(sub)
        key = (schema, box)
        if self.sent.get(key) == counts:
            return 0
        self._remember(self.sent, key, counts)
        return await self._unsolicited(tenant, box, counts, subs)

    def on_registered(self, tenant: TenantSnapshot, user: str, binding: Binding) -> None:
        """A phone registered (not a refresh): its lamp gets the mailbox's state at once, a
        desk phone that rebooted shows waiting messages without waiting for the next one.
        An extension without a mailbox costs its registration nothing (no Redis read)."""
        ext = tenant.extensions.get(user)
        box = ext.voicemail if ext is not None else None
        if box is not None and box.enabled and not self.table.of(tenant.schema, user):
            # What it was told before it (re)started is forgotten: it may show nothing now.
            self.told.pop((tenant.schema, user, binding.contact), None)
            self._spawn(self._registered(tenant, user, binding))

    async def _registered(self, tenant: TenantSnapshot, user: str, binding: Binding) -> None:
        counts = await self.counts(tenant.schema, user)
        if counts == (0, 0) or self.table.of(tenant.schema, user):
            return  # nothing waiting, or it subscribed meanwhile (its NOTIFY says it)
        if self.told.get((tenant.schema, user, binding.contact)) != counts:
            self._notify_binding(tenant, user, binding, counts)  # unless a change just did

    async def _unsolicited(
        self, tenant: TenantSnapshot, box: str, counts: Counts, subs: list[Subscription]
    ) -> int:
        locations = self.ctx.locations
        watched_from = {(s.target.kind.upper(), s.target.host, s.target.port) for s in subs}
        watched_contacts = {s.contact for s in subs}
        sent = 0
        for binding in await locations.lookup(tenant.domain, box):
            if binding.engine != locations.engine_id:
                continue  # the engine that took the registration notifies it
            source = (binding.transport.upper(), binding.source_host, binding.source_port)
            if source in watched_from or binding.contact in watched_contacts:
                continue  # it subscribed: its NOTIFYs come in its dialog
            if self.told.get((tenant.schema, box, binding.contact)) == counts:
                continue  # told these counts as it registered
            if self._notify_binding(tenant, box, binding, counts):
                sent += 1
        return sent

    def _notify_binding(
        self, tenant: TenantSnapshot, box: str, binding: Binding, counts: Counts
    ) -> bool:
        locations = self.ctx.locations
        target, _flow = locations.target_for(binding)
        try:
            contact = binding.contact
            uri = parse_address(contact).uri if contact.startswith("<") else parse_uri(contact)
        except ValueError:
            return False
        aor = Address(SipURI(tenant.domain, user=box))
        req = Request(
            "NOTIFY",
            uri,
            [
                ("Max-Forwards", "70"),
                ("From", f"{aor};tag={new_tag()}"),
                ("To", str(aor)),
                ("Call-ID", secrets.token_hex(12) + "@pbx"),
                ("CSeq", "1 NOTIFY"),
                ("Contact", self.contact(box, target.kind)),
                ("Event", EVENT),
                ("Subscription-State", "active"),
                ("User-Agent", self.ctx.product_for(tenant.domain)),
                ("Content-Type", CONTENT_TYPE),
            ],
            summary(counts[0], counts[1], str(aor.uri)),
        )
        tx = self.ctx.engine.transactions.send_request(req, target)
        tx.future.add_done_callback(_unsolicited_result(binding.contact))
        self._remember(self.told, (tenant.schema, box, binding.contact), counts)
        return True

    def _remember(self, memory: dict[Any, Counts], key: Any, counts: Counts) -> None:
        """``memory[key] = counts`` as its newest entry; the oldest go beyond
        ``remembered_boxes``."""
        memory.pop(key, None)
        memory[key] = counts
        while len(memory) > self.remembered_boxes:
            del memory[next(iter(memory))]


def _unsolicited_result(contact: str) -> Any:
    def done(fut: asyncio.Future[Response]) -> None:
        if not fut.cancelled() and fut.exception() is None and fut.result().status >= 300:
            log.info("MWI: unsolicited NOTIFY to %s answered %d", contact, fut.result().status)

    return done
