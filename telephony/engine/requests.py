"""What the engine asks of the Django side through its event stream: requests of its media
features (a voicemail left, a message saved or deleted on the phone, a greeting recorded, a
feature code that changes an extension's setting: ``contract.EventType``'s ``voicemail.*`` and
``feature.set``).

The CDR drain (``cdr.CdrConsumer``) hands every such entry to the handlers registered here for
its type, inside the tenant's schema and a transaction of its own; the entry is acknowledged
once they returned, so a handler must be idempotent (an entry may come twice after a crash).
A handler raising leaves the entry pending: it is retried on the next drain.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

__all__ = [
    "AFTER_BATCH",
    "CALL_OBSERVERS",
    "HANDLERS",
    "after_batch",
    "handle",
    "observe_calls",
    "register",
]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, str]], None]
HANDLERS: dict[str, list[Handler]] = {}


def register(*types: str) -> Callable[[Handler], Handler]:
    """Decorator: ``fn(event)`` applies events of ``types`` (run in the tenant's schema)."""

    def decorate(fn: Handler) -> Handler:
        for t in types:
            HANDLERS.setdefault(str(t), []).append(fn)
        return fn

    return decorate


CallObserver = Callable[[str, list[dict[str, str]]], None]
# Apps that follow calls too (the contact centre's talk times): ``fn(call_id, events)`` runs
# after the CDR drain applied a call's events, in the same schema and transaction.
CALL_OBSERVERS: list[CallObserver] = []


def observe_calls(fn: CallObserver) -> CallObserver:
    """Decorator: ``fn(call_id, events)`` sees each call's events with its CDR."""
    CALL_OBSERVERS.append(fn)
    return fn


# Run once after each batch of the CDR drain, its transactions committed (the contact centre
# sends each tenant's wallboard once per batch, not once per event it recorded).
AFTER_BATCH: list[Callable[[], None]] = []


def after_batch(fn: Callable[[], None]) -> Callable[[], None]:
    """Decorator: ``fn()`` runs after each batch the CDR drain applied."""
    AFTER_BATCH.append(fn)
    return fn


def handle(event: dict[str, str]) -> None:
    """Apply one request with every handler of its type (the caller opened the schema and
    the transaction)."""
    for fn in HANDLERS.get(event.get("type", ""), ()):
        fn(event)
