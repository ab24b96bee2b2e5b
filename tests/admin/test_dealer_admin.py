"""The dealers' Django admin (``/dealer-admin/``, ``dealers.admin_site``): a dealer admin manages
its subtree there, through the actions, and nothing of another dealer's answers on any of its
pages. Dealer North's admin (under Top) walks every page of the site with dealer South's
objects (tenant B, its audit entries, a sub-dealer) and gets 404, finds none of them listed,
filtered, offered or counted, and leaves them as they were."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.urls import reverse

from dealers.actions import do_create_dealer
from dealers.admin_site import site
from dealers.models import Dealer
from pbx.audit import SYSTEM
from pbx.celery import app
from pbx.models import AuditEntry
from tenants import actions as tenant_actions
from tenants.choices import Role, TenantStatus
from tenants.models import Tenant, User

pytestmark = pytest.mark.django_db

ROOT = "/dealer-admin/"
# What of dealer South's would show on a page that leaks it.
SOUTH_MARKERS = ("South", "beta.test", "t_beta", "admin@beta.test", ">Beta<", "Beta Sub")


def _leaks(response) -> list[str]:
    text = response.content.decode()
    return [m for m in SOUTH_MARKERS if m in text]


def _url(model, view: str, *args) -> str:
    name = f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"
    return reverse(name, args=args, current_app=site.name)


def _state(model, pk):
    return model.objects.count(), model.objects.filter(pk=pk).values().first()


def _form_data(response) -> dict:
    """What the browser would post back: the rendered form's values (and its inlines'), as
    they stand."""
    forms = [response.context["adminform"].form]
    for inline in response.context.get("inline_admin_formsets") or ():
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setattr(app.conf, "task_always_eager", True)


@pytest.fixture
def south_rows(world):
    """One object of South's for every model the dealer site serves."""
    from trunks.actions import do_add_numbers, do_create_trunk
    from trunks.models import DidNumber, Trunk

    sub = do_create_dealer(name="Beta Sub", parent=world.south, actor=SYSTEM, max_tenants=1)
    entry = AuditEntry.objects.filter(tenant=world.tenant_b).order_by("pk").first()
    trunk = do_create_trunk(
        actor=SYSTEM,
        fields={"name": "South trunk", "host": "sip.south.test", "addresses": ["192.0.2.3"]},
        dealer=world.south,
        shared_with=[world.tenant_b],
    )
    (number,) = do_add_numbers(
        actor=SYSTEM, number="+12125550133", dealer=world.south, tenant=world.tenant_b,
        description="South line",
    )  # fmt: skip
    return {
        Tenant: world.tenant_b.pk,
        Dealer: sub.pk,
        AuditEntry: entry.pk,
        Trunk: trunk.pk,
        DidNumber: number.pk,
    }


# --- who gets in ------------------------------------------------------------------------------


def test_only_dealer_admins_on_the_provider_host_get_in(portal, world):
    north = portal(world.north_admin)
    assert north.get(ROOT).status_code == 200
    assert north.get(_url(Tenant, "changelist")).status_code == 200
    # A dealer admin is not let into the system admin's /admin/: its sign-in page, no data.
    for path in ("/admin/", "/admin/tenants/tenant/", f"/admin/dealers/dealer/{world.north.pk}/"):
        r = north.get(path)
        assert r.status_code == 302, path
        assert r.url.startswith("/admin/login/"), path
    # The system admin has /admin/; this site does not know it.
    assert portal(world.sysadmin).get(ROOT).status_code == 404
    assert portal(world.sysadmin).get(_url(Tenant, "changelist")).status_code == 404

    # The anonymous are sent to the portal's sign-in (one sign-in page, with its lock-outs).
    anon = portal()
    r = anon.get(_url(Tenant, "changelist"))
    assert r.status_code == 302
    r = anon.get(r.url)
    assert r.status_code == 302
    assert r.url.startswith("/accounts/login/?next=")

    # Tenant users: on the provider's host their session is not valid (signed out, sent to
    # sign in); on their own host the site does not exist.
    for user in (world.a_admin, world.a_user):
        r = portal(user).get(_url(Tenant, "changelist"))
        assert r.status_code == 302
        assert "/login/" in r.url
        assert not _leaks(r)
        assert b"Acme" not in r.content
        on_host = portal(user, tenant=world.tenant_a)
        for path in (ROOT, _url(Tenant, "changelist"), f"{ROOT}login/"):
            assert on_host.get(path).status_code == 404, path
    # Nor does it on a tenant's host for the dealer (whose session is the provider's).
    r = portal(world.north_admin, tenant=world.tenant_a).get(_url(Tenant, "changelist"))
    assert r.status_code == 404


