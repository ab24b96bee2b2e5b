"""IVR menus written through their actions: what is refused (bad numbers, keys and targets,
prompts that do not exist, a menu still in use), what is stored and audited, and what the
engine is given (``routing.snapshot.ivr_rows``, read back by the contract's own reader)."""

import os

import pytest
from django.conf import settings

from pbx.audit import SYSTEM
from pbx.errors import Conflict, ValidationFailed
from pbx.models import AuditEntry
from routing.ivr import do_create_ivr, do_delete_ivr, do_update_ivr
from routing.models import IvrMenu, IvrOption
from routing.snapshot import ivr_rows as snapshot_rows
from telephony.sip.contract import IvrMenu as MenuSnapshot
from telephony.sip.contract import RouteTarget
from trunks import actions as trunk_actions

pytestmark = pytest.mark.django_db

EXT = {"kind": "extension", "target": "101"}
MAIN = {
    "number": "800",
    "name": "Main menu",
    "options": [
        {"digit": "1", "target": EXT},
        {"digit": "2", "target": {"kind": "voicemail", "target": "102"}},
        {"digit": "9", "target": {"kind": "external", "target": "+12025550188"}},
        {"digit": "*", "target": {"kind": "repeat", "target": "anything"}},
        {"digit": "#", "target": {"kind": "hangup"}},
    ],
}


@pytest.fixture
def acme(world, in_tenant):
    with in_tenant(world.tenant_a):
        yield world.tenant_a


def errors_of(exc) -> dict:
    return exc.value.fields


def test_a_menu_is_stored_with_its_keys_and_audited(acme, world):
    menu = do_create_ivr(actor=SYSTEM, fields={**MAIN, "greeting": "please-hold", "timeout": 7})
    keys = {o.digit: o.target for o in IvrOption.objects.filter(menu=menu)}
    assert keys == {
        "1": EXT,
        "2": {"kind": "voicemail", "target": "102"},
        "9": {"kind": "external", "target": "+12025550188"},
        "*": {"kind": "repeat", "target": ""},
        "#": {"kind": "hangup", "target": ""},
    }
    assert (menu.greeting, menu.timeout, menu.tries, menu.dial_extension) == (
        "please-hold",
        7,
        3,
        True,
    )
    entry = AuditEntry.objects.get(action="ivr_menu.create", object_id=str(menu.pk))
    assert entry.tenant == acme
    assert len(entry.changes["options"]) == 5
    # The keys are replaced as a set; the other fields stay.
    do_update_ivr(
        menu, actor=SYSTEM, fields={"options": [{"digit": "0", "target": EXT}], "tries": 2}
    )
    menu.refresh_from_db()
    assert [o.digit for o in menu.options.all()] == ["0"]
    assert (menu.tries, menu.greeting) == (2, "please-hold")
    update = AuditEntry.objects.get(action="ivr_menu.update", object_id=str(menu.pk))
    assert update.changes["tries"] == [3, 2]
    assert "options" in update.changes


