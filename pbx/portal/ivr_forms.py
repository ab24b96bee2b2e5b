"""Portal forms for IVR menus and feature access codes. They only shape input (a key's
destination as a kind and a target, a prompt by name); every rule is the actions'
(``routing.ivr``, ``telephony.features``), whose field errors these forms put back on the
boxes they belong to."""

from __future__ import annotations

import re

from django import forms

from pbx.forms import add_action_errors
from routing.ivr import DIGITS, EXIT_KINDS, OPTION_KINDS, TIMEOUT, TRIES, kind_label

from .forms import Section, SectionedForm
from .widgets import DatalistInput

#: Field-name-safe names of the keys.
KEY_NAMES = {d: d for d in "0123456789"} | {"*": "star", "#": "hash"}
KEY_RE = re.compile(r"key (.)\s*:\s*(.*)", re.S)
TARGET_HELP = (
    "An extension or mailbox number, a menu's number, a DISA entry (picked from the list) or "
    "an outside number."
)


def _kind(label: str, kinds, empty: str) -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=[("", empty)] + [(k, kind_label(k)) for k in kinds], required=False, label=label
    )


def _target(label: str) -> forms.CharField:
    return forms.CharField(required=False, label=label, widget=DatalistInput())


def _prompt(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(required=False, label=label, help_text=help_text, widget=DatalistInput())


class IvrMenuForm(SectionedForm):
    number = forms.CharField(
        label="Number", help_text="Dialled like an extension; inbound rules and menus name it."
    )
    name = forms.CharField(label="Name")
    greeting = _prompt("Greeting", "A prompt's name; empty: the default welcome.")
    invalid = _prompt("Invalid choice prompt", "Played after a wrong key; empty: the default.")
    dial_extension = forms.BooleanField(
        required=False, initial=True, label="Callers may dial an extension's number"
    )
    timeout = forms.IntegerField(
        label="Seconds to wait for a key", initial=5, min_value=TIMEOUT[0], max_value=TIMEOUT[1]
    )
    tries = forms.IntegerField(
        label="Times the menu is played", initial=3, min_value=TRIES[0], max_value=TRIES[1]
    )
    timeout_kind = _kind("Then", EXIT_KINDS, "Hang up")
    timeout_target = _target("Target")
    use_hours = forms.BooleanField(
        required=False, label="Follow office hours", help_text="The tenant's hours and holidays."
    )
    closed_greeting = _prompt("Closed greeting", "Played when closed; empty: the default.")
    closed_kind = _kind("When closed, send to", EXIT_KINDS, "The menu, after the greeting")
    closed_target = _target("Target")

    sections: tuple[Section, ...] = (
        Section("Menu", ("number", "name", "greeting", "invalid", "dial_extension")),
        Section(
            "No valid key",
            ("timeout", "tries", "timeout_kind", "timeout_target"),
            "After the last try without a valid key, the call goes here.",
        ),
        Section("Office hours", ("use_hours", "closed_greeting", "closed_kind", "closed_target")),
    )
    plain = ("number", "name", "greeting", "invalid", "dial_extension", "timeout", "tries",
             "use_hours", "closed_greeting")  # fmt: skip
    exits = ("timeout", "closed")

    def __init__(self, *args, targets=(), prompts=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.key_fields: list[tuple[str, str, str]] = []  # (digit, kind field, target field)
        for digit in DIGITS:
            key = KEY_NAMES[digit]
            kind, target = f"key_{key}_kind", f"key_{key}_target"
            self.fields[kind] = _kind(f"Key {digit}", OPTION_KINDS, "Not used")
            self.fields[target] = _target(f"Key {digit} target")
            self.fields[target].help_text = ""
            self.key_fields.append((digit, kind, target))
        for name in ("greeting", "invalid", "closed_greeting"):
            self.fields[name].widget.options = prompts
        for name, field in self.fields.items():
            if name.endswith("_target"):
                field.widget.options = targets
                if name in ("timeout_target", "closed_target"):
                    field.help_text = TARGET_HELP

    def grouped(self):
        """The sections; the keys have a table of their own (:meth:`keys`)."""
        return [(section, bound) for section, bound in super().grouped() if section is not None]

    def keys(self) -> list[dict]:
        """Rows of the keys table: the digit with its bound fields."""
        return [{"digit": d, "kind": self[k], "target": self[t]} for d, k, t in self.key_fields]

    def _destination(self, kind_field: str, target_field: str):
        kind = self.cleaned_data.get(kind_field) or ""
        target = (self.cleaned_data.get(target_field) or "").replace(" ", "")
        return {"kind": kind, "target": target} if kind else None

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in self.plain}
        data["number"] = data["number"].strip()
        for name in ("greeting", "invalid", "closed_greeting"):
            data[name] = data[name].strip()
        for name in self.exits:
            data[f"{name}_target"] = self._destination(f"{name}_kind", f"{name}_target")
        data["options"] = [
            {"digit": digit, "target": target}
            for digit, kind, box in self.key_fields
            if (target := self._destination(kind, box)) is not None
        ]
        return data

    def add_action_errors(self, exc) -> None:
        """A key's error goes on its target box, an exit's on its target box."""
        fields: dict[str, list[str]] = {}
        for name, messages in (exc.fields or {}).items():
            for message in messages if isinstance(messages, list) else [messages]:
                found = KEY_RE.fullmatch(str(message)) if name == "options" else None
                if found and found.group(1) in KEY_NAMES:
                    fields.setdefault(f"key_{KEY_NAMES[found.group(1)]}_target", []).append(
                        found.group(2)
                    )
                else:
                    fields.setdefault(name, []).append(str(message))
        exc.fields = fields
        add_action_errors(self, exc)


def ivr_initial(menu) -> dict:
    initial = {n: getattr(menu, n) for n in IvrMenuForm.plain}
    for name in IvrMenuForm.exits:
        value = getattr(menu, f"{name}_target") or {}
        initial[f"{name}_kind"] = value.get("kind", "")
        initial[f"{name}_target"] = value.get("target", "")
    for option in menu.options.all():
        key = KEY_NAMES.get(option.digit)
        if key is not None:
            initial[f"key_{key}_kind"] = option.target.get("kind", "")
            initial[f"key_{key}_target"] = option.target.get("target", "")
    return initial


class FeatureCodesForm(forms.Form):
    """One row per feature: its code and whether it is on."""

    def __init__(self, *args, table=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.table = list(table)
        for row in self.table:
            feature = row["feature"]
            self.fields[f"code_{feature}"] = forms.CharField(
                label=f"{row['label']}: code", initial=row["code"], max_length=8, required=False
            )
            self.fields[f"on_{feature}"] = forms.BooleanField(
                label=f"{row['label']}: on", initial=row["enabled"], required=False
            )

    def rows(self) -> list[dict]:
        out = []
        for row in self.table:
            feature = row["feature"]
            out.append(
                {**row, "code_field": self[f"code_{feature}"], "on_field": self[f"on_{feature}"]}
            )
        return out

    def changes(self) -> dict[str, dict]:
        return {
            row["feature"]: {
                "code": self.cleaned_data[f"code_{row['feature']}"].strip(),
                "enabled": self.cleaned_data[f"on_{row['feature']}"],
            }
            for row in self.table
        }

    def add_action_errors(self, exc) -> None:
        exc.fields = {
            (f"code_{k}" if f"code_{k}" in self.fields else k): v
            for k, v in (exc.fields or {}).items()
        }
        add_action_errors(self, exc)


class DisaForm(SectionedForm):
    """A DISA entry. The PIN box is never filled in: empty keeps the PIN (a new entry needs
    one); the action judges it, the name and the extension."""

    name = forms.CharField(label="Name", max_length=120)
    pin = forms.CharField(
        label="PIN",
        required=False,
        max_length=12,
        widget=forms.PasswordInput(render_value=False, attrs={"inputmode": "numeric"}),
        help_text="4 to 12 digits, not all the same. Callers enter it before the number.",
    )
    extension = forms.ChoiceField(
        label="Calls are made as extension",
        help_text="Its outbound rules, call barring and caller ID apply to the calls.",
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args, extensions=(), has_pin=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["extension"].choices = [("", "Choose an extension")] + list(extensions)
        if has_pin:
            self.fields["pin"].help_text = (
                "A PIN is set; leave empty to keep it, or type a new one (4 to 12 digits, "
                "not all the same)."
            )

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in ("name", "extension", "enabled")}
        pin = (self.cleaned_data.get("pin") or "").strip()
        if pin:
            data["pin"] = pin
        return data


def disa_initial(entry) -> dict:
    return {"name": entry.name, "extension": entry.extension.number, "enabled": entry.enabled}
