"""The dealers' Django admin: a second admin site, at ``/dealer-admin/`` on the provider's host,
where a dealer admin manages its subtree — its tenants, its sub-dealers, their trunks and DID
numbers — and reads their audit trail.

Everything is scoped the way the portal and the API are: querysets come from
``tenants_visible_to`` / ``dealers_visible_to``, so another dealer's object is 404 on every
view (change, delete, history), is never listed, never offered in a drop-down, a filter or an
autocomplete (nor counted in a facet), and an admin action posted with its id acts on nothing.
Writes go through the same actions (and audit entries) as everywhere else: the ModelAdmins are
the system admin's (``tenants.admin``, ``dealers.admin``) with their choices narrowed to the
subtree.

Only dealer admins get in. Anyone else signed in (the system admin has ``/admin/``) gets 404,
and on a tenant's host every page of this site is 404; signing in is the portal's own page.
"""

from functools import update_wrapper
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from pbx.admin import AuditEntryAdmin as SystemAuditEntryAdmin
from pbx.audit import Actor
from pbx.errors import PbxError
from pbx.forms import TenantDeleteForm, add_action_errors
from pbx.models import AuditEntry
from tenants import actions as tenant_actions
from tenants.access import dealer_subtree_q, tenants_visible_to
from tenants.admin import FIRST_ADMIN_FIELDS, TENANT_EDITABLE, DomainInline
from tenants.admin import TenantAdmin as SystemTenantAdmin
from tenants.choices import Role
from tenants.fields import DEALER_FIELDS
from tenants.models import Tenant
from trunks.access import numbers_managed_by, trunks_managed_by
from trunks.admin import DidNumberAdmin as SystemDidNumberAdmin
from trunks.admin import TrunkAdmin as SystemTrunkAdmin
from trunks.models import DidNumber, Trunk

from .access import can_manage_dealer, dealers_visible_to
from .admin import DealerAdmin as SystemDealerAdmin
from .models import Dealer


def _provider_host(request) -> bool:
    tenant = getattr(request, "tenant", None)
    return tenant is None or tenant.is_public


def is_dealer_admin(request) -> bool:
    """An active dealer admin, on the provider's host."""
    user = request.user
    return (
        _provider_host(request)
        and user.is_authenticated
        and user.is_active
        and user.role == Role.DEALER_ADMIN
        and user.dealer_id is not None
    )


class DealerAdminSite(admin.AdminSite):
    site_header = "Dealer administration"
    site_title = "Dealer administration"
    index_title = "Your tenants and sub-dealers"
    site_url = "/portal/"

    def has_permission(self, request):
        return is_dealer_admin(request)

    def admin_view(self, view, cacheable=False):
        inner = super().admin_view(view, cacheable)

        def guarded(request, *args, **kwargs):
            # Not a hint that this site exists: a tenant's host, or a signed-in user who is not
            # a dealer admin, gets the same 404 as any unknown page. Only the anonymous are
            # sent to sign in.
            if not _provider_host(request) or (
                request.user.is_authenticated and not self.has_permission(request)
            ):
                raise Http404
            return inner(request, *args, **kwargs)

        return update_wrapper(guarded, view)

    def login(self, request, extra_context=None):
        """The portal's sign-in (lock-outs, two-factor) is the only one: send the user there."""
        if not _provider_host(request) or request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
            raise Http404
        from django.conf import settings

        target = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(f"{settings.LOGIN_URL}?{urlencode({'next': target})}")

    def get_urls(self):
        # Not Django's "view on site" redirect: it finds any row of any model by id, unscoped.
        return [url for url in super().get_urls() if getattr(url, "name", "") != "view_on_site"]

    def password_change(self, request, extra_context=None):
        # The portal's page applies the password rules and signs other sessions out.
        return HttpResponseRedirect(reverse("account_change_password"))


site = DealerAdminSite(name="dealer_admin")


