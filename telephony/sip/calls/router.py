"""The router: a number to its :class:`~.routing.Destination` (pure, ``routing.py``), and
that destination to the handler registered for its kind (``destinations/``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from . import routing
from .call import Call
from .destinations import KINDS, DestinationHandler
from .routing import Destination
from .services import CallServices

__all__ = ["CallRouter"]

log = logging.getLogger(__name__)


class CallRouter:
    """One handler per registered destination kind, built for this engine's call layer."""

    def __init__(self) -> None:
        self.handlers: dict[str, DestinationHandler] = {}
        self.services: CallServices | None = None

    def load(self, services: CallServices) -> None:
        """Build a handler of every kind registered now."""
        self.services = services
        self.handlers = {kind: factory(services) for kind, factory in KINDS.items()}

    async def route(self, call: Call, number: str) -> None:
        if call.state == "ended":
            return  # the caller gave up before the forward was taken
        assert self.services is not None
        call.target = number
        call.visited.append(number)
        call.statuses = []
        path = call.path(self.services.config.max_forward_hops)
        pending = self.connect(call, routing.route(call.tenant, call.caller, number, path))
        if pending is not None:
            await pending

    def connect(self, call: Call, destination: Destination) -> Awaitable[None] | None:
        for note in destination.notes:
            log.info("call %s: %s", call.id, note)
        handler = self.handlers.get(destination.kind)
        if handler is None:
            # A rule may name a kind no module of this engine registers (a feature not
            # installed yet): the caller hears "unavailable", the admin reads why.
            assert self.services is not None
            log.warning("call %s: no destination of kind %r", call.id, destination.kind)
            self.services.calls.fail(call, 480, reason=f"no destination of kind {destination.kind}")
            return None
        return handler.connect(call, destination)

    def handler(self, kind: str) -> DestinationHandler | None:
        return self.handlers.get(kind)

    def divert(self, call: Call, destination: Destination) -> None:
        pending = self.connect(call, destination)
        if pending is not None:
            assert self.services is not None
            self.services.calls.spawn(pending)
