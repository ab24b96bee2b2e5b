"""Busy lamp fields over real SIP on loopback: ``dialog`` (RFC 4235) and ``presence`` (PIDF)
subscriptions to extensions and park slots, with raw-socket watchers (``blfkit.Watcher``),
real pjsua2 phones making the calls, and the worker's Redis shared by the engines.

The conftest tenants: acme.test (101, 102; park slots 701..710) and beta.test (201, 202).
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from telephony.sip.calls import CallLayer
from telephony.sip.config import CallConfig
from telephony.sip.contract import DialogView
from telephony.sip.message import Request
from tests.sip.blfkit import DIALOG_NS, Watcher, dialogs_of, pidf_of
from tests.sip.callkit import add_extension, dial, register, set_snapshot
from tests.sip.engine_fixtures import EngineHandle, wait_until, worker_redis_url

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def _clear() -> None:
    r = redis.Redis.from_url(worker_redis_url())
    try:
        for pattern in ("sip:dlg:*", "sip:subs:*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            if keys:
                r.delete(*keys)
    finally:
        r.close()


@pytest.fixture
def clean(world: Any) -> Iterator[None]:
    """No dialog views or stored subscriptions before and after (set up before the engines,
    so torn down after they stop: a stopped engine leaves its subscriptions stored)."""
    _clear()
    yield
    _clear()


@pytest.fixture
def start(clean: None, sip_engine_factory: Callable[..., EngineHandle]) -> Callable[..., Any]:
    """``start(port=None) -> EngineHandle``: an engine with a call layer; ``port``: bind that
    UDP port (the same engine id as an engine stopped before)."""

    def make(port: int | None = None) -> EngineHandle:
        def configure(p: Any) -> None:
            p.calls.configure(CallConfig(no_answer_timeout=10.0))
            if port is not None:
                p.engine.config = dataclasses.replace(p.engine.config, udp_port=port)

        return sip_engine_factory(on_build=configure)

    return make


@pytest.fixture
def engine(start: Callable[..., EngineHandle]) -> EngineHandle:
    return start()


@pytest.fixture
def watchers() -> Iterator[Callable[..., Watcher]]:
    made: list[Watcher] = []

    def make(engine: EngineHandle, user: str, resource: str, **kw: Any) -> Watcher:
        port = engine.tcp_port if kw.get("transport") == "TCP" else engine.udp_port
        w = Watcher(engine.host, port, user, resource, **kw)
        made.append(w)
        return w

    yield make
    for w in made:
        w.close()


def states(engine: EngineHandle) -> Any:
    layer: CallLayer = engine.pbx.calls
    return layer.states


def put(engine: EngineHandle, schema: str, number: str, key: str, view: DialogView | None) -> None:
    engine.call(lambda: states(engine).put(schema, number, key, view))


def held(engine: EngineHandle) -> int:
    return engine.call(lambda: len(engine.pbx.blf.table))


def ringing(view_id: str = "d1", **kw: Any) -> DialogView:
    base: dict[str, Any] = {
        "id": view_id, "state": "early", "direction": "recipient", "call_id": "c1@x",
        "local_tag": "lt", "remote_tag": "rt", "remote": "101", "remote_name": "Acme 101",
    }  # fmt: skip
    return DialogView(**{**base, **kw})


def no_dialogs(n: Request) -> bool:
    return not dialogs_of(n)[1]


def state_is(state: str) -> Callable[[Request], bool]:
    def check(n: Request) -> bool:
        found = dialogs_of(n)[1]
        return bool(found) and found[0].findtext(f"{DIALOG_NS}state") == state

    return check


# ----------------------------------------------------------------------------- dialog


def test_lamp_follows_a_real_call(engine: EngineHandle, watchers: Any, phones: Any) -> None:
    """Story: 101's desk phone has a BLF key for 102. It is dark (no dialogs); 101's
    softphone calls 102 and the key blinks (early, with the call-id and tags a phone needs to
    pick the call up with Replaces); 102 answers and it is lit (confirmed); 101 hangs up and
    it goes dark again."""
    key = watchers(engine, "101", "102")
    ok = key.subscribe()
    assert ok.status == 200, ok
    assert ok.get("Expires") == "600"
    assert ok.get("Contact")
    first = key.next_notify()
    assert first.get("Event") == "dialog"
    assert first.get("Subscription-State").startswith("active;expires=")
    root, found = dialogs_of(first)
    assert found == []
    assert root.get("state") == "full"
    assert root.get("version") == "0"
    assert root.get("entity") == "sip:102@acme.test"

    a, b = phones("blf-101"), phones("blf-102")
    acc_a = register(a, engine, "101")
    register(b, engine, "102")
    ca = dial(a, acc_a, "102")
    incoming = b.incoming()
    cb = incoming["call"]
    invite_call_id = next(
        line.split(":", 1)[1].strip()
        for line in incoming["msg"].split("\r\n")
        if line.lower().startswith("call-id:")
    )
    b.answer(cb, 180)
    early = key.notify_until(state_is("early"))
    dialog = dialogs_of(early)[1][0]
    assert dialog.get("call-id") == invite_call_id  # the dialog 102's phone is in
    assert dialog.get("direction") == "recipient"
    assert dialog.get("remote-tag")  # the engine's tag towards 102
    identity = dialog.find(f"{DIALOG_NS}remote/{DIALOG_NS}identity")
    assert identity is not None
    assert identity.text == "sip:101@acme.test"
    local = dialog.find(f"{DIALOG_NS}local/{DIALOG_NS}identity")
    assert local is not None
    assert local.text == "sip:102@acme.test"
    assert int(dialogs_of(early)[0].get("version") or 0) >= 1

    b.answer(cb, 200)
    a.wait_state(ca, "CONFIRMED")
    confirmed = key.notify_until(state_is("confirmed"))
    answered = dialogs_of(confirmed)[1][0]
    assert answered.get("call-id") == invite_call_id
    assert answered.get("local-tag")  # 102's own tag, from its answer

    a.hangup(ca)
    b.wait_state(cb, "DISCONNECTED")
    key.notify_until(no_dialogs)
    versions = [int(dialogs_of(n)[0].get("version") or 0) for n in (first, early, confirmed)]
    assert versions == sorted(set(versions))  # rising, one per NOTIFY of the subscription


def test_watching_over_tcp(engine: EngineHandle, watchers: Any, world: Any) -> None:
    """NOTIFYs go back on the connection the phone subscribed on."""
    key = watchers(engine, "101", "102", transport="TCP")
    assert key.subscribe().status == 200
    assert no_dialogs(key.next_notify())
    put(engine, world.tenant_a.schema_name, "102", "k", ringing())
    assert len(dialogs_of(key.next_notify())[1]) == 1


def test_park_slot_is_watched(engine: EngineHandle, watchers: Any, world: Any) -> None:
    """Story: a BLF key for park slot 701: a call parked there (the park feature's
    ``ExtensionStates.put``) lights it, its retrieval turns it off."""
    schema = world.tenant_a.schema_name
    key = watchers(engine, "101", "701")
    assert key.subscribe().status == 200
    assert no_dialogs(key.next_notify())
    view = DialogView(id="park-701", state="confirmed", call_id="p@x", remote="102")
    put(engine, schema, "701", "park", view)
    lit = key.next_notify()
    root, found = dialogs_of(lit)
    assert root.get("entity") == "sip:701@acme.test"
    assert [d.get("id") for d in found] == ["park-701"]
    put(engine, schema, "701", "park", None)
    assert no_dialogs(key.next_notify())
    # Presence of a slot: always there, on the phone while a call is parked.
    presence = watchers(engine, "101", "701", event="presence")
    assert presence.subscribe().status == 200
    assert pidf_of(presence.next_notify())[:2] == ("open", False)


def test_changes_are_coalesced_and_unchanged_states_not_sent(
    engine: EngineHandle, watchers: Any, world: Any
) -> None:
    schema = world.tenant_a.schema_name
    key = watchers(engine, "101", "102")
    assert key.subscribe().status == 200
    key.next_notify()

    def burst() -> None:
        s = states(engine)
        for i in range(20):
            s.put(schema, "102", "k", ringing(f"d{i}"))
        s.put(schema, "102", "k", ringing("last", state="confirmed"))

    engine.call(burst)
    last = key.notify_until(state_is("confirmed"))
    assert [d.get("id") for d in dialogs_of(last)[1]] == ["last"]
    key.quiet(0.3)
    assert len(key.notifies) == 0
    # The same state once more: nothing is sent.
    put(engine, schema, "102", "k", ringing("last", state="confirmed"))
    key.quiet(0.3)


def test_hostile_display_name_is_escaped(engine: EngineHandle, watchers: Any, world: Any) -> None:
    """A caller's name with markup, quotes and a line break cannot break (or inject into) the
    watcher's XML."""
    schema = world.tenant_a.schema_name
    key = watchers(engine, "101", "102")
    assert key.subscribe().status == 200
    key.next_notify()
    evil = '</identity><dialog id="x"> & "q" \'a\'\r\nInjected: yes <!--'
    put(engine, schema, "102", "k", ringing(remote_name=evil, remote='9<9>"&'))
    notify = key.next_notify()
    _, found = dialogs_of(notify)  # well formed
    assert len(found) == 1
    identity = found[0].find(f"{DIALOG_NS}remote/{DIALOG_NS}identity")
    assert identity is not None
    assert identity.get("display") == evil.replace("\r\n", "  ")
    assert identity.text == 'sip:9<9>"&@acme.test'
    assert b"\r\nInjected" not in notify.body


