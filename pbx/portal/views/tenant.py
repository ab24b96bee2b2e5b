"""A tenant's host: extensions, users, roles, the audit log and a user's own extension."""

import json

from django.contrib import messages
from django.contrib.auth import login, logout
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.models import AuditEntry
from pbx.portal import bulk, switch
from pbx.portal.access import (
    held_permissions,
    host_tenant,
    tenant_permission_required,
)
from pbx.portal.export import Column, csv_response, wants_csv
from pbx.portal.forms import (
    ExtensionCreateForm,
    ExtensionEditForm,
    RoleForm,
    UserForm,
    extension_choices,
    show_password_rules,
)
from pbx.portal.lists import list_page
from pbx.portal.live import live_state, status_label
from telephony import actions as ext_actions
from telephony.models import Extension
from tenants import actions as tenant_actions
from tenants.access import can_administer, tenant_users
from tenants.choices import Permission, Role
from tenants.middleware import MANAGED_TENANT_SESSION_KEY
from tenants.models import TenantRole, User

from .common import actor, button_action, page, provider_portal_url

# --- switching in from the provider's portal -----------------------------------------------


def switch_in(request, token):
    """Sign a provider-side admin in on this tenant's host with a one-time link.

    GET only checks the link and shows a button (link previewers must not spend it); the POST,
    with this host's CSRF token, spends it and signs in.
    """
    tenant = host_tenant(request)
    if tenant is None:
        raise Http404
    claims = switch.read_token(token, tenant)
    if request.method != "POST":
        status = 200 if claims else 400
        return page(request, "portal/switch.html", {"valid": bool(claims)}, status=status)
    user_id = switch.spend_token(token, tenant)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None or not can_administer(user, tenant):
        return page(request, "portal/switch.html", {"valid": False}, status=400)
    login(request, user, backend="tenants.auth.HostScopedBackend")
    # After login() (which cycles the session): bind this session to this tenant only.
    request.session[MANAGED_TENANT_SESSION_KEY] = tenant.id
    return redirect("portal:index")


@require_POST
def switch_back(request):
    """Leave the tenant (sign out on its host) and return to the provider's portal."""
    logout(request)
    return redirect(provider_portal_url(request))


# --- extensions ------------------------------------------------------------------------------


def _extension_columns(state) -> list[Column]:
    def status(ext):
        return status_label(state["extensions"].get(ext.number))

    # No SIP password, no voicemail PIN: secrets are never exported.
    return [
        ("Number", "number"),
        ("Name", "display_name"),
        ("Status", status),
        ("E-mail", "email"),
        ("Mobile", "mobile"),
        ("Enabled", "enabled"),
        ("Do not disturb", "dnd"),
        ("Caller ID name", "caller_id_name"),
        ("Caller ID number", "caller_id_number"),
        ("Forward always", "forward_always"),
        ("Forward when busy", "forward_busy"),
        ("Forward on no answer", "forward_no_answer"),
        ("Maximum registrations", "max_registrations"),
        ("Created", "created_at"),
    ]


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def extension_list(request):
    """Extensions with their live status (online and on which devices, on a call, ringing,
    DND), rendered from the live-state cache; ``static/portal/live.js`` keeps it current."""
    ctx = list_page(
        request,
        Extension.objects.all(),
        search=("number", "display_name", "email"),
        sorts={"number": "number", "name": "display_name", "created": "created_at"},
        default="number",
    )
    state = live_state(host_tenant(request))
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], _extension_columns(state), name="extensions")
    ctx["rows"] = [
        {
            "ext": ext,
            "live": (entry := state["extensions"].get(ext.number)),
            "status": status_label(entry),
            "dnd": entry["dnd"] if entry else ext.dnd,
        }
        for ext in ctx["page"]
    ]
    ctx["live_unavailable"] = state.get("unavailable", False)
    ctx["bulk_actions"] = EXTENSION_BULK_LABELS
    return page(request, "portal/extensions/list.html", ctx, section="extensions")


# Bulk actions: name -> (what do_update_extension is given, past participle, menu label);
# "delete" asks for confirmation first (extension_bulk).
EXTENSION_BULK = {
    "enable": ({"enabled": True}, "enabled", "Enable"),
    "disable": ({"enabled": False}, "disabled", "Disable"),
    "dnd_on": ({"dnd": True}, "set to do not disturb", "Set do not disturb"),
    "dnd_off": ({"dnd": False}, "taken off do not disturb", "Clear do not disturb"),
}
EXTENSION_BULK_LABELS = [
    *((name, label) for name, (_, _, label) in EXTENSION_BULK.items()),
    ("delete", "Delete…"),
]


def extension_removals(ext: Extension) -> list[str]:
    """What deleting ``ext`` removes besides the extension itself (for the confirmation)."""
    out = [
        f"line {line.index} of phone {line.device.mac}"
        + (f" ({line.device.label})" if line.device.label else "")
        for line in ext.device_lines.select_related("device").order_by("device__mac", "index")
    ]
    if ext.user_id is not None and ext.user is not None:
        out.append(f"the portal sign-in of {ext.user.email}")
    return out


