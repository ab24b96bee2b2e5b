"""Portal forms for trunks, the DID pool and a tenant's call routing. They only shape input
(lists typed one per line, times as HH:MM, a destination as a kind and a target); every rule
is the actions' (``trunks.actions``, ``routing.actions``), whose field errors the views put back
on these forms with :func:`pbx.forms.add_action_errors`."""

from __future__ import annotations

import re

from django import forms

from routing.destinations import KINDS
from routing.models import BlacklistEntry, BlockAction, MatchKind
from tenants.choices import RecordingPolicy
from trunks.actions import CODECS, EDITABLE
from trunks.models import CallerIdHeader, DidNumber, DtmfMode, TrunkKind, TrunkTransport

from .forms import Section, SectionedForm
from .widgets import DatalistInput

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: Open periods per day on the office-hours grid.
PERIODS = 3
#: Trunk choices on an outbound rule (first, second, ... in failover order).
FAILOVER_SLOTS = 4
ORDINALS = ("First", "Second", "Third", "Fourth", "Fifth")


def split_list(text: str) -> list[str]:
    """Items typed one per line or separated by commas or spaces."""
    return [item for item in re.split(r"[\s,;]+", text or "") if item]


def _max_length(model, name: str) -> int:
    """The model's limit on a text field, for the form's box (the model is the one place)."""
    return model._meta.get_field(name).max_length


class CountryField(forms.CharField):
    """An ISO 3166 country code as typed (`` us`` is ``US``); empty: none. Whether it is a
    country is the actions' to say."""

    def __init__(self, *, help_text: str):
        super().__init__(required=False, max_length=2, label="Country", help_text=help_text)

    def to_python(self, value):
        return super().to_python(value).upper()


def _int(label: str, initial: int, help_text: str = "", **kw) -> forms.IntegerField:
    return forms.IntegerField(label=label, initial=initial, help_text=help_text, **kw)


# ------------------------------------------------------------------------------ trunks