# ----------------------------------------------------------------------------- presence


def test_presence_follows_registration_and_calls(
    engine: EngineHandle, watchers: Any, world: Any
) -> None:
    """Story: 101 watches 102's presence: closed while 102 has no phone registered, open once
    it registers, on the phone while it has a call, closed again when it unregisters."""
    schema = world.tenant_a.schema_name
    watch = watchers(engine, "101", "102", event="presence")
    assert watch.subscribe().status == 200
    first = watch.next_notify()
    assert first.get("Event") == "presence"
    assert pidf_of(first) == ("closed", False, "Offline")
    with engine.client() as phone:
        assert phone.register("102", "acme.test").status == 200
        assert pidf_of(watch.notify_until(lambda n: pidf_of(n)[0] == "open"))[1] is False
        put(engine, schema, "102", "k", ringing())
        assert pidf_of(watch.next_notify()) == ("open", True, "On the phone")
        put(engine, schema, "102", "k", None)
        assert pidf_of(watch.next_notify()) == ("open", False, "Available")
        assert phone.register("102", "acme.test", expires=0).status == 200
        watch.notify_until(lambda n: pidf_of(n)[0] == "closed")


# ----------------------------------------------------------------------------- lifecycle


def test_refresh_fetch_and_unsubscribe(engine: EngineHandle, watchers: Any, world: Any) -> None:
    key = watchers(engine, "101", "102")
    assert key.subscribe(expires=5).get("Expires") == "60"  # clamped
    assert dialogs_of(key.next_notify())[0].get("version") == "0"
    refreshed = key.refresh(7200)
    assert refreshed.status == 200
    assert refreshed.get("Expires") == "3600"
    again = key.next_notify()
    assert dialogs_of(again)[0].get("version") == "1"
    assert int(again.get("Subscription-State").rsplit("=", 1)[1]) > 3500
    assert held(engine) == 1
    gone = key.refresh(0)
    assert gone.status == 200
    assert gone.get("Expires") == "0"
    assert key.next_notify().get("Subscription-State") == "terminated;reason=timeout"
    assert held(engine) == 0
    assert key.refresh(600).status == 481

    fetch = watchers(engine, "101", "102")
    assert fetch.subscribe(expires=0).get("Expires") == "0"
    assert fetch.next_notify().get("Subscription-State") == "terminated;reason=timeout"
    default = watchers(engine, "101", "102")
    assert default.subscribe(expires=None).get("Expires") == "3600"
    assert held(engine) == 1


