"""Portal forms: they only shape input. Every rule lives in the actions, whose errors
(``PbxError.fields``) are put back on the form by :func:`pbx.forms.add_action_errors`."""

from dataclasses import dataclass

from django import forms

from pbx.forms import FirstAdminFields
from telephony.actions import FORWARD_FIELDS, NO_ANSWER_TIMEOUT
from telephony.models import CallScope
from tenants import locale
from tenants.choices import BillingMode, Permission, RecordingPolicy, Role, SrtpMode
from tenants.fields import (
    CAPABILITY_FEATURES,
    CAPABILITY_FIELDS,
    CAPABILITY_LIMITS,
    DEALER_FIELDS,
    LOCALE_FIELDS,
    NUMBERING_FIELDS,
    PASSWORD_POLICY_FIELDS,
    SIP_FIELDS,
    TENANT_SETTINGS_FIELDS,
)
from tenants.validators import HOSTNAME_HINT, IDENTIFIER_HINT

from .widgets import DatalistInput


@dataclass(frozen=True)
class Section:
    """A titled group of a form's fields (rendered as a ``<fieldset>`` by ``_form.html``)."""

    title: str
    fields: tuple[str, ...]
    help: str = ""


class SectionedForm(forms.Form):
    """A form whose fields are shown in ``sections``; fields no section names come first."""

    sections: tuple[Section, ...] = ()

    def grouped(self) -> list[tuple[Section | None, list]]:
        placed = {name for section in self.sections for name in section.fields}
        loose = [f for f in self.visible_fields() if f.name not in placed]
        groups: list[tuple[Section | None, list]] = [(None, loose)] if loose else []
        for section in self.sections:
            bound = [self[name] for name in section.fields if name in self.fields]
            if bound:
                groups.append((section, bound))
        return groups


def extension_choices(exclude=None) -> tuple[tuple[str, str], ...]:
    """``(number, "1001 · Alice")`` for each of the host tenant's extensions, for a picker
    (forward targets: not the extension itself, ``exclude``; a phone's line and key rows)."""
    from telephony.models import Extension

    extensions = Extension.objects.only("number", "display_name").order_by("number")
    if exclude is not None:
        extensions = extensions.exclude(pk=exclude.pk)
    return tuple((e.number, f"{e.number} · {e.display_name}") for e in extensions)


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


def _count(label: str, initial: int, help_text: str = "") -> forms.IntegerField:
    return forms.IntegerField(min_value=0, initial=initial, label=label, help_text=help_text)


class CapabilityFields(SectionedForm):
    max_extensions = _count("Extensions", 100)
    max_concurrent_calls = _count("Simultaneous calls", 20, "Calls in progress at one time.")
    max_ring_groups = _count("Ring groups", 10)
    max_queues = _count("Call queues", 5)
    max_ivrs = _count("IVR menus", 5, "Voice menus (auto attendants).")
    max_conference_rooms = _count("Conference rooms", 5)
    feature_recording = forms.BooleanField(required=False, initial=True, label="Call recording")
    feature_queues = forms.BooleanField(required=False, initial=True, label="Call queues")
    feature_conferences = forms.BooleanField(required=False, initial=True, label="Conferences")
    feature_tenant_trunks = forms.BooleanField(
        required=False,
        label="Own SIP trunks",
        help_text="The company may connect trunks of its own carrier.",
    )
    billing_mode = forms.ChoiceField(
        choices=BillingMode.choices, initial=BillingMode.NONE, label="Billing"
    )

    capability_names = CAPABILITY_FIELDS
    quota_section = Section(
        "Quotas", CAPABILITY_LIMITS, "The most of each the company may have (0: none)."
    )
    feature_section = Section("Features", (*CAPABILITY_FEATURES, "billing_mode"))


def locale_widgets() -> dict[str, DatalistInput]:
    return {
        "time_zone": DatalistInput(locale.time_zone_choices),
        "language": DatalistInput(locale.language_choices),
        "currency": DatalistInput(locale.currency_choices),
    }


LOCALE_HELP = {
    "time_zone": "Type a city or region, e.g. Berlin. Call history and schedules use it.",
    "language": "Type a language or its code, e.g. German or de. Used for prompts and e-mails.",
    "currency": "Type a code or a name, e.g. EUR or Euro.",
}


def _locale_field(name: str, label: str, max_length: int, initial: str) -> forms.CharField:
    return forms.CharField(
        max_length=max_length,
        initial=initial,
        label=label,
        help_text=LOCALE_HELP[name],
        widget=locale_widgets()[name],
    )


NUMBERING_SECTION = Section(
    "Extension numbers", NUMBERING_FIELDS, "How many digits an extension number may have."
)


