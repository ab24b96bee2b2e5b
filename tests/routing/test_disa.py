"""DISA entries written through their actions: the PIN rules (stored only as a hash, never
audited in clear), the extension they dial out as, an entry in use that is not deleted, the
``disa`` destination kind in inbound rules and IVR keys, and what the engine is given
(``routing.snapshot.disa_rows``, read back by the contract's own reader). Also the checks
other writes make against menus, DISA entries and feature codes: an extension may not take a
menu's number nor be deleted while a menu or an entry names it, and the privacy code may not
clash with a feature code."""

import pytest

from pbx.audit import SYSTEM
from pbx.errors import Conflict, ValidationFailed
from pbx.models import AuditEntry
from routing.actions import do_create, do_update_settings
from routing.disa import do_create_disa, do_delete_disa, do_update_disa
from routing.ivr import do_create_ivr, do_update_ivr
from routing.models import Disa, RoutingSettings
from routing.snapshot import disa_rows as snapshot_rows
from telephony import actions as ext_actions
from telephony.models import Extension
from telephony.sip.contract import Disa as DisaSnapshot
from telephony.sip.contract import MediaSnapshot, RouteTarget, pin_matches
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

ENTRY = {"name": "Road warriors", "pin": "402719", "extension": "101"}


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def test_an_entry_keeps_only_a_hash_of_its_pin_and_is_audited(acme, world):
    entry = do_create_disa(actor=SYSTEM, fields=ENTRY)
    assert (entry.name, entry.extension.number, entry.enabled) == ("Road warriors", "101", True)
    assert "402719" not in entry.pin_hash
    assert pin_matches(entry.pin_hash, "402719")
    created = AuditEntry.objects.get(action="disa.create", object_id=str(entry.pk))
    assert created.tenant == acme
    assert created.changes == {"name": "Road warriors", "extension": "101", "pin": "set"}
    # Without a PIN the PIN is unchanged; with one it is replaced, audited as "set".
    before = entry.pin_hash
    do_update_disa(entry, actor=SYSTEM, fields={"name": "Sales on the road", "pin": ""})
    entry.refresh_from_db()
    assert (entry.name, entry.pin_hash) == ("Sales on the road", before)
    do_update_disa(entry, actor=SYSTEM, fields={"pin": "8351", "extension": "102"})
    entry.refresh_from_db()
    assert pin_matches(entry.pin_hash, "8351")
    assert not pin_matches(entry.pin_hash, "402719")
    assert entry.extension.number == "102"
    changes = [
        e.changes for e in AuditEntry.objects.filter(action="disa.update", object_id=str(entry.pk))
    ]
    assert {"pin": "set", "extension": ["101", "102"]} in changes
    assert "8351" not in str(changes)
    assert "402719" not in str(changes)


def test_bad_pins_names_and_extensions_are_field_errors(acme, world):
    ext_actions.do_update_extension(
        Extension.objects.get(number="102"), actor=SYSTEM, enabled=False
    )
    cases = [
        ({"pin": "123"}, "pin"),  # too short
        ({"pin": "1234567890123"}, "pin"),  # too long
        ({"pin": "1111"}, "pin"),  # all one digit
        ({"pin": "12a4"}, "pin"),
        ({"pin": "１２３４"}, "pin"),  # not ASCII digits
        ({"pin": 4321}, "pin"),
        ({"pin": ""}, "pin"),  # required on create
        ({"name": " "}, "name"),
        ({"name": "x\r\nInjected: 1"}, "name"),
        ({"extension": "999"}, "extension"),
        ({"extension": "201"}, "extension"),  # Beta's
        ({"extension": "102"}, "extension"),  # disabled
        ({"extension": ""}, "extension"),
        ({"enabled": "yes"}, "enabled"),
    ]
    for change, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            do_create_disa(actor=SYSTEM, fields={**ENTRY, **change})
        assert field in exc.value.fields, (change, exc.value.fields)
    with pytest.raises(ValidationFailed) as exc:
        do_create_disa(actor=SYSTEM, fields={"name": "Only a name"})
    assert set(exc.value.fields) == {"pin", "extension"}
    assert not Disa.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="disa.").exists()


