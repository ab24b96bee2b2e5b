"""Trunks, the DID pool and a tenant's routing rules, written through their actions: what is
refused (field errors, 409), what is stored (E.164, encrypted password), what is audited and
what the engine is given (the tenant and carrier snapshots)."""

import json

import pytest
from django.db import connection

from pbx.audit import SYSTEM
from pbx.errors import Conflict, ValidationFailed
from pbx.models import AuditEntry
from telephony.engine.carriers import build_carriers
from telephony.engine.snapshots import build_routing
from trunks import actions as trunk_actions
from trunks.access import usable_trunks
from trunks.models import DidNumber, Trunk

IP_TRUNK = {"name": "Carrier A", "kind": "ip", "host": "sip.carrier-a.test",
            "addresses": ["192.0.2.0/28"], "country": "US"}  # fmt: skip
REG_TRUNK = {"name": "Carrier B", "kind": "register", "host": "sip.carrier-b.test",
             "username": "acct77", "transport": "tcp"}  # fmt: skip


def fields_of(exc) -> dict:
    return exc.value.fields


@pytest.mark.django_db
def test_trunk_validation_says_what_is_wrong_per_field(world):
    with pytest.raises(ValidationFailed) as exc:
        trunk_actions.do_create_trunk(
            actor=SYSTEM,
            fields={
                "name": " ",
                "kind": "register",
                "host": "bad host",
                "port": 70000,
                "addresses": ["10.0.0.300"],
                "codecs": ["PCMU", "speex"],
                "options_interval": 3,
                "country": "XX",
                "caller_id": "call me",
                "from_user": "a b",
                "outbound_proxy": "proxy.test:99999",
            },  # fmt: skip
        )
    errors = fields_of(exc)
    for name in ("name", "host", "port", "addresses", "codecs", "options_interval", "country",
                 "caller_id", "from_user", "outbound_proxy", "username", "password"):  # fmt: skip
        assert name in errors, name
    # An IP trunk without addresses; a CR/LF in a text that reaches SIP headers.
    with pytest.raises(ValidationFailed) as exc:
        trunk_actions.do_create_trunk(
            actor=SYSTEM, fields={**IP_TRUNK, "addresses": [], "realm": "x\r\nVia: evil"}
        )
    assert set(fields_of(exc)) == {"addresses", "realm"}
    for wide in ("0.0.0.0/0", "10.0.0.0/8", "2001:db8::/16"):
        with pytest.raises(ValidationFailed) as exc:
            trunk_actions.do_create_trunk(actor=SYSTEM, fields={**IP_TRUNK, "addresses": [wide]})
        assert "too wide" in fields_of(exc)["addresses"][0]


@pytest.mark.django_db
def test_the_password_is_stored_encrypted_never_audited_and_kept_on_update(world):
    trunk = trunk_actions.do_create_trunk(actor=SYSTEM, fields=REG_TRUNK, password="s3cret-77")
    assert "s3cret-77" not in trunk.password_encrypted
    assert trunk.password == "s3cret-77"
    entry = AuditEntry.objects.get(action="trunk.create", object_id=str(trunk.pk))
    assert "s3cret-77" not in json.dumps(entry.changes)
    assert entry.changes["password"] == "***"
    trunk = trunk_actions.do_update_trunk(trunk, actor=SYSTEM, fields={"register_expires": 600})
    assert trunk.password == "s3cret-77"
    snap = build_carriers().trunks[trunk.pk]
    assert (snap.password, snap.register_expires, snap.transport) == ("s3cret-77", 600, "tcp")


@pytest.mark.django_db
def test_sharing_decides_which_tenants_may_use_a_trunk(world):
    a, b = world.tenant_a, world.tenant_b
    provider = trunk_actions.do_create_trunk(actor=SYSTEM, fields=IP_TRUNK, shared_with=[a])
    own_b = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields={**IP_TRUNK, "name": "B's own"}, tenant=b
    )
    assert list(usable_trunks(a)) == [provider]
    assert list(usable_trunks(b)) == [own_b]
    carriers = build_carriers()
    assert carriers.trunks[provider.pk].tenants == {a.schema_name}
    assert carriers.trunks[own_b.pk].tenants == {b.schema_name}
    # A tenant's own trunk cannot be shared; a dealer's only with the dealer's tenants.
    with pytest.raises(ValidationFailed):
        trunk_actions.do_update_trunk(own_b, actor=SYSTEM, fields={}, shared_with=[a])
    north_trunk = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields=IP_TRUNK, dealer=world.north, shared_with=[a]
    )
    with pytest.raises(ValidationFailed) as exc:
        trunk_actions.do_update_trunk(north_trunk, actor=SYSTEM, fields={}, shared_with=[b])
    assert "shared_with" in fields_of(exc)


