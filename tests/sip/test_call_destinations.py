"""Destination types plug in: a module registers a class under its kind (and, for numbers of
its own, a routing rule), and calls reach it with no change to the call layer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from telephony.sip.calls import Call, routing
from telephony.sip.calls.destinations import KINDS, register
from telephony.sip.calls.forwarding import Path
from telephony.sip.calls.routing import Destination
from telephony.sip.calls.services import CallServices
from telephony.sip.contract import ExtensionSnapshot, TenantSnapshot
from tests.sip.callkit import dial, ended, events
from tests.sip.callkit import register as register_phone
from tests.sip.engine_fixtures import EngineHandle

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


@pytest.fixture
def mailbox_stub() -> Iterator[list[tuple[str, str]]]:
    """A stand-in "voicemail" type for numbers ``*9<ext>``: it notes who called which box
    and declines (a real one would answer and record)."""
    taken: list[tuple[str, str]] = []

    class Mailbox:
        def __init__(self, services: CallServices) -> None:
            self.calls = services.calls

        def connect(self, call: Call, destination: Destination) -> None:
            taken.append((call.caller.number, destination.target))
            self.calls.fail(call, 603)

    def mailbox_numbers(
        tenant: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path
    ) -> Destination | None:
        box = number.removeprefix("*9")
        return Destination("test-mailbox", box) if box in tenant.extensions else None

    register("test-mailbox")(Mailbox)
    routing.rule(mailbox_numbers)
    yield taken
    routing.RULES.remove(mailbox_numbers)
    del KINDS["test-mailbox"]


def test_a_registered_destination_type_takes_its_calls(
    mailbox_stub: list[tuple[str, str]], pbx: Any, phones: Any
) -> None:
    """Story: a new destination type is added as a module: 101 dials ``*9102`` and the call
    goes to it (which declines: 603), over real SIP; 102's phone never rings, and the call
    is recorded like any other (started, then ended as refused)."""
    engine: EngineHandle = pbx()
    a, b = phones("101"), phones("102")
    acc_a = register_phone(a, engine, "101")
    register_phone(b, engine, "102")
    assert ended(a, dial(a, acc_a, "*9102")) == 603
    assert mailbox_stub == [("101", "102")]
    assert not [e for e, _ in b.events if e == "incoming"]
    kinds = [(e["type"], e.get("status", "")) for e in events(engine)]
    assert kinds == [("call.started", ""), ("call.ended", "busy")]
