"""Where a call goes, decided without I/O (``telephony.sip.calls.routing``): plain snapshot
data in, a ``Destination`` out. The end-to-end behaviour of each decision is in
``test_calls.py`` and ``test_forwarding.py``; these pin the decision table itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from telephony.sip.calls import routing
from telephony.sip.calls.destinations import feature, ivr  # noqa: F401 - their rules
from telephony.sip.calls.destinations.extension import best_status
from telephony.sip.calls.forwarding import Path, diversion
from telephony.sip.calls.routing import Destination
from telephony.sip.contract import (
    ExtensionSnapshot,
    IvrMenu,
    MediaSnapshot,
    TenantSnapshot,
    VoicemailSettings,
)


def ext(number: str, **kw: Any) -> ExtensionSnapshot:
    return ExtensionSnapshot(number=number, caller_id_number=number, **kw)


def tenant(*extensions: ExtensionSnapshot) -> TenantSnapshot:
    return TenantSnapshot(
        tenant_id=1, schema="t_acme", domain="acme.test", status="active", anchor_media=False,
        extensions={e.number: e for e in extensions},
    )  # fmt: skip


CALLER = ext("101")


def route(t: TenantSnapshot, number: str, *, visited: tuple[str, ...] = (), hops: int = 0,
          max_hops: int = 5) -> Destination:  # fmt: skip
    return routing.route(t, CALLER, number, Path((*visited, number), hops, max_hops))


def rejected(d: Destination) -> int:
    assert d.kind == "reject", d
    return int(d.data["code"])


def test_an_extension_rings() -> None:
    d = route(tenant(CALLER, ext("102")), "102")
    assert (d.kind, d.target, d.notes) == ("extension", "102", ())
    assert d.data["extension"].number == "102"


def test_unknown_and_disabled_numbers_are_404_and_a_forward_to_them_480() -> None:
    t = tenant(CALLER, ext("102", enabled=False))
    assert rejected(route(t, "199")) == 404
    assert rejected(route(t, "102")) == 404
    # Reached through a forward: "unavailable" for the caller, a warning for the admin.
    d = route(t, "004930123456", visited=("102",), hops=1)
    assert rejected(d) == 480
    assert d.data["reason"] == "forward target 004930123456 not found"
    assert "004930123456" in d.data["warning"]


def test_dnd_is_busy_or_the_busy_forward() -> None:
    assert rejected(route(tenant(CALLER, ext("102", dnd=True)), "102")) == 486
    d = route(tenant(CALLER, ext("102", dnd=True, forward_busy="103"), ext("103")), "102")
    assert (d.kind, d.target, dict(d.data)) == ("forward", "103", {"reason": "busy", "from": "102"})


def test_forward_always_goes_before_dnd() -> None:
    t = tenant(CALLER, ext("102", dnd=True, forward_always="103"), ext("103"))
    d = route(t, "102")
    assert (d.kind, d.target, d.data["reason"]) == ("forward", "103", "always")


def test_a_forward_that_loops_or_goes_too_far_is_not_followed() -> None:
    t = tenant(CALLER, ext("102", forward_always="103"), ext("103", forward_always="102"))
    d = route(t, "103", visited=("102",), hops=1)
    assert (d.kind, d.target) == ("extension", "103")  # 103 rings instead of going round
    assert d.notes == ("forward 103 -> 102 would loop; not followed",)
    d = route(t, "102", hops=2, max_hops=2)
    assert (d.kind, d.target) == ("extension", "102")
    assert d.notes == ("forwarding stops after 2 steps",)
    # A DND extension whose busy forward loops is simply busy.
    t = tenant(CALLER, ext("102", dnd=True, forward_busy="101"))
    d = route(t, "102", visited=("101",), hops=1)
    assert rejected(d) == 486
    assert d.notes == ("forward 102 -> 101 would loop; not followed",)


def test_after_ringing() -> None:
    t = tenant(CALLER, ext("102", forward_busy="103", forward_no_answer="104"), ext("103"))
    path = Path(("102",), 0, 5)
    for code in (486, 600, 603):
        d = routing.after_refusal(t, "102", code, path)
        assert (d.kind, d.target, d.data["reason"]) == ("forward", "103", "busy")
    for code in (408, 480):
        d = routing.after_refusal(t, "102", code, path)
        assert (d.kind, d.target, d.data["reason"]) == ("forward", "104", "no_answer")
    assert rejected(routing.after_refusal(t, "102", 500, path)) == 500
    assert rejected(routing.after_refusal(tenant(CALLER, ext("102")), "102", 486, path)) == 486

    d = routing.after_no_answer(t, "102", path)
    assert (d.kind, d.target, d.data["reason"]) == ("forward", "104", "no_answer")
    d = routing.after_no_answer(tenant(CALLER, ext("102")), "102", path)
    assert (rejected(d), d.data["status"], d.data["reason"]) == (480, "no_answer", "no answer")

    d = routing.unavailable(t.extensions["102"], path)
    assert (d.kind, d.target, d.data["reason"]) == ("forward", "104", "unavailable")
    assert rejected(routing.unavailable(ext("102"), path)) == 480
    looped = routing.unavailable(ext("102", forward_no_answer="101"), Path(("101", "102"), 1))
    assert rejected(looped) == 480
    assert looped.notes == ("forward 102 -> 101 would loop; not followed",)


def test_best_status_and_diversion() -> None:
    assert best_status([486, 603, 480]) == 603  # 6xx first
    assert best_status([480, 486, 500]) == 486  # then busy
    assert best_status([500, 480]) == 480  # then the lowest
    assert best_status([]) == 480
    assert diversion("acme.test", "102", "no_answer", 2) == (
        "<sip:102@acme.test>;reason=no-answer;counter=2"
    )


@pytest.fixture
def speed_dial() -> Iterator[None]:
    """A routing rule of a plugged-in destination type: "*1" dials 103."""

    def rule(t: TenantSnapshot, caller: ExtensionSnapshot, number: str, path: Path):
        return Destination("speed-dial", "103") if number == "*1" else None

    routing.rule(rule)
    yield
    routing.RULES.remove(rule)


def test_a_registered_rule_goes_before_the_extension_plan(speed_dial: None) -> None:
    t = tenant(CALLER, ext("102"), ext("103"))
    assert route(t, "*1") == Destination("speed-dial", "103")
    assert route(t, "102").kind == "extension"


def test_the_mailbox_takes_what_no_forward_does() -> None:
    """Busy (and DND), no answer (and not registered), always: the mailbox when it says so,
    a forward to a number for the same case first; a disabled mailbox takes nothing."""
    box = VoicemailSettings(busy=True, no_answer=True)
    t = tenant(CALLER, ext("102", voicemail=box), ext("103", dnd=True, voicemail=box))
    path = Path(("102",), 0, 5)

    def voicemail(d: Destination) -> tuple[str, str, str]:
        assert d.kind == "voicemail", d
        return d.kind, d.target, str(d.data["reason"])

    assert voicemail(route(t, "103")) == ("voicemail", "103", "busy")
    assert voicemail(routing.after_refusal(t, "102", 486, path)) == ("voicemail", "102", "busy")
    assert voicemail(routing.after_no_answer(t, "102", path))[2] == "unavailable"
    assert voicemail(routing.unavailable(t.extensions["102"], path))[2] == "unavailable"
    assert rejected(routing.after_refusal(t, "102", 403, path)) == 403  # not a busy/no answer
    forwarded = tenant(CALLER, ext("102", voicemail=box, forward_busy="101"))
    assert routing.after_refusal(forwarded, "102", 486, path).kind == "forward"
    always = tenant(CALLER, ext("102", voicemail=VoicemailSettings(always=True)))
    assert voicemail(route(always, "102"))[2] == "unavailable"
    off = tenant(CALLER, ext("102", voicemail=VoicemailSettings(enabled=False, always=True)))
    assert route(off, "102").kind == "extension"
    assert rejected(routing.after_no_answer(off, "102", path)) == 480
    quiet = tenant(CALLER, ext("102", voicemail=VoicemailSettings(busy=False)))
    assert rejected(routing.after_refusal(quiet, "102", 486, path)) == 486


def test_feature_codes_and_menus_have_numbers_of_their_own() -> None:
    media = MediaSnapshot(ivrs={"800": IvrMenu(number="800")})
    t = TenantSnapshot(
        tenant_id=1, schema="t_acme", domain="acme.test", extensions={"101": CALLER}, media=media
    )
    assert route(t, "800") == Destination("ivr", "800")
    d = route(t, "*72102")
    assert (d.kind, d.data["feature"], d.data["arg"]) == ("feature", "forward_always_on", "102")
    assert route(t, "*78").data["feature"] == "dnd_on"
    # Reached by a forward, a code is not a code: no one's settings change by a forward.
    assert route(t, "*78", visited=("102",), hops=1).kind == "reject"
