"""Portal forms: they only shape input. Every rule lives in the actions, whose errors
(``PbxError.fields``) are put back on the form by :func:`pbx.forms.add_action_errors`."""

from django import forms

from telephony.actions import FORWARD_FIELDS, NO_ANSWER_TIMEOUT
from tenants.choices import BillingMode, Permission, Role
from tenants.fields import CAPABILITY_FIELDS, DEALER_FIELDS, TENANT_SETTINGS_FIELDS
from tenants.validators import HOSTNAME_HINT, IDENTIFIER_HINT


def show_password_rules(form: forms.Form, policy, fields: dict[str, str]) -> None:
    """Put the tenant's password rules (``fields``: name -> "web" or "sip") in the fields'
    help texts, so they are read before a first failed attempt, not after."""
    from tenants.passwords import policy_hint

    for name, kind in fields.items():
        field = form.fields.get(name)
        if field is not None:
            field.help_text = " ".join(
                filter(None, (str(field.help_text), policy_hint(policy, kind=kind)))
            )


def cleaned_changes(form: forms.Form, names) -> dict:
    return {n: form.cleaned_data[n] for n in names if n in form.cleaned_data}


class CapabilityFields(forms.Form):
    max_extensions = forms.IntegerField(min_value=0, initial=100)
    max_concurrent_calls = forms.IntegerField(min_value=0, initial=20)
    max_ring_groups = forms.IntegerField(min_value=0, initial=10)
    max_queues = forms.IntegerField(min_value=0, initial=5)
    max_ivrs = forms.IntegerField(min_value=0, initial=5)
    max_conference_rooms = forms.IntegerField(min_value=0, initial=5)
    feature_recording = forms.BooleanField(required=False, initial=True)
    feature_queues = forms.BooleanField(required=False, initial=True)
    feature_conferences = forms.BooleanField(required=False, initial=True)
    feature_tenant_trunks = forms.BooleanField(required=False)
    billing_mode = forms.ChoiceField(choices=BillingMode.choices, initial=BillingMode.NONE)

    capability_names = CAPABILITY_FIELDS


class TenantSettingsForm(CapabilityFields):
    name = forms.CharField()  # its rule: the action's (one line, 120)
    time_zone = forms.CharField(max_length=64, initial="UTC")
    language = forms.CharField(max_length=16, initial="en")
    currency = forms.CharField(max_length=3, initial="USD")
    ext_min_length = forms.IntegerField(min_value=1, max_value=64, initial=3)
    ext_max_length = forms.IntegerField(min_value=1, max_value=64, initial=6)
    pw_min_length = forms.IntegerField(min_value=6, max_value=128, initial=10)
    pw_require_upper = forms.BooleanField(required=False, initial=True)
    pw_require_lower = forms.BooleanField(required=False, initial=True)
    pw_require_digit = forms.BooleanField(required=False, initial=True)
    pw_require_symbol = forms.BooleanField(required=False)
    sip_pw_min_length = forms.IntegerField(min_value=8, max_value=128, initial=12)
    sip_digest_sha256 = forms.BooleanField(
        required=False,
        label="SHA-256 SIP digest",
        help_text="Offer SHA-256 (RFC 8760) before MD5. Some phones cannot register with it.",
    )

    field_order: tuple[str, ...] = ("name",)
    settings_names = TENANT_SETTINGS_FIELDS

    def changes(self) -> dict:
        return cleaned_changes(self, (*self.settings_names, *self.capability_names))


class CompanyForm(forms.Form):
    """A tenant admin's own company settings (``tenants.fields.COMPANY_FIELDS``)."""

    name = forms.CharField(label="Company name")
    time_zone = forms.CharField(max_length=64)
    language = forms.CharField(max_length=16)
    ext_min_length = forms.IntegerField(min_value=1, label="Shortest extension")
    ext_max_length = forms.IntegerField(min_value=1, label="Longest extension")


class TenantHostFields(forms.Form):
    """The tenant's host names, as typed: their rules are the action's (tenants.validators)."""

    sip_domain = forms.CharField(max_length=253, label="SIP domain", help_text=HOSTNAME_HINT)
    web_host = forms.CharField(
        max_length=253, required=False, label="Web host", help_text="Defaults to the SIP domain."
    )

    def clean_web_host(self):
        return self.cleaned_data["web_host"] or None


class TenantEditForm(TenantHostFields, TenantSettingsForm):
    """A tenant's settings and host names (a stored bad host name can be corrected here)."""

    field_order = ("name", "sip_domain", "web_host")


class TenantCreateForm(TenantHostFields, TenantSettingsForm):
    slug = forms.CharField(max_length=31, label="Identifier", help_text=IDENTIFIER_HINT)
    dealer = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    admin_email = forms.EmailField(
        required=False,
        label="First admin's e-mail",
        help_text="Gets an e-mail with a link to choose a password and sign in.",
    )
    admin_name = forms.CharField(max_length=150, required=False, label="First admin's name")

    field_order = ("name", "slug", "sip_domain", "web_host", "dealer", "admin_email", "admin_name")

    def first_admin(self) -> dict | None:
        email = self.cleaned_data.get("admin_email")
        return (
            {"email": email, "full_name": self.cleaned_data.get("admin_name", "")}
            if email
            else None
        )

    def __init__(self, *args, dealers=(), allow_no_dealer=True, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(d.pk, "— " * (d.depth - 1) + d.name) for d in dealers]
        if allow_no_dealer:
            choices.insert(0, ("", "None (the service provider's own)"))
        self.fields["dealer"].choices = choices
        self.fields["dealer"].required = not allow_no_dealer


