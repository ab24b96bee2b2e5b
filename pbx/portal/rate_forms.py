"""Portal forms for rate tables, rates and their CSV import. They only shape input; every rule
is ``billing.rate_tables``' (the same messages as the API and the CSV import), put back on the
box it belongs to."""

from __future__ import annotations

from django import forms

from billing.models import RateKind
from billing.rate_csv import MERGE, REPLACE
from billing.rate_tables import RATE_FIELDS

from .forms import Section, SectionedForm


class RateTableForm(SectionedForm):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(choices=RateKind.choices, initial=RateKind.SELL)
    owner = forms.ChoiceField(
        required=False, help_text="Whose table it is; set when the table is created."
    )
    currency = forms.CharField(max_length=3, initial="USD", help_text="ISO 4217, e.g. USD.")
    base = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        help_text="Charge the base table's rates marked up; this table's own rates override "
        "single prefixes.",
    )
    markup_percent = forms.DecimalField(
        max_digits=7,
        decimal_places=3,
        initial=0,
        label="Markup (%)",
        help_text="Added to the base table's prices (more than -100, at most 1000).",
    )
    description = forms.CharField(max_length=255, required=False)
    trunks = forms.TypedMultipleChoiceField(
        required=False,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text="Buy tables only: the trunks whose carrier charges these rates.",
    )
    sections = (
        Section("Table", ("name", "kind", "owner", "currency", "description")),
        Section("Derived from", ("base", "markup_percent")),
        Section("Trunks", ("trunks",)),
    )

    def __init__(self, *args, owners=None, bases=(), trunks=(), editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing or not owners:
            del self.fields["owner"]
        else:
            self.fields["owner"].choices = owners
        self.fields["base"].choices = [("", "None: its own rates only")] + [
            (t.pk, f"{t.name} ({t.get_kind_display().split(' (')[0].lower()}, {t.currency})")
            for t in bases
        ]
        self.fields["trunks"].choices = [(t.pk, t.name) for t in trunks]
        if not trunks:
            del self.fields["trunks"]

    def fields_for_action(self) -> dict:
        data = self.cleaned_data
        names = ("name", "kind", "currency", "markup_percent", "description")
        fields = {n: data[n] for n in names}
        fields["base_id"] = data["base"]
        if "trunks" in self.fields:
            fields["trunk_ids"] = data["trunks"]
        return fields


class RateForm(forms.Form):
    # The rate's field, not Form.prefix (the form metaclass takes fields off the class).
    prefix = forms.CharField(  # type: ignore[assignment]
        max_length=17, help_text='Destination digits (a "+" is dropped).'
    )
    description = forms.CharField(max_length=120, required=False)
    per_minute = forms.CharField(max_length=20, initial="0", label="Price per minute")
    connection_fee = forms.CharField(max_length=20, initial="0")
    first_interval = forms.IntegerField(initial=60, help_text="Seconds charged at least.")
    next_interval = forms.IntegerField(initial=60, help_text="Then charged in steps of.")
    free_seconds = forms.IntegerField(initial=0, help_text="Free after the first interval.")
    grace_seconds = forms.IntegerField(initial=0, help_text="Shorter calls cost nothing.")

    def fields_for_action(self) -> dict:
        return {n: self.cleaned_data[n] for n in RATE_FIELDS}


class RateImportForm(forms.Form):
    file = forms.FileField(help_text="CSV (UTF-8) with the header line: " + ",".join(RATE_FIELDS))
    mode = forms.ChoiceField(
        choices=[
            (MERGE, "Merge: add new prefixes, update the ones the table has"),
            (REPLACE, "Replace: the table's rates become the file's (others are deleted)"),
        ],
        initial=MERGE,
        widget=forms.RadioSelect,
    )
