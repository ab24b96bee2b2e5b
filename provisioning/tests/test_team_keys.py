"""Phones' keys for the team features: a BLF key on an extension picks its ringing calls up
with the tenant's pickup code, a key on a park slot watches the slot (the same BLF type, the
slot's number as value), an intercom key dials the tenant's intercom code and the extension;
the phones' own pickup settings carry the tenant's codes, a changed code reaches the very next
fetch, and labels are escaped for each file's format.

User story: a receptionist's Yealink has keys for her colleagues, the park slots and an
intercom to the boss; when the tenant moves directed pickup to ``*96``, the next fetch of the
phone's file says so."""

from __future__ import annotations

import pytest

from pbx.audit import SYSTEM
from pbx.errors import ValidationFailed
from provisioning.vendors import BlfKey, Line, ProvisioningContext, files_for, render
from provisioning.vendors.formats import parse_xml, parse_yealink_cfg

from .conftest import USER_AGENTS

pytestmark = pytest.mark.django_db

KEYS = [
    {"extension": "302", "label": "Anna"},
    {"extension": "701", "label": "Park 1"},  # a park slot: a park key whatever it was sent as
    {"extension": "303", "label": "Boss", "kind": "intercom"},
]


def _fetch(phone, device, model_id: str, file: int = 0) -> str:
    name = files_for(model_id, device.mac)[file]
    response = phone(user_agent=USER_AGENTS[model_id]).get(f"/prov/{device.token}/{name}")
    assert response.status_code == 200, response.content
    return response.content.decode()


def _cfg(text: str) -> dict[str, str]:
    """The file's settings; a key written twice fails (the phone would keep only one)."""
    return parse_yealink_cfg(text)


def test_yealink_keys_carry_the_tenants_pickup_park_and_intercom_codes(
    pw, add_device, phone, in_tenant
):
    device = add_device("805ec0a1b2c1", "yealink-t54w", lines=("301",), blf_keys=KEYS)
    assert device.blf_keys == [
        {"label": "Anna", "extension": "302"},
        {"label": "Park 1", "extension": "701", "kind": "park"},
        {"label": "Boss", "extension": "303", "kind": "intercom"},
    ]
    cfg = _cfg(_fetch(phone, device, "yealink-t54w"))
    # Line 1 is the account; keys 2-4 follow it.
    assert (cfg["linekey.2.type"], cfg["linekey.2.value"]) == ("16", "302")
    assert cfg["linekey.2.pickup_value"] == "*97302"
    assert (cfg["linekey.3.type"], cfg["linekey.3.value"], cfg["linekey.3.label"]) == (
        "16",
        "701",
        "Park 1",
    )
    assert "linekey.3.pickup_value" not in cfg  # nothing rings in a slot
    assert (cfg["linekey.4.type"], cfg["linekey.4.value"]) == ("13", "*46303")
    assert cfg["features.pickup.direct_pickup_code"] == "*97"
    assert cfg["features.pickup.group_pickup_code"] == "*98"

    from telephony.features import do_update_feature_codes

    with in_tenant(pw.tenant_a):
        do_update_feature_codes(
            {"pickup": {"code": "*96"}, "pickup_group": {"enabled": False}}, actor=SYSTEM
        )
    cfg = _cfg(_fetch(phone, device, "yealink-t54w"))
    assert cfg["linekey.2.pickup_value"] == "*96302"
    assert cfg["features.pickup.direct_pickup_code"] == "*96"
    assert "features.pickup.group_pickup_code" not in cfg  # switched off: not offered


def test_keys_on_a_grandstream_snom_and_poly(pw, add_device, phone):
    keys = [{**KEYS[0], "label": 'Anna <&"> Sales'}, *KEYS[1:]]
    gs = add_device("000b82a1b2c1", "grandstream-gxp2170", blf_keys=keys)
    config = parse_xml(_fetch(phone, gs, "grandstream-gxp2170")).find("config")
    p = {el.tag: el.text for el in config}
    # Legacy MPK 1-3: mode P323.. (1 BLF, 0 speed dial), name P302.., value P303.. (3 apart).
    assert [p["P323"], p["P324"], p["P325"]] == ["1", "1", "0"]
    assert [p["P303"], p["P306"], p["P309"]] == ["302", "701", "*46303"]
    assert p["P302"] == 'Anna <&"> Sales'  # parsed back: it was escaped in the file
    assert p["P1347"] == "*97"

    snom = add_device("000413a1b2c1", "snom-d785", blf_keys=keys)
    root = parse_xml(_fetch(phone, snom, "snom-d785"))
    fkeys = [el.text for el in root.find("functionKeys")]
    assert fkeys == [
        "blf <sip:302@sip.phonea.test>|*97",
        "blf <sip:701@sip.phonea.test>",
        "speed *46303",
    ]
    poly = add_device("0004f2a1b2c1", "poly-vvx-450", blf_keys=keys)
    root = parse_xml(_fetch(phone, poly, "poly-vvx-450", file=1))
    attendant = root.find("attendant").attrib
    assert attendant["attendant.resourceList.1.address"] == "302@sip.phonea.test"
    assert attendant["attendant.resourceList.1.label"] == 'Anna <&"> Sales'
    assert attendant["attendant.resourceList.3.address"] == "*46303@sip.phonea.test"
    assert attendant["attendant.resourceList.3.type"] == "automata"
    call = root.find("call").attrib
    assert call["call.directedCallPickupString"] == "*97"
    assert call["call.parkedCallRetrieveString"] == "*88"


