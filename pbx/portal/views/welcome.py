"""The page an invitation links to: a new user sets its password and is signed in."""

from django import forms
from django.contrib.auth import login
from django.shortcuts import redirect, render

from pbx.audit import Actor
from pbx.errors import PbxError
from pbx.forms import add_action_errors
from pbx.portal.access import host_tenant
from pbx.portal.forms import show_password_rules
from tenants import actions as tenant_actions
from tenants.invites import user_for_token


class SetPasswordForm(forms.Form):
    new_password = forms.CharField(strip=False, widget=forms.PasswordInput, label="Password")
    confirm_password = forms.CharField(
        strip=False, widget=forms.PasswordInput, label="Password again"
    )

    def clean(self):
        data = super().clean()
        if data.get("new_password") and data.get("new_password") != data.get("confirm_password"):
            self.add_error("confirm_password", "The two passwords differ.")
        return data


def set_password(request, uidb64, token):
    """Valid once, before it expires, on the host of the user's scope; then signs in."""
    tenant = host_tenant(request)
    user = user_for_token(uidb64, token, tenant)
    if user is None:
        return render(request, "portal/welcome_invalid.html", {"tenant": tenant}, status=404)
    form = SetPasswordForm(request.POST or None)
    show_password_rules(form, tenant, {"new_password": "web"})
    if request.method == "POST" and form.is_valid():
        try:
            tenant_actions.do_update_user(
                user,
                actor=Actor.from_request(request),
                password=form.cleaned_data["new_password"],
            )
        except PbxError as exc:
            # The action names the field "password"; this form calls it "new_password".
            exc.fields = {
                "new_password" if k == "password" else k: v for k, v in exc.fields.items()
            }
            add_action_errors(form, exc)
        else:
            user.refresh_from_db()
            login(request, user, backend="tenants.auth.HostScopedBackend")
            return redirect("portal:index")
    ctx = {"form": form, "invited": user, "tenant": tenant}
    return render(request, "portal/welcome.html", ctx)
