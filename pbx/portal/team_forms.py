"""Portal forms for ring groups, paging groups, pickup groups and call park. They only shape
input (a member per row in ringing order, extensions as tick boxes, the overflow as a kind
and a target); every rule is ``telephony.team``'s, whose field errors these forms put back
on the boxes they belong to."""

from __future__ import annotations

import re

from django import forms

from pbx.forms import add_action_errors
from routing.destinations import KINDS
from telephony.models import RingStrategy
from telephony.team import (
    MAX_MEMBERS,
    MEMBER_SECONDS,
    PARK_COUNT,
    PARK_TIMEOUT,
    PREFIX_LENGTH,
    TOTAL_SECONDS,
)

from .forms import Section, SectionedForm
from .widgets import DatalistInput

#: Empty member rows a page offers below the group's members.
SPARE_ROWS = 5
TARGET_HELP = (
    "An extension or mailbox number, an IVR menu's or a group's number, an outside number or a "
    "reject code (486, 603...)."
)


def _seconds(label: str, bounds: tuple[int, int], initial: int, help_text: str):
    return forms.IntegerField(
        label=label,
        initial=initial,
        min_value=bounds[0],
        max_value=bounds[1],
        help_text=help_text,
    )


class RingGroupForm(SectionedForm):
    number = forms.CharField(
        label="Number", help_text="Dialled like an extension; inbound rules and menus name it."
    )
    name = forms.CharField(label="Name")
    strategy = forms.ChoiceField(choices=RingStrategy.choices, label="Ring strategy")
    member_seconds = _seconds(
        "Seconds each member rings", MEMBER_SECONDS, 20, "When they ring one after the other."
    )
    total_seconds = _seconds(
        "Seconds the group rings at most", TOTAL_SECONDS, 60, "Then the call goes on below."
    )
    skip_busy = forms.BooleanField(
        required=False, initial=True, label="Pass over members on a call or in do-not-disturb"
    )
    caller_id_prefix = forms.CharField(
        required=False,
        label="Caller name prefix",
        help_text=f"Shown before the caller's name on the members' phones, at most "
        f'{PREFIX_LENGTH} characters ("Sales:").',
    )
    enabled = forms.BooleanField(required=False, initial=True, label="Enabled")
    overflow_kind = forms.ChoiceField(required=False, label="When nobody answers, send to")
    overflow_target = forms.CharField(
        required=False, label="Target", help_text=TARGET_HELP, widget=DatalistInput()
    )

    sections: tuple[Section, ...] = (
        Section("Group", ("number", "name", "enabled")),
        Section(
            "Ringing",
            ("strategy", "member_seconds", "total_seconds", "skip_busy", "caller_id_prefix"),
        ),
        Section("Nobody answers", ("overflow_kind", "overflow_target")),
    )
    plain = ("number", "name", "strategy", "member_seconds", "total_seconds", "skip_busy",
             "caller_id_prefix", "enabled")  # fmt: skip

    def __init__(self, *args, targets=(), extensions=(), members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["overflow_kind"].choices = [("", "Nobody is available (the call ends)")] + [
            (k.kind, k.label) for k in KINDS.values()
        ]
        self.fields["overflow_target"].widget.options = targets
        if self.is_bound:
            rows = sum(1 for key in self.data if str(key).endswith("_number"))
        else:
            rows = len(members) + SPARE_ROWS
        self.member_rows: list[tuple[str, str]] = []
        for i in range(min(max(rows, SPARE_ROWS), MAX_MEMBERS)):
            number, outside = f"member_{i}_number", f"member_{i}_external"
            self.fields[number] = forms.CharField(
                required=False,
                label=f"Member {i + 1}",
                widget=DatalistInput(shared_list="member-extensions"),
            )
            self.fields[outside] = forms.BooleanField(
                required=False, label=f"Member {i + 1} is an outside number"
            )
            if i < len(members):
                self.initial[number] = members[i]["number"]
                self.initial[outside] = members[i]["external"]
            self.member_rows.append((number, outside))
        self.extension_options = list(extensions)

    def grouped(self):
        """The sections; the members have a table of their own (:meth:`members`)."""
        return [(section, bound) for section, bound in super().grouped() if section is not None]

    def members(self) -> list[dict]:
        return [
            {"position": i + 1, "number": self[n], "external": self[e]}
            for i, (n, e) in enumerate(self.member_rows)
        ]

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in self.plain}
        data["number"] = data["number"].strip()
        kind = self.cleaned_data.get("overflow_kind") or ""
        target = (self.cleaned_data.get("overflow_target") or "").strip()
        data["overflow"] = {"kind": kind, "target": target} if kind else None
        data["members"] = [
            {"number": number, "external": bool(self.cleaned_data.get(outside))}
            for box, outside in self.member_rows
            if (number := (self.cleaned_data.get(box) or "").strip())
        ]
        return data

    def add_action_errors(self, exc) -> None:
        """A member's error goes on the box of the member it names."""
        add_row_errors(self, exc, [box for box, _ in self.member_rows], "members")