# --- isolation --------------------------------------------------------------------------------


def test_no_object_of_another_dealer_answers_on_any_page(portal, world, south_rows):
    registered = set(site._registry)
    assert registered == set(south_rows), "a model on the dealer site needs a row of South's"
    before = {model: _state(model, pk) for model, pk in south_rows.items()}
    logs_before = LogEntry.objects.count()
    north = portal(world.north_admin)

    tried = 0
    for model, pk in south_rows.items():
        admin_obj = site._registry[model]
        for view, method in (
            ("change", "get"),
            ("change", "post"),
            ("history", "get"),
            ("delete", "get"),
            ("delete", "post"),
        ):
            body = {"post": "yes", "confirm": "beta", "name": "Taken", "_save": "Save"}
            r = getattr(north, method)(_url(model, view, pk), body if method == "post" else None)
            tried += 1
            assert r.status_code == 404, (model, view, method, r.status_code)
            assert not _leaks(r), (model, view, _leaks(r))

        content_type = ContentType.objects.get_for_model(model)
        r = north.get(f"{ROOT}r/{content_type.pk}/{pk}/")
        assert r.status_code == 404, (model, "view on site")

        listing = _url(model, "changelist")
        # (Searches in lower case: the search box echoes the term.)
        for query in ("", "?q=south", "?q=beta", "?_facets=1", f"?dealer__id__exact={pk}"):
            r = north.get(listing + query)
            assert r.status_code in (200, 302), (listing, query, r.status_code)
            assert not _leaks(r), (listing, query, _leaks(r))
            if r.status_code == 200:
                shown = {obj.pk for obj in r.context["cl"].result_list}
                assert pk not in shown, (listing, query)
        # Admin actions posted with South's ids act on nothing.
        for action in [*admin_obj.get_actions(north_request(world))]:
            north.post(listing, {"action": action, "_selected_action": [pk], "post": "yes"})
            tried += 1
    assert tried > 15
    # Django's autocomplete view answers from the related admin's (scoped) queryset.
    visible = {
        Dealer: set(
            site._registry[Dealer].get_queryset(north_request(world)).values_list("pk", flat=True)
        ),
        Tenant: {world.tenant_a.pk},
    }
    sources = (
        (Tenant, "dealer"),
        (Dealer, "parent"),
        (AuditEntry, "tenant"),
        (AuditEntry, "dealer"),
    )
    for source, field in sources:
        remote = source._meta.get_field(field).related_model
        for term in ("", "South", "Beta"):
            r = north.get(
                f"{ROOT}autocomplete/",
                {
                    "app_label": source._meta.app_label,
                    "model_name": source._meta.model_name,
                    "field_name": field,
                    "term": term,
                },
            )
            assert r.status_code == 200, (source, field, r.status_code)
            offered = {int(item["id"]) for item in r.json()["results"]}
            assert offered <= visible[remote], (source, field, term, offered)
            assert offered or term, (source, field)  # the caller's own are offered
            assert not _leaks(r)

    # The add forms offer the subtree only, and refuse a South's dealer posted by hand.
    r = north.get(_url(Tenant, "add"))
    assert r.status_code == 200
    assert not _leaks(r)
    data = {**_form_data(r), "name": "Sneak", "slug": "sneak", "sip_domain": "sneak.test"}
    r = north.post(_url(Tenant, "add"), {**data, "dealer": world.south.pk})
    assert r.status_code == 200
    assert "dealer" in r.context["adminform"].form.errors
    assert not Tenant.objects.filter(slug="sneak").exists()
    r = north.get(_url(Dealer, "add"))
    data = {**_form_data(r), "name": "Sneak Sub", "parent": world.south.pk}
    r = north.post(_url(Dealer, "add"), data)
    assert r.status_code == 200
    assert "parent" in r.context["adminform"].form.errors
    assert not Dealer.objects.filter(name="Sneak Sub").exists()

    assert {model: _state(model, pk) for model, pk in south_rows.items()} == before
    assert LogEntry.objects.count() == logs_before

    # What South's admin does here shows neither in North's recent actions nor its lists.
    south = portal(world.south_admin)
    r = south.get(_url(Tenant, "change", world.tenant_b.pk))
    r = south.post(_url(Tenant, "change", world.tenant_b.pk), {**_form_data(r), "name": "Beta"})
    assert r.status_code == 302, r.content.decode()[-2000:]
    assert LogEntry.objects.filter(object_id=str(world.tenant_b.pk)).exists()
    assert not _leaks(north.get(ROOT))
    assert not _leaks(north.get(_url(AuditEntry, "changelist")))