@require_POST
@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def extension_bulk(request):
    """Apply one action to the checked extensions. Delete first shows what will go (every
    extension with its phone lines and portal user) and needs a second, confirmed POST."""
    action, back, objects, missing = bulk.selection(
        request, Extension.objects.select_related("user"), reverse("portal:extension_list")
    )
    if action == "delete":
        return bulk.confirm_delete(
            request,
            objects,
            missing,
            delete=lambda ext, who: ext_actions.do_delete_extension(ext, actor=who),
            label=lambda ext: ext.number,
            rows=lambda: [{"ext": e, "removes": extension_removals(e)} for e in objects],
            noun="extension",
            template="portal/extensions/bulk_delete.html",
            section="extensions",
            back=back,
        )
    if action not in EXTENSION_BULK:
        messages.error(request, "Choose what to do with the selected extensions.")
        return redirect(back)
    fields, done, _label = EXTENSION_BULK[action]

    def apply(ext, who):
        if all(getattr(ext, k) == v for k, v in fields.items()):
            return  # already so: no write, no audit entry
        ext_actions.do_update_extension(ext, actor=who, **fields)

    outcome = bulk.run(request, objects, missing, apply, label=lambda ext: ext.number)
    bulk.report(request, outcome, done=done, noun="extension")
    return redirect(back)


@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def extension_add(request):
    form = ExtensionCreateForm(request.POST or None, targets=extension_choices())
    show_password_rules(form, host_tenant(request), {"sip_password": "sip", "web_password": "web"})
    if request.method == "POST" and form.is_valid():
        try:
            ext, sip_password = ext_actions.do_create_extension(
                number=form.cleaned_data["number"].strip(),
                actor=actor(request),
                **form.action_kwargs(),
            )
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            # Rendered, not redirected: the generated password is shown this once and is
            # kept in no session or message store.
            ctx = {"object": ext, "sip_password": sip_password}
            return page(request, "portal/extensions/created.html", ctx, section="extensions")
    return page(request, "portal/extensions/form.html", {"form": form}, section="extensions")


@tenant_permission_required(Permission.EXTENSIONS_VIEW)
def extension_edit(request, pk):
    ext = get_object_or_404(Extension, pk=pk)
    can_manage = Permission.EXTENSIONS_MANAGE in held_permissions(request)
    initial = {name: getattr(ext, name) for name in ExtensionEditForm.field_names}
    form = ExtensionEditForm(request.POST or None, initial=initial, targets=extension_choices(ext))
    show_password_rules(form, host_tenant(request), {"sip_password": "sip", "web_password": "web"})
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if form.is_valid():
            data = form.action_kwargs()
            # Only what changed: an unchanged e-mail must not touch the linked user.
            changes = {
                k: v
                for k, v in data.items()
                if (v is not None if k.endswith("password") else getattr(ext, k) != v)
            }
            try:
                ext_actions.do_update_extension(ext, actor=actor(request), **changes)
            except PbxError as exc:
                add_action_errors(form, exc)
            else:
                messages.success(request, f"Extension {ext.number} saved.")
                return redirect("portal:extension_list")
    ctx = {"form": form, "object": ext, "can_manage": can_manage}
    return page(request, "portal/extensions/form.html", ctx, section="extensions")


@require_POST
@tenant_permission_required(Permission.EXTENSIONS_MANAGE)
def extension_delete(request, pk):
    ext = get_object_or_404(Extension, pk=pk)
    button_action(
        request,
        lambda who: ext_actions.do_delete_extension(ext, actor=who),
        f"Extension {ext.number} deleted.",
    )
    return redirect("portal:extension_list")


# --- users -----------------------------------------------------------------------------------


def _roles(tenant):
    return list(TenantRole.objects.filter(tenant=tenant).order_by("name", "id"))


@tenant_permission_required(Permission.USERS_VIEW)
def user_list(request):
    tenant = host_tenant(request)
    ctx = list_page(
        request,
        tenant_users(tenant),
        search=("email", "full_name"),
        sorts={"email": "email", "name": "full_name", "role": "role", "joined": "date_joined"},
        default="email",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], USER_COLUMNS, name="users")
    return page(request, "portal/users/list.html", ctx, section="users")


USER_COLUMNS: list[Column] = [
    ("E-mail", "email"),
    ("Name", "full_name"),
    ("Role", "get_role_display"),
    ("Custom role", "custom_role.name"),
    ("Active", "is_active"),
    ("Joined", "date_joined"),
    ("Last sign-in", "last_login"),
]


