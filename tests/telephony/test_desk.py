"""Speed dials and hot desking on the Django side: the actions' rules (what a speed dial may
call, who may log in where, one desk per user), their audit entries, the routing snapshot the
engine reads, and the engine's ``feature.set`` requests applied through the CDR drain."""

import pytest

from pbx.audit import SYSTEM
from pbx.errors import ValidationFailed
from pbx.models import AuditEntry
from telephony.actions import do_create_extension, do_update_extension
from telephony.desk import (
    do_clear_speed_dial,
    do_hotdesk_login,
    do_hotdesk_logout,
    do_set_speed_dial,
    speed_dial_rows,
)
from telephony.engine.cdr import CdrConsumer
from telephony.engine.snapshots import build_snapshot
from telephony.models import Extension, SpeedDial
from tests.conftest import SIP_PASSWORD
from tests.telephony.engine_events import feature_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def ext(number: str) -> Extension:
    return Extension.objects.get(number=number)


def test_speed_dials_are_set_replaced_cleared_and_published(acme):
    one = ext("101")
    do_set_speed_dial(one, "2", "102", actor=SYSTEM)
    do_set_speed_dial(one, "07", "+4930123456", actor=SYSTEM)
    do_set_speed_dial(one, "2", "*97102", actor=SYSTEM)  # replaces
    do_set_speed_dial(one, "2", "*97102", actor=SYSTEM)  # the same: no change
    assert speed_dial_rows(one) == [
        {"code": "07", "number": "+4930123456"},
        {"code": "2", "number": "*97102"},
    ]
    assert build_snapshot(acme).extensions["101"].speed_dials == {
        "2": "*97102",
        "07": "+4930123456",
    }
    assert build_snapshot(acme).extensions["102"].speed_dials == {}
    assert do_clear_speed_dial(one, "07", actor=SYSTEM) is True
    assert do_clear_speed_dial(one, "07", actor=SYSTEM) is False
    entries = AuditEntry.objects.filter(action="extension.speed_dial", tenant=acme)
    assert entries.count() == 4
    assert entries.order_by("id").last().changes == {"speed_dial 07": ["+4930123456", ""]}


@pytest.mark.parametrize(
    ("code", "number", "field"),
    [
        ("1", "102", "code"),  # speed dial 8 is 2..9
        ("100", "102", "code"),
        ("a", "102", "code"),
        ("2", "", "number"),
        ("2", "102\r\nX-Evil: 1", "number"),
        ("2", "1 02", "number"),
        ("2", "sip:102@evil", "number"),
        ("2", "1" * 33, "number"),
        ("2", "++49", "number"),
        ("2", "101", "number"),  # itself
        ("2", None, "number"),
    ],
)
def test_a_bad_speed_dial_is_a_field_error_and_changes_nothing(acme, code, number, field):
    with pytest.raises(ValidationFailed) as raised:
        do_set_speed_dial(ext("101"), code, number, actor=SYSTEM)
    assert field in raised.value.fields
    assert not SpeedDial.objects.exists()
    assert not AuditEntry.objects.filter(action="extension.speed_dial").exists()


def _desk(number: str = "103") -> Extension:
    desk, _ = do_create_extension(
        number=number, display_name="Desk", sip_password=SIP_PASSWORD, hot_desk=True, actor=SYSTEM
    )
    return desk


