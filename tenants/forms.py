"""The portal's sign-in form: an e-mail address or ``extension@sip-domain``."""

from allauth.account.forms import LoginForm as AllauthLoginForm
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