@pytest.mark.django_db
def test_numbers_are_e164_ranges_expand_and_duplicates_conflict(world):
    added = trunk_actions.do_add_numbers(
        actor=SYSTEM, number="(212) 555-0100", last="212 555 0104", country="US"
    )
    assert [n.number for n in added] == [f"+1212555010{i}" for i in range(5)]
    with pytest.raises(Conflict) as exc:
        trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550104")
    assert "+12125550104" in exc.value.message
    for bad in ({"number": "hello"}, {"number": "+1 12"}, {"number": "5550100"},
                {"number": "+12125550200", "last": "+1212555019"},
                {"number": "+12125550200", "last": "+12125560200"}):  # fmt: skip
        with pytest.raises(ValidationFailed):
            trunk_actions.do_add_numbers(actor=SYSTEM, **bad)
    assert DidNumber.objects.count() == 5


@pytest.mark.django_db
def test_a_number_belongs_to_one_tenant_at_a_time(world):
    (number,) = trunk_actions.do_add_numbers(actor=SYSTEM, number="+442071230000")
    trunk_actions.do_assign_number(number, world.tenant_a, actor=SYSTEM)
    with pytest.raises(Conflict):
        trunk_actions.do_assign_number(number, world.tenant_b, actor=SYSTEM)
    assert build_carriers().numbers == {"+442071230000": "acme.test"}
    trunk_actions.do_release_number(number, actor=SYSTEM)
    trunk_actions.do_assign_number(number, world.tenant_b, actor=SYSTEM)
    assert build_carriers().numbers == {"+442071230000": "beta.test"}
    # A dealer's number goes only to that dealer's tenants.
    (held,) = trunk_actions.do_add_numbers(actor=SYSTEM, number="+442071230001", dealer=world.north)
    with pytest.raises(ValidationFailed):
        trunk_actions.do_assign_number(held, world.tenant_b, actor=SYSTEM)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"number.add", "number.assign", "number.release"} <= actions


@pytest.mark.django_db
def test_deleting_a_tenant_frees_its_numbers_and_drops_its_own_trunks(world):
    from tenants.actions import do_delete_tenant

    (number,) = trunk_actions.do_add_numbers(actor=SYSTEM, number="+33142000000")
    trunk_actions.do_assign_number(number, world.tenant_b, actor=SYSTEM)
    own = trunk_actions.do_create_trunk(actor=SYSTEM, fields=IP_TRUNK, tenant=world.tenant_b)
    do_delete_tenant(world.tenant_b, confirm="beta", actor=SYSTEM)
    number.refresh_from_db()
    assert number.tenant is None
    assert not Trunk.objects.filter(pk=own.pk).exists()
    assert build_carriers().numbers == {}


@pytest.fixture
def acme_routing(world, in_tenant):
    """Acme (in the US) holds +1 212 555 0100..0109 and may use one provider trunk."""
    trunk = trunk_actions.do_create_trunk(
        actor=SYSTEM, fields=IP_TRUNK, shared_with=[world.tenant_a]
    )
    other = trunk_actions.do_create_trunk(actor=SYSTEM, fields={**IP_TRUNK, "name": "Other"})
    for n in trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550100", last="+12125550109"):
        trunk_actions.do_assign_number(n, world.tenant_a, actor=SYSTEM)
    world.tenant_a.country = "US"
    world.tenant_a.save(update_fields=["country"])
    with in_tenant(world.tenant_a):
        yield trunk, other


def test_inbound_rules_check_numbers_ranges_and_destinations(acme_routing, world):
    from routing.actions import do_create

    ext = {"kind": "extension", "target": "101"}
    rule = do_create("inbound", actor=SYSTEM, fields={
        "name": "Main", "number": "212 555 0100", "in_hours": ext,
        "out_of_hours": {"kind": "external", "target": "(646) 555-0199"}})  # fmt: skip
    assert rule.number == "+12125550100"
    assert rule.out_of_hours == {"kind": "external", "target": "+16465550199"}
    # The same number again (same caller match): 409; overlapping range: 409.
    with pytest.raises(Conflict):
        do_create("inbound", actor=SYSTEM, fields={"name": "Dup", "number": "+12125550100",
                                                  "in_hours": ext})  # fmt: skip
    with pytest.raises(Conflict):
        do_create("inbound", actor=SYSTEM, fields={
            "name": "R", "match": "range", "number": "+12125550100",
            "number_end": "+12125550105", "in_hours": ext})  # fmt: skip
    cases = [
        ({"number": "+12125550199"}, "number"),  # not Acme's number
        ({"number": "nope"}, "number"),
        ({"in_hours": {"kind": "extension", "target": "999"}}, "in_hours"),
        ({"in_hours": {"kind": "teleport", "target": "1"}}, "in_hours"),
        ({"match": "pattern", "number": "12a"}, "number"),
        ({"caller": "[x]"}, "caller"),
        ({"match": "range", "number": "+12125550101", "number_end": "+1212555010"}, "number_end"),
        ({"name": "x\nInjected: 1"}, "name"),
    ]
    for change, field in cases:
        fields = {"name": "Case", "number": "+12125550101", "in_hours": ext, **change}
        with pytest.raises(ValidationFailed) as exc:
            do_create("inbound", actor=SYSTEM, fields=fields)
        assert field in fields_of(exc), (change, fields_of(exc))
    routing = build_routing(world.tenant_a)
    assert [r.number for r in routing.inbound] == ["+12125550100"]
    assert routing.inbound[0].in_hours.target == "101"


