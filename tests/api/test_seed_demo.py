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
