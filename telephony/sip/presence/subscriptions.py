"""Event subscriptions (RFC 6665) that one engine holds, by dialog and by resource.

A subscription is a dialog between a phone (the subscriber) and the engine (the notifier) for
one resource of one tenant (for ``message-summary``: the extension's mailbox). The table is
bounded twice: at most ``per_resource`` subscriptions of one resource (a phone that rebooted
leaves its old dialog behind until it expires; the oldest is dropped to make room, as the
registrar drops the oldest binding), and at most ``cap`` in all (beyond it a new SUBSCRIBE is
refused with 503 until some expire).

The table lives in this engine's memory only: subscriptions are short-lived (an hour at most)
and every phone refreshes its own, so an engine that restarts answers the next refresh 481 and
the phone subscribes again (RFC 6665 4.1.2.2); nothing needs rebuilding from Redis.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from telephony.sip.dialog import Dialog
from telephony.sip.transport import Target

__all__ = ["Subscription", "SubscriptionTable", "TableFull"]

Counts = tuple[int, int]


class TableFull(Exception):
    """The engine holds as many subscriptions as it may (a table's ``cap``, or for BLF its
    ``per_resource`` too): 503."""


@dataclass(eq=False, slots=True)
class Subscription:
    """One accepted subscription: its dialog, its resource and the state of its NOTIFYs."""

    event: str  # the event package ("message-summary")
    event_id: str | None  # the Event header's ``id`` parameter, echoed in every NOTIFY
    dialog: Dialog
    schema: str
    domain: str
    user: str  # the resource: the extension whose mailbox is watched
    target: Target  # where NOTIFYs go: where the last SUBSCRIBE came from (NAT)
    contact: str  # the subscriber's Contact URI, to tell its registration apart
    expires_at: float = 0.0  # loop time (memory only: nothing outlives the engine's loop)
    timer: asyncio.TimerHandle | None = None
    last: Counts | None = None  # (new, saved) of the last NOTIFY sent
    wanted: Counts | None = None  # (new, saved) the next NOTIFY is to carry
    force: bool = False  # the next NOTIFY goes out even if ``wanted == last`` (refresh)
    final: str | None = None  # the next NOTIFY ends it: ``terminated;reason=<final>``
    busy: bool = False  # a NOTIFY transaction is outstanding (one at a time per dialog)
    again: bool = False  # something changed while it was: NOTIFY again when it completes
    ended: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """(Call-ID, our tag): how an in-dialog SUBSCRIBE finds it."""
        return (self.dialog.call_id, self.dialog.local_tag)

    @property
    def watched(self) -> tuple[str, str]:
        return (self.schema, self.user)

    @property
    def subscriber(self) -> str:
        """The extension that subscribed: a mailbox is watched by its own extension only."""
        return self.user


class SubscriptionTable:
    """Subscriptions by dialog key and by resource ``(schema, user)``, oldest first."""

    def __init__(self, *, per_resource: int = 10, cap: int = 100_000) -> None:
        self.per_resource = per_resource
        self.cap = cap
        self.by_key: dict[tuple[str, str], Subscription] = {}
        self.by_resource: dict[tuple[str, str], dict[tuple[str, str], Subscription]] = {}

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, key: tuple[str, str]) -> Subscription | None:
        return self.by_key.get(key)

    def of(self, schema: str, user: str) -> list[Subscription]:
        """The live subscriptions of a resource, oldest first."""
        return list(self.by_resource.get((schema, user), {}).values())

    def add(self, sub: Subscription) -> list[Subscription]:
        """Hold ``sub``; returns the subscriptions dropped to make room for it (the oldest of
        its resource beyond ``per_resource``). Raises :class:`TableFull` at the cap."""
        if sub.key not in self.by_key and len(self.by_key) >= self.cap:
            raise TableFull
        self.by_key[sub.key] = sub
        mine = self.by_resource.setdefault(sub.watched, {})
        mine[sub.key] = sub
        dropped: list[Subscription] = []
        while len(mine) > self.per_resource:
            oldest = next(iter(mine.values()))
            self.remove(oldest)
            dropped.append(oldest)
        return dropped

    def remove(self, sub: Subscription) -> None:
        """Forget ``sub`` (no-op when it is not held) and stop its expiry timer."""
        if sub.timer is not None:
            sub.timer.cancel()
            sub.timer = None
        if self.by_key.get(sub.key) is sub:
            del self.by_key[sub.key]
        mine = self.by_resource.get(sub.watched)
        if mine is not None and mine.get(sub.key) is sub:
            del mine[sub.key]
            if not mine:
                del self.by_resource[sub.watched]

    def clear(self) -> None:
        for sub in list(self.by_key.values()):
            self.remove(sub)