class TenantSettingsForm(CapabilityFields):
    name = forms.CharField(label="Company name")  # its rule: the action's (one line, 120)
    time_zone = _locale_field("time_zone", "Time zone", 64, "UTC")
    language = _locale_field("language", "Language", 16, "en")
    currency = _locale_field("currency", "Currency", 3, "USD")
    ext_min_length = forms.IntegerField(initial=3, label="Shortest extension (digits)")
    ext_max_length = forms.IntegerField(initial=6, label="Longest extension (digits)")
    pw_min_length = forms.IntegerField(initial=10, label="Portal password: minimum length")
    pw_require_upper = forms.BooleanField(
        required=False, initial=True, label="Needs an upper-case letter"
    )
    pw_require_lower = forms.BooleanField(
        required=False, initial=True, label="Needs a lower-case letter"
    )
    pw_require_digit = forms.BooleanField(required=False, initial=True, label="Needs a digit")
    pw_require_symbol = forms.BooleanField(
        required=False, label="Needs a symbol", help_text="Such as ! # or -."
    )
    sip_pw_min_length = forms.IntegerField(
        initial=12,
        label="SIP password: minimum length",
        help_text="For phones and softphones; generated passwords are longer.",
    )
    sip_digest_sha256 = forms.BooleanField(
        required=False,
        label="SHA-256 SIP digest",
        help_text="Offer SHA-256 (RFC 8760) before MD5. Some phones cannot register with it.",
    )
    srtp = forms.ChoiceField(
        choices=[c for c in SrtpMode.choices if c[0]],
        initial=SrtpMode.OFF,
        label="Encrypted media (SRTP)",
        help_text="For phones registered over TLS, unless an extension says otherwise.",
    )

    field_order: tuple[str, ...] = ("name",)
    settings_names = TENANT_SETTINGS_FIELDS
    settings_sections = (
        Section("Language and region", LOCALE_FIELDS),
        NUMBERING_SECTION,
        Section(
            "Password rules",
            (*PASSWORD_POLICY_FIELDS, *SIP_FIELDS),
            "What the company's users and phones must choose.",
        ),
    )
    sections: tuple[Section, ...] = (
        CapabilityFields.quota_section,
        CapabilityFields.feature_section,
        *settings_sections,
    )

    def changes(self) -> dict:
        return cleaned_changes(self, (*self.settings_names, *self.capability_names))


class CompanyForm(SectionedForm):
    """A tenant admin's own company settings (``tenants.fields.COMPANY_FIELDS``)."""

    name = forms.CharField(label="Company name")
    time_zone = _locale_field("time_zone", "Time zone", 64, "UTC")
    language = _locale_field("language", "Language", 16, "en")
    ext_min_length = forms.IntegerField(label="Shortest extension (digits)")
    ext_max_length = forms.IntegerField(label="Longest extension (digits)")

    sections: tuple[Section, ...] = (
        Section("Language and region", ("time_zone", "language")),
        NUMBERING_SECTION,
    )


class TenantHostFields(forms.Form):
    """The tenant's host names, as typed: their rules are the action's (tenants.validators)."""

    sip_domain = forms.CharField(max_length=253, label="SIP domain", help_text=HOSTNAME_HINT)
    web_host = forms.CharField(
        max_length=253, required=False, label="Web host", help_text="Defaults to the SIP domain."
    )

    def clean_web_host(self):
        return self.cleaned_data["web_host"] or None


HOSTS_SECTION = Section(
    "Addresses",
    ("sip_domain", "web_host"),
    "Phones register to the SIP domain; the company's portal is on the web host.",
)


class TenantEditForm(TenantHostFields, TenantSettingsForm):
    """A tenant's settings and host names (a stored bad host name can be corrected here)."""

    field_order = ("name", "sip_domain", "web_host")
    sections: tuple[Section, ...] = (HOSTS_SECTION, *TenantSettingsForm.sections)


class TenantCreateForm(FirstAdminFields, TenantHostFields, TenantSettingsForm):
    slug = forms.CharField(max_length=31, label="Identifier", help_text=IDENTIFIER_HINT)
    dealer = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, help_text="Who sells to and supports it."
    )

    field_order = ("name", "slug", "sip_domain", "web_host", "dealer", "admin_email", "admin_name")
    sections: tuple[Section, ...] = (
        HOSTS_SECTION,
        Section(
            "First administrator",
            ("admin_email", "admin_name"),
            "Optional: you can invite administrators later.",
        ),
        *TenantSettingsForm.sections,
    )

    def __init__(self, *args, dealers=(), allow_no_dealer=True, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(d.pk, "— " * (d.depth - 1) + d.name) for d in dealers]
        if allow_no_dealer:
            choices.insert(0, ("", "None (the service provider's own)"))
        self.fields["dealer"].choices = choices
        self.fields["dealer"].required = not allow_no_dealer


