"""The engine contract (``telephony.sip.contract``): what Django writes the engine reads.

Redis names with the prefix, snapshots field for field, event types, control messages, HA1s.

Story: an operator runs two PBXs on one Redis and gives one of them ``PBX_SIP_REDIS_PREFIX``;
its routing snapshots, call events and engine state must all live under that prefix, where
its own engine (started with the same prefix) finds them and the other PBX does not.
"""

import asyncio
import json
import secrets
from dataclasses import fields

import pytest
import redis
import redis.asyncio as aioredis
from django.conf import settings

from branding.effective import brand_for_tenant
from telephony.engine.cdr import CdrConsumer
from telephony.engine.snapshots import build_snapshot, publish_tenant, unpublish_domain
from telephony.engine.store import redis_key
from telephony.sip import contract
from telephony.sip.contract import (
    EXTENSION_FIELDS,
    CheckSync,
    ControlMessage,
    EventType,
    ExtensionSnapshot,
    HangUpCall,
    RegistrationAction,
    TenantSnapshot,
    ha1,
)
from telephony.sip.directory import Directory


@pytest.fixture
def prefix(settings):
    settings.SIP_REDIS_PREFIX = f"pbx{secrets.token_hex(3)}:"
    yield settings.SIP_REDIS_PREFIX
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter(match=settings.SIP_REDIS_PREFIX + "*"):
        client.delete(key)
    client.close()


def _load(prefix: str, domain: str):
    async def load():
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            directory = Directory(client, prefix=prefix)
            await directory.load_all()
            return directory.tenant(domain)
        finally:
            await client.aclose()

    return asyncio.run(load())


def test_a_prefixed_pbx_publishes_where_its_engine_reads(world, prefix):
    domain = world.tenant_a.sip_domain
    publish_tenant(world.tenant_a.pk)
    try:
        client = redis.Redis.from_url(settings.REDIS_URL)
        assert client.exists(prefix + contract.SNAPSHOT.format(domain=domain))
        assert client.sismember(prefix + contract.DOMAINS, domain)
        client.close()
        mine = _load(prefix, domain)
        assert mine is not None
        assert mine.schema == world.tenant_a.schema_name
        assert _load("other:", domain) is None  # another PBX on this Redis sees nothing
    finally:
        unpublish_domain(domain)


def test_django_side_names_carry_the_prefix(prefix):
    assert CdrConsumer(redis=None).stream == prefix + contract.EVENTS
    assert redis_key(contract.CALLS, schema="t_x") == prefix + "sip:calls:t_x"
    assert redis_key(contract.BAN, ip="192.0.2.1") == prefix + "sip:ban:192.0.2.1"


def test_cdr_lock_fanout_leader_and_live_state_carry_the_prefix(prefix):
    from events.live import LiveState

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        LiveState(client).put_dnd("t_x", {"101": True})
        assert client.hget(prefix + "live:t_x:dnd", "101") == b"1"
        assert not client.exists("live:t_x:dnd")  # nothing outside this PBX's prefix
    finally:
        client.close()
    assert redis_key(contract.CDR_LOCK) == prefix + "sip:cdr:lock"
    assert redis_key(contract.FANOUT_LEADER) == prefix + "events:fanout:leader"


# ------------------------------------------------------------------------------- snapshots


def _extension(**overrides) -> ExtensionSnapshot:
    values = {
        "number": "150",
        "display_name": "Front Desk",
        "enabled": False,
        "dnd": True,
        "ha1_md5": "a" * 32,
        "ha1_sha256": "b" * 64,
        "max_registrations": 5,
        "allowed_transports": frozenset({"tcp", "tls"}),
        "caller_id_name": "Reception",
        "caller_id_number": "+4930123",
        "forward_always": "+4930777",
        "forward_busy": "102",
        "forward_no_answer": "+4930999",
        "no_answer_timeout": 33.0,
        "outbound_caller_ids": ("+4930100", "+4930200"),
        "call_scope": "national",
        "voicemail": contract.VoicemailSettings(
            enabled=False,
            pin=contract.pin_hash("2468", "salt"),
            greeting_unavailable="/m/t/g1.wav",
            greeting_busy="/m/t/g2.wav",
            max_seconds=60,
            always=True,
            busy=False,
            no_answer=False,
        ),
        "hot_desk": True,
        "hotdesk_user": "101",
        "speed_dials": {"2": "+4930555", "07": "102"},
        "pickup_groups": ("3", "9"),
        "recording": "always",
        "srtp": "required",
        "web_softphone": False,
    }
    return ExtensionSnapshot(**{**values, **overrides})


