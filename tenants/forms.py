"""The portal's sign-in form (an e-mail address or ``extension@sip-domain``) and its password
reset, scoped to the host's accounts."""

from allauth.account.forms import LoginForm as AllauthLoginForm
from allauth.account.forms import ResetPasswordForm as AllauthResetPasswordForm
from django import forms


class LoginForm(AllauthLoginForm):
    """allauth's login with a plain text field: ``1001@10.0.0.5`` or ``1001@pbx`` are valid
    sign-ins (a SIP domain need not be an e-mail domain); the host-scoped backend decides."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"] = forms.CharField(
            label="E-mail or extension@domain",
            max_length=254,
            widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
        )


class ResetPasswordForm(AllauthResetPasswordForm):
    """allauth's password reset, for the accounts of this host only: an e-mail address may be
    a user of several tenants (and of the provider), and a reset asked on one tenant's host
    must not mail a link for another tenant's account (in this host's brand)."""

    def save(self, request, **kwargs) -> str:
        tenant = getattr(request, "tenant", None)
        tenant_id = None if tenant is None or tenant.is_public else tenant.id
        found: list = getattr(self, "users", [])  # set by the form's clean_email
        self.users = [u for u in found if u.tenant_id == tenant_id]
        return super().save(request, **kwargs)
