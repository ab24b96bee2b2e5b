"""Portal forms for a tenant's audio: prompts, music on hold, an extension's mailbox and the
end user's own mailbox. They only shape input; every rule (prompt names, audio formats and
lengths, PINs, e-mail) is ``audio.actions``', whose field errors the views put back on these
forms with :func:`pbx.forms.add_action_errors`."""

from __future__ import annotations

from django import forms

from audio.actions import MAX_SECONDS, PROMPT_NAME_HELP
from audio.models import Attach
from telephony.media.prompts import DIGIT_PROMPTS, PROMPTS

from .forms import Section, SectionedForm
from .widgets import DatalistInput

AUDIO_HELP = "WAV or MP3, any sample rate; converted once for the phones."


def _audio_file(label: str = "Audio file") -> forms.FileField:
    return forms.FileField(
        label=label,
        help_text=AUDIO_HELP,
        widget=forms.ClearableFileInput(attrs={"accept": ".wav,.mp3,audio/wav,audio/mpeg"}),
    )


def default_prompt_choices() -> list[tuple[str, str]]:
    """The default prompts (not the spoken digits) as name suggestions, with their words."""
    return [
        (name, words.get("en", "")) for name, words in PROMPTS.items() if name not in DIGIT_PROMPTS
    ]


class PromptForm(forms.Form):
    """A new prompt: a default prompt's name replaces that prompt for the tenant's calls."""

    name = forms.CharField(
        max_length=64,
        label="Name",
        help_text=f"{PROMPT_NAME_HELP}. A default prompt's name replaces it for your calls.",
        widget=DatalistInput(default_prompt_choices),
    )
    description = forms.CharField(max_length=200, required=False, label="Description")
    file = _audio_file()


class MusicClassForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name", help_text="For example: Jazz, Spring.")
    is_default = forms.BooleanField(
        required=False, label="Play it to held callers", help_text="The tenant's default class."
    )


class TrackForm(forms.Form):
    file = _audio_file("Track")


class GreetingForm(forms.Form):
    kind = forms.ChoiceField(
        choices=(("unavailable", "Unavailable"), ("busy", "Busy")), label="Greeting"
    )
    file = _audio_file("Recording")


class PinFields(forms.Form):
    """A PIN box that keeps the stored PIN when left empty, and a box to clear it."""

    pin = forms.CharField(
        required=False,
        max_length=10,
        label="New PIN",
        help_text="4 to 10 digits to listen to messages from a phone. Empty: unchanged.",
        widget=forms.PasswordInput(attrs={"inputmode": "numeric", "autocomplete": "new-password"}),
    )
    clear_pin = forms.BooleanField(required=False, label="Remove the PIN")

    def pin_for_action(self) -> str | None:
        """The action's ``pin``: None unchanged, "" cleared, else the new PIN."""
        if self.cleaned_data.get("clear_pin"):
            return ""
        return self.cleaned_data.get("pin") or None


class EmailFields(forms.Form):
    email_enabled = forms.BooleanField(required=False, label="E-mail each new message")
    email = forms.EmailField(
        required=False,
        max_length=254,
        label="E-mail address",
        help_text="Empty: the address of the extension's user.",
    )
    attach = forms.ChoiceField(choices=Attach.choices, label="Attach the message as")
    delete_after_email = forms.BooleanField(required=False, label="Delete the message once mailed")


class MailboxForm(SectionedForm, PinFields, EmailFields):
    """An extension's mailbox as a tenant admin edits it."""

    enabled = forms.BooleanField(required=False, label="Voicemail on")
    max_seconds = forms.IntegerField(
        min_value=MAX_SECONDS[0],
        max_value=MAX_SECONDS[1],
        label="Longest message (seconds)",
    )
    always = forms.BooleanField(required=False, label="Always (the phone does not ring)")
    busy = forms.BooleanField(required=False, label="When busy or on do-not-disturb")
    no_answer = forms.BooleanField(required=False, label="When not answered or not registered")

    field_names = (
        "enabled", "max_seconds", "always", "busy", "no_answer", "email_enabled", "email",
        "attach", "delete_after_email",
    )  # fmt: skip
    sections = (
        Section("Voicemail", ("enabled", "max_seconds")),
        Section("Calls go to voicemail", ("always", "busy", "no_answer")),
        Section("PIN", ("pin", "clear_pin")),
        Section(
            "E-mail", ("email_enabled", "email", "attach", "delete_after_email"),
            "New messages can be sent by e-mail with the recording attached.",
        ),
    )  # fmt: skip

    def fields_for_action(self) -> dict:
        return {n: self.cleaned_data[n] for n in self.field_names}


class MyMailboxForm(SectionedForm, PinFields, EmailFields):
    """The end user's own mailbox: its PIN and e-mail delivery."""

    field_names = ("email_enabled", "email", "attach", "delete_after_email")
    sections = (
        Section("PIN", ("pin", "clear_pin")),
        Section("E-mail", ("email_enabled", "email", "attach", "delete_after_email")),
    )

    def fields_for_action(self) -> dict:
        return {n: self.cleaned_data[n] for n in self.field_names}