def _tenant(**overrides) -> TenantSnapshot:
    values = {
        "tenant_id": 7,
        "schema": "t_acme",
        "domain": "acme.test",
        "status": "suspended",
        "anchor_media": True,
        "extensions": {"150": _extension(), "151": _extension(number="151", dnd=False)},
        "product": "Acme Voice",
        "max_concurrent_calls": 4,
        "sip_digest_sha256": True,
        "srtp": "optional",
        "routing": _routing(),
        "media": _media(),
        "team": _team(),
        "recording": contract.RecordingSnapshot("on_demand", "/m/t/recorded.wav"),
        "billing": contract.BillingSnapshot(
            "prepaid",
            "EUR",
            {
                "49": contract.Rate("49", 200, 10, 30, 6, 5, 3),
                "4930": contract.Rate("4930", 100),
            },
        ),
        "callcenter": contract.CallCenterSnapshot({"820": _queue()}),
    }
    return TenantSnapshot(**{**values, **overrides})


def _queue() -> contract.Queue:
    """A queue with every field off its default."""
    return contract.Queue(
        number="820",
        name="Support",
        enabled=False,
        strategy=contract.QueueStrategy.SKILLS,
        agents=(contract.QueueAgent("150", {"de": 5}), contract.QueueAgent("151")),
        required_skills={"de": 3},
        ring_seconds=12.0,
        max_wait_seconds=0.0,
        max_callers=9,
        overflow=contract.RouteTarget("voicemail", "150"),
        wait_without_agents=True,
        wrap_up_seconds=0.0,
        music_class="3",
        greeting="/m/t/queue.wav",
        announce_position=False,
        announce_wait=False,
        announce_seconds=0.0,
        sla_seconds=45.0,
        sla_percent=90,
        sticky=True,
        vip=("+4930111",),
        blacklist=("+4930X.",),
        callback=True,
        callback_prefix="0",
        auto_ready=False,
        supervisors=("151",),
        recording="always",
        caller_id_prefix="Support:",
    )


def test_queue_fields_all_round_trip_and_read_tolerantly():
    queue = _queue()
    for f in fields(contract.Queue):
        assert getattr(queue, f.name) != getattr(contract.Queue("1"), f.name), f.name
    assert contract.Queue.read(json.loads(json.dumps(queue.to_dict()))) == queue
    bad = contract.Queue.read(
        {
            "number": "821",
            "strategy": "random",
            "agents": [{"number": "150", "skills": {"de": 99, "fr": "x", "": 2}}, 7, {}],
            "ring_seconds": -4,
            "max_callers": "lots",
            "sla_percent": 400,
            "caller_id_prefix": "Sales\r\nX-Evil: 1",
        }
    )
    assert bad is not None
    assert bad.strategy == contract.QueueStrategy.LONGEST_IDLE
    assert bad.agents == (contract.QueueAgent("150", {"de": 10}),)
    assert (bad.ring_seconds, bad.max_callers, bad.sla_percent) == (20.0, 0, 100)
    assert "\r" not in bad.caller_id_prefix
    assert "\n" not in bad.caller_id_prefix
    assert contract.Queue.read({"name": "no number"}) is None


def test_agent_status_and_skills():
    status = contract.AgentStatus("wrap_up", "Lunch\r\nbreak", since=10.0, until=20.0, by="phone")
    read = contract.AgentStatus.read(status.to_json())
    assert read is not None
    assert read.reason == "Lunchbreak"
    assert read.effective(19.9) == "wrap_up"
    assert read.effective(20.0) == "ready"  # a wrap-up that is over is ready
    assert contract.AgentStatus.read('{"state": "asleep"}') is None
    assert contract.AgentStatus.read(b"not json") is None
    assert contract.clean_reason("x" * 80) == "x" * contract.AGENT_REASON_MAX
    agent = contract.QueueAgent("150", {"de": 5, "fr": 2})
    assert agent.qualifies({"de": 5})
    assert not agent.qualifies({"de": 6})
    assert not agent.qualifies({"es": 1})
    assert agent.level({"de": 1, "fr": 1}) == 7
    assert contract.Queue("1").default_status().state == "ready"
    assert contract.Queue("1", auto_ready=False).default_status().state == "logged_out"


