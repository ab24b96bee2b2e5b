"""Admin for tenants, users, custom roles and tenants' TLS certificates; every write goes
through ``tenants.actions``."""

from django import forms
from django.contrib import admin, messages

from pbx.admin import ActionAdmin, ActionForm
from pbx.audit import Actor
from pbx.errors import PbxError
from pbx.forms import FirstAdminFields

from . import actions
from .choices import Permission, TenantStatus
from .fields import CAPABILITY_FIELDS, TENANT_SETTINGS_FIELDS
from .models import Domain, Tenant, TenantCertificate, TenantRole, User

TENANT_EDITABLE = (*TENANT_SETTINGS_FIELDS, *CAPABILITY_FIELDS)
FIRST_ADMIN_FIELDS = ("admin_email", "admin_name")


class DomainInline(admin.TabularInline):
    """Host names are made with the tenant (its web host); shown here, not edited."""

    model = Domain
    extra = 0
    can_delete = False
    fields = ("domain", "is_primary")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class TenantForm(FirstAdminFields, ActionForm):
    # The first admin's fields are only on the add form (``TenantAdmin.get_fields``).
    web_host = forms.CharField(
        required=False, help_text="The host name of the tenant's portal (default: the SIP domain)."
    )

    class Meta:
        model = Tenant
        fields = ("name", "slug", "sip_domain", "dealer", *TENANT_EDITABLE)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            primary = self.instance.domains.filter(is_primary=True).first()
            self.initial["web_host"] = primary.domain if primary else ""

    def run_action(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            fields = {n: data[n] for n in TENANT_EDITABLE if n in data and n != "name"}
            return actions.do_create_tenant(
                name=data["name"],
                slug=data["slug"],
                sip_domain=data["sip_domain"],
                web_host=data.get("web_host") or None,
                dealer=data.get("dealer"),
                admin=self.first_admin(),
                invite_origin=self.origin,
                actor=self.actor,
                **fields,
            )
        # Host names go to the action only when changed: a stored bad value does not block
        # editing the rest, and the action judges a corrected one by the same rules.
        hosts = self.changes(("sip_domain", "web_host"))
        return actions.do_update_tenant(
            self.instance, actor=self.actor, **hosts, **self.changes(TENANT_EDITABLE)
        )


@admin.register(Tenant)
class TenantAdmin(ActionAdmin):
    form = TenantForm
    inlines = (DomainInline,)
    list_display = ("name", "slug", "sip_domain", "dealer", "status", "created_at")
    list_filter = ("status",)
    search_fields = ("name", "slug", "sip_domain")
    list_select_related = ("dealer",)
    actions = ("suspend", "resume")

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name="public")

    def get_readonly_fields(self, request, obj=None):
        base = ("status", "schema_name", "created_at", "suspended_at", "deleted_at")
        return (*base, "slug", "dealer") if obj else base

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        return [f for f in fields if f not in FIRST_ADMIN_FIELDS] if obj else fields

    def response_add(self, request, obj, post_url_continue=None):
        invited = request.POST.get("admin_email")
        if invited and obj.pk is not None:
            self.message_user(request, f"An invitation went to {invited}.", messages.SUCCESS)
        return super().response_add(request, obj, post_url_continue)

    def has_delete_permission(self, request, obj=None):
        # Deleting a tenant erases its schema: done in the portal, with a typed confirmation.
        return False

    def _set_status(self, request, queryset, status):
        actor = Actor.from_request(request)
        for tenant in queryset.order_by("pk"):
            try:
                actions.do_set_tenant_status(tenant, status, actor=actor)
            except PbxError as exc:
                self.message_user(request, f"{tenant}: {exc.message}", messages.ERROR)

    @admin.action(description="Suspend selected tenants")
    def suspend(self, request, queryset):
        self._set_status(request, queryset, TenantStatus.SUSPENDED)

    @admin.action(description="Resume selected tenants")
    def resume(self, request, queryset):
        self._set_status(request, queryset, TenantStatus.ACTIVE)


