"""Deleting a tenant that holds every kind of data: 204, its schema gone, nothing left anywhere
that refers to it (users, sessions, tokens, host names, device index, Redis), identifiers free.

User story: a provider deletes a customer that has used the PBX for a while (users, phones,
webhooks, CDRs, imports) and can then give its names to a new customer."""

import pytest
import redis
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from pbx.audit import SYSTEM
from pbx.models import IdempotencyRecord
from telephony.engine.snapshots import publish_tenant
from telephony.engine.store import redis_key
from telephony.sip.contract import CALLS, LOCATION
from tenants.models import DeviceIndex, Domain, Tenant, TenantRole, User
from tests.conftest import PASSWORD, Api

pytestmark = pytest.mark.django_db

MAC = "001565aa0001"


def _populate(api, sys, slug):
    """A tenant with users, roles, extensions, a phone, a custom template, a webhook and its
    outbox, a CDR, an import job, an idempotency record, a session and a refresh token."""
    from events.actions import NewEvent, do_append_events, do_create_webhook
    from pbx.imports import do_dry_run_import
    from provisioning.actions import do_add_device, do_save_custom_template
    from provisioning.vendors.render import template_source
    from telephony.actions import do_create_extension
    from telephony.models import Cdr
    from tenants import actions
    from tenants.choices import Role

    r = sys.post(
        "/api/v1/tenants/",
        {
            "name": slug.title(),
            "slug": slug,
            "sip_domain": f"{slug}.test",
            "web_host": f"pbx.{slug}.test",
        },
    )
    assert r.status_code == 201, r.content
    tenant = Tenant.objects.get(pk=r.json()["id"])
    admin = actions.do_create_user(
        email=f"boss@{slug}.test",
        password=PASSWORD,
        role=Role.TENANT_ADMIN,
        tenant=tenant,
        actor=SYSTEM,
    )
    role = actions.do_create_role(tenant, name="Ops", permissions=["users.view"], actor=SYSTEM)
    actions.do_create_user(
        email=f"ops@{slug}.test",
        password=PASSWORD,
        role=Role.TENANT_USER,
        tenant=tenant,
        custom_role=role,
        actor=SYSTEM,
    )
    connection.set_tenant(tenant)
    try:
        ext, _ = do_create_extension(
            number="100",
            display_name="Reception",
            email=f"desk@{slug}.test",
            web_password=PASSWORD,
            actor=SYSTEM,
        )
        do_create_extension(number="101", display_name="Sales", actor=SYSTEM)
        do_add_device(
            mac=MAC, model_id="fanvil-x6u", lines=[{"index": 1, "extension": "100"}], actor=SYSTEM
        )
        do_save_custom_template(
            model_id="fanvil-x6u",
            file_pattern="{mac}.cfg",
            source=template_source("fanvil-x6u"),
            actor=SYSTEM,
        )
        do_create_webhook(url="http://127.0.0.1:9/hook", event_types=["calls"], actor=SYSTEM)
        do_append_events([NewEvent(type="call.ended", payload={"call_id": "c1"})])
        Cdr.objects.create(call_id=f"{slug}-c1", caller_number="100", callee_number="101")
        do_dry_run_import(
            kind="extensions",
            data=b"number,display_name\n102,Support\n",
            filename="x.csv",
            actor=SYSTEM,
        )
    finally:
        connection.set_schema_to_public()
    host = f"pbx.{slug}.test"
    boss = Api(host, admin)
    r = boss.post(
        "/api/v1/roles/", {"name": "Night", "permissions": []}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert r.status_code == 201, r.content
    signin = Api(host).post("/api/v1/auth/signin/", {"email": admin.email, "password": PASSWORD})
    assert signin.status_code == 200, signin.content
    browser = Client(HTTP_HOST=host)
    browser.force_login(User.objects.get(pk=ext.user_id), backend="tenants.auth.HostScopedBackend")
    connection.set_schema_to_public()
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete(redis_key(CALLS, schema=tenant.schema_name))
    r.hset(redis_key(LOCATION, domain=f"{slug}.test", user="100"), "c", "{}")
    r.hset(redis_key(CALLS, schema=tenant.schema_name), "c1", "{}")
    publish_tenant(tenant.pk)
    return tenant, signin.json()


def _leftovers(tenant, user_ids, slug):
    r = redis.Redis.from_url(settings.REDIS_URL)
    sessions = [
        s
        for s in Session.objects.all()
        if s.get_decoded().get("_auth_user_id") in map(str, user_ids)
    ]
    return {
        "schema": schema_exists(f"t_{slug}"),
        "users": User.objects.filter(pk__in=user_ids).count(),
        "domains": Domain.objects.filter(tenant=tenant).count(),
        "roles": TenantRole.objects.filter(tenant=tenant).count(),
        "devices": DeviceIndex.objects.filter(tenant=tenant).count(),
        "idempotency": IdempotencyRecord.objects.filter(user_id__in=user_ids).count(),
        "tokens": OutstandingToken.objects.filter(user_id__in=user_ids).count(),
        "sessions": len(sessions),
        "snapshot": r.exists(f"sip:snapshot:{slug}.test"),
        "domain_set": r.sismember("sip:domains", f"{slug}.test"),
        "locations": len(list(r.scan_iter(redis_key(LOCATION, domain=f"{slug}.test", user="*")))),
        "calls": r.exists(redis_key(CALLS, schema=f"t_{slug}")),
        "cache": len(list(r.scan_iter(f"t_{slug}:*"))) + len(list(r.scan_iter(f"*:t_{slug}"))),
    }


NOTHING = {
    "schema": False,
    "users": 0,
    "domains": 0,
    "roles": 0,
    "devices": 0,
    "idempotency": 0,
    "tokens": 0,
    "sessions": 0,
    "snapshot": 0,
    "domain_set": 0,
    "locations": 0,
    "calls": 0,
    "cache": 0,
}


def test_delete_fully_populated_tenant_via_api_leaves_nothing(
    api, world, settings, django_capture_on_commit_callbacks
):
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    sys = api(world.sysadmin)
    tenant, tokens = _populate(api, sys, "full")
    user_ids = list(User.objects.filter(tenant=tenant).values_list("pk", flat=True))
    assert len(user_ids) == 3
    assert _leftovers(tenant, user_ids, "full") != NOTHING
    with django_capture_on_commit_callbacks(execute=True):
        r = sys.delete(f"/api/v1/tenants/{tenant.pk}/", {"confirm": "full"})
    assert r.status_code == 204, r.content
    assert _leftovers(tenant, user_ids, "full") == NOTHING
    assert Tenant.objects.get(pk=tenant.pk).status == "deleted"
    # The old host is nobody's now: it is not served at all (400, as any unknown host).
    old = Api("pbx.full.test")
    old.client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert old.get("/api/v1/extensions/").status_code == 400
    # Every identifier, and the phone's MAC, can be given to a new tenant.
    again, _ = _populate(api, sys, "full")
    assert again.pk != tenant.pk
    assert DeviceIndex.objects.get(mac=MAC).tenant_id == again.pk


def test_delete_fully_populated_tenant_via_portal(
    api, world, settings, django_capture_on_commit_callbacks
):
    settings.PBX_WEBHOOK_ALLOW_LOOPBACK = True
    from tests.portal.conftest import Portal

    tenant, _ = _populate(api, api(world.sysadmin), "viaportal")
    user_ids = list(User.objects.filter(tenant=tenant).values_list("pk", flat=True))
    p = Portal("localhost", world.sysadmin)
    with django_capture_on_commit_callbacks(execute=True):
        r = p.post(f"/portal/tenants/{tenant.pk}/delete/", {"confirm": "viaportal"})
    assert r.status_code == 302, r.content
    assert _leftovers(tenant, user_ids, "viaportal") == NOTHING


def test_delete_dealer_with_its_admins(api, world):
    """Users are deleted from the provider's host too (their cascade looks at tenant tables)."""
    from tenants.actions import do_create_user
    from tenants.choices import Role

    top = api(world.top_admin)
    made = top.post("/api/v1/dealers/", {"name": "Gone", "parent_id": world.north.pk})
    assert made.status_code == 201, made.content
    from dealers.models import Dealer

    admin = do_create_user(
        email="gone@dealers.test",
        password=PASSWORD,
        role=Role.DEALER_ADMIN,
        dealer=Dealer.objects.get(pk=made.json()["id"]),
        actor=SYSTEM,
    )
    r = top.delete(f"/api/v1/dealers/{made.json()['id']}/")
    assert r.status_code == 204, r.content
    assert not User.objects.filter(pk=admin.pk).exists()


def test_deleting_a_tenant_user_from_the_provider_host_unlinks_its_extension(world, in_tenant):
    """The Django admin runs on the provider's host; the user's extension lives in the
    tenant's schema and must not keep pointing at a user that no longer exists."""
    from telephony.actions import do_create_extension
    from telephony.models import Extension
    from tests.portal.conftest import Portal

    with in_tenant(world.tenant_a):
        ext, _ = do_create_extension(
            number="150",
            display_name="Leaver",
            email="leaver@acme.test",
            web_password=PASSWORD,
            actor=SYSTEM,
        )
    user_id = ext.user_id
    assert user_id is not None
    r = Portal("localhost", world.sysadmin).post(
        f"/admin/tenants/user/{user_id}/delete/", {"post": "yes"}
    )
    assert r.status_code == 302
    assert not User.objects.filter(pk=user_id).exists()
    with in_tenant(world.tenant_a):
        assert Extension.objects.get(number="150").user_id is None
