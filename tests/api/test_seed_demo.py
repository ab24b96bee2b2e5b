"""``seed_demo`` applies PBX_DEMO_ADMIN_PASSWORD to an existing demo admin, as it does for SIP
passwords: an operator who sets a new password in the environment can sign in with it."""

import io

import pytest
from django.core.management import call_command

from tenants.models import User

pytestmark = pytest.mark.django_db


def test_seed_demo_updates_an_existing_admins_password(world, monkeypatch):
    monkeypatch.setenv("PBX_DEMO_HOST", "seeded.test")
    monkeypatch.setenv("PBX_DEMO_ADMIN_EMAIL", "admin@seeded.test")
    monkeypatch.setenv("PBX_DEMO_ADMIN_PASSWORD", "First-Pass-Word-11")
    call_command("seed_demo", stdout=io.StringIO())
    admin = User.objects.get(email="admin@seeded.test")
    assert admin.check_password("First-Pass-Word-11")
    monkeypatch.setenv("PBX_DEMO_ADMIN_PASSWORD", "Second-Pass-Word-22")
    call_command("seed_demo", stdout=io.StringIO())
    admin.refresh_from_db()
    assert admin.check_password("Second-Pass-Word-22")


def test_seed_demo_gives_the_demo_tenant_a_number_to_its_menu_and_911(world, monkeypatch):
    """Run twice (as every ``make run`` does): one number, one rule to the main menu, one
    menu, one emergency number, one ring group, one pickup group and one call queue."""
    from django_tenants.utils import tenant_context

    from callcenter.models import Queue
    from routing.models import EmergencyNumber, InboundRule, IvrMenu
    from telephony.models import PickupGroup, RingGroup
    from tenants.models import Tenant
    from trunks.models import DidNumber

    monkeypatch.setenv("PBX_DEMO_HOST", "seeded.test")
    for _ in range(2):
        call_command("seed_demo", stdout=io.StringIO())
    demo = Tenant.objects.get(slug="demo")
    assert demo.country == "US"
    number = DidNumber.objects.get(number="+15550100100")
    assert number.tenant == demo
    with tenant_context(demo):
        (rule,) = InboundRule.objects.all()
        assert rule.in_hours == {"kind": "ivr", "target": "800"}
        menu = IvrMenu.objects.get(number="800")
        keys = {o.digit: o.target for o in menu.options.all()}
        assert keys["1"] == {"kind": "extension", "target": "1001"}
        assert keys["0"] == {"kind": "voicemail", "target": "1001"}
        assert keys["4"] == {"kind": "ring_group", "target": "600"}
        assert list(EmergencyNumber.objects.values_list("number", flat=True)) == ["911"]
        (sales,) = RingGroup.objects.all()
        assert sales.number == "600"
        assert [m.extension.number for m in sales.members.all()] == ["1001", "1002"]
        assert sales.overflow == {"kind": "voicemail", "target": "1003"}
        (office,) = PickupGroup.objects.all()
        assert sorted(office.members.values_list("number", flat=True)) == ["1001", "1002", "1003"]
        assert keys["5"] == {"kind": "queue", "target": "500"}
        (support,) = Queue.objects.all()
        assert support.number == "500"
        assert [a.extension.number for a in support.agents.all()] == ["1001", "1002", "1003"]
        assert list(support.supervisors.values_list("number", flat=True)) == ["1003"]


def test_seed_demo_gives_extension_1001_a_web_user_of_its_own(world, monkeypatch):
    """Alice (1001) signs in to the web app and calls from its Phone page; the tenant admin
    keeps an account of its own (deleting 1001 would delete its user, never the admin)."""
    from django_tenants.utils import tenant_context

    from telephony.models import Extension
    from tenants.models import Tenant

    monkeypatch.setenv("PBX_DEMO_HOST", "seeded.test")
    monkeypatch.setenv("PBX_DEMO_USER_PASSWORD", "Blue-Pass-Word-33")
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "alice@seeded.test / Blue-Pass-Word-33" in out.getvalue()
    call_command("seed_demo", stdout=io.StringIO())  # again: nothing changes
    demo = Tenant.objects.get(slug="demo")
    alice = User.objects.get(email="alice@seeded.test", tenant=demo)
    assert alice.check_password("Blue-Pass-Word-33")
    assert alice.role == "tenant_user"
    with tenant_context(demo):
        assert Extension.objects.get(number="1001").user_id == alice.pk
        admin = User.objects.get(email="admin@demo.localhost", tenant=demo)
        assert not Extension.objects.filter(user_id=admin.pk).exists()
