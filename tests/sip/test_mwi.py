"""Message-waiting indication over real SIP on loopback: ``message-summary`` subscriptions
(RFC 6665, RFC 3842) and unsolicited NOTIFYs, against the worker's Redis, with the conftest
tenants (acme.test 101/102, beta.test 201/202) published from the test process.

Mailbox changes are made as Django makes them: the box's :class:`MailboxIndex` written at
``VOICEMAIL_BOX`` and ``"<schema> <box>"`` published on ``VOICEMAIL_CHANGED``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from telephony.sip import contract
from telephony.sip.contract import MailboxIndex, VoicemailMessage
from telephony.sip.message import Request, make_response
from tests.sip.engine_fixtures import (
    SIP_PASSWORD,
    EngineHandle,
    SipTestClient,
    wait_until,
    worker_redis_url,
)
from tests.sip.subscribekit import Subscriber


@pytest.fixture
def r(world: Any) -> Iterator[redis.Redis]:
    """This worker's Redis, without mailbox indexes before and after the test (other tests
    leave some: their database rows roll back, Redis does not)."""
    client = redis.Redis.from_url(worker_redis_url(), decode_responses=True)

    def clear() -> None:
        for key in client.scan_iter(match="sip:vm:*"):
            client.delete(key)

    clear()
    yield client
    clear()
    client.close()


def set_mailbox(r: redis.Redis, schema: str, box: str, new: int, saved: int = 0) -> None:
    """Write the box's index and announce it, as ``audio`` does on commit."""

    def msgs(kind: str, n: int) -> tuple[VoicemailMessage, ...]:
        return tuple(
            VoicemailMessage(id=f"{kind}{i}", path=f"/tmp/{kind}{i}.wav", caller="102")
            for i in range(n)
        )

    index = MailboxIndex(new=msgs("n", new), saved=msgs("s", saved))
    r.set(contract.key("", contract.VOICEMAIL_BOX, schema=schema, box=box), index.to_json())
    r.publish(contract.VOICEMAIL_CHANGED, f"{schema} {box}")


@pytest.fixture
def subscriber(sip_engine: EngineHandle) -> Iterator[Any]:
    made: list[Subscriber] = []

    def make(user: str = "101", domain: str = "acme.test", transport: str = "UDP") -> Subscriber:
        port = sip_engine.addresses[transport.upper()][1]
        s = Subscriber(
            sip_engine.host,
            port,
            user,
            user,
            domain=domain,
            event="message-summary",
            transport=transport,
        )
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def body(notify: Request) -> str:
    return notify.body.decode()


def held(engine: EngineHandle, schema: str, box: str) -> int:
    return engine.call(lambda: len(engine.pbx.mwi.table.of(schema, box)))


