"""The provider's host: tenants and the dealer tree, for system and dealer admins."""

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from dealers import actions as dealer_actions
from dealers.access import can_manage_dealer, dealers_visible_to
from pbx.errors import PbxError
from pbx.forms import TenantDeleteForm, add_action_errors
from pbx.portal import switch
from pbx.portal.access import platform_admin_required
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.forms import (
    DealerCreateForm,
    DealerForm,
    TenantCreateForm,
    TenantEditForm,
    cleaned_changes,
)
from pbx.portal.lists import list_page
from tenants import actions as tenant_actions
from tenants.access import can_administer, tenants_visible_to
from tenants.choices import Role, TenantStatus
from tenants.validators import hostname_problems

from .common import actor, build_url, button_action, page


def _visible_tenant(request, pk):
    return get_object_or_404(tenants_visible_to(request.user).select_related("dealer"), pk=pk)


def _dealer_tree(user):
    return list(dealers_visible_to(user).order_by("path"))


@platform_admin_required
def tenant_list(request):
    qs = tenants_visible_to(request.user).select_related("dealer").prefetch_related("domains")
    ctx = list_page(
        request,
        qs,
        search=("name", "slug", "sip_domain"),
        sorts={"name": "name", "slug": "slug", "status": "status", "created": "created_at"},
        default="name",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], TENANT_COLUMNS, name="tenants")
    return page(request, "portal/tenants/list.html", ctx, section="tenants")


def _web_host(tenant) -> str:
    return next((d.domain for d in tenant.domains.all() if d.is_primary), "")


TENANT_COLUMNS: list[Column] = [
    ("Name", "name"),
    ("Slug", "slug"),
    ("SIP domain", "sip_domain"),
    ("Web host", _web_host),
    ("Dealer", "dealer.name"),
    ("Status", "get_status_display"),
    ("Maximum extensions", "max_extensions"),
    ("Time zone", "time_zone"),
    ("Created", "created_at"),
    ("Suspended", "suspended_at"),
]