def test_hot_desk_login_moves_the_user_and_logout_restores(acme):
    desk, other = _desk("103"), _desk("104")
    do_hotdesk_login(desk, "102", actor=SYSTEM)
    assert ext("103").hotdesk_user == "102"
    snap = build_snapshot(acme).extensions
    assert (snap["103"].hot_desk, snap["103"].hotdesk_user) == (True, "102")
    # One desk per user: logging in at 104 logs 102 out of 103.
    do_hotdesk_login(other, "102", actor=SYSTEM)
    assert (ext("103").hotdesk_user, ext("104").hotdesk_user) == ("", "102")
    do_hotdesk_logout(ext("104"), actor=SYSTEM)
    assert ext("104").hotdesk_user == ""
    actions = list(
        AuditEntry.objects.filter(tenant=acme, action__startswith="extension.hotdesk")
        .order_by("id")
        .values_list("action", "object_repr")
    )
    assert [a for a, _ in actions] == [
        "extension.hotdesk_login",
        "extension.hotdesk_logout",
        "extension.hotdesk_login",
        "extension.hotdesk_logout",
    ]
    # A deleted user is logged out of its desk: a later extension of its number is not it.
    from telephony.actions import do_delete_extension

    gone, _ = do_create_extension(number="105", display_name="Temp", actor=SYSTEM)
    do_hotdesk_login(ext("104"), "105", actor=SYSTEM)
    do_delete_extension(gone, actor=SYSTEM)
    assert ext("104").hotdesk_user == ""
    # No longer a hot desk: whoever is there is logged out.
    do_hotdesk_login(ext("103"), "101", actor=SYSTEM)
    do_update_extension(ext("103"), actor=SYSTEM, hot_desk=False)
    assert (ext("103").hot_desk, ext("103").hotdesk_user) == (False, "")


def test_hot_desk_login_rules(acme):
    desk = _desk("103")
    for user, field in (("999", "user"), ("103", "user"), ("", "user")):
        with pytest.raises(ValidationFailed) as raised:
            do_hotdesk_login(desk, user, actor=SYSTEM)
        assert field in raised.value.fields
    with pytest.raises(ValidationFailed):
        do_hotdesk_login(ext("101"), "102", actor=SYSTEM)  # 101 is no desk phone
    assert not Extension.objects.exclude(hotdesk_user="").exists()


# ------------------------------------------------------------------------- feature.set


def test_phone_requests_set_speed_dials_and_log_in_at_desks(world, r, stream, in_tenant):
    """Story: 101 sets speed dials 2 and 07 from its phone and clears 2; malformed requests
    (a code of the other kind, a bad number) change nothing. At desk 103 (a hot desk), 102
    logs in and out; a desk that is not one, and a request for beta's schema naming acme's
    numbers, change nothing."""
    a, b = world.tenant_a, world.tenant_b
    with in_tenant(a):
        _desk("103")
    consumer = CdrConsumer(r, stream=stream, consumer="t1")
    schema = a.schema_name
    feature_set(r, stream, schema, "101", "speed_dial_8", "2:102")
    feature_set(r, stream, schema, "101", "speed_dial_100", "07:+4930123")
    feature_set(r, stream, schema, "101", "speed_dial_8", "2:")
    feature_set(r, stream, schema, "101", "speed_dial_8", "07:102")  # a speed-dial-100 code
    feature_set(r, stream, schema, "101", "speed_dial_100", "08:1\r\n2")
    feature_set(r, stream, schema, "103", "hotdesk_login", "102")
    feature_set(r, stream, schema, "101", "hotdesk_login", "102")  # no desk
    feature_set(r, stream, b.schema_name, "201", "speed_dial_8", "3:202")
    feature_set(r, stream, b.schema_name, "101", "hotdesk_login", "102")  # not beta's
    assert consumer.drain() == 9
    assert r.xpending(stream, "cdr")["pending"] == 0
    with in_tenant(a):
        assert speed_dial_rows(ext("101")) == [{"code": "07", "number": "+4930123"}]
        assert ext("103").hotdesk_user == "102"
        assert ext("101").hotdesk_user == ""
        entry = AuditEntry.objects.filter(action="extension.hotdesk_login", tenant=a).get()
        assert entry.actor_label == "phone of extension 103"
    with in_tenant(b):
        assert speed_dial_rows(ext("201")) == [{"code": "3", "number": "202"}]
        assert not Extension.objects.exclude(hotdesk_user="").exists()
    feature_set(r, stream, schema, "103", "hotdesk_logout")
    assert consumer.drain() == 1
    with in_tenant(a):
        assert ext("103").hotdesk_user == ""