def test_subscription_expires_and_failed_notify_ends_it(
    engine: EngineHandle, watchers: Any, world: Any
) -> None:
    schema = world.tenant_a.schema_name
    engine.call(lambda: setattr(engine.pbx.blf, "min_expires", 1))
    short = watchers(engine, "101", "102")
    assert short.subscribe(expires=1).status == 200
    short.next_notify()
    final = short.next_notify(timeout=3)
    assert final.get("Subscription-State") == "terminated;reason=timeout"
    lost = watchers(engine, "101", "102")
    assert lost.subscribe().status == 200
    lost.next_notify()
    lost.answer_code = 481
    put(engine, schema, "102", "k", ringing())
    lost.next_notify()
    wait_until(lambda: held(engine) == 0)


def test_a_deleted_extension_ends_its_subscriptions(engine: EngineHandle, watchers: Any) -> None:
    """Story: 103 is deleted while a phone watches it: the watcher is told the resource is
    gone (``terminated;reason=noresource``) and is no longer held."""
    set_snapshot(engine, "acme.test", add_extension("103"))
    key = watchers(engine, "101", "103")
    assert key.subscribe().status == 200
    key.next_notify()

    def remove(snap: dict) -> None:
        del snap["extensions"]["103"]

    set_snapshot(engine, "acme.test", remove)
    final = key.next_notify()
    assert final.get("Subscription-State") == "terminated;reason=noresource"
    assert held(engine) == 0