@tenant_permission_required(Permission.USERS_MANAGE)
def user_add(request):
    tenant = host_tenant(request)
    form = UserForm(request.POST or None, roles=_roles(tenant))
    show_password_rules(form, tenant, {"password": "web"})
    if request.method == "POST" and form.is_valid():
        data = form.action_kwargs()
        data.pop("is_active", None)
        try:
            user = tenant_actions.do_create_user(tenant=tenant, actor=actor(request), **data)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"User {user.email} created.")
            return redirect("portal:user_list")
    return page(request, "portal/users/form.html", {"form": form}, section="users")


@tenant_permission_required(Permission.USERS_VIEW)
def user_edit(request, pk):
    tenant = host_tenant(request)
    obj = get_object_or_404(tenant_users(tenant), pk=pk)
    can_manage = Permission.USERS_MANAGE in held_permissions(request)
    initial = {
        "email": obj.email,
        "full_name": obj.full_name,
        "role": obj.role,
        "custom_role": obj.custom_role_id,
        "is_active": obj.is_active,
    }
    form = UserForm(request.POST or None, roles=_roles(tenant), creating=False, initial=initial)
    show_password_rules(form, tenant, {"password": "web"})
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if form.is_valid():
            data = form.action_kwargs()
            password = data.pop("password")
            changes = {k: v for k, v in data.items() if getattr(obj, k) != v}
            demoting_self = obj.pk == request.user.pk and changes.get("role") == Role.TENANT_USER
            if demoting_self:
                form.add_error("role", "You cannot take the admin role from yourself.")
            else:
                try:
                    tenant_actions.do_update_user(
                        obj, actor=actor(request), password=password, **changes
                    )
                except PbxError as exc:
                    add_action_errors(form, exc)
                else:
                    messages.success(request, f"User {obj.email} saved.")
                    return redirect("portal:user_list")
    ctx = {"form": form, "object": obj, "can_manage": can_manage}
    return page(request, "portal/users/form.html", ctx, section="users")


@require_POST
@tenant_permission_required(Permission.USERS_MANAGE)
def user_delete(request, pk):
    tenant = host_tenant(request)
    obj = get_object_or_404(tenant_users(tenant), pk=pk)
    button_action(
        request,
        lambda who: tenant_actions.do_delete_user(obj, actor=who),
        f"User {obj.email} deleted.",
    )
    return redirect("portal:user_list")


# --- roles -----------------------------------------------------------------------------------


@tenant_permission_required(Permission.ROLES_MANAGE)
def role_list(request):
    tenant = host_tenant(request)
    ctx = list_page(
        request,
        TenantRole.objects.filter(tenant=tenant),
        search=("name", "description"),
        sorts={"name": "name"},
        default="name",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], ROLE_COLUMNS, name="roles")
    return page(request, "portal/roles/list.html", ctx, section="roles")


ROLE_COLUMNS: list[Column] = [
    ("Name", "name"),
    ("Description", "description"),
    ("Permissions", lambda role: sorted(role.permissions)),
]


@tenant_permission_required(Permission.ROLES_MANAGE)
def role_edit(request, pk=None):
    tenant = host_tenant(request)
    role = get_object_or_404(TenantRole, tenant=tenant, pk=pk) if pk else None
    initial = (
        {"name": role.name, "description": role.description, "permissions": role.permissions}
        if role
        else None
    )
    form = RoleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if role is None:
                tenant_actions.do_create_role(tenant, actor=actor(request), **data)
            else:
                tenant_actions.do_update_role(role, actor=actor(request), **data)
        except PbxError as exc:
            add_action_errors(form, exc)
        else:
            messages.success(request, f"Role {data['name']} saved.")
            return redirect("portal:role_list")
    return page(request, "portal/roles/form.html", {"form": form, "object": role}, section="roles")


@require_POST
@tenant_permission_required(Permission.ROLES_MANAGE)
def role_delete(request, pk):
    role = get_object_or_404(TenantRole, tenant=host_tenant(request), pk=pk)
    button_action(
        request,
        lambda who: tenant_actions.do_delete_role(role, actor=who),
        f"Role {role.name} deleted.",
    )
    return redirect("portal:role_list")


# --- audit log --------------------------------------------------------


@tenant_permission_required(Permission.AUDIT_VIEW)
def audit_list(request):
    ctx = list_page(
        request,
        AuditEntry.objects.filter(tenant=host_tenant(request)),
        search=("action", "object_repr", "actor_label"),
        sorts={"at": "at", "action": "action", "actor": "actor_label"},
        default="-at",
    )
    if wants_csv(request):
        return csv_response(request, ctx["queryset"], AUDIT_COLUMNS, name="audit-log")
    return page(request, "portal/audit/list.html", ctx, section="audit")


AUDIT_COLUMNS: list[Column] = [
    ("When", "at"),
    ("Who", "actor_label"),
    ("From", "address"),
    ("Action", "action"),
    ("Object type", "object_type"),
    ("Object id", "object_id"),
    ("Object", "object_repr"),
    ("Changes", lambda e: json.dumps(e.changes, sort_keys=True, default=str) if e.changes else ""),
]