def test_queue_lists_match_numbers_and_patterns():
    entries = ("+4930111", "+4989X.")
    assert contract.number_listed(entries, "+4930111")
    assert contract.number_listed(entries, "+49891234")
    assert not contract.number_listed(entries, "+4930112")
    assert not contract.number_listed(entries, "")
    center = _tenant().callcenter
    assert center.supervised_by("151") == ("820",)
    assert center.supervised_by("150") == ()
    assert [q.number for q in center.queues_of("151")] == ["820"]
    live = contract.QueueLive((contract.WaitingCaller("c1", "+4930", "A", 5.0, vip=True),), 6.0)
    assert contract.QueueLive.read(live.to_json()) == live
    assert contract.QueueLive.read("[1]") == contract.QueueLive()


def _team() -> contract.TeamSnapshot:
    group = contract.RingGroup(
        number="600",
        name="Sales",
        strategy=contract.RingStrategy.HUNT,
        members=(contract.RingMember("150"), contract.RingMember("+4930777", external=True)),
        member_seconds=15.0,
        total_seconds=45.0,
        skip_busy=False,
        caller_id_prefix="Sales:",
        overflow=contract.RouteTarget("voicemail", "150"),
        enabled=False,
    )
    paging = contract.PagingGroup(number="650", name="Floor", members=("150", "151"), duplex=True)
    return contract.TeamSnapshot(
        ring_groups={"600": group},
        paging={"650": paging},
        park=contract.ParkSettings(first=801, count=5, timeout=60.0),
    )


def _media() -> contract.MediaSnapshot:
    """Every field differs from its default, the menu's too."""
    target = contract.RouteTarget("voicemail", "150")
    menu = contract.IvrMenu(
        number="800",
        name="Main",
        greeting="/m/t/welcome.wav",
        invalid="/m/t/invalid.wav",
        options=(contract.IvrOption("1", contract.RouteTarget("extension", "150")),),
        dial_extension=False,
        timeout=7.0,
        tries=2,
        timeout_target=target,
        use_hours=True,
        closed_greeting="/m/t/closed.wav",
        closed_target=target,
    )
    return contract.MediaSnapshot(
        language="de",
        prompts={"welcome": "/m/t/w.wav"},
        moh=("/m/t/moh1.wav",),
        moh_classes={"3": ("/m/t/moh2.wav",)},
        ivrs={"800": menu},
        codes={"dnd_on": "*11"},
        disa={"4": contract.Disa("4", "Road warriors", contract.pin_hash("9876", "s"), "150")},
    )


def test_feature_codes_and_mailbox_index_read_tolerantly():
    media = contract.MediaSnapshot()
    assert media.feature("*78") == ("dnd_on", "")
    assert media.feature("*72101") == ("forward_always_on", "101")
    assert media.feature("*72") is None  # needs a number
    assert media.feature("*7") is None
    bad = contract.MediaSnapshot.read({"codes": {"nope": "*1", "dnd_on": ""}, "ivrs": [1, {}]})
    assert bad.codes == {}
    assert bad.ivrs == {}
    raw = json.dumps({"new": [{"id": "a", "path": "/x.wav", "at": "nan"}, {"id": "b"}], "saved": 3})
    index = contract.MailboxIndex.from_json(raw)
    assert [m.id for m in index.new] == ["a"]
    assert index.new[0].at == 0.0
    assert index.saved == ()
    assert contract.MailboxIndex.from_json(b"{nope") == contract.MailboxIndex()
    assert contract.pin_matches(contract.pin_hash("1234"), "1234")
    assert not contract.pin_matches(contract.pin_hash("1234"), "1243")
    assert not contract.pin_matches("garbage", "1234")


def _routing() -> contract.RoutingSnapshot:
    """Every field differs from its default, each rule's too."""
    target = contract.RouteTarget("extension", "101")
    return contract.RoutingSnapshot(
        country="DE",
        time_zone="Europe/Berlin",
        hours=True,
        weekly=(((540, 1020),),) * 5 + ((), ()),
        holidays=(contract.Holiday("2026-12-24", "2026-12-26", True, "Christmas"),),
        inbound=(
            contract.InboundRule(
                7,
                "+4930111[0-5]X",
                "pattern",
                "+4930119",
                "+49.",
                False,
                target,
                contract.RouteTarget("external", "+4930999"),
                contract.RouteTarget("reject", "486"),
                "Main line",
            ),
        ),
        blacklist=(contract.Blocked("+49900", True, "reject"),),
        outbound=(
            contract.OutboundRule(
                3, (4, 5), "0", "0N.", 4, 15, frozenset({"101"}), 1, "+49", "+4930100", "Germany"
            ),
        ),
        emergency=(contract.EmergencyNumber("112", (4,), "+4930100"),),
        privacy_code="*31",
        blocked_prefixes=("+49900",),
        allowed_countries=frozenset({"DE", "AT"}),
        caller_id="+4930100",
        emergency_caller_id="+4930101",
    )