def test_subscribe_and_lamp_follows_the_mailbox(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    """Story: a desk phone of acme's extension 101 subscribes to its mailbox; its lamp is off
    (0/0); a caller leaves two messages and the lamp turns on (2/0); 101 listens to them and
    deletes them and the lamp turns off; the phone unsubscribes and hears no more."""
    schema = world.tenant_a.schema_name
    phone = subscriber("101")
    first = phone.send(phone.request())
    assert first.status == 401
    assert first.get("Server") == "TestPBX"
    ok = phone.subscribe()
    assert ok.status == 200, ok
    assert ok.get("Expires") == "600"
    assert ok.to.tag
    assert ok.get("Contact")
    notify = phone.next_notify()
    assert notify.get("Event") == "message-summary"
    assert notify.get("Subscription-State").startswith("active;expires=")
    assert 590 <= int(notify.get("Subscription-State").rsplit("=", 1)[1]) <= 600
    assert notify.get("Content-Type") == "application/simple-message-summary"
    assert notify.to.tag == phone.from_tag
    assert notify.from_.tag == ok.to.tag
    assert body(notify) == (
        "Messages-Waiting: no\r\nMessage-Account: sip:101@acme.test\r\nVoice-Message: 0/0 (0/0)\r\n"
    )
    assert held(sip_engine, schema, "101") == 1

    set_mailbox(r, schema, "101", new=2)
    notify = phone.next_notify()
    assert "Messages-Waiting: yes\r\n" in body(notify)
    assert "Voice-Message: 2/0 (0/0)\r\n" in body(notify)

    # The same counts again (another box's change, a duplicate message): no NOTIFY.
    r.publish(contract.VOICEMAIL_CHANGED, f"{schema} 101")
    phone.quiet(0.3)

    set_mailbox(r, schema, "101", new=0, saved=1)
    notify = phone.next_notify()
    assert "Messages-Waiting: no\r\n" in body(notify)
    assert "Voice-Message: 0/1 (0/0)\r\n" in body(notify)

    # Refresh: new expiry, a full NOTIFY.
    refreshed = phone.refresh(3000)
    assert refreshed.status == 200
    assert refreshed.get("Expires") == "3000"
    notify = phone.next_notify()
    assert notify.get("Subscription-State").startswith("active;expires=")
    assert int(notify.get("Subscription-State").rsplit("=", 1)[1]) > 2900

    gone = phone.refresh(0)
    assert gone.status == 200
    final = phone.next_notify()
    assert final.get("Subscription-State") == "terminated;reason=timeout"
    assert held(sip_engine, schema, "101") == 0
    set_mailbox(r, schema, "101", new=5)
    phone.quiet(0.3)
    # Its dialog is gone: a refresh now is 481.
    assert phone.refresh(600).status == 481


def test_subscription_over_tcp(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    """NOTIFYs go back on the connection the phone subscribed on."""
    phone = subscriber("101", transport="TCP")
    assert phone.subscribe().status == 200
    assert "Voice-Message: 0/0" in phone.next_notify().body.decode()
    set_mailbox(r, world.tenant_a.schema_name, "101", new=4)
    assert "Voice-Message: 4/0" in phone.next_notify().body.decode()


def test_subscriptions_per_extension_are_bounded(
    sip_engine: EngineHandle, subscriber: Any, world: Any
) -> None:
    """An eleventh subscription of one mailbox drops the oldest (a rebooted phone's
    leftover), which then answers 481 to its refresh."""
    schema = world.tenant_a.schema_name
    made = [subscriber("101") for _ in range(11)]
    for s in made:
        assert s.subscribe().status == 200
    assert held(sip_engine, schema, "101") == 10
    assert made[0].refresh(600).status == 481
    assert made[1].refresh(600).status == 200


def test_a_fetch_gets_the_state_once(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    """SUBSCRIBE with Expires: 0 (RFC 6665 4.4.3): one final NOTIFY, no subscription."""
    set_mailbox(r, world.tenant_a.schema_name, "101", new=2, saved=1)
    phone = subscriber("101")
    ok = phone.subscribe(expires=0)
    assert ok.status == 200
    assert ok.get("Expires") == "0"
    notify = phone.next_notify()
    assert notify.get("Subscription-State") == "terminated;reason=timeout"
    assert "Voice-Message: 2/1 (0/0)" in notify.body.decode()
    assert held(sip_engine, world.tenant_a.schema_name, "101") == 0


def test_a_subscriber_that_cannot_read_the_summary_gets_406(
    sip_engine: EngineHandle, subscriber: Any, world: Any
) -> None:
    """Its Accept lists only other types: 406 after authentication, naming ours."""
    phone = subscriber("101")
    phone.accept = "application/pidf+xml"
    resp = phone.subscribe()
    assert resp.status == 406
    assert resp.get("Accept") == "application/simple-message-summary"
    assert held(sip_engine, world.tenant_a.schema_name, "101") == 0


def test_expires_is_clamped_and_defaults(sip_engine: EngineHandle, subscriber: Any) -> None:
    short = subscriber("101")
    assert short.subscribe(expires=5).get("Expires") == "60"
    long = subscriber("101")
    assert long.subscribe(expires=86400).get("Expires") == "3600"
    default = subscriber("102")
    assert default.subscribe(expires=None).get("Expires") == "3600"


def test_subscription_expires_without_refresh(
    sip_engine: EngineHandle, subscriber: Any, world: Any
) -> None:
    """A subscription nobody refreshes ends with a final NOTIFY and is forgotten."""
    schema = world.tenant_a.schema_name
    sip_engine.call(lambda: setattr(sip_engine.pbx.mwi, "min_expires", 1))
    phone = subscriber("101")
    assert phone.subscribe(expires=1).status == 200
    assert phone.next_notify().get("Subscription-State").startswith("active")
    final = phone.next_notify(timeout=3)
    assert final.get("Subscription-State") == "terminated;reason=timeout"
    assert held(sip_engine, schema, "101") == 0


def test_failed_notify_ends_the_subscription(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    """A phone that answers a NOTIFY 481 (it lost the dialog) is no longer notified."""
    schema = world.tenant_a.schema_name
    phone = subscriber("101")
    assert phone.subscribe().status == 200
    phone.next_notify()
    phone.answer_code = 481
    set_mailbox(r, schema, "101", new=1)
    phone.next_notify()
    wait_until(lambda: held(sip_engine, schema, "101") == 0)


def test_other_event_packages_are_489(sip_engine: EngineHandle, subscriber: Any) -> None:
    phone = subscriber("101")
    for event in ("conference", None):
        resp = phone.send(phone.request(event=event))
        assert resp.status == 489, event
        assert resp.get_all("Allow-Events") == ["message-summary", "dialog", "presence"]


def test_wrong_password_and_unknown_users_get_the_registrars_401(
    sip_engine: EngineHandle, subscriber: Any
) -> None:
    answers = [
        subscriber("101").subscribe(password="not-it"),
        subscriber("999").subscribe(),
        subscriber("101", "nowhere.test").subscribe(),
    ]
    for resp in answers:
        assert resp.status == 401
        realms = [h.split(", nonce=")[0] for h in resp.get_all("WWW-Authenticate")]
        assert realms == [f'Digest realm="{resp.from_.uri.host}"'] * 2
    assert {n for n, _ in answers[0].headers} == {n for n, _ in answers[1].headers}


def test_another_mailbox_cannot_be_watched(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    """Story: extension 101 of acme tries to watch 102's mailbox and beta's 201: refused,
    and no count of theirs ever reaches it."""
    set_mailbox(r, world.tenant_b.schema_name, "201", new=7)
    set_mailbox(r, world.tenant_a.schema_name, "102", new=3)
    colleague = subscriber("101")
    colleague.ruri = "sip:102@acme.test"
    colleague.to = "<sip:102@acme.test>"
    assert colleague.subscribe().status == 403
    other_tenant = subscriber("101")
    other_tenant.ruri = "sip:201@beta.test"
    other_tenant.to = "<sip:201@beta.test>"
    assert other_tenant.subscribe().status == 404
    # Credentials of beta's 201 in acme's realm: unknown there.
    assert subscriber("201", "acme.test").subscribe().status == 401
    for s in (colleague, other_tenant):
        s.quiet(0.2)
    assert held(sip_engine, world.tenant_a.schema_name, "102") == 0
    assert held(sip_engine, world.tenant_b.schema_name, "201") == 0


def test_unsolicited_notify_reaches_a_registered_phone(
    sip_engine: EngineHandle, r: redis.Redis, world: Any
) -> None:
    """Story: a Yealink that never subscribes is registered as 102; a message for 102 lights
    its lamp through an unsolicited NOTIFY; the same counts again send nothing."""
    schema = world.tenant_a.schema_name
    with sip_engine.client() as phone:
        assert phone.register("102", "acme.test").status == 200
        set_mailbox(r, schema, "102", new=1, saved=2)
        notify = wait_for_notify(phone, "Voice-Message: 1/2")
        assert notify.get("Event") == "message-summary"
        assert notify.uri.user == "102"
        assert notify.from_.uri.host == "acme.test"
        assert notify.get("Content-Type") == "application/simple-message-summary"
        assert notify.body.decode() == (
            "Messages-Waiting: yes\r\nMessage-Account: sip:102@acme.test\r\n"
            "Voice-Message: 1/2 (0/0)\r\n"
        )
        r.publish(contract.VOICEMAIL_CHANGED, f"{schema} 102")
        with pytest.raises(TimeoutError):
            phone.recv(0.3)
        set_mailbox(r, schema, "102", new=0, saved=3)
        assert "Messages-Waiting: no" in wait_for_notify(phone, "0/3").body.decode()


def test_a_phone_that_registers_learns_of_waiting_messages_at_once(
    sip_engine: EngineHandle, r: redis.Redis, world: Any
) -> None:
    """Story: a desk phone reboots while 102 has a new message: its registration brings the
    lamp on, without waiting for the mailbox to change; a refresh sends nothing more."""
    schema = world.tenant_a.schema_name
    key = contract.key("", contract.VOICEMAIL_BOX, schema=schema, box="102")
    index = contract.MailboxIndex(new=(contract.VoicemailMessage("m", "/x.wav"),))
    r.set(key, index.to_json())  # no announcement: nothing changes now
    with sip_engine.client() as phone:
        assert phone.register("102", "acme.test").status == 200
        assert "Voice-Message: 1/0" in wait_for_notify(phone, "Messages-Waiting: yes").body.decode()
        assert phone.register("102", "acme.test").status == 200  # a refresh
        with pytest.raises(TimeoutError):
            phone.recv(0.3)
        # It reboots (unregisters, registers again): the lamp is set again.
        assert phone.register("102", "acme.test", expires=0).status == 200
        assert phone.register("102", "acme.test").status == 200
        assert "Voice-Message: 1/0" in wait_for_notify(phone, "Messages-Waiting: yes").body.decode()


def test_a_subscribed_phone_gets_no_unsolicited_copy(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    schema = world.tenant_a.schema_name
    phone = subscriber("101")
    reg = phone.client.register("101", "acme.test", algorithm="MD5")
    assert reg.status == 200
    assert phone.subscribe().status == 200
    phone.next_notify()
    set_mailbox(r, schema, "101", new=1)
    notify = phone.next_notify()
    assert notify.to.tag == phone.from_tag  # in its dialog
    phone.quiet(0.3)  # and no out-of-dialog copy


def test_malformed_channel_messages_are_ignored(
    sip_engine: EngineHandle, subscriber: Any, r: redis.Redis, world: Any
) -> None:
    phone = subscriber("101")
    assert phone.subscribe().status == 200
    phone.next_notify()
    for junk in ("", "onlyone", "a b c", "nosuchschema 101", f"{world.tenant_a.schema_name} 999"):
        r.publish(contract.VOICEMAIL_CHANGED, junk)
    phone.quiet(0.2)
    set_mailbox(r, world.tenant_a.schema_name, "101", new=1)
    assert "Voice-Message: 1/0" in phone.next_notify().body.decode()


def wait_for_notify(phone: SipTestClient, containing: str, timeout: float = 3.0) -> Request:
    """The first NOTIFY whose body contains ``containing`` (each NOTIFY is answered 200).

    Others are skipped: pub/sub channels are shared by every database of the test Redis
    server, so a parallel worker's announcement of the same schema and box may make this
    worker's engine send the (unchanged) state of its own database once more."""
    deadline = time.monotonic() + timeout
    while True:
        msg = phone.recv(max(0.05, deadline - time.monotonic()))
        if isinstance(msg, Request) and msg.method == "NOTIFY":
            phone.send_raw(bytes(make_response(msg, 200)))
            if containing in msg.body.decode():
                return msg


def test_pjsua2_phone_lamp_follows_its_mailbox(
    sip_engine: EngineHandle, phones: Any, r: redis.Redis, world: Any
) -> None:
    """Story: a real phone (pjsua2) with MWI on registers as 101 and subscribes to its
    mailbox; a new message turns its lamp on (in its subscription's dialog), and off again
    when the message is heard."""
    schema = world.tenant_a.schema_name
    phone = phones("mwi-101", mwi=True)
    proxy = f"sip:{sip_engine.host}:{sip_engine.udp_port};lr"
    phone.account("101", "acme.test", proxy, SIP_PASSWORD, mwi=True)
    first = phone.mwi()
    assert first["waiting"] == "no"
    assert first["voice"] == "0/0 (0/0)"
    assert first["in_dialog"]
    wait_until(lambda: held(sip_engine, schema, "101") == 1)
    set_mailbox(r, schema, "101", new=1)
    lit = phone.mwi(waiting="yes")
    assert lit["voice"] == "1/0 (0/0)"
    assert lit["in_dialog"]
    set_mailbox(r, schema, "101", new=0, saved=1)
    assert phone.mwi(waiting="no")["voice"] == "0/1 (0/0)"
    assert held(sip_engine, schema, "101") == 1  # its 200s kept the subscription


def test_pjsua2_phone_without_subscription_gets_unsolicited_mwi(
    sip_engine: EngineHandle, phones: Any, r: redis.Redis, world: Any
) -> None:
    """Story: a phone that only registers (no MWI subscription) still sees its lamp light:
    the engine sends it an unsolicited NOTIFY, which pjsua accepts."""
    schema = world.tenant_a.schema_name
    phone = phones("plain-102", mwi=True)
    proxy = f"sip:{sip_engine.host}:{sip_engine.udp_port};lr"
    phone.account("102", "acme.test", proxy, SIP_PASSWORD)
    set_mailbox(r, schema, "102", new=3)
    lit = phone.mwi(waiting="yes")
    assert lit["voice"] == "3/0 (0/0)"
    assert not lit["in_dialog"]
    assert held(sip_engine, schema, "102") == 0


def test_django_voicemail_changes_light_and_clear_the_lamp(
    sip_engine: EngineHandle,
    subscriber: Any,
    r: redis.Redis,
    world: Any,
    in_tenant: Any,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Story, end to end through the real contract: a caller leaves a message for 101 (the
    engine's ``voicemail.left`` applied by Django, which writes the box's index and announces
    it); 101's subscribed phone lights its lamp; 101 saves the message in the portal's action
    and the lamp goes off."""
    import shutil

    from django.db import transaction
    from django_tenants.utils import schema_context

    from audio import actions
    from audio.models import VoicemailMessage as MessageRow
    from pbx.audit import SYSTEM
    from telephony.engine import requests
    from tests.audio.media import tone

    settings.MEDIA_ROOT = tmp_path / "media"
    schema = world.tenant_a.schema_name
    folder = settings.MEDIA_ROOT / "tenants" / schema / "voicemail" / "101"
    folder.mkdir(parents=True)
    recording = folder / "m1.wav"
    shutil.copy(tone(tmp_path / "m1.wav", seconds=1, rate=8000, channels=1), recording)

    phone = subscriber("101")
    assert phone.subscribe().status == 200
    assert "Messages-Waiting: no" in phone.next_notify().body.decode()

    left = {
        "schema": schema, "type": "voicemail.left", "box": "101", "message": "m1",
        "path": str(recording), "seconds": "1.0", "caller": "102", "call_id": "c-1",
    }  # fmt: skip
    with (
        django_capture_on_commit_callbacks(execute=True),
        schema_context(schema),
        transaction.atomic(),
    ):
        requests.handle(left)
    lit = phone.next_notify().body.decode()
    assert "Messages-Waiting: yes" in lit
    assert "Voice-Message: 1/0 (0/0)" in lit

    with in_tenant(world.tenant_a), django_capture_on_commit_callbacks(execute=True):
        actions.do_save_message(MessageRow.objects.get(message_id="m1"), actor=SYSTEM)
    off = phone.next_notify().body.decode()
    assert "Messages-Waiting: no" in off
    assert "Voice-Message: 0/1 (0/0)" in off