def add_row_errors(form: forms.Form, exc, rows: list[str], listed: str) -> None:
    """An action's errors on ``form``: one about the list field ``listed`` (members, agents)
    on the row box (of ``rows``) of the number it names, else on the list; the overflow's on
    its target box; the others as ``pbx.forms.add_action_errors`` places them."""
    fields: dict[str, list[str]] = {}
    boxes = {
        (form.cleaned_data.get(box) or "").strip(): box
        for box in rows
        if (form.cleaned_data.get(box) or "").strip()
    }
    for name, messages in (exc.fields or {}).items():
        for message in messages if isinstance(messages, list) else [messages]:
            text = str(message)
            if name == listed:
                box = next((b for n, b in boxes.items() if _names(text, n)), None)
                fields.setdefault(box or listed, []).append(text)
            elif name == "overflow":
                fields.setdefault("overflow_target", []).append(text)
            else:
                fields.setdefault(name, []).append(text)
    exc.fields = fields
    add_action_errors(form, exc)


def _names(text: str, number: str) -> bool:
    """Whether an error ``text`` names the member ``number`` (not a longer number)."""
    return re.search(rf"(?<![\d+]){re.escape(number)}(?!\d)", text) is not None


def ring_initial(group) -> dict:
    initial = {n: getattr(group, n) for n in RingGroupForm.plain}
    overflow = group.overflow or {}
    initial["overflow_kind"] = overflow.get("kind", "")
    initial["overflow_target"] = overflow.get("target", "")
    return initial


def _members_field(help_text: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Members",
        help_text=help_text,
    )


class PagingGroupForm(SectionedForm):
    number = forms.CharField(
        label="Number", help_text="Dialled to page the members: their phones answer by themselves."
    )
    name = forms.CharField(label="Name")
    duplex = forms.BooleanField(
        required=False,
        label="Intercom (the members may talk back)",
        help_text="Off: a one-way announcement on the members' speakers.",
    )
    members = _members_field("The extensions whose phones are paged.")

    def __init__(self, *args, extensions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = list(extensions)

    def fields_for_action(self) -> dict:
        data = {n: self.cleaned_data[n] for n in ("number", "name", "duplex", "members")}
        data["number"] = data["number"].strip()
        return data


class PickupGroupForm(SectionedForm):
    name = forms.CharField(label="Name")
    members = _members_field(
        "They may answer each other's ringing calls with the group pickup code (*98). An "
        "extension may be in several groups."
    )

    def __init__(self, *args, extensions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = list(extensions)

    def fields_for_action(self) -> dict:
        return {"name": self.cleaned_data["name"], "members": self.cleaned_data["members"]}


class ParkSettingsForm(forms.Form):
    first = forms.IntegerField(
        label="First park slot", min_value=1, help_text="The slots are numbered from here."
    )
    count = forms.IntegerField(
        label="Park slots",
        min_value=PARK_COUNT[0],
        max_value=PARK_COUNT[1],
        help_text="Calls parked at once; each slot is a number a BLF key can watch.",
    )
    timeout = forms.IntegerField(
        label="Seconds before a parked call rings back",
        min_value=PARK_TIMEOUT[0],
        max_value=PARK_TIMEOUT[1],
        help_text="Then it rings the phone that parked it again.",
    )

    def fields_for_action(self) -> dict:
        return {n: self.cleaned_data[n] for n in ("first", "count", "timeout")}