def north_request(world):
    """A request as North's admin makes it, for asking the site which actions it offers."""
    from django.test import RequestFactory

    request = RequestFactory().get(ROOT)
    request.user = world.north_admin
    request.tenant = world.public
    return request


def test_a_sub_dealer_sees_neither_its_parent_nor_its_parents_other_tenants(portal, world):
    top_own = tenant_actions.do_create_tenant(
        name="Topco",
        slug="topco",
        sip_domain="topco.test",
        dealer=world.top_dealer,
        actor=SYSTEM,
        max_extensions=5,
    )
    north, top = portal(world.north_admin), portal(world.top_admin)
    listed = north.get(_url(Tenant, "changelist")).content.decode()
    assert "Acme" in listed
    assert "Topco" not in listed
    assert "Topco" in top.get(_url(Tenant, "changelist")).content.decode()
    assert north.get(_url(Tenant, "change", top_own.pk)).status_code == 404
    assert top.get(_url(Tenant, "change", top_own.pk)).status_code == 200
    # Its parent is not its to see; its own dealer it sees, read-only.
    assert north.get(_url(Dealer, "change", world.top_dealer.pk)).status_code == 404
    dealers = north.get(_url(Dealer, "changelist")).content.decode()
    assert "North" in dealers
    assert "Top Reseller" not in dealers
    own = north.get(_url(Dealer, "change", world.north.pk))
    assert own.status_code == 200
    assert own.context["has_change_permission"] is False
    before = _state(Dealer, world.north.pk)
    r = north.post(_url(Dealer, "change", world.north.pk), {"name": "Mine", "max_tenants": 50})
    assert r.status_code == 403
    r = north.post(
        _url(Dealer, "changelist"),
        {"action": "delete_selected", "_selected_action": [world.north.pk], "post": "yes"},
    )
    assert r.status_code == 403
    assert _state(Dealer, world.north.pk) == before


# --- writes through the actions ---------------------------------------------------------------


