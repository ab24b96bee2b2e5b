"""A tenant administrator's user-group pages: the empty list, a group made with members ticked,
changed, its bad name shown on the box with nothing written, deleted (its extensions stay);
an end user may not change groups; another tenant's group is 404. Set-up through the real
actions; results read from the tenant's schema."""

from __future__ import annotations

import re
from html import unescape

import pytest

from pbx.audit import SYSTEM
from telephony.models import Extension, UserGroup
from telephony.user_groups import do_create_user_group

pytestmark = pytest.mark.django_db

G = "/portal/user-groups"


def field_errors(html: str, name: str) -> list[str]:
    found = re.findall(rf'<small class="error" data-field="{name}">([^<]*)</small>', html)
    return [unescape(e) for e in found]


def _members(tenant_ctx, tenant) -> dict[str, list[str]]:
    with tenant_ctx(tenant):
        return {
            g.name: sorted(g.members.values_list("number", flat=True))
            for g in UserGroup.objects.all()
        }


def test_groups_empty_then_made_edited_and_deleted(portal, world, in_tenant):
    p = portal(world.a_admin, world.tenant_a)
    html = p.get(f"{G}/").content.decode()
    assert "No user groups yet" in html
    assert f'href="{G}/"' in html  # in the menu
    form = p.get(f"{G}/add/").content.decode()
    assert 'type="checkbox" name="members" value="101"' in form
    r = p.post(
        f"{G}/add/", {"name": "Sales Dept", "description": "Inside", "members": ["101", "102"]}
    )
    assert r.status_code == 302, r.content.decode()
    assert _members(in_tenant, world.tenant_a) == {"Sales Dept": ["101", "102"]}
    html = p.get(f"{G}/").content.decode()
    assert "Sales Dept" in html
    assert "<code" in html
    with in_tenant(world.tenant_a):
        group = UserGroup.objects.get()
    edit = p.get(f"{G}/{group.pk}/").content.decode()
    assert 'value="102" checked' in edit or re.search(r'value="102"[^>]*checked', edit)
    r = p.post(f"{G}/{group.pk}/", {"name": "Sales", "description": "", "members": ["102"]})
    assert r.status_code == 302
    assert _members(in_tenant, world.tenant_a) == {"Sales": ["102"]}
    # A name with a line break is the action's field error, on its box; nothing changes.
    r = p.post(f"{G}/{group.pk}/", {"name": "Sales\nBcc: x", "members": ["101"]})
    assert r.status_code == 200
    assert field_errors(r.content.decode(), "name")
    assert _members(in_tenant, world.tenant_a) == {"Sales": ["102"]}
    confirm = p.get(f"{G}/{group.pk}/delete/").content.decode()
    assert "1 member stay" in confirm
    assert p.post(f"{G}/{group.pk}/delete/").status_code == 302
    assert _members(in_tenant, world.tenant_a) == {}
    with in_tenant(world.tenant_a):
        assert Extension.objects.filter(number="102").exists()


def test_an_end_user_cannot_change_groups_and_another_tenants_group_is_404(
    portal, world, in_tenant
):
    with in_tenant(world.tenant_a):
        ours = do_create_user_group(actor=SYSTEM, fields={"name": "Alpha team"})
    with in_tenant(world.tenant_b):
        # Each schema numbers its rows on its own (and earlier tests moved the sequences):
        # B's group gets an id A has no row of, so a 404 can only come from the schema.
        theirs = do_create_user_group(actor=SYSTEM, fields={"name": "Beta team"})
        while theirs.pk <= ours.pk:
            theirs = do_create_user_group(actor=SYSTEM, fields={"name": f"Beta {theirs.pk}"})
    admin = portal(world.a_admin, world.tenant_a)
    assert admin.get(f"{G}/{theirs.pk}/").status_code == 404
    assert admin.post(f"{G}/{theirs.pk}/delete/").status_code == 404
    listed = admin.get(f"{G}/").content.decode()
    assert "Alpha team" in listed
    assert "Beta team" not in listed
    user = portal(world.a_user, world.tenant_a)
    assert user.post(f"{G}/{ours.pk}/delete/").status_code in (403, 404)
    assert _members(in_tenant, world.tenant_a) == {"Alpha team": []}