def test_caps(engine: EngineHandle, watchers: Any) -> None:
    """A phone that subscribes again and again to one key keeps its newest few; beyond the
    engine's cap, 503."""
    per_contact = engine.call(lambda: engine.pbx.blf.table.per_contact)
    same = [watchers(engine, "101", "102") for _ in range(per_contact + 1)]
    for w in same:
        w.contact = same[0].contact  # one phone, one Contact
        assert w.subscribe().status == 200
    assert held(engine) == per_contact
    assert same[0].refresh(600).status == 481
    engine.call(lambda: setattr(engine.pbx.blf.table, "cap", per_contact))
    more = watchers(engine, "102", "101")
    refused = more.subscribe()
    assert refused.status == 503
    assert refused.get("Retry-After")


# ----------------------------------------------------------------------------- isolation


def _shape(resp: Any) -> tuple[int, str, tuple[str, ...]]:
    return resp.status, resp.reason, tuple(sorted(n for n, _ in resp.headers))


def test_unknown_and_foreign_resources_get_the_same_answer(
    engine: EngineHandle, watchers: Any
) -> None:
    """Nothing can be enumerated: an unknown number, beta's extension in beta's domain or in
    acme's, all answer the same 404."""
    answers = [
        watchers(engine, "101", "999").subscribe(),
        watchers(engine, "101", "201", resource_domain="beta.test").subscribe(),
        watchers(engine, "101", "201").subscribe(),
        watchers(engine, "101", "102", resource_domain="beta.test").subscribe(),
        watchers(engine, "101", "799").subscribe(),  # beyond the park slots
    ]
    assert {_shape(a) for a in answers} == {_shape(answers[0])}
    assert answers[0].status == 404
    assert held(engine) == 0


def test_another_tenant_learns_nothing(engine: EngineHandle, watchers: Any, world: Any) -> None:
    """Story: beta's 201 tries to watch acme's 101, naming it in acme's domain and in its own:
    404 both times, and no NOTIFY when 101 rings; beta's own 202 is watched as usual, and sees
    none of acme's calls."""
    a = world.tenant_a.schema_name
    b = world.tenant_b.schema_name
    spies = [
        watchers(engine, "201", "101", domain="beta.test", resource_domain="acme.test"),
        watchers(engine, "201", "101", domain="beta.test"),
    ]
    for spy in spies:
        assert spy.subscribe().status == 404
    own = watchers(engine, "201", "202", domain="beta.test")
    assert own.subscribe().status == 200
    assert no_dialogs(own.next_notify())
    put(engine, a, "101", "k", ringing())
    put(engine, a, "202", "k", ringing())  # acme has no 202: nobody's
    for spy in spies:
        spy.quiet(0.2)
    own.quiet(0.2)
    put(engine, b, "202", "k", ringing())
    assert len(dialogs_of(own.next_notify())[1]) == 1


def test_event_packages_and_accept(engine: EngineHandle, watchers: Any) -> None:
    for event in ("foo", ""):
        w = watchers(engine, "101", "102", event=event)
        resp = w.send(w.request())
        assert resp.status == 489, event
        assert resp.get_all("Allow-Events") == ["message-summary", "dialog", "presence"]
    picky = watchers(engine, "101", "102")
    picky.accept = "application/pidf+xml"
    resp = picky.subscribe()
    assert resp.status == 406
    assert resp.get("Accept") == "application/dialog-info+xml"
    assert held(engine) == 0


def test_malformed_subscribes_are_400(engine: EngineHandle, watchers: Any) -> None:
    """Broken headers and bodies are answered 400 and the engine carries on."""
    w = watchers(engine, "101", "102")
    cases: list[Request] = []
    bad_expires = w.request()
    bad_expires.headers = [(n, "soon" if n == "Expires" else v) for n, v in bad_expires.headers]
    cases.append(bad_expires)
    bad_contact = w.request()
    bad_contact.headers = [(n, "<sip:<<@" if n == "Contact" else v) for n, v in bad_contact.headers]
    cases.append(bad_contact)
    no_contact = w.request()
    no_contact.headers = [(n, v) for n, v in no_contact.headers if n != "Contact"]
    cases.append(no_contact)
    cases.append(w.request(body=b"<not-xml"))
    for req in cases:
        assert w.send(req).status == 400, bytes(req)
    # A body the parser cannot frame, over raw UDP: answered 400 (or dropped), no crash.
    raw = bytes(w.request()).replace(b"Content-Length: 0", b"Content-Length: 50")
    w.client.send_raw(raw)
    with pytest.raises(AssertionError):
        w.next_notify(timeout=0.3)
    # An in-dialog SUBSCRIBE with a broken Contact.
    ok = watchers(engine, "101", "102")
    assert ok.subscribe().status == 200
    ok.next_notify()
    broken = ok.request()
    broken.headers = [(n, "<sip:<<@" if n == "Contact" else v) for n, v in broken.headers]
    assert ok.send(broken).status == 400
    assert ok.refresh(600).status == 200