class NotFoundOutside:
    """An object outside the caller's queryset is 404 on every view of it, whatever the method
    and before any permission check: Django's defaults are a redirect with a "doesn't exist"
    message, or 403 for a write to a read-only model."""

    def _visible(self, request, object_id) -> None:
        if self.get_object(request, unquote(object_id)) is None:  # type: ignore[attr-defined]
            raise Http404

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        raise Http404

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self._visible(request, object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self._visible(request, object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self._visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


class ScopedAdmin(NotFoundOutside):
    """Mixed in before the system admin's ModelAdmin of a model: the same form and actions,
    with the site's permission (a dealer admin) instead of Django's per-model ones."""

    admin_site: admin.AdminSite
    opts: Any
    view_on_site: Any = False

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_change_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_delete_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def get_deleted_objects(self, objs, request):
        """What a delete takes with it, without Django's collector (it would walk into
        tables of the tenants' schemas); the action refuses what may not go."""
        objs = list(objs)
        denied = {
            str(self.opts.verbose_name)
            for obj in objs
            if not self.has_delete_permission(request, obj)
        }
        return [str(obj) for obj in objs], {self.opts.verbose_name_plural: len(objs)}, denied, []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Drop-downs offer the caller's subtree only, and one must be chosen: a dealer admin
        # makes nothing directly under the service provider. (Plain drop-downs, not Django's
        # autocomplete widget: its select2 box has no accessible name, and a subtree is short.
        # The autocomplete view still answers, from the related admin's scoped queryset.)
        if db_field.related_model is Dealer:
            kwargs["queryset"] = dealers_visible_to(request.user).order_by("path")
            kwargs["required"] = True
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantDomainInline(DomainInline):
    """The tenant's host names, read-only (as in the system admin's)."""

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)


@admin.register(Tenant, site=site)
class TenantAdmin(ScopedAdmin, SystemTenantAdmin):
    """The system admin's tenant admin (form with the first admin's invitation, suspend and
    resume actions) over the caller's tenants, with deletion as the action has it."""

    inlines = (TenantDomainInline,)
    # Only the dealers of the caller's tenants (a plain dealer filter lists every dealer).
    list_filter: ClassVar[Any] = ("status", ("dealer", admin.RelatedOnlyFieldListFilter))
    ordering = ("name", "id")
    delete_template = "admin/dealer_site/tenant_delete.html"

    def get_queryset(self, request):
        return tenants_visible_to(request.user).select_related("dealer")

    def get_fieldsets(self, request, obj=None):
        first = ("name", "slug", "sip_domain", "web_host", "dealer")
        settings = ("Settings and capabilities", {"fields": TENANT_EDITABLE[1:]})
        if obj is None:
            return (
                (None, {"fields": first}),
                ("First admin", {"fields": FIRST_ADMIN_FIELDS}),
                settings,
            )
        state = ("status", "schema_name", "created_at", "suspended_at")
        return ((None, {"fields": (*first, *state)}), settings)

    def get_actions(self, request):
        # A tenant goes only with its identifier typed (the delete view), never in bulk.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        """Deleting erases the tenant's schema: the action wants its identifier typed."""
        tenant = self.get_object(request, unquote(object_id))
        if tenant is None:
            raise Http404
        form = TenantDeleteForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                tenant_actions.do_delete_tenant(
                    tenant, confirm=form.cleaned_data["confirm"], actor=Actor.from_request(request)
                )
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                # Logged once done (a refused delete is no deletion); the tombstone row stays.
                self.log_deletions(request, Tenant.objects.filter(pk=tenant.pk))
                self.message_user(request, f"Tenant {tenant.name} deleted.", messages.SUCCESS)
                return HttpResponseRedirect(
                    reverse("admin:tenants_tenant_changelist", current_app=self.admin_site.name)
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Delete {tenant.name}",
            "subtitle": None,
            "object": tenant,
            "form": form,
            "opts": self.opts,
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.delete_template, context)


@admin.register(Dealer, site=site)
class DealerAdmin(ScopedAdmin, SystemDealerAdmin):
    """The caller's own dealer (read-only: dealers are managed from above) and its
    sub-dealers."""

    def get_queryset(self, request):
        return dealers_visible_to(request.user).select_related("parent")

    def get_readonly_fields(self, request, obj=None):
        return ("parent", "created_at") if obj else ("created_at",)

    def get_fields(self, request, obj=None):
        # The caller's own dealer is shown without its parent: above the subtree is not its.
        if obj is not None and obj.pk == request.user.dealer_id:
            return (*DEALER_FIELDS, "created_at")
        return ("parent", *DEALER_FIELDS, "created_at")

    def get_list_display(self, request):
        own = request.user.dealer_id

        @admin.display(description="Parent", ordering="parent__name")
        def parent(dealer):
            return "—" if dealer.pk == own else dealer.parent

        return ("name", parent, "max_tenants", "max_extensions", "is_active")

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and (
            obj is None or can_manage_dealer(request.user, obj)
        )

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or can_manage_dealer(request.user, obj)
        )

    def delete_queryset(self, request, queryset):
        # Never the caller's own dealer (``get_deleted_objects`` has refused such a request).
        mine = queryset.exclude(pk=request.user.dealer_id)
        super().delete_queryset(request, mine)


@admin.register(AuditEntry, site=site)
class AuditEntryAdmin(NotFoundOutside, SystemAuditEntryAdmin):
    """What was done to the subtree's dealers and tenants, read-only."""

    def get_queryset(self, request):
        user = request.user
        scope = dealer_subtree_q(user, "tenant__dealer") | dealer_subtree_q(user, "dealer")
        return super().get_queryset(request).filter(scope)

    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)


class _OwnDealerDefault:
    """A new row given no dealer (and, for a trunk, no tenant) is the caller's dealer's."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"default_dealer": request.user.dealer})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.related_model
        if model is Tenant:
            kwargs["queryset"] = tenants_visible_to(request.user).order_by("name")
        elif model is Trunk:
            kwargs["queryset"] = trunks_managed_by(request.user).order_by("name")
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if model is Dealer and field is not None:
            field.required = False  # none: the caller's own dealer
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is Tenant:
            kwargs["queryset"] = tenants_visible_to(request.user).order_by("name")
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(Trunk, site=site)
class TrunkAdmin(_OwnDealerDefault, ScopedAdmin, SystemTrunkAdmin):
    """The trunks of the caller's subtree: its dealers' (shared with its tenants) and its
    tenants' own; the password write-only, the live state read-only."""

    def get_queryset(self, request):
        return trunks_managed_by(request.user).select_related("tenant", "dealer")


@admin.register(DidNumber, site=site)
class DidNumberAdmin(_OwnDealerDefault, ScopedAdmin, SystemDidNumberAdmin):
    """The numbers the caller's subtree holds, added, assigned to its tenants and released."""

    def get_queryset(self, request):
        return numbers_managed_by(request.user).select_related("tenant", "dealer", "trunk")