def test_dealer_creates_a_tenant_with_its_first_admin_invited(
    portal, world, eager, django_capture_on_commit_callbacks
):
    north = portal(world.north_admin)
    r = north.get(_url(Tenant, "add"))
    assert {"admin_email", "admin_name"} <= set(r.context["adminform"].form.fields)
    data = {
        **_form_data(r),
        "name": "Newco",
        "slug": "newco",
        "sip_domain": "newco.test",
        "dealer": world.north.pk,
        "admin_email": "boss@newco.test",
        "admin_name": "Bea Boss",
        "max_extensions": 5,
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = north.post(_url(Tenant, "add"), data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    tenant = Tenant.objects.get(slug="newco")
    assert (tenant.dealer_id, tenant.max_extensions) == (world.north.pk, 5)
    created = AuditEntry.objects.get(action="tenant.create", object_id=str(tenant.pk))
    assert created.actor_id == world.north_admin.pk
    boss = User.objects.get(tenant=tenant)
    assert (boss.email, boss.role, boss.has_usable_password()) == (
        "boss@newco.test",
        Role.TENANT_ADMIN,
        False,
    )
    assert AuditEntry.objects.filter(action="user.invite", object_id=str(boss.pk)).exists()
    [message] = mail.outbox
    assert message.to == ["boss@newco.test"]
    assert re.search(r"http://newco\.test/portal/welcome/\S+/", message.body)

    # Suspend and resume are admin actions, audited.
    listing = _url(Tenant, "changelist")
    north.post(listing, {"action": "suspend", "_selected_action": [tenant.pk]})
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.SUSPENDED
    north.post(listing, {"action": "resume", "_selected_action": [tenant.pk]})
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE
    assert (
        AuditEntry.objects.filter(
            object_id=str(tenant.pk), action__in=("tenant.suspend", "tenant.resume")
        ).count()
        == 2
    )
    # No bulk delete of tenants; deleting one wants its identifier typed.
    assert "delete_selected" not in site._registry[Tenant].get_actions(north_request(world))
    r = north.post(_url(Tenant, "delete", tenant.pk), {"confirm": "nope"})
    assert r.status_code == 200
    assert r.context["form"].errors["confirm"]
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.ACTIVE
    r = north.post(_url(Tenant, "delete", tenant.pk), {"confirm": "newco"})
    assert r.status_code == 302
    assert Tenant.objects.get(pk=tenant.pk).status == TenantStatus.DELETED
    assert AuditEntry.objects.filter(action="tenant.delete", object_id=str(tenant.pk)).exists()
    # A deleted tenant is gone from the site.
    assert north.get(_url(Tenant, "change", tenant.pk)).status_code == 404


def test_the_quota_ceiling_is_a_form_error(portal, world):
    north = portal(world.north_admin)
    r = north.get(_url(Tenant, "add"))
    data = {
        **_form_data(r),
        "name": "Greedy",
        "slug": "greedy",
        "sip_domain": "greedy.test",
        "dealer": world.north.pk,
        "max_extensions": world.north.max_extensions + 1,
    }
    r = north.post(_url(Tenant, "add"), data)
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert f"at most {world.north.max_extensions}" in " ".join(errors["max_extensions"])
    assert not Tenant.objects.filter(slug="greedy").exists()
    # Editing its tenant beyond what the dealer holds: the same.
    change = _url(Tenant, "change", world.tenant_a.pk)
    before = _state(Tenant, world.tenant_a.pk)
    r = north.get(change)
    r = north.post(change, {**_form_data(r), "max_concurrent_calls": 10**6})
    assert r.status_code == 200
    assert r.context["adminform"].form.errors["max_concurrent_calls"]
    assert _state(Tenant, world.tenant_a.pk) == before


def test_dealer_manages_its_sub_dealers(portal, world):
    top = portal(world.top_admin)
    r = top.get(_url(Dealer, "add"))
    data = {**_form_data(r), "name": "East", "parent": world.north.pk, "max_tenants": 1}
    data["max_extensions"] = 10
    r = top.post(_url(Dealer, "add"), data)
    assert r.status_code == 302, r.context["adminform"].form.errors
    east = Dealer.objects.get(name="East")
    assert east.path.startswith(world.north.path)
    assert AuditEntry.objects.filter(action="dealer.create", object_id=str(east.pk)).exists()
    r = top.get(_url(Dealer, "change", east.pk))
    r = top.post(_url(Dealer, "change", east.pk), {**_form_data(r), "name": "East Coast"})
    assert r.status_code == 302
    assert Dealer.objects.get(pk=east.pk).name == "East Coast"
    # More than North may give: a form error.
    r = top.get(_url(Dealer, "change", east.pk))
    r = top.post(_url(Dealer, "change", east.pk), {**_form_data(r), "max_tenants": 10**6})
    assert r.status_code == 200
    assert r.context["adminform"].form.errors["max_tenants"]
    # A dealer with tenants is not deleted: the action's refusal, not a success message.
    r = top.post(_url(Dealer, "delete", world.north.pk), {"post": "yes"}, follow=True)
    assert Dealer.objects.filter(pk=world.north.pk).exists()
    assert "still has sub-dealers or tenants" in r.content.decode()
    assert "deleted successfully" not in r.content.decode()
    r = top.post(_url(Dealer, "delete", east.pk), {"post": "yes"})
    assert r.status_code == 302
    assert not Dealer.objects.filter(pk=east.pk).exists()
    assert AuditEntry.objects.filter(action="dealer.delete", object_id=str(east.pk)).exists()


# --- the system admin's admin -----------------------------------------------------------------


def test_system_admin_tenant_form_invites_the_first_admin(
    portal, world, eager, django_capture_on_commit_callbacks
):
    p = portal(world.sysadmin)
    r = p.get("/admin/tenants/tenant/add/")
    assert {"admin_email", "admin_name"} <= set(r.context["adminform"].form.fields)
    data = {
        **_form_data(r),
        "name": "Sysco",
        "slug": "sysco",
        "sip_domain": "sysco.test",
        "admin_email": "first@sysco.test",
    }
    with django_capture_on_commit_callbacks(execute=True):
        r = p.post("/admin/tenants/tenant/add/", data)
    assert r.status_code == 302, r.content.decode()[-3000:]
    tenant = Tenant.objects.get(slug="sysco")
    assert User.objects.get(tenant=tenant).email == "first@sysco.test"
    [message] = mail.outbox
    assert message.to == ["first@sysco.test"]
    # The edit form has no first admin to invite.
    r = p.get(f"/admin/tenants/tenant/{tenant.pk}/change/")
    assert "admin_email" not in r.content.decode()


def test_the_portal_links_dealer_admins_to_their_admin_site(portal, world):
    link = f'href="{ROOT}"'
    assert link in portal(world.north_admin).get("/portal/tenants/").content.decode()
    assert link not in portal(world.sysadmin).get("/portal/tenants/").content.decode()