class TrunkForm(SectionedForm):
    """A trunk as the provider or a dealer edits it. The password is write-only: the page never
    shows it, and an empty box keeps the stored one."""

    name = forms.CharField(label="Name", help_text="How the trunk is called in lists and rules.")
    owner = forms.ChoiceField(
        required=False,
        label="Owner",
        help_text="Who holds it: the provider, a dealer or one tenant.",
    )
    kind = forms.ChoiceField(choices=TrunkKind.choices, label="Kind")
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    host = forms.CharField(label="Carrier host", help_text="The carrier's SIP server name or IP.")
    port = _int("Port", 0, "0: the transport's default (5060, 5061 for TLS).")
    transport = forms.ChoiceField(choices=TrunkTransport.choices, label="Transport")
    outbound_proxy = forms.CharField(
        required=False, label="Outbound proxy", help_text="host[:port]; empty: none."
    )
    country = CountryField(
        help_text="ISO code (US, DE, GB...): numbers the carrier sends in national form."
    )
    realm = forms.CharField(required=False, label="Realm", help_text="Empty: the carrier's.")
    username = forms.CharField(required=False, label="User name", help_text="The account name.")
    auth_username = forms.CharField(
        required=False, label="Authentication name", help_text="Empty: the user name."
    )
    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        label="Password",
        help_text="Stored encrypted and never shown again.",
    )
    register_expires = _int("Registration interval (seconds)", 3600, "60 to 86400.")
    addresses = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Carrier addresses",
        help_text="IP addresses or networks (CIDR) the carrier sends from, one per line.",
    )
    source_port = _int("Source port", 0, "0: any port.")
    codecs = forms.MultipleChoiceField(
        required=False,
        choices=[(c, c) for c in CODECS],
        widget=forms.CheckboxSelectMultiple,
        label="Codecs",
        help_text="None ticked: the PBX's defaults.",
    )
    dtmf_mode = forms.ChoiceField(choices=DtmfMode.choices, label="DTMF")
    max_channels = _int("Maximum channels", 0, "Calls at once; 0: no limit.")
    caller_id = forms.CharField(
        required=False, label="Caller ID", help_text="The number presented when no rule sets one."
    )
    caller_id_header = forms.ChoiceField(choices=CallerIdHeader.choices, label="Caller ID header")
    from_user = forms.CharField(required=False, label="From user", help_text="Empty: as called.")
    from_domain = forms.CharField(
        required=False, label="From domain", help_text="Empty: the carrier host."
    )
    send_diversion = forms.BooleanField(
        required=False,
        initial=True,
        label="Send Diversion on forwarded calls",
    )
    shared_with = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Tenants that may use it",
        help_text="Only for a provider's or a dealer's trunk; they never see its credentials.",
    )
    options_interval = _int(
        "OPTIONS interval (seconds)", 60, "How often the carrier is checked; 0: never."
    )
    recording = forms.ChoiceField(
        required=False,
        choices=RecordingPolicy.choices,
        label="Record calls",
        help_text="Calls through this trunk; empty: as each tenant's and extension's policy.",
    )

    model_fields = EDITABLE  # the fields the trunk actions take
    sections: tuple[Section, ...] = (
        Section(
            "Carrier", ("name", "owner", "kind", "enabled", "host", "port", "transport",
                        "outbound_proxy", "country"),
        ),
        Section(
            "Authentication",
            ("realm", "username", "auth_username", "password", "register_expires"),
            "For a registration trunk: the account the PBX registers and answers challenges "
            "with.",
        ),
        Section(
            "IP authentication",
            ("addresses", "source_port"),
            "For an IP trunk: calls are accepted only from these addresses.",
        ),
        Section(
            "Calls",
            ("codecs", "dtmf_mode", "max_channels", "caller_id", "caller_id_header",
             "from_user", "from_domain", "send_diversion"),
        ),
        Section("Sharing", ("shared_with",)),
        Section("Health", ("options_interval",)),
        Section("Call recording", ("recording",)),
    )  # fmt: skip

    def __init__(self, *args, owners=(), tenants=(), editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = list(owners)
        self.fields["shared_with"].choices = [(str(t.pk), t.name) for t in tenants]
        if editing:
            # The owner is fixed once the trunk exists.
            del self.fields["owner"]
            self.fields[
                "password"
            ].help_text = "Leave empty to keep the current one (it is never shown)."

    def clean_addresses(self):
        return split_list(self.cleaned_data["addresses"])

    def changes(self) -> dict:
        return {n: self.cleaned_data[n] for n in self.model_fields if n in self.cleaned_data}

    def new_password(self) -> str | None:
        return self.cleaned_data.get("password") or None

    def shared_ids(self) -> set[int]:
        return {int(i) for i in self.cleaned_data.get("shared_with") or ()}


def trunk_initial(trunk) -> dict:
    initial = {n: getattr(trunk, n) for n in TrunkForm.model_fields}
    initial["addresses"] = "\n".join(trunk.addresses or ())
    initial["shared_with"] = [str(t.pk) for t in trunk.shared_with.all()]
    return initial


# ------------------------------------------------------------------------------ numbers


class NumberAddForm(SectionedForm):
    number = forms.CharField(
        label="Number", help_text="International (+1 212 555 0100) or national with a country."
    )
    last = forms.CharField(
        required=False, label="Last number of a range", help_text="Empty: one number."
    )
    country = CountryField(help_text="ISO code, e.g. US or DE.")
    holder = forms.ChoiceField(
        required=False, label="Held by", help_text="Whose pool the numbers are in."
    )
    tenant = forms.TypedChoiceField(
        coerce=int, required=False, empty_value=None, label="Assign to tenant"
    )
    trunk = forms.TypedChoiceField(
        coerce=int,
        required=False,
        empty_value=None,
        label="Trunk",
        help_text="The carrier the numbers come in on (optional).",
    )
    description = forms.CharField(
        required=False, max_length=_max_length(DidNumber, "description"), label="Description"
    )

    def __init__(self, *args, holders=(), tenants=(), trunks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["holder"].choices = list(holders)
        self.fields["tenant"].choices = [("", "Nobody yet (free in the pool)")] + [
            (t.pk, t.name) for t in tenants
        ]
        self.fields["trunk"].choices = [("", "Any")] + [(t.pk, t.name) for t in trunks]


class NumberEditForm(forms.Form):
    description = forms.CharField(
        required=False, max_length=_max_length(DidNumber, "description"), label="Description"
    )
    trunk = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Trunk")

    def __init__(self, *args, trunks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["trunk"].choices = [("", "Any")] + [(t.pk, t.name) for t in trunks]


# ------------------------------------------------------------------------------ destinations


def destination_options(tenant) -> list[tuple[str, str]]:
    """Every kind's pickable targets, for the target boxes' suggestions."""
    out: list[tuple[str, str]] = []
    for kind in KINDS.values():
        if kind.choices is not None:
            out.extend((value, f"{kind.label}: {label}") for value, label in kind.choices(tenant))
    return out


def _kind_field(label: str, *, optional: bool) -> forms.ChoiceField:
    choices = [(k.kind, k.label) for k in KINDS.values()]
    if optional:
        choices.insert(0, ("", "Same as when open"))
    return forms.ChoiceField(choices=choices, required=not optional, label=label)


def _target_field(label: str) -> forms.CharField:
    return forms.CharField(
        required=False,
        label=label,
        help_text="An extension or mailbox number, an IVR menu's number, a DISA entry (picked from "
        "the list), an outside number or a reject code (486, 603...).",
        widget=DatalistInput(),
    )


DESTINATIONS = ("in_hours", "out_of_hours", "holiday")


class InboundRuleForm(SectionedForm):
    name = forms.CharField(label="Name")
    priority = _int("Priority", 100, "Lower numbers are tried first.", min_value=0)
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    match = forms.ChoiceField(choices=MatchKind.choices, label="Match the called number")
    number = forms.CharField(
        label="Number or pattern",
        help_text="One of your numbers; a range's first number; or a pattern like 1212555XXXX.",
        widget=DatalistInput(),
    )
    number_end = forms.CharField(
        required=False, label="Last number of the range", widget=DatalistInput()
    )
    caller = forms.CharField(
        required=False, label="Only from callers matching", help_text="A pattern; empty: anyone."
    )
    use_hours = forms.BooleanField(
        required=False,
        initial=True,
        label="Follow office hours and holidays",
        help_text="Off: always the 'when open' destination.",
    )
    in_hours_kind = _kind_field("Send to", optional=False)
    in_hours_target = _target_field("Target")
    out_of_hours_kind = _kind_field("Send to", optional=True)
    out_of_hours_target = _target_field("Target")
    holiday_kind = _kind_field("Send to", optional=True)
    holiday_target = _target_field("Target")

    sections: tuple[Section, ...] = (
        Section("Rule", ("name", "priority", "enabled")),
        Section("Called number", ("match", "number", "number_end", "caller")),
        Section("When open", ("in_hours_kind", "in_hours_target", "use_hours")),
        Section("Out of office hours", ("out_of_hours_kind", "out_of_hours_target")),
        Section("On holidays", ("holiday_kind", "holiday_target")),
    )
    plain = ("name", "priority", "enabled", "match", "number", "number_end", "caller", "use_hours")

    def __init__(self, *args, targets=(), numbers=(), **kwargs):
        super().__init__(*args, **kwargs)
        for name in DESTINATIONS:
            self.fields[f"{name}_target"].widget.options = targets
        for name in ("number", "number_end"):
            self.fields[name].widget.options = numbers

    def clean_number(self):
        return self.cleaned_data["number"].replace(" ", "")

    def clean_number_end(self):
        return self.cleaned_data["number_end"].replace(" ", "")

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in self.plain}
        for name in DESTINATIONS:
            kind = self.cleaned_data.get(f"{name}_kind") or ""
            target = self.cleaned_data.get(f"{name}_target", "").replace(" ", "")
            data[name] = {"kind": kind, "target": target} if kind else None
        return data

    def add_action_errors(self, exc) -> None:
        """The action names a destination's field ``in_hours``: show it on the target box."""
        from pbx.forms import add_action_errors

        fields = {
            (f"{k}_target" if k in DESTINATIONS else k): v for k, v in (exc.fields or {}).items()
        }
        exc.fields = fields
        add_action_errors(self, exc)


def inbound_initial(rule) -> dict:
    initial = {n: getattr(rule, n) for n in InboundRuleForm.plain}
    for name in DESTINATIONS:
        value = getattr(rule, name) or {}
        initial[f"{name}_kind"] = value.get("kind", "")
        initial[f"{name}_target"] = value.get("target", "")
    return initial


class OutboundRuleForm(SectionedForm):
    name = forms.CharField(label="Name")
    priority = _int("Priority", 100, "Lower numbers are tried first.", min_value=0)
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    prefix = forms.CharField(  # type: ignore[assignment]  # a field, not Form.prefix
        required=False, label="Dialled prefix", help_text="E.g. 0 or 00; empty: any."
    )
    pattern = forms.CharField(
        required=False, label="Dial pattern", help_text="E.g. NXXNXXXXXX; empty: any."
    )
    min_length = _int("Shortest number", 0, "Digits; 0: any.", min_value=0)
    max_length = _int("Longest number", 0, "Digits; 0: any.", min_value=0)
    extensions = forms.CharField(
        required=False,
        label="Only for extensions",
        help_text="Extension numbers, separated by commas; empty: every extension.",
    )
    strip = _int("Strip digits", 0, "Taken from the front before sending.", min_value=0)
    prepend = forms.CharField(required=False, label="Prepend", help_text="Added in front.")
    caller_id = forms.CharField(
        required=False, label="Caller ID", help_text="Presented number; empty: the extension's."
    )

    plain = (
        "name", "priority", "enabled", "prefix", "pattern", "min_length", "max_length", "strip",
        "prepend", "caller_id",
    )  # fmt: skip

    def __init__(self, *args, trunks=(), **kwargs):
        super().__init__(*args, **kwargs)
        slots = max(1, min(FAILOVER_SLOTS, len(trunks)))
        names = []
        for i in range(slots):
            name = f"trunk_{i + 1}"
            names.append(name)
            self.fields[name] = forms.TypedChoiceField(
                coerce=int,
                empty_value=None,
                required=i == 0,
                label=f"{ORDINALS[i]} trunk" if i else "Trunk",
                help_text="" if i else "Tried first; the next ones when it fails or is full.",
                choices=[("", "—" if i else "Choose a trunk")] + [(t.pk, t.name) for t in trunks],
            )
        self.trunk_slots = tuple(names)
        self.sections = (
            Section("Rule", ("name", "priority", "enabled")),
            Section(
                "Dialled number",
                ("prefix", "pattern", "min_length", "max_length", "extensions"),
                "The rule applies when all of these match.",
            ),
            Section("Trunks, in failover order", self.trunk_slots),
            Section("Sent number", ("strip", "prepend", "caller_id")),
        )

    def clean(self):
        data = super().clean()
        seen: set[int] = set()
        for name in self.trunk_slots:
            value = data.get(name)
            if value is not None and value in seen:
                self.add_error(name, "Each trunk once.")
            elif value is not None:
                seen.add(value)
        return data

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in self.plain}
        data["extensions"] = split_list(self.cleaned_data["extensions"])
        data["trunks"] = [
            self.cleaned_data[n] for n in self.trunk_slots if self.cleaned_data.get(n) is not None
        ]
        return data

    def add_action_errors(self, exc) -> None:
        from pbx.forms import add_action_errors

        exc.fields = {("trunk_1" if k == "trunks" else k): v for k, v in (exc.fields or {}).items()}
        add_action_errors(self, exc)


def outbound_initial(rule) -> dict:
    initial = {n: getattr(rule, n) for n in OutboundRuleForm.plain}
    initial["extensions"] = ", ".join(rule.extensions or ())
    for i, tid in enumerate(rule.trunks[:FAILOVER_SLOTS]):
        initial[f"trunk_{i + 1}"] = tid
    return initial


class BlacklistForm(forms.Form):
    number = forms.CharField(label="Number or prefix")
    prefix = forms.BooleanField(  # type: ignore[assignment]
        required=False, label="Block every number starting with it", help_text="A prefix."
    )
    action = forms.ChoiceField(choices=BlockAction.choices, label="Answer with")
    note = forms.CharField(
        required=False, max_length=_max_length(BlacklistEntry, "note"), label="Note"
    )

    def clean_number(self):
        return self.cleaned_data["number"].replace(" ", "")


class EmergencyForm(forms.Form):
    number = forms.CharField(label="Number", help_text="What people dial, like 911 or 112.")
    caller_id = forms.CharField(
        required=False,
        label="Caller ID",
        help_text="Presented to the emergency service; empty: the tenant's emergency caller ID.",
    )
    trunks = forms.TypedMultipleChoiceField(
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Trunks",
        help_text="None ticked: every trunk the company may use.",
    )

    def __init__(self, *args, trunks=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["trunks"].choices = [(t.pk, t.name) for t in trunks]


class HolidayForm(forms.Form):
    name = forms.CharField(label="Name")
    start = forms.DateField(label="First day", widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        required=False,
        label="Last day",
        help_text="Empty: one day.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    yearly = forms.BooleanField(required=False, label="Every year")


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


class OfficeHoursForm(forms.Form):
    """A weekly grid: for each day up to ``PERIODS`` open periods from and to (HH:MM), stored
    as minutes after midnight. An end of 00:00 means midnight at the end of the day."""

    hours_enabled = forms.BooleanField(
        required=False,
        label="Use office hours",
        help_text="Off: always open (rules use their 'when open' destination).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for d, day in enumerate(WEEKDAYS):
            for p in range(PERIODS):
                for edge, word in (("start", "opens"), ("end", "closes")):
                    self.fields[f"d{d}p{p}_{edge}"] = forms.CharField(
                        required=False,
                        label=f"{day}, period {p + 1}, {word}",
                        widget=forms.TimeInput(attrs={"type": "time"}),
                    )

    def grid(self) -> list[dict]:
        """Rows of the table: a day with its periods' bound fields."""
        return [
            {
                "day": day,
                "periods": [
                    (self[f"d{d}p{p}_start"], self[f"d{d}p{p}_end"]) for p in range(PERIODS)
                ],
            }
            for d, day in enumerate(WEEKDAYS)
        ]

    def clean(self):
        data = super().clean()
        weekly: list[list[list[int]]] = []
        for d in range(len(WEEKDAYS)):
            day = []
            for p in range(PERIODS):
                start_name, end_name = f"d{d}p{p}_start", f"d{d}p{p}_end"
                start, end = (
                    (data.get(start_name) or "").strip(),
                    (data.get(end_name) or "").strip(),
                )
                if not start and not end:
                    continue
                bad = False
                for name, value in ((start_name, start), (end_name, end)):
                    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d(:00)?", value):
                        self.add_error(name, "A time, HH:MM.")
                        bad = True
                if bad:
                    continue
                lo, hi = _minutes(start[:5]), _minutes(end[:5]) or 1440
                if hi <= lo:
                    self.add_error(end_name, "After the opening time.")
                    continue
                day.append([lo, hi])
            weekly.append(sorted(day))
        data["weekly"] = weekly
        return data


def hours_initial(settings) -> dict:
    initial: dict = {"hours_enabled": settings.hours_enabled}
    for d, day in enumerate(settings.weekly or ()):
        for p, (lo, hi) in enumerate(sorted(day)[:PERIODS]):
            initial[f"d{d}p{p}_start"] = _hhmm(lo)
            initial[f"d{d}p{p}_end"] = _hhmm(hi)
    return initial


class RoutingSettingsForm(SectionedForm):
    country = CountryField(
        help_text="ISO code (US, DE, GB...): how national numbers are read and dialled."
    )
    privacy_code = forms.CharField(
        label="Privacy code", help_text="Dialled before a number to withhold the caller ID."
    )
    caller_id = forms.CharField(
        required=False, label="Caller ID", help_text="Presented when nothing else sets one."
    )
    emergency_caller_id = forms.CharField(
        required=False, label="Emergency caller ID", help_text="Presented on emergency calls."
    )
    allowed_countries = forms.CharField(
        required=False,
        label="Countries that may be called",
        help_text="ISO codes separated by commas; empty: every country.",
    )
    blocked_prefixes = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Blocked destinations",
        help_text="E.164 prefixes never dialled out, like +1900, one per line.",
    )

    sections: tuple[Section, ...] = (
        Section("Numbers", ("country", "privacy_code")),
        Section("Caller ID", ("caller_id", "emergency_caller_id")),
        Section("Where calls may go", ("allowed_countries", "blocked_prefixes")),
    )

    def clean_allowed_countries(self):
        return [c.upper() for c in split_list(self.cleaned_data["allowed_countries"])]

    def clean_blocked_prefixes(self):
        return split_list(self.cleaned_data["blocked_prefixes"])

    def fields_for_action(self) -> dict:
        return {
            n: self.cleaned_data[n]
            for n in (
                "privacy_code", "caller_id", "emergency_caller_id", "allowed_countries",
                "blocked_prefixes",
            )
        }  # fmt: skip