def test_routing_snapshot_round_trips_and_every_field_is_written():
    routing = _routing()
    defaults = contract.RoutingSnapshot()
    for f in fields(contract.RoutingSnapshot):
        assert getattr(routing, f.name) != getattr(defaults, f.name), f.name
    assert contract.RoutingSnapshot.read(json.loads(json.dumps(routing.to_dict()))) == routing


def test_routing_snapshot_parse_drops_bad_entries_and_takes_defaults():
    raw = {
        "weekly": [[[600, 540], [60, 120], "x"], "nope"],
        "inbound": [{"id": 1, "number": "+4930111", "match": "fuzzy", "in_hours": "101"}, 3],
        "outbound": [{"id": "x", "trunks": [1, "b", 2], "extensions": "101"}],
        "blacklist": [{"number": "+49900", "action": "explode"}],
        "allowed_countries": ["de"],
    }
    routing = contract.RoutingSnapshot.read(raw)
    assert routing.weekly[0] == ((60, 120),)
    assert routing.weekly[1:] == ((),) * 6
    (rule,) = routing.inbound
    assert (rule.match, rule.in_hours) == ("exact", None)
    assert routing.outbound[0].trunks == (1, 2)
    assert routing.outbound[0].extensions == frozenset()
    assert routing.blacklist[0].action == "busy"
    assert routing.allowed_countries == frozenset({"DE"})
    assert contract.RoutingSnapshot.read("not a dict") == contract.RoutingSnapshot()


def test_carrier_snapshot_round_trips_and_tolerates_bad_rows():
    trunk = contract.TrunkSnapshot(
        9,
        "Carrier",
        "register",
        True,
        "sip.carrier.test",
        5070,
        "tcp",
        "proxy.test:5060",
        "carrier",
        "acct",
        "auth",
        "s3cret",
        600,
        ("192.0.2.0/24",),
        5090,
        "US",
        ("PCMU",),
        "info",
        10,
        "acct",
        "carrier.test",
        "rpid",
        False,
        "+15550100",
        30,
        frozenset({"t_acme"}),
        "always",
    )
    snap = contract.CarrierSnapshot({9: trunk}, {"+15550100": "acme.test"})
    assert contract.CarrierSnapshot.from_json(snap.to_json()) == snap
    bad = json.dumps({"trunks": [{"id": 0}, "x", {"id": 2, "kind": "odd"}], "numbers": [1]})
    parsed = contract.CarrierSnapshot.from_json(bad)
    assert list(parsed.trunks) == [2]
    assert parsed.trunks[2].kind == "ip"
    assert parsed.numbers == {}
    assert contract.CarrierSnapshot.from_json(b"{nope") == contract.CarrierSnapshot()


@pytest.mark.parametrize(
    ("pattern", "number", "matches"),
    [
        ("NXXNXXXXXX", "2125551234", True),
        ("NXXNXXXXXX", "1125551234", False),
        ("011.", "01144207", True),
        ("011.", "011", False),
        ("9!", "9", True),
        ("+1[2-9]XX.", "+12125551234", True),
        ("_00Z.", "0049", True),
        ("*67.", "*67101", True),
    ],
)
def test_dial_patterns(pattern, number, matches):
    assert contract.pattern_matches(pattern, number) is matches


@pytest.mark.parametrize("pattern", ["", "12a", "[]1", "[a-z]", "1.2", "X" * 65, "1+"])
def test_bad_dial_patterns_say_why(pattern):
    with pytest.raises(ValueError, match=r"pattern|position|set"):
        contract.compile_pattern(pattern)
    assert contract.pattern_matches(pattern, "1") is False


def test_snapshot_round_trips_through_json():
    snapshot = _tenant()
    # Every field differs from its default, so a field left out of the JSON would show.
    defaults = TenantSnapshot(tenant_id=0, schema="", domain="")
    for f in fields(TenantSnapshot):
        assert getattr(snapshot, f.name) != getattr(defaults, f.name), f.name
    for f in fields(ExtensionSnapshot):
        assert getattr(_extension(), f.name) != getattr(ExtensionSnapshot("1"), f.name), f.name
    assert TenantSnapshot.from_json(snapshot.to_json()) == snapshot
    assert TenantSnapshot.from_json(snapshot.to_json().encode()) == snapshot


