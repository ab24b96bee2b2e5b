"""What destinations and call features share: the engine, the call layer's settings, the live
calls, media anchoring, the router, the media server and the extensions' states."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from telephony.sip.config import CallConfig
from telephony.sip.context import EngineContext

from .agents import AgentBook
from .anchor import Anchor
from .call import Call, Calls
from .media_app import MediaFeatures
from .routing import Destination
from .states import ExtensionStates

__all__ = ["CallServices", "Router"]


class Router(Protocol):
    """Hands a call to the destination of a number (see ``router.py``)."""

    async def route(self, call: Call, number: str) -> None:
        """Route ``call`` to ``number`` (the callee, or where a forward leads)."""
        ...

    def connect(self, call: Call, destination: Destination) -> Awaitable[None] | None:
        """Hand ``call`` to ``destination``'s type; what it returns must be awaited."""
        ...

    def divert(self, call: Call, destination: Destination) -> None:
        """:meth:`connect` from code that cannot await (timers, response callbacks)."""
        ...

    def handler(self, kind: str) -> object | None:
        """The handler of destination type ``kind`` (a feature that works with another's
        state: the trunk dialler, the park slots); None when no module registers it."""
        ...


@dataclass(slots=True, eq=False)
class CallServices:
    """The shared objects of the call layer, given to every destination and feature."""

    ctx: EngineContext
    config: CallConfig
    calls: Calls
    anchor: Anchor
    router: Router
    media: MediaFeatures
    states: ExtensionStates  # what each extension is doing (BLF, busy members, callback)
    agents: AgentBook  # the queue agents' states (contact centre)
