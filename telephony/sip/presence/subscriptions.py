"""Event subscriptions (RFC 6665) that one engine holds, by dialog and by resource.

A subscription is a dialog between a phone (the subscriber) and the engine (the notifier) for
one resource of one tenant (for ``message-summary``: the extension's mailbox). The table is
bounded twice: at most ``per_resource`` subscriptions of one resource (a phone that rebooted
leaves its old dialog behind until it expires; the oldest is dropped to make room, as the
registrar drops the oldest binding), and at most ``cap`` in all (beyond it a new SUBSCRIBE is
refused with 503 until some expire). BLF's :class:`~.dialog.WatchTable` is this table with
its own bounds (per subscriber contact).

MWI's subscriptions live in this engine's memory only: they are short-lived (an hour at most)
and every phone refreshes its own, so an engine that restarts answers the next refresh 481 and
the phone subscribes again (RFC 6665 4.1.2.2); nothing needs rebuilding from Redis.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from telephony.sip.dialog import Dialog
from telephony.sip.transport import Target

__all__ = ["Held", "Subscription", "SubscriptionTable", "TableFull", "unlink"]

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


class Held(Protocol):
    """What a table needs of a subscription: its keys and its expiry timer."""

    timer: asyncio.TimerHandle | None

    @property
    def key(self) -> tuple[str, str]: ...  # (Call-ID, our tag)

    @property
    def watched(self) -> tuple[str, str]: ...  # (schema, number) of the watched resource


H = TypeVar("H", bound=Held)
K = TypeVar("K")


class SubscriptionTable(Generic[H]):
    """Subscriptions by dialog key and by resource ``(schema, number)``, oldest first; at
    most ``per_resource`` of one resource (the oldest dropped) and ``cap`` in all."""

    def __init__(self, *, per_resource: int = 10, cap: int = 100_000) -> None:
        self.per_resource = per_resource
        self.cap = cap
        self.by_key: dict[tuple[str, str], H] = {}
        self.by_resource: dict[tuple[str, str], dict[tuple[str, str], H]] = {}

    def __len__(self) -> int:
        return len(self.by_key)

    def get(self, key: tuple[str, str]) -> H | None:
        return self.by_key.get(key)

    def of(self, schema: str, number: str) -> list[H]:
        """The live subscriptions of a resource, oldest first."""
        return list(self.by_resource.get((schema, number), {}).values())

    def add(self, sub: H) -> list[H]:
        """Hold ``sub``; returns the subscriptions dropped to make room for it (the oldest of
        its resource beyond ``per_resource``). Raises :class:`TableFull` at the cap."""
        if sub.key not in self.by_key and len(self.by_key) >= self.cap:
            raise TableFull
        self._hold(sub)
        return self._drop_beyond(self.by_resource[sub.watched], self.per_resource)

    def _hold(self, sub: H) -> None:
        self.by_key[sub.key] = sub
        self.by_resource.setdefault(sub.watched, {})[sub.key] = sub

    def _drop_beyond(self, group: dict[tuple[str, str], H], most: int) -> list[H]:
        """Remove the oldest of ``group`` until it holds ``most``; returns them."""
        dropped: list[H] = []
        while len(group) > most:
            oldest = next(iter(group.values()))
            self.remove(oldest)
            dropped.append(oldest)
        return dropped

    def remove(self, sub: H) -> None:
        """Forget ``sub`` (no-op when it is not held) and stop its expiry timer."""
        if sub.timer is not None:
            sub.timer.cancel()
            sub.timer = None
        if self.by_key.get(sub.key) is sub:
            del self.by_key[sub.key]
        unlink(self.by_resource, sub.watched, sub)

    def clear(self) -> None:
        for sub in list(self.by_key.values()):
            self.remove(sub)


def unlink(index: dict[K, dict[tuple[str, str], H]], group: K, sub: H) -> None:
    """Take ``sub`` out of ``index[group]`` when it is there; an emptied group goes."""
    members = index.get(group)
    if members is not None and members.get(sub.key) is sub:
        del members[sub.key]
        if not members:
            del index[group]
