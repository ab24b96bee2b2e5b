"""What the services of the engine see of it, below ``app`` so that they need not import it.

``PbxEngine`` (``app.py``) builds the SIP core and the services and satisfies
:class:`EngineContext`; a service (the NAT keep-alive, the call layer...) is given the context
and never the engine class, so no module under the engine imports the module that assembles it.
"""

from __future__ import annotations

from typing import Protocol

import redis.asyncio as aioredis

from .auth import DigestAuth
from .config import PbxConfig
from .directory import Directory
from .events import EventSink
from .registrar import LocationStore, Registrar
from .security import Guard
from .server import Engine

__all__ = ["EngineContext", "Service"]


class Service(Protocol):
    """Something the engine starts (in list order) and stops (in reverse order)."""

    async def start(self) -> object: ...

    async def stop(self) -> None: ...


class EngineContext(Protocol):
    """The engine's shared objects, as the services use them."""

    config: PbxConfig
    redis: aioredis.Redis
    engine: Engine
    directory: Directory
    auth: DigestAuth
    guard: Guard
    locations: LocationStore
    events: EventSink
    registrar: Registrar

    @property
    def engine_id(self) -> str:
        """This engine's name in shared state (see :attr:`PbxConfig.engine_id`), with the port
        it bound when the configuration let it pick one."""
        ...

    def product_for(self, domain: str | None) -> str:
        """The white-label product name for a message of the tenant at ``domain``."""
        ...
