"""Prompts, music on hold, mailboxes and voicemail messages as the API shows them. The
serializers only shape input; ``audio.actions`` judges every value (and converts uploads)."""

from rest_framework import serializers

from audio.actions import MAILBOX_FIELDS
from audio.models import Mailbox, MusicClass, MusicTrack, Prompt, VoicemailMessage
from pbx.api.serializers import ActionJudgesValues

FILE_HELP = "A WAV or MP3 file (any rate and channels; at most 20 MB), stored as 8 kHz mono WAV."


class PromptSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """A recording of the tenant's; named as a default prompt (``welcome``, ``busy``, ...)
    it replaces that prompt for the tenant's calls."""

    file = serializers.FileField(write_only=True, help_text=FILE_HELP)
    description = serializers.CharField(required=False, allow_blank=True)

    class Meta:
        model = Prompt
        fields = ("id", "name", "description", "file", "seconds", "original_name",
                  "created_at", "updated_at")  # fmt: skip
        read_only_fields = ("seconds", "original_name", "created_at", "updated_at")


class PromptChangeSerializer(PromptSerializer):
    file = serializers.FileField(write_only=True, required=False, help_text=FILE_HELP)

    class Meta(PromptSerializer.Meta):
        extra_kwargs = {"name": {"required": False}}


class MusicTrackSerializer(serializers.ModelSerializer):
    class Meta:
        model = MusicTrack
        fields = ("id", "position", "seconds", "original_name", "created_at")
        read_only_fields = fields


class MusicClassSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """A playlist of music on hold; the default class is what held callers hear (none: the
    shipped music)."""

    tracks = MusicTrackSerializer(many=True, read_only=True)

    class Meta:
        model = MusicClass
        fields = ("id", "name", "is_default", "tracks", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {"name": {"required": False}}


class TrackUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=FILE_HELP)


class TrackOrderSerializer(serializers.Serializer):
    tracks = serializers.ListField(
        child=serializers.IntegerField(), help_text="Every track id of the class, in play order."
    )


class MailboxSerializer(ActionJudgesValues, serializers.ModelSerializer):
    """An extension's voicemail box. ``pin`` is write-only ("" clears it); ``has_pin`` says
    whether one is set. ``email`` "" = the extension's user's address."""

    extension = serializers.CharField(source="extension.number", read_only=True)
    pin = serializers.CharField(
        write_only=True, required=False, allow_blank=True, help_text="4 to 10 digits; '' clears"
    )
    has_pin = serializers.SerializerMethodField()
    attach = serializers.CharField(
        required=False, help_text="The audio attached to the mail: wav, mp3 or none."
    )
    greeting_unavailable = serializers.SerializerMethodField()
    greeting_busy = serializers.SerializerMethodField()

    class Meta:
        model = Mailbox
        fields = ("extension", *MAILBOX_FIELDS, "pin", "has_pin", "greeting_unavailable",
                  "greeting_busy", "updated_at")  # fmt: skip
        read_only_fields = ("updated_at",)
        extra_kwargs = {"email": {"allow_blank": True}}

    def get_has_pin(self, box) -> bool:
        return bool(box.pin)

    def get_greeting_unavailable(self, box) -> bool:
        """Whether a recorded greeting replaces the default prompt."""
        return bool(box.greeting_unavailable)

    def get_greeting_busy(self, box) -> bool:
        return bool(box.greeting_busy)


class GreetingUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=FILE_HELP)


class VoicemailMessageSerializer(serializers.ModelSerializer):
    box = serializers.CharField(source="mailbox.extension.number", read_only=True)

    class Meta:
        model = VoicemailMessage
        fields = ("id", "box", "message_id", "folder", "caller", "caller_name", "seconds",
                  "created_at", "heard_at", "emailed_at")  # fmt: skip
        read_only_fields = fields