# ----------------------------------------------------------------------------- engines


def test_engines_share_their_dialogs(
    start: Callable[..., EngineHandle], watchers: Any, world: Any
) -> None:
    """Story: 101's desk phone subscribes on engine A; 102's call runs on engine B; the lamp
    follows it through Redis."""
    schema = world.tenant_a.schema_name
    engine_a, engine_b = start(), start()
    key = watchers(engine_a, "101", "102")
    assert key.subscribe().status == 200
    key.next_notify()
    put(engine_b, schema, "102", "k", ringing())
    lit = key.next_notify()
    assert [d.get("call-id") for d in dialogs_of(lit)[1]] == ["c1@x"]
    # A's own dialog of 102 comes first, B's after.
    put(engine_a, schema, "102", "mine", ringing("d0", call_id="c0@x"))
    both = key.next_notify()
    assert [d.get("call-id") for d in dialogs_of(both)[1]] == ["c0@x", "c1@x"]
    put(engine_b, schema, "102", "k", None)
    put(engine_a, schema, "102", "mine", None)
    key.notify_until(no_dialogs)
    # A subscriber arriving later on A sees B's dialog at once (read from the hash).
    put(engine_b, schema, "102", "k", ringing())
    key.notify_until(lambda n: bool(dialogs_of(n)[1]))
    late = watchers(engine_a, "102", "102")
    assert late.subscribe().status == 200
    assert len(dialogs_of(late.next_notify())[1]) == 1


def _free_udp_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def test_restarted_engine_rebuilds_its_subscriptions(
    start: Callable[..., EngineHandle], watchers: Any, world: Any
) -> None:
    """Story: the engine restarts (same id); 101's BLF key keeps working without subscribing
    again: the new engine sends it the current state, then the next change, in the same
    dialog with a higher CSeq."""
    schema = world.tenant_a.schema_name
    port = _free_udp_port()
    first = start(port=port)
    engine_id = first.pbx.engine_id
    key = watchers(first, "101", "102")
    assert key.subscribe().status == 200
    before = key.next_notify()
    first.run(first.pbx.stop())
    second = start(port=port)
    assert second.pbx.engine_id == engine_id
    rebuilt = key.next_notify()
    assert rebuilt.call_id == key.call_id
    assert rebuilt.from_.tag == key.to_tag
    assert rebuilt.cseq.seq > before.cseq.seq
    assert no_dialogs(rebuilt)
    put(second, schema, "102", "k", ringing())
    assert len(dialogs_of(key.next_notify())[1]) == 1
    # Its refresh reaches the same engine and is answered in the dialog.
    assert key.refresh(600).status == 200


def test_another_engine_adopts_a_dead_engines_subscriptions(
    start: Callable[..., EngineHandle], watchers: Any, world: Any, phones: Any
) -> None:
    """Story: engine A dies (its heartbeat key is gone); engine B takes its subscriptions
    over; 101's key lights for a new call through B without subscribing again."""
    first = start()
    key = watchers(first, "101", "102")
    assert key.subscribe().status == 200
    key.next_notify()
    first.run(first.pbx.stop())
    second = start()
    assert second.pbx.engine_id != first.pbx.engine_id
    adopted = key.next_notify()
    assert adopted.call_id == key.call_id
    assert no_dialogs(adopted)
    assert held(second) == 1
    a, b = phones("adopt-101"), phones("adopt-102")
    acc_a = register(a, second, "101")
    register(b, second, "102")
    dial(a, acc_a, "102")
    cb = b.incoming()["call"]
    b.answer(cb, 180)
    key.notify_until(state_is("early"))
    # The dead engine's hash is gone: adopted once only.
    r = redis.Redis.from_url(worker_redis_url())
    try:
        assert not r.exists(f"sip:subs:{first.pbx.engine_id}")
        assert r.hlen(f"sip:subs:{second.pbx.engine_id}") == 1
    finally:
        r.close()