class TenantDeleteForm(forms.Form):
    confirm = forms.CharField(label="Type the tenant's identifier to confirm")


class DealerForm(CapabilityFields):
    name = forms.CharField()  # its rule: the action's (one line, 120)
    max_tenants = forms.IntegerField(min_value=0, initial=100)
    is_active = forms.BooleanField(required=False, initial=True)
    field_order = ("name", "parent", "max_tenants", "is_active")

    def changes(self) -> dict:
        return cleaned_changes(self, DEALER_FIELDS)


class DealerCreateForm(DealerForm):
    parent = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)

    def __init__(self, *args, parents=(), allow_top=True, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(d.pk, "— " * (d.depth - 1) + d.name) for d in parents]
        if allow_top:
            choices.insert(0, ("", "None (directly under the service provider)"))
        self.fields["parent"].choices = choices
        self.fields["parent"].required = not allow_top


class ForwardingFields(forms.Form):
    """Call forwarding: a target per condition (empty: off) and the ringing time before "no
    answer" applies. The rules (what a target is, not the extension itself, the time's range)
    are ``telephony.actions.validate_extension``'s."""

    forward_always = forms.CharField(
        required=False, label="Forward all calls to", help_text="Empty: off."
    )
    forward_busy = forms.CharField(
        required=False, label="When busy, forward to", help_text="Empty: off."
    )
    forward_no_answer = forms.CharField(
        required=False, label="When not answered, forward to", help_text="Empty: off."
    )
    no_answer_timeout = forms.IntegerField(
        required=False,
        initial=20,
        label="Ring for (seconds)",
        help_text="Before 'not answered' applies ({} to {}).".format(*NO_ANSWER_TIMEOUT),
    )

    def _target(self, name: str) -> str:
        # Typed as it is dialled ("+49 30 1234"): the spaces are layout, not part of the number.
        return self.cleaned_data.get(name, "").replace(" ", "")

    def clean_forward_always(self):
        return self._target("forward_always")

    def clean_forward_busy(self):
        return self._target("forward_busy")

    def clean_forward_no_answer(self):
        return self._target("forward_no_answer")

    def clean_no_answer_timeout(self):
        value = self.cleaned_data.get("no_answer_timeout")
        return 20 if value is None else value


class ExtensionForm(ForwardingFields):
    """An extension as an admin edits it; its rules are the action's (``add_action_errors``)."""

    display_name = forms.CharField()
    email = forms.CharField(required=False, widget=forms.EmailInput)
    mobile = forms.CharField(required=False)
    voicemail_pin = forms.CharField(required=False, label="Voicemail PIN")
    enabled = forms.BooleanField(required=False, initial=True)
    dnd = forms.BooleanField(required=False, label="Do not disturb")
    sip_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        label="SIP password",
        help_text="Leave empty to generate a strong one (shown once).",
    )
    web_password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        label="Web portal password",
        help_text="Gives the e-mail address a sign-in to this portal.",
    )

    field_names = (
        "display_name",
        "email",
        "mobile",
        "voicemail_pin",
        "enabled",
        "dnd",
        *FORWARD_FIELDS,
        "no_answer_timeout",
    )

    field_order: tuple[str, ...] = (
        "display_name",
        "email",
        "mobile",
        "voicemail_pin",
        "enabled",
        "dnd",
        "sip_password",
        "web_password",
    )

    def action_kwargs(self) -> dict:
        data = cleaned_changes(self, self.field_names)
        data["email"] = data.get("email", "").lower()
        for secret in ("sip_password", "web_password"):
            data[secret] = self.cleaned_data.get(secret) or None
        return data


class ExtensionCreateForm(ExtensionForm):
    # A form field: the form's metaclass takes it off the class, where ``number`` stays the
    # plain string ForwardingFields compares targets with.
    number = forms.CharField()
    field_order = ("number", *ExtensionForm.field_order)


class ExtensionEditForm(ExtensionForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sip_password"].help_text = "Leave empty to keep the current one."
        self.fields["web_password"].help_text = "Leave empty to keep the current one."


class UserForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(
        choices=[(Role.TENANT_USER, "User"), (Role.TENANT_ADMIN, "Tenant admin")]
    )
    custom_role = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )

    def __init__(self, *args, roles=(), creating=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.creating = creating
        self.roles = {r.pk: r for r in roles}
        self.fields["custom_role"].choices = [("", "—")] + [(r.pk, r.name) for r in roles]
        self.fields["password"].required = creating
        if not creating:
            self.fields["password"].help_text = "Leave empty to keep the current one."

    def action_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        data["email"] = data["email"].lower()
        data["custom_role"] = self.roles.get(data["custom_role"])
        data["password"] = data["password"] or None
        return data


class RoleForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(max_length=255, required=False)
    permissions = forms.MultipleChoiceField(
        choices=Permission.choices, widget=forms.CheckboxSelectMultiple, required=False
    )


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file")