def test_snapshot_json_uses_the_model_field_names():
    data = json.loads(_tenant().to_json())
    assert {"max_concurrent_calls", "sip_digest_sha256"} <= set(data)
    entry = data["extensions"]["150"]
    assert set(entry) == set(EXTENSION_FIELDS) - {"number"} | {
        "voicemail",
        "speed_dials",
        "pickup_groups",
    }
    assert entry["allowed_transports"] == ["tcp", "tls"]


def test_snapshot_parse_gives_defaults_for_missing_and_bad_values():
    raw = json.dumps(
        {
            "tenant_id": "7",
            "schema": "t_acme",
            "domain": "ACME.test",
            "status": None,
            "product": "Acme\r\nX-Injected: 1" + "x" * 100,
            "max_concurrent_calls": "many",
            "sip_digest_sha256": "yes",
            "extensions": {
                "150": {
                    "display_name": "Front\r\nDesk ",
                    "max_registrations": "lots",
                    "allowed_transports": "udp",
                    "no_answer_timeout": "NaN",
                    "forward_busy": 102,
                },
                "151": {
                    "max_registrations": -3,
                    "allowed_transports": ["TCP"],
                    "no_answer_timeout": 10**9,
                },  # fmt: skip
                "152": "not an object",
                "153": [],
                "154": {"allowed_transports": [["udp"], {"tcp": 1}]},
            },
        }
    )
    snap = TenantSnapshot.from_json(raw)
    assert (snap.tenant_id, snap.domain, snap.status) == (7, "acme.test", "active")
    assert snap.product.startswith("AcmeX-Injected: 1")
    assert len(snap.product) == 64
    assert snap.max_concurrent_calls == 0
    assert snap.sip_digest_sha256 is False  # only a JSON true turns SHA-256 on
    assert set(snap.extensions) == {"150", "151", "154"}
    assert not snap.extensions["154"].allowed_transports & contract.ALL_TRANSPORTS
    e150, e151 = snap.extensions["150"], snap.extensions["151"]
    assert e150 == ExtensionSnapshot(
        number="150",
        display_name="Front  Desk",
        caller_id_name="Front  Desk",  # the display name when there is none
        caller_id_number="150",  # the number when there is none
        forward_busy="102",
    )
    assert e150.allowed_transports == contract.ALL_TRANSPORTS
    assert e151.max_registrations == 1
    assert e151.allowed_transports == frozenset({"tcp"})
    assert e151.no_answer_timeout == 86400.0


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        "[]",
        "{}",
        '{"tenant_id": "x", "schema": "t", "domain": "d"}',
        '{"tenant_id": 1, "schema": "t"}',
        '{"tenant_id": null, "schema": "t", "domain": "d"}',
    ],
)
def test_snapshot_without_a_tenant_identity_is_a_value_error(raw):
    with pytest.raises(ValueError):  # noqa: PT011 -- the only error a caller has to catch
        TenantSnapshot.from_json(raw)


def test_engine_skips_a_bad_snapshot_and_loads_the_others(prefix):
    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        client.sadd(prefix + contract.DOMAINS, "bad.test", "good.test")
        client.set(prefix + contract.SNAPSHOT.format(domain="bad.test"), '{"extensions": 1}')
        good = _tenant(domain="good.test")
        client.set(prefix + contract.SNAPSHOT.format(domain="good.test"), good.to_json())
    finally:
        client.close()
    assert _load(prefix, "good.test") == good
    assert _load(prefix, "bad.test") is None


