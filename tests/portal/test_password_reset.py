"""A password reset asked on a host mails a link for that host's account only: an e-mail
address may belong to users of several tenants (and of the provider)."""

import re

import pytest
from allauth.account.utils import user_pk_to_url_str
from django.core import mail

from pbx.audit import SYSTEM
from tenants.actions import do_create_user
from tenants.choices import Role
from tests.portal.conftest import Portal, host_of

pytestmark = pytest.mark.django_db


def _reset(host: str, email: str) -> list[str]:
    """Ask for a reset on ``host``; the uids of the accounts the mailed links are for."""
    mail.outbox.clear()
    response = Portal(host).post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302  # the same answer whether or not the address is known
    return [
        uid
        for message in mail.outbox
        for uid in re.findall(r"/accounts/password/reset/key/([0-9a-z]+)-", message.body)
    ]


def test_reset_mails_the_hosts_own_account_only(world):
    email = world.a_admin.email
    twin = do_create_user(
        email=email,
        password="Twin-Account-Pass-9",
        role=Role.TENANT_USER,
        tenant=world.tenant_b,
        actor=SYSTEM,
    )
    assert _reset(host_of(world.tenant_a), email) == [user_pk_to_url_str(world.a_admin)]
    assert _reset(host_of(world.tenant_b), email) == [user_pk_to_url_str(twin)]
    # Tenant A's address on the provider's host, and on a tenant where it has no account.
    assert _reset("localhost", email) == []
    assert _reset(host_of(world.tenant_b), world.a_user.email) == []
    # The provider's own admin resets on the provider's host.
    assert _reset("localhost", world.sysadmin.email) == [user_pk_to_url_str(world.sysadmin)]
    assert _reset(host_of(world.tenant_a), world.sysadmin.email) == []