class UserForm(ActionForm):
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="On change: leave empty to keep the current password.",
    )

    class Meta:
        model = User
        fields = ("email", "full_name", "role", "tenant", "dealer", "custom_role", "is_active")

    def run_action(self):
        data = self.cleaned_data
        password = data.get("password") or None
        if self.instance.pk is None:
            return actions.do_create_user(
                email=data["email"],
                password=password,
                role=data["role"],
                tenant=data.get("tenant"),
                dealer=data.get("dealer"),
                full_name=data.get("full_name", ""),
                custom_role=data.get("custom_role"),
                actor=self.actor,
            )
        names = ("email", "full_name", "role", "custom_role", "is_active")
        return actions.do_update_user(
            self.instance, actor=self.actor, password=password, **self.changes(names)
        )


@admin.register(User)
class UserAdmin(ActionAdmin):
    form = UserForm
    list_display = ("email", "full_name", "role", "tenant", "dealer", "is_active", "last_login")
    list_filter = ("role", "is_active")
    search_fields = ("email", "full_name")
    list_select_related = ("tenant", "dealer")
    ordering = ("email", "id")

    def get_readonly_fields(self, request, obj=None):
        return ("tenant", "dealer", "last_login") if obj else ("last_login",)

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_user, obj)

    def delete_queryset(self, request, queryset):
        for user in queryset.order_by("pk"):
            self.delete_model(request, user)


class RoleForm(ActionForm):
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = TenantRole
        fields = ("tenant", "name", "description", "permissions")

    def run_action(self):
        data = self.cleaned_data
        if self.instance.pk is None:
            return actions.do_create_role(
                data["tenant"],
                name=data["name"],
                permissions=data["permissions"],
                description=data.get("description", ""),
                actor=self.actor,
            )
        names = ("name", "description", "permissions")
        return actions.do_update_role(self.instance, actor=self.actor, **self.changes(names))


@admin.register(TenantRole)
class TenantRoleAdmin(ActionAdmin):
    form = RoleForm
    list_display = ("name", "tenant", "description")
    search_fields = ("name", "tenant__name")
    list_select_related = ("tenant",)

    def get_readonly_fields(self, request, obj=None):
        return ("tenant",) if obj else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant":
            kwargs["queryset"] = Tenant.objects.exclude(schema_name="public").exclude(
                status=TenantStatus.DELETED
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_role, obj)

    def delete_queryset(self, request, queryset):
        for role in queryset.order_by("pk"):
            self.delete_model(request, role)


def _live_tenants():
    return Tenant.objects.exclude(schema_name="public").exclude(status=TenantStatus.DELETED)


class CertificateForm(ActionForm):
    """Upload a certificate for a tenant (the system admin's counterpart of the tenant's
    "TLS certificates" page); checked by ``do_upload_certificate``."""

    chain = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        strip=False,
        max_length=70_000,
        help_text="PEM: the tenant's certificate first, then each intermediate.",
    )
    key = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        strip=False,
        max_length=20_000,
        help_text="PEM, unencrypted (stored encrypted).",
    )

    class Meta:
        model = TenantCertificate
        fields = ("tenant",)

    def run_action(self):
        data = self.cleaned_data
        return actions.do_upload_certificate(
            data["tenant"], chain=data["chain"], key=data["key"], actor=self.actor
        )


@admin.register(TenantCertificate)
class TenantCertificateAdmin(ActionAdmin):
    """Added (uploaded) and deleted, never edited: a new certificate replaces an old one."""

    form = CertificateForm
    list_display = ("subject", "tenant", "served_hosts", "not_after", "issuer", "uploaded_at")
    search_fields = ("subject", "tenant__name", "fingerprint", "host_rows__host")
    list_select_related = ("tenant",)
    ordering = ("-uploaded_at", "-id")
    shown = (
        "tenant", "served_hosts", "names", "subject", "issuer", "key_type", "not_before",
        "not_after", "fingerprint", "uploaded_by_label", "uploaded_at", "chain_pem",
    )  # fmt: skip

    @admin.display(description="serves")
    def served_hosts(self, obj) -> str:
        return ", ".join(row.host for row in obj.host_rows.all()) or "—"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("host_rows")

    def get_fields(self, request, obj=None):
        return self.shown if obj else ("tenant", "chain", "key")

    def get_readonly_fields(self, request, obj=None):
        return self.shown if obj else ()

    def has_change_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant":
            kwargs["queryset"] = _live_tenants()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def delete_model(self, request, obj):
        self.refusal(request, actions.do_delete_certificate, obj)

    def delete_queryset(self, request, queryset):
        for cert in queryset.order_by("pk"):
            self.delete_model(request, cert)