def test_rules_and_keys_send_calls_to_an_entry_that_then_stays(acme, world):
    from routing.actions import do_delete as delete_rule

    entry = do_create_disa(actor=SYSTEM, fields=ENTRY)
    target = {"kind": "disa", "target": str(entry.pk)}
    (did,) = trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550177", tenant=acme)
    fields = {"name": "Dial out", "number": did.number, "in_hours": target, "holiday": target}
    rule = do_create("inbound", actor=SYSTEM, fields=fields)
    assert rule.in_hours == target
    menu = do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main", "options": [
        {"digit": "7", "target": target}], "timeout_target": target})  # fmt: skip
    assert menu.timeout_target == target
    # An entry that does not exist is refused wherever a target is named.
    with pytest.raises(ValidationFailed) as exc:
        do_create("inbound", actor=SYSTEM, fields={
            "name": "Nope", "number": did.number, "caller": "1X",
            "in_hours": {"kind": "disa", "target": "99999"}})  # fmt: skip
    assert exc.value.fields["in_hours"] == ["no DISA entry 99999"]
    for bad in ("x", "", "-1"):
        with pytest.raises(ValidationFailed) as exc:
            do_create_ivr(actor=SYSTEM, fields={"number": "801", "name": "Other", "options": [
                {"digit": "1", "target": {"kind": "disa", "target": bad}}]})  # fmt: skip
        assert exc.value.fields["options"][0].startswith("key 1: no DISA entry")
    with pytest.raises(Conflict) as exc:
        do_delete_disa(entry, actor=SYSTEM)
    message = exc.value.message
    assert "inbound rule 'Dial out' (when open, on holidays)" in message
    assert "IVR menu 800 'Main' (key 7, after the last try)" in message
    assert Disa.objects.filter(pk=entry.pk).exists()
    assert not AuditEntry.objects.filter(action="disa.delete").exists()
    delete_rule(rule, actor=SYSTEM)
    do_update_ivr(menu, actor=SYSTEM, fields={"options": [], "timeout_target": None})
    do_delete_disa(entry, actor=SYSTEM)
    assert not Disa.objects.exists()
    assert AuditEntry.objects.filter(action="disa.delete", tenant=acme).count() == 1


def test_the_snapshot_rows_read_back_and_leave_out_disabled_entries(acme, world):
    first = do_create_disa(actor=SYSTEM, fields=ENTRY)
    do_create_disa(actor=SYSTEM, fields={**ENTRY, "name": "Off", "enabled": False})
    night = {"name": "Night", "pin": "9876", "extension": "102"}
    third = do_create_disa(actor=SYSTEM, fields=night)
    rows = snapshot_rows()
    assert [r["id"] for r in rows] == [str(first.pk), str(third.pk)]
    read = [DisaSnapshot.read(r) for r in rows]
    assert read[0].to_dict() == rows[0]
    assert (read[0].name, read[0].extension) == ("Road warriors", "101")
    assert pin_matches(read[0].pin, "402719")
    assert read[1].extension == "102"
    media = MediaSnapshot.read({"language": "en", "disa": rows})
    assert set(media.disa) == {str(first.pk), str(third.pk)}
    assert MediaSnapshot.read(media.to_dict()) == media
    assert RouteTarget.read({"kind": "disa", "target": str(first.pk)}) == RouteTarget(
        "disa", str(first.pk)
    )


def test_another_tenants_entries_are_not_seen(world, in_tenant):
    with in_tenant(world.tenant_a):
        entry = do_create_disa(actor=SYSTEM, fields=ENTRY)
    with in_tenant(world.tenant_b):
        assert snapshot_rows() == []
        with pytest.raises(ValidationFailed):
            do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main", "options": [
                {"digit": "1", "target": {"kind": "disa", "target": str(entry.pk)}}]})  # fmt: skip