class DealerForm(CapabilityFields):
    name = forms.CharField()  # its rule: the action's (one line, 120)
    max_tenants = _count("Tenants", 100, "Companies the dealer and its sub-dealers may create.")
    is_active = forms.BooleanField(
        required=False, initial=True, label="Active", help_text="An inactive dealer cannot sign in."
    )
    field_order = ("name", "parent", "max_tenants", "is_active")
    sections: tuple[Section, ...] = (
        Section(
            "Quotas",
            ("max_tenants", *CAPABILITY_LIMITS),
            "The most the dealer may hand out, over all its tenants (each tenant's own "
            "quotas cannot exceed these).",
        ),
        Section("Features it may give its tenants", (*CAPABILITY_FEATURES, "billing_mode")),
    )

    def changes(self) -> dict:
        return cleaned_changes(self, DEALER_FIELDS)


class DealerCreateForm(DealerForm):
    parent = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Parent dealer"
    )

    def __init__(self, *args, parents=(), allow_top=True, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(d.pk, "— " * (d.depth - 1) + d.name) for d in parents]
        if allow_top:
            choices.insert(0, ("", "None (directly under the service provider)"))
        self.fields["parent"].choices = choices
        self.fields["parent"].required = not allow_top


FORWARD_HELP = "An extension (pick or type its number) or an outside number. Empty: off."


def _forward_field(label: str) -> forms.CharField:
    return forms.CharField(
        required=False, label=label, help_text=FORWARD_HELP, widget=DatalistInput()
    )