def test_bad_keys_are_refused_and_change_nothing(pw, add_device, in_tenant):
    from provisioning.actions import do_update_device

    device = add_device("805ec0a1b2c2", "yealink-t54w", blf_keys=KEYS[:1])
    cases = [
        ({"extension": "799"}, "799 does not exist"),  # beyond the ten slots from 701
        ({"extension": "799", "kind": "park"}, "not a park slot (701-710)"),
        ({"extension": "401", "kind": "intercom"}, "extension 401 does not exist"),  # B's
        ({"extension": "302", "kind": "page"}, "kind is one of"),
        ({"extension": "302", "label": "Anna\r\naccount.1.password = x"}, "label"),
    ]
    for key, message in cases:
        with in_tenant(pw.tenant_a), pytest.raises(ValidationFailed) as caught:
            do_update_device(device, actor=SYSTEM, blf_keys=[key])
        assert message in " ".join(caught.value.fields["blf_keys"]), (key, caught.value.fields)
        with in_tenant(pw.tenant_a):
            device.refresh_from_db()
        assert device.blf_keys == [{"label": "Anna", "extension": "302"}]


def test_the_library_writes_a_key_of_every_kind_without_the_django_side() -> None:
    ctx = ProvisioningContext(
        mac="805ec0a1b2c3",
        model_id="yealink-t54w",
        lines=[Line(1, "301", "Reception", "301", "pw")],
        sip_domain="tenant.test",
        sip_server="sip.test",
        blf_keys=[BlfKey("Slot", "702", "park"), BlfKey("Boss", "303", "intercom")],
        codes={"intercom": "#46", "pickup": "*97"},
        settings={"blf_pickup_code": "**"},  # the older override still wins for pickups
    )
    name = files_for("yealink-t54w", ctx.mac)[0]
    cfg = _cfg(render("yealink-t54w", name, ctx).content.decode())
    assert (cfg["linekey.2.type"], cfg["linekey.2.value"]) == ("16", "702")
    assert cfg["linekey.3.value"] == "#46303"
    assert cfg["features.pickup.direct_pickup_code"] == "**"
    with pytest.raises(ValueError, match="key kind"):
        BlfKey("x", "302", "page")


def test_the_phone_page_adds_keys_for_a_user_groups_members(pw, add_device, in_tenant):
    """An admin gives the receptionist's phone a key for every member of "Sales" at once; a
    member that already has a key keeps it as it is."""
    from provisioning.models import Device
    from telephony.user_groups import do_create_user_group

    from .test_portal import HOST_A, Browser, key_rows

    with in_tenant(pw.tenant_a):
        sales = do_create_user_group(
            actor=SYSTEM, fields={"name": "Sales", "members": ["302", "303"]}
        )
    device = add_device("805ec0a1b2c4", "yealink-t54w", lines=("301",))
    browser = Browser(HOST_A, pw.a_admin)
    html = browser.get(f"/portal/phones/{device.pk}/").content.decode()
    assert f'<option value="{sales.pk}">Sales</option>' in html
    saved = browser.post(
        f"/portal/phones/{device.pk}/",
        {
            "model_id": "yealink-t54w",
            "label": "",
            **key_rows("line", [("301", "")]),
            **key_rows("blf", [("302", "Anna"), ("701", "Park")]),
            "blf-group": str(sales.pk),
            "settings": "",
            "allowed_networks": "",
            "provisioning_until": "",
        },
    )
    assert saved.status_code == 302, saved.content.decode()[:2000]
    with in_tenant(pw.tenant_a):
        keys = Device.objects.get(pk=device.pk).blf_keys
    assert keys == [
        {"label": "Anna", "extension": "302"},
        {"label": "Park", "extension": "701", "kind": "park"},
        {"label": "Phones A 303", "extension": "303"},
    ]
