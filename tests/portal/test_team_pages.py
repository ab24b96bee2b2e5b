"""A tenant administrator's ring group, paging group, pickup group and call park pages on the
tenant's host: the empty lists, a group made with its members (a ring group's in ringing
order), field errors on the boxes they belong to, a delete that says what still sends calls
to the group, park slots moved; another tenant's groups stay out of reach (404), and a user
without the routing permission sees none of the pages. Set-up through the real actions;
results read from the tenant's schema."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pbx.audit import SYSTEM
from routing.ivr import do_create_ivr
from telephony.models import PagingGroup, ParkSettings, PickupGroup, RingGroup
from telephony.team import do_create_paging_group, do_create_ring_group

from .pages import assert_out_of_reach, field_errors

pytestmark = pytest.mark.django_db

R = "/portal/routing"


def ring_post(members=(), **kw) -> dict:
    data = {
        "number": "600",
        "name": "Sales",
        "strategy": "hunt",
        "member_seconds": "15",
        "total_seconds": "60",
        "skip_busy": "on",
        "caller_id_prefix": "",
        "enabled": "on",
        "overflow_kind": "",
        "overflow_target": "",
    }
    rows = list(members) + [("", False)] * 5
    for i, (number, outside) in enumerate(rows):
        data[f"member_{i}_number"] = number
        if outside:
            data[f"member_{i}_external"] = "on"
    data.update(kw)
    return data


def test_ring_groups_empty_then_made_edited_and_deleted(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/ring-groups/").content.decode()
    assert "No ring groups yet" in html
    assert 'href="/portal/routing/ring-groups/"' in html  # in the menu
    form = p.get(f"{R}/ring-groups/add/").content.decode()
    assert '<option value="round_robin"' in form
    assert '<option value="ring_group"' in form  # an overflow kind
    assert '<option value="101">' in form  # an extension to pick as a member
    members = [("102", False), ("101", False), ("+12025550188", True)]
    r = p.post(
        f"{R}/ring-groups/add/",
        ring_post(members, overflow_kind="voicemail", overflow_target="101"),
    )
    assert r.status_code == 302, [field_errors(r.content.decode(), n) for n in ("number",)]
    with in_tenant(world.tenant_a):
        group = RingGroup.objects.get()
        assert [str(m) for m in group.members.all()] == ["102", "101", "+12025550188"]
        assert group.overflow == {"kind": "voicemail", "target": "101"}
        assert (group.strategy, group.member_seconds) == ("hunt", 15)
    html = p.get(f"{R}/ring-groups/").content.decode()
    assert "Voicemail 101" in html
    assert "One after the other, in order" in html
    # The edit page shows the members in their order; a change replaces them.
    edit = p.get(f"{R}/ring-groups/{group.pk}/").content.decode()
    assert re.search(r'name="member_0_number"[^>]*value="102"', edit)
    assert re.search(r'name="member_2_external"[^>]*checked', edit)
    r = p.post(
        f"{R}/ring-groups/{group.pk}/",
        ring_post([("101", False), ("102", False)], name="Sales team", strategy="ring_all"),
    )
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        group.refresh_from_db()
        assert (group.name, group.strategy, group.overflow) == ("Sales team", "ring_all", None)
        assert [str(m) for m in group.members.all()] == ["101", "102"]
    page = p.get(f"{R}/ring-groups/{group.pk}/delete/").content.decode()
    assert "Nothing sends calls to this ring group" in page
    assert p.post(f"{R}/ring-groups/{group.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not RingGroup.objects.exists()


def test_ring_group_errors_land_on_their_boxes(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.post(f"{R}/ring-groups/add/", ring_post(number="101")).content.decode()
    assert field_errors(html, "number") == ["extension 101 has this number"]
    html = p.post(
        f"{R}/ring-groups/add/", ring_post([("101", False), ("999", False)])
    ).content.decode()
    assert field_errors(html, "member_1_number") == ["no extension 999"]
    assert field_errors(html, "member_0_number") == []
    html = p.post(
        f"{R}/ring-groups/add/", ring_post(overflow_kind="ivr", overflow_target="800")
    ).content.decode()
    assert field_errors(html, "overflow_target") == ["no IVR menu 800"]
    html = p.post(
        f"{R}/ring-groups/add/", ring_post(caller_id_prefix="Sales\tteam")
    ).content.decode()
    assert field_errors(html, "caller_id_prefix")
    html = p.post(f"{R}/ring-groups/add/", ring_post(member_seconds="1")).content.decode()
    assert field_errors(html, "member_seconds")
    with in_tenant(world.tenant_a):
        assert not RingGroup.objects.exists()


def test_a_group_in_use_says_by_what_and_stays(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        sales = do_create_ring_group(actor=SYSTEM, fields={"number": "600", "name": "Sales"})
        page = do_create_paging_group(actor=SYSTEM, fields={"number": "650", "name": "All"})
        do_create_ivr(actor=SYSTEM, fields={"number": "800", "name": "Main", "options": [
            {"digit": "1", "target": {"kind": "ring_group", "target": "600"}},
            {"digit": "2", "target": {"kind": "paging", "target": "650"}}]})  # fmt: skip
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/ring-groups/{sales.pk}/delete/").content.decode()
    assert "IVR menu 800 &#x27;Main&#x27; (key 1)" in html
    assert 'data-testid="group-delete"' not in html
    r = p.post(f"{R}/ring-groups/{sales.pk}/delete/", follow=True)
    assert "is in use by IVR menu 800" in unescape(r.content.decode())
    html = p.get(f"{R}/paging-groups/{page.pk}/delete/").content.decode()
    assert "IVR menu 800 &#x27;Main&#x27; (key 2)" in html
    with in_tenant(world.tenant_a):
        assert RingGroup.objects.count() == 1
        assert PagingGroup.objects.count() == 1


def test_paging_and_pickup_groups_pages(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    assert "No paging groups yet" in p.get(f"{R}/paging-groups/").content.decode()
    assert "No pickup groups yet" in p.get(f"{R}/pickup-groups/").content.decode()
    r = p.post(
        f"{R}/paging-groups/add/",
        {"number": "650", "name": "Warehouse", "duplex": "on", "members": ["101", "102"]},
    )
    assert r.status_code == 302
    html = p.post(
        f"{R}/paging-groups/add/", {"number": "650", "name": "Again", "members": ["101"]}
    ).content.decode()
    assert field_errors(html, "number") == ["paging group 650 'Warehouse' has this number"]
    with in_tenant(world.tenant_a):
        page = PagingGroup.objects.get()
        assert (page.duplex, sorted(e.number for e in page.members.all())) == (
            True,
            ["101", "102"],
        )
    assert "intercom" in p.get(f"{R}/paging-groups/").content.decode()
    edit = p.get(f"{R}/paging-groups/{page.pk}/").content.decode()
    assert re.search(r'value="101"[^>]*checked', edit)
    r = p.post(f"{R}/paging-groups/{page.pk}/", {"number": "650", "name": "W", "members": ["102"]})
    assert r.status_code == 302
    with in_tenant(world.tenant_a):
        page.refresh_from_db()
        assert ([e.number for e in page.members.all()], page.duplex) == (["102"], False)

    r = p.post(f"{R}/pickup-groups/add/", {"name": "Front desk", "members": ["101", "102"]})
    assert r.status_code == 302
    html = p.post(f"{R}/pickup-groups/add/", {"name": "front desk"}).content.decode()
    assert field_errors(html, "name") == ["another pickup group has this name"]
    html = p.post(f"{R}/pickup-groups/add/", {"name": ""}).content.decode()
    assert field_errors(html, "name")
    with in_tenant(world.tenant_a):
        desk = PickupGroup.objects.get()
    assert "101, 102" in p.get(f"{R}/pickup-groups/").content.decode()
    page_html = p.get(f"{R}/pickup-groups/{desk.pk}/delete/").content.decode()
    assert 'data-testid="group-delete"' in page_html
    assert p.post(f"{R}/pickup-groups/{desk.pk}/delete/").status_code == 302
    assert p.post(f"{R}/paging-groups/{page.pk}/delete/").status_code == 302
    with in_tenant(world.tenant_a):
        assert not PickupGroup.objects.exists()
        assert not PagingGroup.objects.exists()


def test_park_settings_page(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{R}/park/").content.decode()
    assert re.search(r"Slots now: <code>701</code> to <code>710</code>", html)
    html = p.post(f"{R}/park/", {"first": "100", "count": "10", "timeout": "120"}).content.decode()
    assert field_errors(html, "first") == ["slot 101: extension 101 has this number"]
    html = p.post(f"{R}/park/", {"first": "900", "count": "0", "timeout": "120"}).content.decode()
    assert field_errors(html, "count")
    with in_tenant(world.tenant_a):
        assert not ParkSettings.objects.exists()
    r = p.post(f"{R}/park/", {"first": "900", "count": "5", "timeout": "60"}, follow=True)
    assert "Call park settings saved." in r.content.decode()
    assert re.search(r"Slots now: <code>900</code> to <code>904</code>", r.content.decode())
    with in_tenant(world.tenant_a):
        park = ParkSettings.load()
        assert (park.first, park.count, park.timeout) == (900, 5, 60)


def test_another_tenants_groups_are_404(portal, world, in_tenant):
    with in_tenant(world.tenant_a):
        group = do_create_ring_group(actor=SYSTEM, fields={"number": "600", "name": "Sales"})
    b = portal(world.b_admin, world.tenant_b)
    assert_out_of_reach(b, f"{R}/ring-groups/{group.pk}/", ring_post(name="Mine"))
    assert "No ring groups yet" in b.get(f"{R}/ring-groups/").content.decode()
    with in_tenant(world.tenant_a):
        assert RingGroup.objects.get().name == "Sales"
    user = portal(world.a_user, world.tenant_a)
    for path in ("ring-groups/", "ring-groups/add/", "paging-groups/", "pickup-groups/", "park/"):
        assert user.get(f"{R}/{path}").status_code == 404