def test_bad_numbers_keys_targets_and_prompts_are_field_errors(acme, world):
    do_create_ivr(actor=SYSTEM, fields=MAIN)
    cases = [
        ({"number": "101"}, "number"),  # an extension's
        ({"number": "12"}, "number"),  # shorter than the tenant's extensions
        ({"number": "80a"}, "number"),
        ({"number": "555"}, "number"),  # reserved for a system service
        ({"name": " "}, "name"),
        ({"name": "x\r\nInjected: 1"}, "name"),
        ({"greeting": "no-such-prompt"}, "greeting"),
        ({"invalid": "../../etc/passwd"}, "invalid"),
        ({"timeout": 0}, "timeout"),
        ({"tries": 11}, "tries"),
        ({"dial_extension": "yes"}, "dial_extension"),
        ({"timeout_target": {"kind": "repeat"}}, "timeout_target"),
        ({"closed_target": {"kind": "extension", "target": "999"}}, "closed_target"),
        ({"options": [{"digit": "x", "target": EXT}]}, "options"),
        ({"options": [{"digit": "12", "target": EXT}]}, "options"),
        ({"options": [{"digit": "1", "target": EXT}, {"digit": "1", "target": EXT}]}, "options"),
        ({"options": [{"digit": "1", "target": {"kind": "extension", "target": "999"}}]},
         "options"),
        ({"options": [{"digit": "1", "target": {"kind": "reject", "target": "486"}}]}, "options"),
        ({"options": [{"digit": "1", "target": {"kind": "ivr", "target": "801"}}]}, "options"),
        ({"options": [{"digit": "1", "target": {"kind": "voicemail", "target": "999"}}]},
         "options"),
        ({"options": [{"digit": "1", "target": {"kind": "external", "target": "call me"}}]},
         "options"),
        ({"options": "1=101"}, "options"),
    ]  # fmt: skip
    for change, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            do_create_ivr(actor=SYSTEM, fields={**MAIN, "number": "801", **change})
        assert field in errors_of(exc), (change, errors_of(exc))
    # The key's error says which key.
    with pytest.raises(ValidationFailed) as exc:
        do_create_ivr(actor=SYSTEM, fields={**MAIN, "number": "801", "options": [
            {"digit": "4", "target": {"kind": "extension", "target": "999"}}]})  # fmt: skip
    assert errors_of(exc)["options"] == ["key 4: no extension 999"]
    # Another menu's number: 409; a menu may lead to itself only by "repeat".
    with pytest.raises(Conflict):
        do_create_ivr(actor=SYSTEM, fields=MAIN)
    with pytest.raises(ValidationFailed) as exc:
        do_create_ivr(actor=SYSTEM, fields={**MAIN, "number": "801", "options": [
            {"digit": "1", "target": {"kind": "ivr", "target": "801"}}]})  # fmt: skip
    assert "repeat" in errors_of(exc)["options"][0]
    assert list(IvrMenu.objects.values_list("number", flat=True)) == ["800"]


def _menus_and_a_rule(acme):
    """Main (800), Sales (801: key 0 back to Main) and a DID's rule to Main."""
    from routing.actions import do_create
    from routing.destinations import KINDS

    do_create_ivr(actor=SYSTEM, fields=MAIN)
    sales = do_create_ivr(actor=SYSTEM, fields={
        "number": "801", "name": "Sales", "options": [
            {"digit": "0", "target": {"kind": "ivr", "target": "800"}}],
        "timeout_target": {"kind": "voicemail", "target": "101"}})  # fmt: skip
    assert sales.timeout_target == {"kind": "voicemail", "target": "101"}
    assert ("800", "800 Main menu") in KINDS["ivr"].choices(acme)
    (did,) = trunk_actions.do_add_numbers(actor=SYSTEM, number="+12125550177", tenant=acme)
    rule = do_create("inbound", actor=SYSTEM, fields={
        "name": "Main line", "number": did.number, "in_hours": {"kind": "ivr", "target": "800"},
        "out_of_hours": {"kind": "voicemail", "target": "102"}})  # fmt: skip
    assert rule.in_hours == {"kind": "ivr", "target": "800"}
    with pytest.raises(ValidationFailed) as exc:
        do_create("inbound", actor=SYSTEM, fields={
            "name": "Nope", "number": did.number, "caller": "1X",
            "in_hours": {"kind": "ivr", "target": "899"}})  # fmt: skip
    assert errors_of(exc)["in_hours"] == ["no IVR menu 899"]
    return rule


def test_menus_lead_to_menus_and_inbound_rules_name_them(acme, world):
    rule = _menus_and_a_rule(acme)
    assert rule.out_of_hours == {"kind": "voicemail", "target": "102"}