class ForwardingFields(SectionedForm):
    """Call forwarding: a target per condition (empty: off) and the ringing time before "no
    answer" applies. The rules (what a target is, not the extension itself, the time's range)
    are ``telephony.actions.validate_extension``'s. ``targets``: the tenant's extensions, which
    the target boxes suggest."""

    forward_always = _forward_field("Forward all calls to")
    forward_busy = _forward_field("When busy, forward to")
    forward_no_answer = _forward_field("When not answered, forward to")
    no_answer_timeout = forms.IntegerField(
        required=False,
        initial=20,
        label="Ring for (seconds)",
        help_text="Before 'not answered' applies ({} to {}).".format(*NO_ANSWER_TIMEOUT),
    )

    forwarding_section = Section("Call forwarding", ("dnd", *FORWARD_FIELDS, "no_answer_timeout"))
    sections: tuple[Section, ...] = (forwarding_section,)

    def __init__(self, *args, targets=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in FORWARD_FIELDS:
            widget = self.fields[name].widget
            if isinstance(widget, DatalistInput):
                widget.options = targets

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

    display_name = forms.CharField(
        label="Name", help_text="Shown to the people it calls and in the directory."
    )
    email = forms.CharField(
        required=False,
        widget=forms.EmailInput,
        label="E-mail",
        help_text="For voicemail and missed-call mail; with a web password, its sign-in.",
    )
    mobile = forms.CharField(required=False, label="Mobile number")
    voicemail_pin = forms.CharField(
        required=False,
        label="Voicemail PIN",
        help_text="4 to 12 digits, to listen to voicemail from a phone.",
    )
    enabled = forms.BooleanField(
        required=False,
        initial=True,
        label="Enabled",
        help_text="A disabled extension cannot register or call.",
    )
    dnd = forms.BooleanField(required=False, label="Do not disturb")
    call_scope = forms.ChoiceField(
        required=False,  # not posted: unchanged (a new extension: no restriction)
        choices=CallScope.choices,
        initial=CallScope.INTERNATIONAL,
        label="May call",
        help_text="Call barring: the widest kind of number it may dial (emergency numbers "
        "always go through).",
    )
    recording = forms.ChoiceField(
        required=False,  # not posted: unchanged (a new extension: as the tenant's policy)
        choices=RecordingPolicy.choices,
        label="Record calls",
        help_text="Its own recording policy; a call is recorded when any party says so.",
    )
    srtp = forms.ChoiceField(
        required=False,  # not posted: unchanged (a new extension: as the tenant's)
        choices=SrtpMode.choices,
        label="Encrypted media (SRTP)",
        help_text="For its phones registered over TLS; browsers are always encrypted.",
    )
    web_softphone = forms.TypedChoiceField(
        required=False,  # not posted: unchanged (a new extension: allowed)
        choices=(("True", "Allowed"), ("False", "Not allowed")),  # str() of the model's value
        coerce=lambda v: v == "True",
        empty_value=None,
        label="Web softphone",
        help_text="Its user may call from the web app, with a credential that expires.",
    )
    caller_id_number = forms.CharField(
        required=False,
        label="Outbound caller ID",
        help_text="The number presented on its outside calls; empty: the rule's or the company's.",
    )
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
        "call_scope",
        "caller_id_number",
        "recording",
        "srtp",
        "web_softphone",
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
    sections: tuple[Section, ...] = (
        Section("Extension", ("number", "display_name", "enabled")),
        Section("Contact", ("email", "mobile")),
        ForwardingFields.forwarding_section,
        Section("Outside calls", ("call_scope", "caller_id_number")),
        Section("Call recording", ("recording",)),
        Section("Phones and web softphone", ("srtp", "web_softphone")),
        Section(
            "Passwords",
            ("sip_password", "web_password", "voicemail_pin"),
            "The SIP password is what phones register with; the web password signs in to "
            "this portal.",
        ),
    )

    def action_kwargs(self) -> dict:
        data = cleaned_changes(self, self.field_names)
        data["email"] = data.get("email", "").lower()
        if "caller_id_number" in data:
            data["caller_id_number"] = data["caller_id_number"].replace(" ", "")
        if not data.get("call_scope"):
            data.pop("call_scope", None)
        for optional in ("recording", "srtp", "web_softphone"):
            if optional not in self.data:
                data.pop(optional, None)
        for secret in ("sip_password", "web_password"):
            data[secret] = self.cleaned_data.get(secret) or None
        return data


class ExtensionCreateForm(ExtensionForm):
    # A form field: the form's metaclass takes it off the class, where ``number`` stays the
    # plain string ForwardingFields compares targets with.
    number = forms.CharField(label="Number", help_text="The digits people dial to reach it.")
    field_order = ("number", *ExtensionForm.field_order)


class ExtensionEditForm(ExtensionForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["sip_password"].help_text = "Leave empty to keep the current one."
        self.fields["web_password"].help_text = "Leave empty to keep the current one."


class UserForm(forms.Form):
    email = forms.EmailField(label="E-mail", help_text="The user signs in with it.")
    full_name = forms.CharField(max_length=150, required=False, label="Full name")
    role = forms.ChoiceField(
        choices=[(Role.TENANT_USER, "User"), (Role.TENANT_ADMIN, "Administrator")],
        help_text="Administrators may change everything of the company.",
    )
    custom_role = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Permissions",
        help_text="A role of your own with chosen permissions (for users).",
    )
    is_active = forms.BooleanField(
        required=False, initial=True, label="Active", help_text="An inactive user cannot sign in."
    )
    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False)
    )

    def __init__(self, *args, roles=(), creating=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.creating = creating
        self.roles = {r.pk: r for r in roles}
        self.fields["custom_role"].choices = [("", "As the role gives")] + [
            (r.pk, r.name) for r in roles
        ]
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
        choices=Permission.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What users with this role may see and do.",
    )


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file")


class _SecretTextarea(forms.Textarea):
    """A textarea that never sends its value back to the browser (a private key re-rendered
    after a refusal would sit in the page and the browser's caches)."""

    def format_value(self, value):
        return None


class CertificateForm(forms.Form):
    """A TLS certificate for the tenant's host names: the chain and its key, pasted or as
    files. Only shapes input: ``tenants.actions.do_upload_certificate`` checks everything."""

    chain = forms.CharField(
        required=False,
        label="Certificate chain (PEM)",
        strip=False,
        max_length=70_000,
        help_text="Your certificate first, then each intermediate (the root may be left out).",
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
    )
    chain_file = forms.FileField(required=False, label="…or the chain as a file")
    key = forms.CharField(
        required=False,
        label="Private key (PEM)",
        strip=False,
        max_length=20_000,
        help_text="Unencrypted; stored encrypted. RSA 2048+ or EC P-256/P-384.",
        widget=_SecretTextarea(attrs={"rows": 6, "spellcheck": "false", "autocomplete": "off"}),
    )
    key_file = forms.FileField(required=False, label="…or the key as a file")

    def _text(self, name: str, limit: int) -> str:
        upload = self.cleaned_data.get(f"{name}_file")
        if upload is None:
            return self.cleaned_data.get(name) or ""
        if upload.size > limit:
            raise forms.ValidationError({f"{name}_file": f"The file is over {limit} bytes."})
        return upload.read().decode("utf-8", "replace")

    def clean(self):
        data = super().clean()
        data["chain"] = self._text("chain", 70_000)
        data["key"] = self._text("key", 20_000)
        return data
