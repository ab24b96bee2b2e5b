"""Feature access codes: a tenant's effective codes (defaults overridden, a switched-off
feature missing), the rules a code must follow (form, clashes with other codes, the privacy
code and numbers), and the engine's ``feature.set`` requests applied to extensions through a
real Redis stream and the CDR drain, as the engine sends them."""

import logging

import pytest

from pbx.audit import SYSTEM
from pbx.errors import ValidationFailed
from pbx.models import AuditEntry
from telephony.engine.cdr import CdrConsumer
from telephony.features import (
    code_table,
    codes,
    do_reset_feature_codes,
    do_update_feature_codes,
)
from telephony.models import Extension, FeatureCode
from telephony.sip.contract import FEATURE_DEFAULTS, MediaSnapshot
from tests.telephony.engine_events import feature_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def test_defaults_until_changed_and_a_disabled_feature_is_missing(acme):
    assert codes() == FEATURE_DEFAULTS
    table = {row["feature"]: row for row in code_table()}
    assert table["dnd_on"] == {
        "feature": "dnd_on",
        "label": "Do not disturb on",
        "default_code": "*78",
        "code": "*78",
        "enabled": True,
        "takes_number": False,
    }
    assert table["forward_always_on"]["takes_number"] is True
    do_update_feature_codes(
        {"dnd_on": {"code": "*11"}, "forward_busy_on": {"enabled": False}}, actor=SYSTEM
    )
    effective = codes()
    assert effective["dnd_on"] == "*11"
    assert "forward_busy_on" not in effective
    assert MediaSnapshot(codes=effective).feature("*11") == ("dnd_on", "")
    entry = AuditEntry.objects.get(action="feature_codes.update", tenant=acme)
    assert entry.changes["dnd_on"] == [["*78", True], ["*11", True]]
    # Back to the default: no row is kept for it.
    do_update_feature_codes({"dnd_on": {"code": "*78"}}, actor=SYSTEM)
    assert list(FeatureCode.objects.values_list("feature", flat=True)) == ["forward_busy_on"]
    do_reset_feature_codes(actor=SYSTEM)
    assert codes() == FEATURE_DEFAULTS
    assert AuditEntry.objects.filter(action="feature_codes.reset", tenant=acme).count() == 1


def _refused(changes) -> dict:
    with pytest.raises(ValidationFailed) as exc:
        do_update_feature_codes(changes, actor=SYSTEM)
    return exc.value.fields


def test_a_code_must_be_well_formed_and_not_clash(acme):
    for bad in ("78", "*", "*1234567", "*7a", "* 78", "*7\r\n*8", 78, None):
        assert "dnd_on" in _refused({"dnd_on": {"code": bad}}), bad
    assert _refused({"dnd_on": {"code": "*79"}})["dnd_on"] == [
        "clashes with 'Do not disturb off' (*79): the same code"
    ]
    # *72 takes a number: *721 would be read as *72 + 1.
    (why,) = _refused({"dnd_on": {"code": "*721"}})["dnd_on"]
    assert why.startswith("clashes with 'Forward always on (+ number)' (*72): *72 takes a number")
    why = _refused({"forward_always_on": {"code": "*7"}})["forward_always_on"]
    assert len(why) == 7  # *78, *79, *73, and hot desking's *70, *71, speed dials' *74, *75
    assert "*7 takes a number, so *78 would be read as *7 + 8" in why[0]
    # The privacy code (dialled before a number) is reserved too.
    assert "privacy code (*67)" in _refused({"dnd_on": {"code": "*67"}})["dnd_on"][0]
    assert "privacy code" in _refused({"dnd_on": {"code": "*671"}})["dnd_on"][0]
    assert "not a feature" in _refused({"teleport": {"code": "*12"}})["teleport"][0]
    assert "enabled" in _refused({"dnd_on": {"enabled": "yes"}})["dnd_on"][0]
    # A code beside a shorter one that takes no number is fine (*7 vs *72...); a disabled
    # feature's code clashes with nothing; two features may swap codes in one change.
    do_update_feature_codes({"dnd_on": {"code": "*7"}}, actor=SYSTEM)
    do_update_feature_codes({"dnd_off": {"enabled": False}}, actor=SYSTEM)
    do_update_feature_codes({"dnd_on": {"code": "*79"}}, actor=SYSTEM)
    do_update_feature_codes(
        {"dnd_on": {"code": "*78", "enabled": True}, "dnd_off": {"code": "*79", "enabled": True}},
        actor=SYSTEM,
    )
    do_update_feature_codes({"dnd_on": {"code": "*79"}, "dnd_off": {"code": "*78"}}, actor=SYSTEM)
    assert (codes()["dnd_on"], codes()["dnd_off"]) == ("*79", "*78")
    assert not AuditEntry.objects.filter(
        action="feature_codes.update", changes__teleport__isnull=False
    ).exists()