def test_what_django_publishes_the_engine_reads_field_for_field(world, in_tenant, prefix):
    """Story: an admin sets up an extension with every routing setting away from its default
    and caps the tenant's calls; the engine's snapshot holds each value under the same name."""
    from pbx.audit import SYSTEM
    from telephony.actions import do_create_extension
    from tenants.models import Tenant

    Tenant.objects.filter(pk=world.tenant_a.pk).update(
        max_concurrent_calls=7, sip_digest_sha256=True
    )
    tenant = Tenant.objects.get(pk=world.tenant_a.pk)
    with in_tenant(tenant):
        ext, _ = do_create_extension(
            number="150",
            display_name="Front Desk",
            sip_password="Zq8-front-desk-Secret",
            actor=SYSTEM,
            enabled=False,
            dnd=True,
            caller_id_name="Reception",
            caller_id_number="+4930123",
            max_registrations=5,
            allowed_transports=["tcp", "tls"],
            forward_always="+4930777",
            forward_busy="102",
            forward_no_answer="+4930999",
            no_answer_timeout=33,
        )
    publish_tenant(tenant.pk)
    mine = _load(prefix, tenant.sip_domain)
    assert mine is not None
    expected = {
        "tenant_id": tenant.pk,
        "schema": tenant.schema_name,
        "domain": tenant.sip_domain,
        "status": tenant.status,
        "anchor_media": False,
        "product": brand_for_tenant(tenant).product_name,
        "max_concurrent_calls": 7,
        "sip_digest_sha256": True,
    }
    assert {f: getattr(mine, f) for f in expected} == expected
    engine_ext = mine.extensions["150"]
    for name in EXTENSION_FIELDS:
        model_value = getattr(ext, name)
        if name == "allowed_transports":
            model_value = frozenset(model_value)
        if name == "outbound_caller_ids":
            model_value = tuple(model_value)
        assert getattr(engine_ext, name) == model_value, name
    assert engine_ext.enabled is False
    assert engine_ext.dnd is True
    assert engine_ext.ha1_md5 == ha1("MD5", "150", tenant.sip_domain, "Zq8-front-desk-Secret")
    assert engine_ext.ha1_sha256 == ha1(
        "SHA-256", "150", tenant.sip_domain, "Zq8-front-desk-Secret"
    )
    assert set(mine.extensions) == set(
        TenantSnapshot.from_json(build_snapshot(tenant).to_json()).extensions
    )


# --------------------------------------------------------------------------------- events


def test_event_types_are_the_names_on_the_wire():
    """The values are stored (outbox, webhooks, CDR rules) and sent to clients: pinned."""
    assert {t.value for t in EventType} == {
        "call.started",
        "call.ringing",
        "call.answered",
        "call.transferred",
        "call.forwarded",
        "call.ended",
        "call.routed",
        "registration",
        "voicemail.left",
        "voicemail.updated",
        "voicemail.greeting",
        "feature.set",
        "call.picked_up",
        "call.parked",
        "call.unparked",
        "call.recording",
        "recording.ready",
        "queue.joined",
        "queue.answered",
        "queue.left",
        "queue.sla",
        "queue.callback",
        "agent.state",
        "queue.supervision",
    }
    assert {a.value for a in RegistrationAction} == {
        "registered",
        "refreshed",
        "unregistered",
        "expired",
    }
    assert {t for t in EventType if t.value.startswith("call.")} == contract.CALL_EVENTS
    # A stream entry's text compares equal to its member (StrEnum), as the consumers rely on.
    assert EventType.CALL_ENDED == "call.ended"
    assert EventType("call.ended") is EventType.CALL_ENDED


# ------------------------------------------------------------------------- control messages


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (
            HangUpCall(schema="t_acme", call_id="abc@pbx"),
            {"op": "hangup", "schema": "t_acme", "call_id": "abc@pbx"},
        ),
        (
            CheckSync(domain="acme.test", user="101", reboot=True),
            {
                "op": "notify",
                "domain": "acme.test",
                "user": "101",
                "event": "check-sync",
                "reboot": True,
            },  # fmt: skip
        ),
        (
            CheckSync(domain="acme.test", user="101"),
            {
                "op": "notify",
                "domain": "acme.test",
                "user": "101",
                "event": "check-sync",
                "reboot": False,
            },  # fmt: skip
        ),
    ],
)
def test_control_messages_round_trip(message, wire):
    assert json.loads(message.to_json()) == wire
    assert ControlMessage.from_json(message.to_json()) == message
    assert ControlMessage.from_json(message.to_json().encode()) == message


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"\xff",
        "not json",
        "[1, 2]",
        '"hangup"',
        "{}",
        '{"op": "reboot-everything"}',
        '{"op": "notify", "domain": "acme.test", "user": "101", "event": "message-summary"}',
        '{"op": "notify", "domain": "acme.test", "user": "101"}',
    ],
)
def test_unknown_control_messages_are_ignored(raw):
    assert ControlMessage.from_json(raw) is None


def test_control_message_fields_are_made_safe():
    hangup = ControlMessage.from_json('{"op": "hangup", "call_id": 5}')
    assert hangup == HangUpCall(schema="", call_id="5")  # no schema: matches no call
    notify = ControlMessage.from_json(
        '{"op": "notify", "domain": "ACME.test", "user": 101, "event": "check-sync",'
        ' "reboot": "true"}'
    )
    assert notify == CheckSync(domain="acme.test", user="101", reboot=False)  # only true reboots


# ---------------------------------------------------------------------------------- digest


