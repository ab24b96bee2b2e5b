"""The registry of destination types: ``kind -> factory(services) -> handler``.

A destination type is a module that registers a class with :func:`register`; the router
builds one handler per kind for each engine and hands it every call routed to that kind.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from telephony.sip.calls.call import Call
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices

__all__ = ["KINDS", "DestinationHandler", "register"]


class DestinationHandler(Protocol):
    """Takes the calls routed to one kind of destination."""

    def connect(self, call: Call, destination: Destination) -> Awaitable[None] | None:
        """Take ``call``: ring, answer, refuse or pass it on. An awaitable is awaited by the
        router (or run as a task when the router was called from a callback)."""
        ...


Factory = Callable[[CallServices], DestinationHandler]
F = TypeVar("F", bound=Factory)

KINDS: dict[str, Factory] = {}


def register(kind: str) -> Callable[[F], F]:
    """Class decorator: calls routed to ``kind`` go to an instance of the class."""

    def decorate(factory: F) -> F:
        KINDS[kind] = factory
        return factory

    return decorate