def test_a_menu_in_use_is_not_deleted_or_renumbered(acme, world):
    from routing.actions import do_delete as delete_rule

    rule = _menus_and_a_rule(acme)
    main = IvrMenu.objects.get(number="800")
    with pytest.raises(Conflict) as exc:
        do_delete_ivr(main, actor=SYSTEM)
    message = exc.value.message
    assert "inbound rule 'Main line' (when open)" in message
    assert "IVR menu 801 'Sales' (key 0)" in message
    with pytest.raises(Conflict):
        do_update_ivr(main, actor=SYSTEM, fields={"number": "802"})
    assert IvrMenu.objects.filter(number="800").exists()
    assert not AuditEntry.objects.filter(action="ivr_menu.delete").exists()
    # Once nothing points at it, it goes (a menu's own "repeat" is no reference).
    delete_rule(rule, actor=SYSTEM)
    sales = IvrMenu.objects.get(number="801")
    do_update_ivr(sales, actor=SYSTEM, fields={"options": []})
    do_delete_ivr(main, actor=SYSTEM)
    assert list(IvrMenu.objects.values_list("number", flat=True)) == ["801"]
    assert AuditEntry.objects.filter(action="ivr_menu.delete", tenant=acme).count() == 1


def test_the_snapshot_rows_read_back_with_absolute_prompt_files(acme, world):
    do_create_ivr(actor=SYSTEM, fields={
        **MAIN, "greeting": "please-hold", "use_hours": True, "dial_extension": False,
        "closed_target": {"kind": "voicemail", "target": "101"}})  # fmt: skip
    do_create_ivr(actor=SYSTEM, fields={"number": "700", "name": "Night", "tries": 1})
    rows = snapshot_rows()
    assert [r["number"] for r in rows] == ["700", "800"]
    night, main = (MenuSnapshot.read(r) for r in rows)
    assert main.to_dict() == rows[1]
    prompts = os.path.join(str(settings.MEDIA_ROOT), "prompts", "en")
    assert os.path.isabs(main.greeting)
    assert main.greeting == os.path.join(prompts, "please-hold.wav")
    assert night.greeting == os.path.join(prompts, "welcome.wav")
    assert main.invalid == os.path.join(prompts, "invalid.wav")
    assert main.closed_greeting == os.path.join(prompts, "closed.wav")
    assert [o.digit for o in main.options] == ["1", "2", "9", "*", "#"]
    assert main.option("1") == RouteTarget("extension", "101")
    assert main.option("*") == RouteTarget("repeat", "")
    assert main.closed_target == RouteTarget("voicemail", "101")
    assert (main.use_hours, main.dial_extension, main.timeout, main.tries) == (True, False, 5, 3)
    assert (night.tries, night.timeout_target, night.options) == (1, None, ())


def test_another_tenants_menus_are_not_in_the_snapshot(world, in_tenant):
    with in_tenant(world.tenant_a):
        do_create_ivr(actor=SYSTEM, fields=MAIN)
    with in_tenant(world.tenant_b):
        assert snapshot_rows() == []
        # Beta's own extension numbers are checked, not Acme's.
        with pytest.raises(ValidationFailed):
            do_create_ivr(actor=SYSTEM, fields={**MAIN, "options": [{"digit": "1", "target": EXT}]})
        menu = do_create_ivr(actor=SYSTEM, fields={**MAIN, "options": []})
        assert menu.number == "800"


def test_a_change_is_published_on_commit(acme, world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        do_create_ivr(actor=SYSTEM, fields=MAIN)
    assert [getattr(c, "publishes_tenant", None) for c in callbacks] == [acme.pk]


def test_the_engine_reads_the_menus_and_codes_in_the_published_snapshot(
    acme, world, django_capture_on_commit_callbacks
):
    """A menu written through its action is in the snapshot the engine reads, with the
    tenant's feature codes, and reads back whole."""
    import redis

    from telephony.engine.snapshots import published_snapshot
    from telephony.sip.contract import MediaSnapshot

    with django_capture_on_commit_callbacks(execute=True):
        do_create_ivr(actor=SYSTEM, fields=MAIN)
    client = redis.Redis.from_url(settings.REDIS_URL)
    snap = published_snapshot(client, world.tenant_a.sip_domain)
    assert snap is not None
    media = snap.media
    assert set(media.ivrs) == {"800"}
    assert media.ivrs["800"].option("2") == RouteTarget("voicemail", "102")
    assert media.feature("*72101") == ("forward_always_on", "101")
    assert MediaSnapshot.read(media.to_dict()) == media
