"""Busy lamp fields: ``dialog`` (RFC 4235) and ``presence`` (RFC 3863 PIDF) subscriptions to
an extension or a park slot of the subscriber's own tenant, and the NOTIFYs that drive the
lamps.

**Subscribing.** The subscriber authenticates as for MWI (:mod:`.notifier`): digest in its
own domain (the From domain), the registrar's 401 for a wrong password, an unknown user or an
unknown domain; 403 only after the right password (suspended tenant, disabled extension,
transport not allowed).
The watched resource is the Request-URI user (the To user when the Request-URI has none): an
extension of the subscriber's tenant or one of its park slots. Anything else (an unknown
number, a number in another tenant's domain, another tenant's extension) is answered 404,
the same answer with the same headers, so a subscriber learns nothing of what exists outside
its tenant. A host that is no tenant's domain (the PBX's address) names the subscriber's own
tenant. Accept must allow our type (406 otherwise); a SUBSCRIBE body (event filters) is not
supported (415). Expires is clamped to ``min_expires..max_expires`` (``default_expires`` when
absent); 0 is a fetch (a final NOTIFY with the state, no subscription). The 200 carries
Expires and our Contact; a full-state NOTIFY follows at once.

**Fan-out.** :class:`~telephony.sip.calls.states.ExtensionStates` tells us synchronously of
every change of an extension's (or slot's) dialogs; the subscriptions of that resource are
pushed at once, in the loop, with no Redis on the way. One NOTIFY is outstanding per
subscription; changes meanwhile send one more NOTIFY with the latest state when it completes,
and an unchanged state sends nothing. ``version`` rises by one with every NOTIFY of a
subscription (RFC 4235 4.1). The change is published for the other engines
(:mod:`.views`); their changes come back the same way, merged with ours.

**Presence.** Basic ``open`` while the extension has a registered phone (any engine: the
location store), ``closed`` otherwise; a park slot is always ``open``. ``on-the-phone`` (RPID)
and a note while it has dialogs. Registration changes come from the location store
(``LocationStore.changed``: any engine's, once its copy is current).

**Surviving an engine.** Subscriptions are stored in Redis (:mod:`.store`); an engine
restarted with the same id rebuilds its own, any engine adopts those of an engine whose
heartbeat key is gone, and each rebuilt subscription is sent the current state and keeps its
original expiry.

**Limits.** At most ``per_contact`` subscriptions of one subscriber Contact to one resource
(a phone that rebooted leaves its old dialogs behind: the oldest is dropped), at most
``per_resource`` subscriptions of one resource and ``cap`` in all (503 beyond either).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote

from telephony.sip.calls.states import ExtensionStates
from telephony.sip.context import EngineContext
from telephony.sip.contract import DialogView, TenantSnapshot
from telephony.sip.dialog import Dialog
from telephony.sip.message import Request, SipURI
from telephony.sip.transaction import ServerTransaction
from telephony.sip.transport import Target

from .notifier import Notifier, accepts
from .store import Stored, SubscriptionStore, record
from .subscriptions import SubscriptionTable, TableFull, unlink
from .views import SharedViews
from .xml import DIALOG_INFO, PIDF, dialog_info, pidf

__all__ = ["EVENTS", "DialogPresence", "Watch", "WatchTable"]

log = logging.getLogger(__name__)

DIALOG = "dialog"
PRESENCE = "presence"
EVENTS = (DIALOG, PRESENCE)
CONTENT_TYPES = {DIALOG: DIALOG_INFO, PRESENCE: PIDF}

Resource = tuple[str, str]  # (schema, number)
State = tuple[Any, ...]


def _malformed(req: Request) -> str | None:
    """Why a SUBSCRIBE cannot be understood (the reason phrase of its 400), or None. Checked
    before authentication: the answer depends on the request's syntax only."""
    raw = req.get("Expires")
    if raw is not None and req.expires is None:
        return "Bad Expires"
    try:
        contacts = req.contacts
        _ = req.record_routes
    except ValueError:
        return "Bad Header"
    if not contacts:
        return "Missing Contact"
    if req.body and not req.get("Content-Type"):
        return "Body Without Content-Type"
    return None


def _watchable(tenant: TenantSnapshot, number: str) -> bool:
    """Whether ``number`` is a resource of ``tenant``: an extension or one of its park slots."""
    return number in tenant.extensions or tenant.team.park.is_slot(number)


