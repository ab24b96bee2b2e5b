"""The portal's form of a user group: a name, a description and the member extensions ticked
in a list. It only shapes input; ``telephony.user_groups`` judges every value."""

from __future__ import annotations

from django import forms

from .forms import SectionedForm, extension_choices


class UserGroupForm(SectionedForm):
    name = forms.CharField(label="Name", max_length=64)
    description = forms.CharField(label="Description", max_length=255, required=False)
    members = forms.MultipleChoiceField(
        label="Members",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The extensions in the group; an extension may be in several groups.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].choices = extension_choices()

    def fields_for_action(self) -> dict:
        return {n: self.cleaned_data[n] for n in ("name", "description", "members")}


def user_group_initial(group) -> dict:
    return {
        "name": group.name,
        "description": group.description,
        "members": list(group.members.values_list("number", flat=True)),
    }
