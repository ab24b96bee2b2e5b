"""The fan-out: engine events (Redis stream ``sip:events``) to live browsers, API subscribers,
the live-state cache and each tenant's webhook outbox.

It reads with its own consumer group (``fanout``), independent of the CDR consumer, and handles
entries strictly in stream order (the live state is a state machine). For each entry:

1. work out the new live state and the events it produces (a call event, plus an
   ``extension.status`` for every extension whose status changed), without writing yet;
2. append those events to the tenant's outbox in one transaction (de-duplicated by stream
   entry id, so an entry handled twice after a crash adds nothing);
3. write the live state; 4. send the events to the Channels group ``tenant.<schema>.events``;
5. XACK.

A failure stops the batch before the failing entry (order is kept) and it is retried; an entry
that keeps failing is logged and skipped after ``MAX_FAILURES`` tries rather than block the
tenant's stream forever. Pending entries of a crashed run are read again on start, and entries
another consumer left idle are claimed. One fan-out is active at a time (a Redis lease), so a
second process started by mistake waits instead of reordering events.

It also follows routing-snapshot changes (``sip:snapshot:changed``) to publish DND changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asgiref.sync import async_to_sync
from django_tenants.utils import schema_context

from telephony.engine.snapshots import published_snapshot
from telephony.engine.store import redis_key
from telephony.engine.stream import EventsReader, text
from telephony.sip.contract import (
    FANOUT_LEADER,
    SNAPSHOT_CHANGED,
    EventType,
    ExtensionSnapshot,
    RegistrationAction,
)

from .choices import CALL_EVENT_TYPES, EXTENSION_STATUS, QUEUE_EVENT_TYPES
from .live import (
    LiveState,
    call_statuses,
    device_from_event,
    next_call,
    status_payload,
)

log = logging.getLogger(__name__)

GROUP = "fanout"
MAX_FAILURES = 5
TENANT_TTL = 60.0
GROUP_NAME = "tenant.{schema}.events"
TEAM_EVENTS = frozenset({EventType.CALL_PICKED_UP, EventType.CALL_PARKED, EventType.CALL_UNPARKED})
# How often the running fan-out trims what every group has acknowledged (the CDR drain does it
# too): the engine adds without trimming, so the stream's length is the consumers' to keep.
TRIM_EVERY = 5.0


def group_name(schema: str) -> str:
    """The Channels group a tenant's live events go to."""
    return GROUP_NAME.format(schema=schema)