def test_the_privacy_code_may_not_clash_with_a_feature_code(acme):
    from telephony.features import privacy_code_problem

    assert privacy_code_problem("*67") is None
    assert "Do not disturb on" in privacy_code_problem("*78")
    assert "*7 takes a number, so *78 would be read as *7 + 8" in privacy_code_problem("*7")
    assert privacy_code_problem("*721") is not None  # *72 takes a number


def test_another_tenants_codes_are_its_own(world, in_tenant):
    with in_tenant(world.tenant_a):
        do_update_feature_codes({"dnd_on": {"code": "*11"}}, actor=SYSTEM)
    with in_tenant(world.tenant_b):
        assert codes()["dnd_on"] == "*78"


# ------------------------------------------------------------------------- feature.set


def ext(in_tenant, tenant, number) -> Extension:
    with in_tenant(tenant):
        return Extension.objects.get(number=number)


def test_feature_codes_dialled_on_a_phone_change_the_extension(world, r, stream, in_tenant, caplog):
    """Story: 101 dials *78, then *72 and a number, then cancels; the extension follows, each
    change audited as the phone's; a repeat changes nothing; a bad number is logged and
    dropped, never retried forever."""
    a, b = world.tenant_a, world.tenant_b
    consumer = CdrConsumer(r, stream=stream, consumer="t1")
    feature_set(r, stream, a.schema_name, "101", "dnd_on")
    feature_set(r, stream, a.schema_name, "101", "dnd_on")
    feature_set(r, stream, a.schema_name, "101", "forward_always_on", "+12025550100")
    feature_set(r, stream, a.schema_name, "101", "forward_busy_on", "102")
    feature_set(r, stream, a.schema_name, "101", "forward_no_answer_on", "0044207")
    assert consumer.drain() == 5
    one = ext(in_tenant, a, "101")
    assert one.dnd is True
    assert (one.forward_always, one.forward_busy, one.forward_no_answer) == (
        "+12025550100",
        "102",
        "0044207",
    )
    dnd = AuditEntry.objects.filter(action="extension.update", tenant=a, object_id=str(one.pk))
    assert dnd.count() == 4  # the repeated *78 changed nothing
    assert {e.actor_label for e in dnd} == {"phone of extension 101"}
    assert ext(in_tenant, b, "201").dnd is False

    caplog.set_level(logging.WARNING, logger="telephony.features")
    feature_set(r, stream, a.schema_name, "101", "dnd_off")
    feature_set(r, stream, a.schema_name, "101", "forward_always_off")
    feature_set(r, stream, a.schema_name, "101", "forward_busy_on", "call me")
    feature_set(r, stream, a.schema_name, "101", "forward_no_answer_on", "101")  # itself
    feature_set(r, stream, a.schema_name, "101", "forward_busy_on", "")
    feature_set(r, stream, a.schema_name, "999", "dnd_on")
    feature_set(r, stream, a.schema_name, "101", "teleport")
    feature_set(r, stream, a.schema_name, "101", "voicemail_always_on")  # the audio app's
    assert consumer.drain() == 8
    assert r.xpending(stream, "cdr")["pending"] == 0
    one = ext(in_tenant, a, "101")
    assert (one.dnd, one.forward_always, one.forward_busy, one.forward_no_answer) == (
        False,
        "",
        "102",
        "0044207",
    )
    logged = "\n".join(rec.getMessage() for rec in caplog.records)
    assert f"forward_busy_on 'call me' for {a.schema_name}/101 refused" in logged
    assert "cannot forward to itself" in logged
    assert "no number given" in logged
    assert "no extension '999'" in logged
    assert "unknown feature 'teleport'" in logged
    assert "voicemail" not in logged