@dataclass(eq=False, slots=True)
class Watch(Stored):
    """One accepted BLF subscription: what is stored of it and the state of its NOTIFYs."""

    timer: asyncio.TimerHandle | None = None
    last: State | None = None  # the state of the last NOTIFY sent
    force: bool = False  # the next NOTIFY goes out even if the state is the same
    final: str | None = None  # the next NOTIFY ends it: ``terminated;reason=<final>``
    busy: bool = False  # a NOTIFY transaction is outstanding
    again: bool = False  # something changed meanwhile: NOTIFY again when it completes
    ended: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(Call-ID, our tag): how an in-dialog SUBSCRIBE finds it."""
        return (self.dialog.call_id, self.dialog.local_tag)

    @property
    def field(self) -> str:
        """Its field in the ``SUBSCRIPTIONS`` hash."""
        return f"{self.dialog.call_id} {self.dialog.local_tag}"

    @property
    def watched(self) -> Resource:
        return (self.schema, self.resource)

    def stored(self) -> str:
        return record(self)


class WatchTable(SubscriptionTable[Watch]):
    """Watches by dialog key, by resource and by (subscriber contact, resource): at most
    ``per_contact`` of one contact to one resource (the oldest dropped), ``per_resource``
    of one resource and ``cap`` in all (refused beyond either)."""

    def __init__(self, *, per_contact: int, per_resource: int, cap: int) -> None:
        super().__init__(per_resource=per_resource, cap=cap)
        self.per_contact = per_contact
        self.by_contact: dict[tuple[str, str, str], dict[tuple[str, str], Watch]] = {}

    def add(self, w: Watch) -> list[Watch]:
        """Hold ``w``; returns the watches dropped for it (the oldest of the same contact and
        resource beyond ``per_contact``). Raises :class:`TableFull` at a cap."""
        if w.key not in self.by_key:
            mine = self.by_resource.get(w.watched, {})
            same = self.by_contact.get((w.schema, w.resource, w.contact), {})
            room = len(same) >= self.per_contact  # one of its own goes to make room
            if len(self.by_key) >= self.cap + room or len(mine) >= self.per_resource + room:
                raise TableFull
        self._hold(w)
        same = self.by_contact.setdefault((w.schema, w.resource, w.contact), {})
        same[w.key] = w
        return self._drop_beyond(same, self.per_contact)

    def remove(self, w: Watch) -> None:
        super().remove(w)
        unlink(self.by_contact, (w.schema, w.resource, w.contact), w)


class DialogPresence(Notifier[Watch]):
    """The ``SUBSCRIBE`` handler for ``dialog`` and ``presence`` and their notifier (a
    service: it follows the extensions' states, the other engines and the registrations)."""

    label = "BLF"
    table: WatchTable

    def __init__(
        self,
        ctx: EngineContext,
        states: ExtensionStates,
        *,
        min_expires: int = 60,
        max_expires: int = 3600,
        default_expires: int = 3600,
        per_contact: int = 4,
        per_resource: int = 2000,
        cap: int = 200_000,
        sweep_interval: float = 5.0,
    ) -> None:
        super().__init__(
            ctx, min_expires=min_expires, max_expires=max_expires, default_expires=default_expires
        )
        self.states = states
        self.sweep_interval = sweep_interval
        self.table = WatchTable(per_contact=per_contact, per_resource=per_resource, cap=cap)
        self.views = SharedViews(ctx, states, self._fan_out)
        self.store = SubscriptionStore(ctx)
        # (schema, number) -> has a registered phone, for the resources watched by presence.
        self.online: dict[Resource, bool] = {}
        self._loops: list[asyncio.Task[None]] = []

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        engine_id = self.ctx.engine_id
        self.store.start(engine_id)
        await self.views.start(engine_id)
        self.states.listeners.append(self._local_changed)
        self.ctx.directory.on_change.append(self._tenant_changed)
        self.ctx.locations.changed.append(self._location_changed)
        ready = asyncio.Event()
        self._loops = [
            asyncio.create_task(
                self._follow((self.views.channel,), ready, self._received, self.views.reset),
                name="blf-listen",
            ),
            asyncio.create_task(self._sweeper(), name="blf-sweep"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ready.wait(), 5)
        try:
            rebuilt = await self.store.own()
            rebuilt += await self.store.adopt()
        except Exception as exc:
            log.warning("BLF: stored subscriptions unreadable (%s)", exc)
            return
        await self._rebuild(rebuilt)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.states.listeners.remove(self._local_changed)
        with contextlib.suppress(ValueError):
            self.ctx.directory.on_change.remove(self._tenant_changed)
        with contextlib.suppress(ValueError):
            self.ctx.locations.changed.remove(self._location_changed)
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loops = []
        for task in list(self._tasks):
            task.cancel()
        await self.views.stop()
        await self.store.stop()
        self.table.clear()

    # --- SUBSCRIBE -----------------------------------------------------------------------
    async def on_subscribe(self, tx: ServerTransaction, package: str, event_id: str | None) -> None:
        """A SUBSCRIBE for ``dialog`` or ``presence`` (the router's choice)."""
        req = tx.request
        try:
            if req.to.tag:
                await self._in_dialog(tx, package)
            else:
                await self._new(tx, package, event_id)
        except ValueError:
            # A header that does not parse (Contact, Record-Route...): the request is bad.
            if tx.state in ("trying", "proceeding"):
                tx.respond(400, headers=[self.server()])

    def _malformed(self, req: Request) -> str | None:
        return _malformed(req)

    async def _new(self, tx: ServerTransaction, package: str, event_id: str | None) -> None:
        req = tx.request
        subscriber = self._authenticate(tx)
        if subscriber is None:
            return
        tenant, ext, server = subscriber
        resource = self._resource(req, tenant)
        if resource is None:
            tx.respond(404, headers=[server])
            return
        ours = CONTENT_TYPES[package]
        if not accepts(req, ours):
            tx.respond(406, headers=[server, ("Accept", ours)])
            return
        if req.body:
            # Event filters (RFC 4660) are not supported: the whole state or nothing.
            tx.respond(415, headers=[server, ("Accept", ours)])
            return
        expires = self._expires(req)
        contact = self.contact(resource, tx.source.kind)
        dialog = Dialog.from_uas(req, tx.to_tag, contact=contact)
        w = Watch(
            event=package,
            event_id=event_id,
            dialog=dialog,
            schema=tenant.schema,
            domain=tenant.domain,
            resource=resource,
            subscriber=ext.number,
            contact=str(req.contacts[0].uri),
            target=Target(tx.source.kind, *tx.source.remote),
            expires_at=time.time() + expires,
        )
        await self._accept(tx, w, expires, server)

    def _resource(self, req: Request, tenant: TenantSnapshot) -> str | None:
        """The watched number, when it is an extension or a park slot of ``tenant``."""
        uri = req.uri if isinstance(req.uri, SipURI) and req.uri.user else req.to.uri
        if not isinstance(uri, SipURI) or not uri.user:
            return None
        owner = self.ctx.directory.tenant(uri.host)
        if owner is not None and owner.schema != tenant.schema:
            return None
        number = unquote(uri.user)
        return number if _watchable(tenant, number) else None

    # --- rebuilding ----------------------------------------------------------------------
    async def _rebuild(self, stored: list[tuple[str, Stored]]) -> int:
        """Hold the subscriptions read back from Redis again and send each the current state;
        returns how many."""
        now = time.time()
        made: list[Watch] = []
        for field, s in stored:
            tenant = self.ctx.directory.by_schema(s.schema)
            if (
                s.expires_at <= now
                or tenant is None
                or s.event not in EVENTS
                or not _watchable(tenant, s.resource)
            ):
                self.store.delete(field)
                continue
            target = s.target
            remote = s.dialog.remote_target
            if target.kind.upper() != "UDP" and isinstance(remote, SipURI):
                # The connection it came on belonged to the engine that held it.
                target = Target(target.kind, remote.host, remote.port or 5060)
            s.dialog.contact = self.contact(s.resource, target.kind)
            w = Watch(**{f.name: getattr(s, f.name) for f in fields(Stored)})
            w.target = target
            try:
                self.table.add(w)
            except TableFull:
                self.store.delete(field)
                continue
            self._arm(w)
            self._held(w)  # ours now in the store (the adopted were taken away)
            made.append(w)
        for w in made:
            with contextlib.suppress(Exception):
                await self._prepare(w)
            self.push(w, force=True)
        if made:
            log.info("BLF: %d stored subscriptions rebuilt", len(made))
        return len(made)

    # --- changes -------------------------------------------------------------------------
    def _local_changed(self, schema: str, number: str) -> None:
        """ExtensionStates' listener: runs in the loop at every change of our calls."""
        self._fan_out(schema, number)
        self.views.local_changed(schema, number)

    def _fan_out(self, schema: str, number: str) -> None:
        watches = self.table.by_resource.get((schema, number))
        if watches:
            for w in list(watches.values()):
                self.push(w)

    def _received(self, channel: str, data: Any) -> None:
        """The other engines' dialog views."""
        self.views.received(data)

    def _location_changed(self, domain: str, user: str) -> None:
        """Some engine changed ``user@domain``'s registrations (the location store's copy is
        current again): a watched one is checked for open/closed."""
        tenant = self.ctx.directory.tenant(domain)
        if tenant is not None and (tenant.schema, user) in self.online:
            self._spawn(self._recheck(tenant.schema, domain, user))

    async def _recheck(self, schema: str, domain: str, user: str) -> None:
        if await self._check_online(schema, domain, user):
            self._fan_out(schema, user)

    async def _check_online(self, schema: str, domain: str, user: str) -> bool:
        """Whether ``user`` has a registered phone, remembered; True when that changed."""
        tenant = self.ctx.directory.by_schema(schema)
        if tenant is not None and user not in tenant.extensions:
            online = True  # a park slot: always there
        else:
            online = bool(await self.ctx.locations.lookup(domain, user))
        before = self.online.get((schema, user))
        self.online[(schema, user)] = online
        return before is not None and before != online

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self.views.sweep()
                adopted = await self.store.adopt()
                if adopted:
                    await self._rebuild(adopted)
                self._forget_unwatched()
                self._drop_vanished()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("BLF sweep failed: %s", exc)

    def _tenant_changed(self, domain: str) -> None:
        """A tenant's snapshot was reloaded: an extension or a park slot may be gone."""
        self._drop_vanished()

    def _drop_vanished(self) -> None:
        """End the subscriptions of resources that no longer exist (an extension deleted, a
        park slot beyond a smaller park, a tenant gone): ``terminated;reason=noresource``."""
        for schema, number in list(self.table.by_resource):
            tenant = self.ctx.directory.by_schema(schema)
            if tenant is not None and _watchable(tenant, number):
                continue
            for w in self.table.of(schema, number):
                log.info("BLF: %s@%s is gone: its subscriptions end", number, w.domain)
                self.end(w, "noresource")

    def _forget_unwatched(self) -> None:
        for res in list(self.online):
            if not any(w.event == PRESENCE for w in self.table.of(*res)):
                del self.online[res]

    # --- the notifier's hooks -------------------------------------------------------------
    def clock(self) -> float:
        return time.time()

    def describe(self, w: Watch) -> str:
        return f"{w.subscriber} watching {w.resource}@{w.domain} ({w.event})"

    async def _prepare(self, w: Watch) -> None:
        """What a new or rebuilt subscription needs before its first NOTIFY: the other
        engines' views of its resource and, for presence, whether it is registered."""
        await self.views.fetch(w.schema, w.resource)
        if w.event == PRESENCE:
            await self._check_online(w.schema, w.domain, w.resource)

    def _held(self, w: Watch) -> None:
        self.store.put(w.field, w.stored())

    def _released(self, w: Watch) -> None:
        self.store.delete(w.field)

    def _notified(self, w: Watch) -> None:
        self.store.seq_changed(w.field, w.stored)

    def content_type(self, w: Watch) -> str:
        return CONTENT_TYPES[w.event]

    def state(self, w: Watch) -> State:
        views = self.views.merged(w.schema, w.resource)
        if w.event == DIALOG:
            return tuple(views)
        return (self.online.get(w.watched, False), bool(views))

    def body(self, w: Watch, state: State) -> bytes:
        if w.event == DIALOG:
            dialogs: tuple[DialogView, ...] = state
            document = dialog_info(w.resource, w.domain, w.version, dialogs)
            w.version += 1  # the next document's (RFC 4235 4.1: from 0, one more each time)
            return document
        return pidf(w.resource, w.domain, online=bool(state[0]), on_phone=bool(state[1]))