def test_a_change_is_published_on_commit(acme, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        do_create_disa(actor=SYSTEM, fields=ENTRY)
    assert [getattr(c, "publishes_tenant", None) for c in callbacks] == [acme.pk]


# ------------------------------------------------------- other writes that check against them


def test_an_extension_cannot_take_a_menus_number(acme, world):
    do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main"})
    with pytest.raises(Conflict) as exc:
        ext_actions.do_create_extension(number="800", display_name="Clash", actor=SYSTEM)
    assert exc.value.fields == {"number": ["IVR menu 'Main' has this number"]}
    assert not Extension.objects.filter(number="800").exists()
    ext, _ = ext_actions.do_create_extension(number="801", display_name="Fine", actor=SYSTEM)
    assert ext.number == "801"


def test_an_extension_named_by_a_menu_or_an_entry_is_not_deleted(acme, world):
    ext, _ = ext_actions.do_create_extension(number="103", display_name="Kept", actor=SYSTEM)
    menu = do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main", "options": [
        {"digit": "3", "target": {"kind": "extension", "target": "103"}},
        {"digit": "#", "target": {"kind": "voicemail", "target": "103"}}],
        "closed_target": {"kind": "voicemail", "target": "103"}})  # fmt: skip
    entry = do_create_disa(actor=SYSTEM, fields={**ENTRY, "extension": "103"})
    with pytest.raises(Conflict) as exc:
        ext_actions.do_delete_extension(ext, actor=SYSTEM)
    message = exc.value.message
    assert "IVR menu 800 'Main' (key 3, key #, when closed)" in message
    assert "DISA entry 'Road warriors'" in message
    assert Extension.objects.filter(number="103").exists()
    assert not AuditEntry.objects.filter(action="extension.delete").exists()
    do_update_ivr(menu, actor=SYSTEM, fields={"options": [], "closed_target": None})
    with pytest.raises(Conflict) as exc:
        ext_actions.do_delete_extension(ext, actor=SYSTEM)
    assert "IVR menu" not in exc.value.message
    do_delete_disa(entry, actor=SYSTEM)
    # Nothing names it any more: deleted as before (an extension nobody names, too).
    ext_actions.do_delete_extension(ext, actor=SYSTEM)
    assert not Extension.objects.filter(number="103").exists()
    assert AuditEntry.objects.filter(action="extension.delete", tenant=acme).count() == 1


def test_the_privacy_code_may_not_clash_with_a_feature_code(acme, world):
    from telephony.features import do_update_feature_codes

    with pytest.raises(ValidationFailed) as exc:
        do_update_settings(actor=SYSTEM, fields={"privacy_code": "*78"})  # DND on
    (error,) = exc.value.fields["privacy_code"]
    assert "*78" in error
    assert "Do not disturb on" in error
    assert RoutingSettings.load().pk is None
    settings = do_update_settings(actor=SYSTEM, fields={"privacy_code": "*31"})
    assert settings.privacy_code == "*31"
    # A feature that is switched off frees its code.
    do_update_feature_codes({"dnd_on": {"code": "*78", "enabled": False}}, actor=SYSTEM)
    assert do_update_settings(actor=SYSTEM, fields={"privacy_code": "*78"}).privacy_code == "*78"


def test_an_import_row_cannot_take_a_menus_number(acme, world):
    from telephony.imports import ExtensionImporter

    do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main"})
    importer = ExtensionImporter()
    blank = dict.fromkeys(importer.columns, "")
    rows = [
        (1, {**blank, "number": "800", "display_name": "A"}),
        (2, {**blank, "number": "801", "display_name": "B"}),
    ]
    errors = importer.validate(acme, rows)
    assert [(e.row, e.column, e.message) for e in errors] == [
        (1, "number", "IVR menu 'Main' has this number")
    ]
