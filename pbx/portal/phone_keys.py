"""A phone's lines and BLF keys as rows of pickers (an extension box with the tenant's
extensions as suggestions, and a label), not a mini-syntax to type: one row per account the
model has, and the phone's BLF keys plus a few empty rows. The rules (the extension exists, the
keys fit the model) stay the device action's; its errors are shown above the rows."""

from __future__ import annotations

from django import forms

from provisioning.actions import AUTO_MAX_LINES
from provisioning.vendors import MODELS
from telephony.models import Extension, UserGroup

from .forms import extension_choices
from .widgets import DatalistInput

#: The id of the page's one list of the tenant's extensions, which every row's box suggests.
EXTENSIONS_LIST = "tenant-extensions"
#: Empty BLF rows offered below the phone's keys (saving makes room for more).
SPARE_KEYS = 4
#: The POST field naming a user group whose members get BLF keys.
GROUP_FIELD = "blf-group"


class KeyRow(forms.Form):
    extension = forms.CharField(
        required=False, max_length=16, widget=DatalistInput(shared_list=EXTENSIONS_LIST)
    )
    label = forms.CharField(required=False, max_length=60)


#: What a BLF row's key does (``provisioning.vendors.KEY_KINDS``); a park slot's number in a
#: busy-lamp row is a park key anyway (the action recognises it).
KEY_KIND_CHOICES = (
    ("blf", "Busy lamp"),
    ("park", "Park slot"),
    ("intercom", "Intercom"),
)


class BlfKeyRow(KeyRow):
    kind = forms.ChoiceField(required=False, choices=KEY_KIND_CHOICES, initial="blf")


KeyRowSet = forms.formset_factory(KeyRow, extra=0, max_num=256, absolute_max=256)
BlfKeyRowSet = forms.formset_factory(BlfKeyRow, extra=0, max_num=256, absolute_max=256)


class KeyRows:
    """The line and BLF rows of ``device``'s edit form (``data``: the POST, or None)."""

    def __init__(self, device, data=None):
        model = MODELS.get(device.effective_model_id)
        current = {line.index: line for line in device.lines.select_related("extension")}
        count = max(model.max_accounts if model else AUTO_MAX_LINES, max(current, default=0))
        line_rows = [
            {"extension": current[i].extension.number, "label": current[i].label}
            if i in current
            else {}
            for i in range(1, count + 1)
        ]
        keys = [
            {"extension": k["extension"], "label": k["label"], "kind": k.get("kind", "blf")}
            for k in device.blf_keys
        ]
        room = model.max_blf_keys if model else len(keys) + SPARE_KEYS
        spare = max(0, min(SPARE_KEYS, room - len(keys)))
        self.line_rows = KeyRowSet(data, prefix="line", initial=line_rows)
        self.key_rows = BlfKeyRowSet(data, prefix="blf", initial=keys + [{}] * spare)
        self.options = extension_choices()
        # A user group's members may be added as BLF keys at once (after the rows' keys).
        self.group_choices = [("", "No group")] + [
            (str(pk), name) for pk, name in UserGroup.objects.values_list("pk", "name")
        ]
        self.group = str((data or {}).get(GROUP_FIELD) or "")
        self.errors: dict[str, list[str]] = {}
        for what, rows in (("Line", self.line_rows), ("Key", self.key_rows)):
            for n, row in enumerate(rows.forms, start=1):
                row.number = n
                row.fields["extension"].widget.attrs["aria-label"] = f"{what} {n}: extension"
                row.fields["label"].widget.attrs["aria-label"] = f"{what} {n}: label"
                if "kind" in row.fields:
                    row.fields["kind"].widget.attrs["aria-label"] = f"{what} {n}: does"

    def is_valid(self) -> bool:
        return self.line_rows.is_valid() and self.key_rows.is_valid()

    def lines(self) -> list[dict]:
        """What the action takes: the filled rows, numbered by their place (line 1, 2, …)."""
        return [
            {"index": index, "extension": row["extension"].strip(), "label": row["label"]}
            for index, row in enumerate(self.line_rows.cleaned_data, start=1)
            if row.get("extension", "").strip()
        ]

    def blf_keys(self) -> list[dict]:
        keys = [
            {
                "extension": row["extension"].strip(),
                "label": row["label"],
                "kind": row.get("kind") or "blf",
            }
            for row in self.key_rows.cleaned_data
            if row.get("extension", "").strip()
        ]
        return keys + self._group_keys({k["extension"] for k in keys})

    def _group_keys(self, present: set[str]) -> list[dict]:
        """A BLF key for each member of the chosen group that has none yet, by number."""
        if not self.group.isdigit():
            return []
        members = Extension.objects.filter(user_groups__pk=int(self.group)).order_by("number")
        return [
            {"extension": number, "label": name[:32] or number, "kind": "blf"}
            for number, name in members.values_list("number", "display_name")
            if number not in present
        ]

    def take_errors(self, exc) -> None:
        """Keep the action's errors about lines and keys for the rows' sections; the form
        shows the rest."""
        fields = dict(exc.fields or {})
        for name in ("lines", "blf_keys"):
            if name in fields:
                found = fields.pop(name)
                self.errors[name] = [
                    str(m) for m in (found if isinstance(found, list) else [found])
                ]
        exc.fields = fields