def test_ha1_md5_rfc2617_example():
    # RFC 2617 3.5: HA1 of Mufasa / testrealm@host.com / "Circle Of Life", and the response.
    h = ha1("MD5", "Mufasa", "testrealm@host.com", "Circle Of Life")
    assert h == "939e7578ed9e3c518a452acee763bce9"
    ha2 = contract.digest_hash("MD5", "GET:/dir/index.html")
    response = contract.digest_hash(
        "MD5", f"{h}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
    )
    assert response == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_ha1_gives_the_rfc7616_example_responses(algorithm, response):
    # RFC 7616 3.9.1: Mufasa / http-auth@example.org / "Circle of Life", GET /dir/index.html.
    h = ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    ha2 = contract.digest_hash(algorithm, "GET:/dir/index.html")
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    assert contract.digest_hash(algorithm, f"{h}:{nonce}:00000001:{cnonce}:auth:{ha2}") == response


def test_ha1_of_a_stored_extension_is_the_contract_s(world, in_tenant):
    from telephony.models import Extension

    with in_tenant(world.tenant_a):
        ext = Extension.objects.get(number="101")
        password = ext.sip_password
    assert ext.ha1_md5 == ha1("MD5", "101", "acme.test", password)
    assert ext.ha1_sha256 == ha1("SHA-256", "101", "acme.test", password)


def test_team_snapshot_reads_bad_values_as_defaults():
    team = contract.TeamSnapshot.read(
        {
            "ring_groups": [
                {"number": "600", "strategy": "shuffle",
                 "members": [{"number": ""}, "x", {"number": "101"}],
                 "member_seconds": "lots", "total_seconds": 10**9,
                 "caller_id_prefix": "P\r\n" + "x" * 40},
                {"name": "no number"},
                "junk",
            ],
            "paging": [{"number": "650", "members": ["101", 7, None]}, {"members": []}],
            "park": {"first": -5, "count": 10**6, "timeout": "NaN"},
        }
    )  # fmt: skip
    (group,) = team.ring_groups.values()
    assert group.strategy == contract.RingStrategy.RING_ALL
    assert group.members == (contract.RingMember("101"),)
    assert (group.member_seconds, group.total_seconds) == (20.0, 3600.0)
    assert "\r" not in group.caller_id_prefix
    assert len(group.caller_id_prefix) == 16
    assert list(team.paging) == ["650"]
    assert team.park == contract.ParkSettings(first=1, count=100, timeout=120.0)  # clamped
    assert contract.ParkSettings().slots() == tuple(str(n) for n in range(701, 711))
    assert contract.ParkSettings().is_slot("710")
    assert not contract.ParkSettings().is_slot("711")
    assert contract.TeamSnapshot.read("nonsense") == contract.TeamSnapshot()


def test_codes_that_may_take_a_number_match_with_and_without_one():
    media = contract.MediaSnapshot()
    assert media.feature("*68") == ("park", "")
    assert media.feature("*68702") == ("park", "702")
    assert media.feature("*97101") == ("pickup", "101")
    assert media.feature("*97") is None  # directed pickup needs the extension
    assert media.feature("*98") == ("pickup_group", "")


@pytest.mark.parametrize(
    ("seconds", "charged", "cost"),
    [
        (0, 0, 0),  # not answered: nothing, not even the connection fee
        (2, 0, 0),  # within the grace period
        (3, 30, 10 + 100),  # the first interval, at least
        (35, 30, 110),  # + 5 free seconds after it
        (36, 36, 10 + 120),  # then whole 6-second steps
        (41, 36, 130),
        (42, 42, 10 + 140),
    ],
)
def test_a_rate_charges_intervals_free_seconds_and_grace(seconds, charged, cost):
    rate = contract.Rate(
        "49",
        per_minute=200,
        connection_fee=10,
        first_interval=30,
        next_interval=6,
        free_seconds=5,
        grace_seconds=3,
    )
    assert rate.charged_seconds(seconds) == charged
    assert rate.cost(seconds) == cost


@pytest.mark.parametrize("amount", [0, 109, 110, 111, 129, 130, 150, 10_000, 123_457])
def test_max_seconds_is_the_longest_call_an_amount_pays_for(amount):
    rate = contract.Rate(
        "49", per_minute=200, connection_fee=10, first_interval=30, next_interval=6, free_seconds=5
    )
    longest = rate.max_seconds(amount)
    assert longest is not None
    if longest == 0:
        assert rate.cost(1) > amount
    else:
        assert rate.cost(longest) <= amount < rate.cost(longest + 1)
    assert contract.Rate("1", per_minute=0).max_seconds(amount) is None


