"""``SUBSCRIBE`` by event package: ``message-summary`` to MWI, ``dialog`` and ``presence`` to
BLF, anything else (or no Event header: RFC 3265's implied ``PINT``, which we do not serve)
489 with ``Allow-Events`` naming every package we do serve (RFC 6665 8.2.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from telephony.sip.context import EngineContext
from telephony.sip.transaction import ServerTransaction

from .notifier import parse_event

__all__ = ["SubscribeRouter"]

# (transaction, package, the Event header's ``id``): the Event header is parsed here, once.
Handler = Callable[[ServerTransaction, str, str | None], Awaitable[None]]


class SubscribeRouter:
    """The engine's ``SUBSCRIBE`` handler: hands each request to its package's handler."""

    def __init__(self, ctx: EngineContext, handlers: dict[str, Handler]) -> None:
        self.ctx = ctx
        self.handlers = dict(handlers)
        self.allow = ("Allow-Events", ", ".join(self.handlers))

    async def __call__(self, tx: ServerTransaction) -> None:
        package, event_id = parse_event(tx.request)
        handler = self.handlers.get(package or "")
        if handler is None or package is None:
            server = ("Server", self.ctx.product_for(None))
            tx.respond(489, "Bad Event", headers=[server, self.allow])
            return
        await handler(tx, package, event_id)