def _ts(value: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(float(value or ""), tz=UTC)
    except ValueError:
        return datetime.now(tz=UTC)


@dataclass
class TenantInfo:
    schema: str
    slug: str
    sip_domain: str
    extensions: dict[str, ExtensionSnapshot] | None = None  # from the routing snapshot, lazily


@dataclass
class Plan:
    """What handling one entry will do, worked out before anything is written."""

    events: list[Any] = field(default_factory=list)  # events.actions.NewEvent
    writes: list[tuple[str, tuple]] = field(default_factory=list)  # LiveState method, args


class Fanout(EventsReader):
    """One fan-out consumer. ``redis`` is a synchronous ``redis.Redis``."""

    kind = GROUP

    def __init__(self, redis: Any, *, channel_layer: Any = None, **options: Any) -> None:
        super().__init__(redis, **options)
        self.live = LiveState(redis)
        self._layer = channel_layer
        self._tenants: dict[str, tuple[float, TenantInfo | None]] = {}
        self._failures: dict[str, int] = {}
        self._pubsub: Any = None
        self._trimmed_at = 0.0
        # Tenants whose wallboard changed in the batch being processed (one frame each), and
        # each tenant's agents (extension numbers), cached like the tenants.
        self._wallboards: set[str] = set()
        self._agents: dict[str, tuple[float, frozenset[str]]] = {}

    # ------------------------------------------------------------------- plumbing
    @property
    def layer(self) -> Any:
        if self._layer is None:
            from channels.layers import get_channel_layer

            self._layer = get_channel_layer()
        return self._layer

    def tenant(self, schema: str) -> TenantInfo | None:
        """The tenant of a schema name, cached briefly (unknown ones too, but not for long:
        a tenant created after start must be found)."""
        cached = self._tenants.get(schema)
        if cached is not None and time.monotonic() - cached[0] < TENANT_TTL:
            return cached[1]
        from tenants.choices import TenantStatus
        from tenants.models import Tenant

        row = (
            Tenant.objects.filter(schema_name=schema)
            .exclude(schema_name="public")
            .exclude(status=TenantStatus.DELETED)
            .values("slug", "sip_domain")
            .first()
        )
        info = TenantInfo(schema, row["slug"], row["sip_domain"] or "") if row else None
        self._tenants[schema] = (time.monotonic(), info)
        return info

    def extensions(self, info: TenantInfo) -> dict[str, ExtensionSnapshot]:
        """The tenant's extensions by number, from its routing snapshot."""
        if info.extensions is None:
            snapshot = published_snapshot(self.redis, info.sip_domain)
            info.extensions = snapshot.extensions if snapshot is not None else {}
        return info.extensions

    def agents(self, schema: str) -> frozenset[str]:
        """The tenant's queue agents (extension numbers), cached briefly."""
        cached = self._agents.get(schema)
        if cached is not None and time.monotonic() - cached[0] < TENANT_TTL:
            return cached[1]
        from callcenter.wallboard import agent_numbers

        numbers = agent_numbers(schema)
        self._agents[schema] = (time.monotonic(), numbers)
        return numbers

    # ------------------------------------------------------------------- planning
    def _status_event(self, entry_id: str, n: int, ext: str, data: dict, ts: datetime):
        from .actions import NewEvent

        return NewEvent(EXTENSION_STATUS, data, ts, f"{entry_id}:{n}")

    def plan_registration(self, info: TenantInfo, entry_id: str, event: dict[str, str]) -> Plan:
        plan = Plan()
        ext, contact, action = event.get("user", ""), event.get("contact", ""), event.get("action")
        if not ext or not contact:
            return plan
        before = self.live.devices(info.schema, ext)
        after = dict(before)
        if action in (RegistrationAction.REGISTERED, RegistrationAction.REFRESHED):
            device = device_from_event(event)
            after[contact] = device
            plan.writes.append(("put_device", (info.schema, ext, device)))
        elif action in (RegistrationAction.UNREGISTERED, RegistrationAction.EXPIRED):
            after.pop(contact, None)
            plan.writes.append(("remove_device", (info.schema, ext, contact)))
        else:
            return plan
        # A refresh of a known device changes nothing anyone watches: no event.
        if set(after) != set(before):
            calls = self.live.calls(info.schema)
            data = status_payload(
                ext,
                list(after.values()),
                call_statuses(calls).get(ext, ""),
                self.live.dnd(info.schema).get(ext, False),
            )
            data["reason"] = action
            plan.events.append(self._status_event(entry_id, 0, ext, data, _ts(event.get("ts"))))
        return plan

    def plan_call(self, info: TenantInfo, entry_id: str, event: dict[str, str]) -> Plan:
        from .actions import NewEvent

        plan = Plan()
        call_id = event.get("call_id", "")
        if not call_id:
            return plan
        ts = _ts(event.get("ts"))
        calls = self.live.calls(info.schema)
        before = call_statuses(calls)
        updated = next_call(calls.get(call_id), event)
        if updated is None:
            calls.pop(call_id, None)
        else:
            calls[call_id] = updated
        after = call_statuses(calls)
        plan.writes.append(("put_call", (info.schema, call_id, updated)))
        data = {k: v for k, v in event.items() if k not in ("type", "schema", "ts")}
        if event["type"] in TEAM_EVENTS and updated is not None:
            # A pickup or park names the call only: its watchers want to know whose it is.
            for name in ("caller", "caller_name", "called"):
                if updated.get(name) and not data.get(name):
                    data[name] = updated[name]
        if "legs" in data:
            with contextlib.suppress(ValueError):  # not JSON: passed on as the engine wrote it
                data["legs"] = json.loads(data["legs"])
        plan.events.append(NewEvent(event["type"], data, ts, f"{entry_id}:0"))
        known = self.extensions(info)
        dnd = None
        for n, ext in enumerate(sorted(set(before) | set(after)), start=1):
            if before.get(ext, "") == after.get(ext, "") or (known and ext not in known):
                continue
            dnd = self.live.dnd(info.schema) if dnd is None else dnd
            status = status_payload(
                ext,
                list(self.live.devices(info.schema, ext).values()),
                after.get(ext, ""),
                dnd.get(ext, False),
            )
            status["reason"] = event["type"]
            plan.events.append(self._status_event(entry_id, n, ext, status, ts))
        return plan

    def plan_queue(self, info: TenantInfo, entry_id: str, event: dict[str, str]) -> Plan:
        """A contact-centre event (``QUEUE_EVENT_TYPES``) goes out as the engine wrote it;
        its tenant's wallboard is sent after the batch."""
        from .actions import NewEvent

        data = {k: v for k, v in event.items() if k not in ("type", "schema", "ts")}
        self._wallboards.add(info.schema)
        return Plan(events=[NewEvent(event["type"], data, _ts(event.get("ts")), f"{entry_id}:0")])

    # ------------------------------------------------------------------- handling
    def handle(self, entry_id: str, event: dict[str, str]) -> list[dict]:
        """Handle one entry; returns the Channels messages to send (after the outbox commit)."""
        from .actions import do_append_events
        from .webhooks import envelope

        kind = event.get("type", "")
        if (
            kind != EventType.REGISTRATION
            and kind not in CALL_EVENT_TYPES
            and kind not in QUEUE_EVENT_TYPES
        ):
            return []
        info = self.tenant(event.get("schema", ""))
        if info is None:
            return []  # an unknown domain, the public schema or a deleted tenant
        if kind == EventType.REGISTRATION:
            plan = self.plan_registration(info, entry_id, event)
        elif kind in QUEUE_EVENT_TYPES:
            plan = self.plan_queue(info, entry_id, event)
        else:
            plan = self.plan_call(info, entry_id, event)
            changed = {e.payload["extension"] for e in plan.events if e.type == EXTENSION_STATUS}
            if (
                changed
                and info.schema not in self._wallboards
                and changed & self.agents(info.schema)
            ):
                self._wallboards.add(info.schema)  # an agent rings, answers or hangs up
        created = []
        if plan.events:
            with schema_context(info.schema):
                created = do_append_events(plan.events)
        for method, args in plan.writes:
            getattr(self.live, method)(*args)
        return [
            {
                "type": "pbx.event",
                "event": envelope(e, info.slug),
                "schema": info.schema,
            }
            for e in created
        ]

    def publish(self, messages: list[dict]) -> None:
        if not messages:
            return

        async def send_all() -> None:
            for message in messages:
                await self.layer.group_send(group_name(message.pop("schema")), message)

        try:
            async_to_sync(send_all)()
        except Exception:
            # Live delivery is best effort; the outbox already holds the events.
            log.exception("could not send %d live events", len(messages))

    def process(self, entries: list[tuple[str, dict[str, str]]]) -> tuple[int, bool]:
        """Handle entries in order; returns (acknowledged, stopped early on a failure)."""
        done: list[str] = []
        messages: list[dict] = []
        failed = False
        for entry_id, event in entries:
            try:
                messages.extend(self.handle(entry_id, event))
            except Exception:
                count = self._failures.get(entry_id, 0) + 1
                self._failures[entry_id] = count
                if count < MAX_FAILURES:
                    log.exception("event %s failed (try %d); retrying later", entry_id, count)
                    failed = True
                    break
                log.exception("event %s failed %d times; skipped", entry_id, count)
            self._failures.pop(entry_id, None)
            done.append(entry_id)
        self.publish(messages)
        self.publish_wallboards()
        if done:
            self.redis.xack(self.stream, self.group, *done)
        return len(done), failed

    def publish_wallboards(self) -> None:
        """One wallboard frame per tenant whose queues or agents moved in this batch."""
        if not self._wallboards:
            return
        from callcenter.wallboard import push

        schemas, self._wallboards = self._wallboards, set()
        push(self.layer, schemas, redis=self.redis)

    # ------------------------------------------------------------------- reading
    def recover(self) -> int:
        """Our own entries left pending (crash, failure), then idle ones of dead consumers."""
        total = 0
        for source in (lambda: self.read("0"), self.claim):
            entries = source()
            if entries:
                acked, failed = self.process(entries)
                total += acked
                if failed:
                    break
        return total

    def drain(self, max_batches: int = 1000) -> int:
        """Handle everything outstanding without blocking (tests, one-shot runs)."""
        self.ensure_group()
        total = self.recover()
        for _ in range(max_batches):
            entries = self.read(">")
            if not entries:
                break
            acked, failed = self.process(entries)
            total += acked
            if failed:
                break
        self.follow_snapshots()
        self.trim()
        return total

    def trim(self) -> int:
        self._trimmed_at = time.monotonic()
        return super().trim()

    # ------------------------------------------------------------------- DND
    def follow_snapshots(self) -> None:
        """Publish DND changes of routing snapshots that changed since the last look."""
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(redis_key(SNAPSHOT_CHANGED))
        domains = set()
        while True:
            message = self._pubsub.get_message(timeout=0)
            if message is None:
                break
            if message.get("type") == "message":
                domains.add(text(message["data"]))
        for domain in sorted(domains):
            try:
                self.publish(self.snapshot_changed(domain))
            except Exception:
                log.exception("could not follow the snapshot of %s", domain)

    def snapshot_changed(self, domain: str) -> list[dict]:
        from tenants.models import Tenant

        from .actions import do_append_events

        schema = (
            Tenant.objects.filter(sip_domain=domain).values_list("schema_name", flat=True).first()
        )
        info = self.tenant(schema) if schema else None
        if info is None:
            return []
        info.extensions = None  # numbers may have been added or removed
        extensions = self.extensions(info)
        old = self.live.dnd(info.schema)
        new = {n: e.dnd for n, e in extensions.items()}
        events = []
        statuses: dict[str, str] | None = None  # read once, when some extension changed
        for n, ext in enumerate(sorted(new)):
            if old.get(ext, False) != new[ext] and (ext in old or new[ext]):
                if statuses is None:
                    statuses = call_statuses(self.live.calls(info.schema))
                data = status_payload(
                    ext,
                    list(self.live.devices(info.schema, ext).values()),
                    statuses.get(ext, ""),
                    new[ext],
                )
                data["reason"] = "dnd"
                events.append(self._status_event(f"dnd-{time.time_ns()}", n, ext, data, _now()))
        created = []
        if events:
            with schema_context(info.schema):
                created = do_append_events(events)
        self.live.put_dnd(info.schema, new)
        from .webhooks import envelope

        return [
            {"type": "pbx.event", "event": envelope(e, info.slug), "schema": info.schema}
            for e in created
        ]

    # ------------------------------------------------------------------- running
    def run(self, *, block_ms: int = 2000, stop: Any = None) -> None:
        """Run until ``stop()`` is true (the management command runs it forever)."""
        self.ensure_group()
        lease = self.redis.lock(redis_key(FANOUT_LEADER), timeout=30)
        while not (stop and stop()):
            if not lease.acquire(blocking=True, blocking_timeout=5):
                continue  # another fan-out is active; stand by
            log.info("fan-out %s active on %s", self.consumer, self.stream)
            backoff = 0.5
            try:
                self.recover()
                while not (stop and stop()):
                    lease.reacquire()
                    entries = self.read(">", block_ms)
                    _acked, failed = self.process(entries) if entries else (0, False)
                    self.follow_snapshots()
                    if time.monotonic() - self._trimmed_at > TRIM_EVERY:
                        self.trim()
                    if failed:
                        time.sleep(backoff)  # a database outage: back off, then retry pending
                        backoff = min(backoff * 2, 10.0)
                        self.recover()
                    else:
                        backoff = 0.5
            except Exception:
                log.exception("fan-out loop failed; restarting")
                time.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):  # the lease expired: nothing to free
                    lease.release()


def _now() -> datetime:
    return datetime.now(tz=UTC)