def test_outbound_rules_only_take_the_tenants_trunks(acme_routing, world):
    from routing.actions import do_create, do_update

    trunk, other = acme_routing
    rule = do_create("outbound", actor=SYSTEM, fields={
        "name": "US", "prefix": "9", "strip": 1, "prepend": "+1", "trunks": [trunk.pk],
        "pattern": "9NXXNXXXXXX", "caller_id": "2125550100", "extensions": ["101"]})  # fmt: skip
    assert rule.caller_id == "+12125550100"
    with pytest.raises(ValidationFailed) as exc:
        do_update(rule, actor=SYSTEM, fields={"trunks": [trunk.pk, other.pk]})
    assert "trunks" in fields_of(exc)
    for change, field in [({"trunks": []}, "trunks"), ({"prefix": "9a"}, "prefix"),
                          ({"min_length": 9, "max_length": 3}, "max_length"),
                          ({"extensions": ["555"]}, "extensions"),
                          ({"pattern": "9[]"}, "pattern")]:  # fmt: skip
        with pytest.raises(ValidationFailed) as exc:
            do_update(rule, actor=SYSTEM, fields=change)
        assert field in fields_of(exc)
    (snap,) = build_routing(world.tenant_a).outbound
    assert (snap.trunks, snap.strip, snap.prepend, snap.extensions) == (
        (trunk.pk,),
        1,
        "+1",
        frozenset({"101"}),
    )


def test_emergency_blacklist_holidays_and_settings(acme_routing, world):
    from routing.actions import do_create, do_update_settings

    do_create("emergency", actor=SYSTEM, fields={"number": "911", "caller_id": "2125550100"})
    with pytest.raises(Conflict):
        do_create("emergency", actor=SYSTEM, fields={"number": "911"})
    with pytest.raises(ValidationFailed):
        do_create("emergency", actor=SYSTEM, fields={"number": "101"})  # an extension's
    do_create("blacklist", actor=SYSTEM, fields={"number": "+1900", "prefix": True,
                                                "action": "reject"})  # fmt: skip
    with pytest.raises(ValidationFailed):
        do_create("blacklist", actor=SYSTEM, fields={"number": "x", "action": "explode"})
    do_create("holiday", actor=SYSTEM, fields={"name": "New Year", "start": "2027-01-01",
                                              "yearly": True})  # fmt: skip
    with pytest.raises(ValidationFailed):
        do_create("holiday", actor=SYSTEM, fields={"name": "Bad", "start": "2027-01-05",
                                                  "end": "2027-01-01"})  # fmt: skip
    week = [[[540, 1020]]] * 5 + [[], []]
    do_update_settings(
        actor=SYSTEM,
        fields={"hours_enabled": True, "weekly": week, "privacy_code": "*31",
                "allowed_countries": ["us", "ca"], "blocked_prefixes": ["+1900"]},
        country="US",
    )  # fmt: skip
    for bad in ({"weekly": [[[600, 540]]] * 7}, {"weekly": [[[0, 600], [500, 700]]] + [[]] * 6},
                {"privacy_code": "67"}, {"allowed_countries": ["ZZ"]},
                {"blocked_prefixes": ["1900"]}):  # fmt: skip
        with pytest.raises(ValidationFailed):
            do_update_settings(actor=SYSTEM, fields=bad)
    routing = build_routing(world.tenant_a)
    assert routing.emergency[0].caller_id == "+12125550100"
    assert routing.blacklist[0].action == "reject"
    assert routing.holidays[0].yearly is True
    assert routing.hours is True
    assert routing.weekly[0] == ((540, 1020),)
    assert (routing.privacy_code, routing.country) == ("*31", "US")
    assert routing.allowed_countries == frozenset({"US", "CA"})


def test_a_change_reaches_the_published_snapshot(
    acme_routing, world, django_capture_on_commit_callbacks
):
    """Each write republishes the tenant once its transaction commits."""
    import redis
    from django.conf import settings

    from routing.actions import do_create
    from telephony.engine.snapshots import published_snapshot

    with django_capture_on_commit_callbacks(execute=True):
        do_create("blacklist", actor=SYSTEM, fields={"number": "+12025550111"})
    client = redis.Redis.from_url(settings.REDIS_URL)
    snap = published_snapshot(client, world.tenant_a.sip_domain)
    assert snap is not None
    assert [b.number for b in snap.routing.blacklist] == ["+12025550111"]
    assert connection.schema_name == world.tenant_a.schema_name
