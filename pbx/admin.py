"""Django admin for the system admin, on the provider's host only.

Admin writes go through the same ``do_*`` actions as the portal and the API: an
:class:`ActionForm` runs its action once the form is otherwise valid, shows a refusal as field
errors, and the admin's ``save_model`` then has nothing left to do.
"""

from django import forms
from django.contrib import admin

from pbx.audit import Actor
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.models import AuditEntry

_default_has_permission = admin.site.has_permission


def _platform_admin_only(request) -> bool:
    """System admins, and only on the provider's host (a tenant host never serves the admin)."""
    tenant = getattr(request, "tenant", None)
    return (
        _default_has_permission(request)
        and getattr(request.user, "role", None) == "system_admin"
        and (tenant is None or tenant.is_public)
    )


# The default site stays (every app registers on it); only its permission check is replaced.
admin.site.has_permission = _platform_admin_only  # type: ignore[method-assign]
admin.site.site_header = "PBX administration"
admin.site.site_title = "PBX administration"


class ActionForm(forms.ModelForm):
    """A ModelForm whose save is an action. Subclasses implement :meth:`run_action`."""

    actor: Actor = Actor()
    #: The (scheme, port) the admin was reached with: links in mail the action sends use them.
    origin: tuple[str, str] | None = None

    def run_action(self):
        """Write through the action; return the saved object."""
        raise NotImplementedError

    def changes(self, names) -> dict:
        return {n: self.cleaned_data[n] for n in self.changed_data if n in names}

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            self.instance = self.run_action()
        except PbxError as exc:
            add_action_errors(self, exc)


class ActionAdmin(admin.ModelAdmin):
    """Binds the acting user to the form; saving is done by the form's action."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        bound = {
            "actor": Actor.from_request(request),
            "origin": (request.scheme, request.get_port()),
        }
        return type(form.__name__, (form,), bound)

    def save_model(self, request, obj, form, change):
        """Already saved by ``form.run_action``."""

    def refusal(self, request, action, obj) -> None:
        """Run a delete action; a refusal (e.g. a dealer with tenants) becomes an error message."""
        from django.contrib import messages

        try:
            action(obj, actor=Actor.from_request(request))
        except PbxError as exc:
            request.pbx_refused = True
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    def response_delete(self, request, obj_display, obj_id):
        # A refused delete has its reason as a message already: no "deleted successfully".
        if getattr(request, "pbx_refused", False):
            from django.http import HttpResponseRedirect
            from django.urls import reverse

            opts = self.opts
            name = f"admin:{opts.app_label}_{opts.model_name}_changelist"
            return HttpResponseRedirect(reverse(name, current_app=self.admin_site.name))
        return super().response_delete(request, obj_display, obj_id)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit trail is read-only, for everyone."""

    list_display = ("at", "actor_label", "address", "action", "object_repr", "tenant", "dealer")
    list_filter = ("action",)
    search_fields = ("action", "object_repr", "actor_label")
    list_select_related = ("tenant", "dealer")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