@platform_admin_required
def tenant_add(request):
    user = request.user
    dealers = _dealer_tree(user)
    is_dealer = user.role == Role.DEALER_ADMIN
    kwargs = {"dealers": dealers, "allow_no_dealer": not is_dealer}
    if is_dealer:
        kwargs["initial"] = {"dealer": user.dealer_id}
    form = TenantCreateForm(request.POST or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        data = form.changes()
        dealer_id = form.cleaned_data["dealer"]
        dealer = next((d for d in dealers if d.pk == dealer_id), None)
        try:
            tenant = tenant_actions.do_create_tenant(
                slug=form.cleaned_data["slug"],
                sip_domain=form.cleaned_data["sip_domain"],
                web_host=form.cleaned_data["web_host"],
                dealer=dealer,
                admin=form.first_admin(),
                invite_origin=(request.scheme, request.get_port()),
                actor=actor(request),
                **data,
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            invited = form.first_admin()
            note = f" An invitation went to {invited['email']}." if invited else ""
            messages.success(request, f"Tenant {tenant.name} created.{note}")
            return redirect("portal:tenant_edit", pk=tenant.pk)
    return page(request, "portal/tenants/form.html", {"form": form}, section="tenants")


@platform_admin_required
def tenant_edit(request, pk):
    tenant = _visible_tenant(request, pk)
    host = tenant.domains.filter(is_primary=True).first()
    current = {name: getattr(tenant, name, None) for name in TenantEditForm.base_fields}
    current["web_host"] = host.domain if host else None
    form = TenantEditForm(request.POST or None, initial=current)
    if request.method == "POST" and form.is_valid():
        typed = {**form.changes(), **cleaned_changes(form, ("sip_domain", "web_host"))}
        # Only what changed goes to the action: an untouched stored value is not re-judged.
        changes = {k: v for k, v in typed.items() if current.get(k) != v}
        try:
            tenant_actions.do_update_tenant(tenant, actor=actor(request), **changes)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Settings saved.")
            return redirect("portal:tenant_edit", pk=tenant.pk)
    ctx = {"form": form, "object": tenant, "host": host}
    return page(request, "portal/tenants/form.html", ctx, section="tenants")


@require_POST
@platform_admin_required
def tenant_status(request, pk):
    tenant = _visible_tenant(request, pk)
    wanted = TenantStatus.SUSPENDED if tenant.is_active else TenantStatus.ACTIVE
    verb = "suspended" if wanted == TenantStatus.SUSPENDED else "resumed"
    button_action(
        request,
        lambda who: tenant_actions.do_set_tenant_status(tenant, wanted, actor=who),
        f"Tenant {tenant.name} {verb}.",
    )
    return redirect("portal:tenant_list")


@platform_admin_required
def tenant_delete(request, pk):
    tenant = _visible_tenant(request, pk)
    form = TenantDeleteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant_actions.do_delete_tenant(
                tenant, confirm=form.cleaned_data["confirm"], actor=actor(request)
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Tenant {tenant.name} deleted.")
            return redirect("portal:tenant_list")
    return page(
        request, "portal/tenants/delete.html", {"form": form, "object": tenant}, section="tenants"
    )


@require_POST
@platform_admin_required
def tenant_manage(request, pk):
    """Hand the admin a one-time link into the tenant's own host (see ``pbx.portal.switch``)."""
    tenant = _visible_tenant(request, pk)
    domain = tenant.domains.filter(is_primary=True).first()
    if domain is None or not can_administer(request.user, tenant):
        raise Http404
    if hostname_problems(domain.domain):
        messages.error(request, f"The web host '{domain.domain}' is not valid: correct it first.")
        return redirect("portal:tenant_edit", pk=tenant.pk)
    token = switch.make_token(request.user, tenant)
    from django.urls import reverse

    return redirect(build_url(request, domain.domain, reverse("portal:switch", args=[token])))


# --- dealers ---------------------------------------------------------------------------------


@platform_admin_required
def dealer_list(request):
    """The dealer tree as the caller sees it, parents before children."""
    user = request.user
    live = ~Q(tenants__status=TenantStatus.DELETED)
    dealers = dealers_visible_to(user).annotate(tenant_count=Count("tenants", filter=live))
    dealers = dealers.select_related("parent").order_by("path")
    base = user.dealer.depth - 1 if user.role == Role.DEALER_ADMIN else 0
    rows = [
        {
            "dealer": d,
            "indent": d.depth - 1 - base,
            "can_manage": can_manage_dealer(user, d),
            "tenants": d.tenant_count,
        }
        for d in dealers
    ]
    if wants_csv(request):
        return csv_response(request, rows, DEALER_COLUMNS, name="dealers")
    return page(request, "portal/dealers/list.html", {"rows": rows}, section="dealers")


DEALER_COLUMNS: list[Column] = [
    ("Name", "dealer.name"),
    ("Parent", "dealer.parent.name"),
    ("Level", lambda row: row["indent"] + 1),
    ("Tenants", "tenants"),
    ("Maximum tenants", "dealer.max_tenants"),
    ("Maximum extensions", "dealer.max_extensions"),
    ("Active", "dealer.is_active"),
    ("Created", "dealer.created_at"),
]


@platform_admin_required
def dealer_add(request):
    user = request.user
    parents = _dealer_tree(user)
    is_dealer = user.role == Role.DEALER_ADMIN
    kwargs = {"parents": parents, "allow_top": not is_dealer}
    if is_dealer:
        kwargs["initial"] = {"parent": user.dealer_id}
    form = DealerCreateForm(request.POST or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        parent = next((d for d in parents if d.pk == form.cleaned_data["parent"]), None)
        try:
            dealer = dealer_actions.do_create_dealer(
                parent=parent, actor=actor(request), **form.changes()
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Dealer {dealer.name} created.")
            return redirect("portal:dealer_list")
    return page(request, "portal/dealers/form.html", {"form": form}, section="dealers")


def _managed_dealer(request, pk):
    dealer = get_object_or_404(dealers_visible_to(request.user), pk=pk)
    if not can_manage_dealer(request.user, dealer):
        raise Http404
    return dealer


@platform_admin_required
def dealer_edit(request, pk):
    dealer = _managed_dealer(request, pk)
    initial = {name: getattr(dealer, name) for name in DealerForm.base_fields}
    form = DealerForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        changes = {k: v for k, v in form.changes().items() if getattr(dealer, k) != v}
        try:
            dealer_actions.do_update_dealer(dealer, actor=actor(request), **changes)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, "Dealer saved.")
            return redirect("portal:dealer_list")
    ctx = {"form": form, "object": dealer}
    return page(request, "portal/dealers/form.html", ctx, section="dealers")


@require_POST
@platform_admin_required
def dealer_delete(request, pk):
    dealer = _managed_dealer(request, pk)
    button_action(
        request,
        lambda who: dealer_actions.do_delete_dealer(dealer, actor=who),
        f"Dealer {dealer.name} deleted.",
    )
    return redirect("portal:dealer_list")
