"""The tenant's call recording settings as the portal edits them. The form only shapes input;
every value is judged by ``audio.recording_settings`` (the same rules as the API). The
storage secret is write-only: the page never shows it, and an empty box keeps the stored one."""

from __future__ import annotations

from typing import cast

from django import forms

from audio.models import Prompt, StorageKind
from audio.recording_settings import RETENTION_MAX_DAYS
from tenants.choices import RecordingPolicy

from .forms import Section, SectionedForm

#: The fields each storage kind uses (the page's script shows only those).
STORAGE_FIELDS = {
    StorageKind.S3: ("bucket", "region", "endpoint_url", "access_key", "secret", "prefix"),
    StorageKind.AZURE: ("account_name", "bucket", "secret", "endpoint_url", "prefix"),
}


class RecordingSettingsForm(SectionedForm):
    policy = forms.ChoiceField(
        choices=[(v, label) for v, label in RecordingPolicy.choices if v],
        label="Record calls",
        help_text="The tenant's default; an extension or a trunk may set its own.",
    )
    announce = forms.BooleanField(
        required=False,
        label="Play an announcement before recording",
        help_text="Both parties hear it when a recording starts.",
    )
    announcement = forms.ChoiceField(
        required=False,
        label="Announcement prompt",
        help_text="One of your prompts (upload it under Prompts).",
    )
    retention_days = forms.IntegerField(
        min_value=0,
        max_value=RETENTION_MAX_DAYS,
        initial=0,
        label="Keep recordings (days)",
        help_text="Older recordings are deleted every night; 0 keeps them for ever.",
    )
    storage = forms.ChoiceField(choices=StorageKind.choices, label="Store recordings in")
    bucket = forms.CharField(
        required=False,
        label="Bucket or container",
        help_text="S3: the bucket name. Azure: the blob container name.",
    )
    region = forms.CharField(required=False, label="Region", help_text="S3: e.g. eu-west-1.")
    endpoint_url = forms.CharField(
        required=False,
        label="Endpoint URL",
        help_text="Only for an S3-compatible service or a private Azure cloud: https://...",
    )
    access_key = forms.CharField(required=False, label="Access key ID", help_text="S3.")
    account_name = forms.CharField(required=False, label="Storage account name", help_text="Azure.")
    secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        label="Secret",
        help_text="S3: the secret access key. Azure: the account key or a connection string. "
        "Stored encrypted and never shown again.",
    )
    # The model's name; the form metaclass takes fields off the class, so Form.prefix (the
    # HTML name prefix) is untouched.
    prefix = forms.CharField(  # type: ignore[assignment]
        required=False,
        label="Key prefix",
        help_text="Optional folder inside the bucket or container, e.g. pbx/recordings.",
    )

    sections = (
        Section("Recording", ("policy", "announce", "announcement", "retention_days")),
        Section(
            "Storage",
            ("storage", "bucket", "region", "endpoint_url", "access_key", "account_name",
             "secret", "prefix"),
            "Where finished recordings are uploaded. Your own S3 bucket or Azure container "
            "keeps them in your account.",
        ),
    )  # fmt: skip

    def __init__(self, *args, has_secret: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        prompts = Prompt.objects.order_by("name").values_list("pk", "name")
        announcement = cast(forms.ChoiceField, self.fields["announcement"])
        announcement.choices = [("", "None")] + [(str(pk), name) for pk, name in prompts]
        if has_secret:
            self.fields[
                "secret"
            ].help_text = "A secret is stored; leave empty to keep it (it is never shown)."
        for kind, names in STORAGE_FIELDS.items():
            for name in names:
                widget = self.fields[name].widget
                shown = widget.attrs.get("data-storage", "").split()
                widget.attrs["data-storage"] = " ".join([*shown, kind])

    def clean_announcement(self):
        value = self.cleaned_data.get("announcement")
        if not value:
            return None
        prompt = Prompt.objects.filter(pk=int(value)).first()
        if prompt is None:
            raise forms.ValidationError("Choose one of your prompts.")
        return prompt

    def fields_for_action(self) -> dict:
        data = dict(self.cleaned_data)
        data["secret"] = self.cleaned_data.get("secret") or None
        return data


def settings_initial(settings) -> dict:
    names = [n for n in RecordingSettingsForm.base_fields if n not in ("secret", "announcement")]
    initial = {name: getattr(settings, name) for name in names}
    initial["announcement"] = str(settings.announcement_id or "")
    return initial