def test_the_longest_prefix_prices_a_number():
    billing = contract.BillingSnapshot.read(
        {
            "mode": "prepaid",
            "rates": [
                {"prefix": "44"},
                {"prefix": "447", "per_minute": 9},
                {"prefix": "x1"},
                "junk",
            ],
        }
    )
    assert billing.rate_for("+447700900123").prefix == "447"
    assert billing.rate_for("4420").prefix == "44"
    assert billing.rate_for("+1555") is None
    assert list(billing.rates) == ["44", "447"]
    assert contract.BillingSnapshot.read("junk") == contract.BillingSnapshot()


def test_the_strongest_recording_policy_wins():
    assert contract.strongest_policy("", "never", "always") == "always"
    assert contract.strongest_policy("on_demand", "never") == "on_demand"
    assert contract.strongest_policy("", "") == ""


def test_record_commands_round_trip_and_bad_actions_are_ignored():
    msg = contract.RecordCall("t_acme", "c1", "pause", "101")
    assert contract.ControlMessage.from_json(msg.to_json()) == msg
    assert contract.ControlMessage.from_json('{"op": "record", "action": "erase"}') is None


def test_the_models_choices_are_the_contracts_values():
    """The stored values (Django choices) are what the engine reads (contract enums)."""
    from tenants import choices

    assert set(choices.RecordingPolicy.values) - {""} == {p.value for p in contract.RecordingPolicy}
    assert set(choices.BillingMode.values) == {m.value for m in contract.BillingMode}


def test_supervise_commands_round_trip_and_bad_modes_are_ignored():
    msg = contract.SuperviseCall("t_acme", "151", "150", "whisper")
    assert contract.ControlMessage.from_json(msg.to_json()) == msg
    assert contract.ControlMessage.from_json('{"op": "supervise", "mode": "record"}') is None
    assert set(contract.SUPERVISION_KEYS.values()) == set(contract.SupervisionMode)


def test_the_contact_centre_choices_are_the_contracts_values():
    from callcenter import choices

    assert set(choices.QueueStrategy.values) == {s.value for s in contract.QueueStrategy}
    assert set(choices.AgentState.values) == {s.value for s in contract.AgentState}
    assert set(choices.SupervisionMode.values) == {m.value for m in contract.SupervisionMode}
    assert set(choices.QueueOutcome.values) - {"waiting", "answered"} == {
        e.value for e in contract.QueueExit
    }


def test_web_credential_names_its_extension_and_expiry_and_binds_the_tenant():
    secret = contract.derive_secret("k" * 50, contract.WEB_CREDENTIAL_LABEL)
    cred = contract.issue_web_credential(secret, "t_acme", "150", "a" * 32, now=1_000_000)
    assert cred.expires == 1_000_000 + contract.WEB_CREDENTIAL_SECONDS
    assert contract.read_web_username(cred.username) == ("150", cred.expires)
    assert cred.password == contract.web_credential_password(
        secret, "t_acme", "150", cred.expires, "a" * 32
    )
    # Another tenant, another SIP password or another installation's key: another password.
    assert cred.password != contract.web_credential_password(
        secret, "t_other", "150", cred.expires, "a" * 32
    )
    assert cred.password != contract.web_credential_password(
        secret, "t_acme", "150", cred.expires, "b" * 32
    )
    other = contract.derive_secret("j" * 50, contract.WEB_CREDENTIAL_LABEL)
    assert cred.password != contract.web_credential_password(
        other, "t_acme", "150", cred.expires, "a" * 32
    )


@pytest.mark.parametrize(
    "name",
    [
        "150",
        "web.150",
        "web..150",
        "web.12x.150",
        "x.1.150",
        "",
        "web.\u00b2.150",
        "web." + "9" * 5000 + ".150",
    ],
)
def test_other_user_names_are_not_web_credentials(name):
    assert contract.read_web_username(name) is None


def test_srtp_modes_read_tolerantly():
    ext = ExtensionSnapshot.from_dict("150", {"srtp": "bogus"})
    assert ext.srtp == ""
    tenant = TenantSnapshot.from_json('{"tenant_id": 1, "schema": "s", "domain": "d", "srtp": ""}')
    assert tenant.srtp == "off"
    assert ext.srtp_mode(tenant) == "off"
    assert ExtensionSnapshot.from_dict("150", {"srtp": "required"}).srtp_mode(tenant) == "required"
