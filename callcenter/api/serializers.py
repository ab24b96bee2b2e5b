"""The contact centre's API shapes: queues (agents and supervisors as extension numbers),
agents' states, skills and supervision requests. Every value is judged by
``callcenter.actions``; these only shape input."""

from __future__ import annotations

from rest_framework import serializers

from callcenter import actions
from callcenter.choices import SupervisionMode
from callcenter.models import Queue
from pbx.api.serializers import ActionJudgesValues
from telephony.api.serializers import ExtensionNumbersField

OVERFLOW_HELP = (
    "Where a caller goes when it leaves unanswered (waited too long, queue full, no agents): "
    '{"kind": ..., "target": ...} as an inbound rule\'s; null: a goodbye, then hang-up.'
)


class AgentNumbersField(serializers.ListField):
    """A queue's agents as their extension numbers, in hunt order (from the view's
    prefetch)."""

    child = serializers.CharField()

    def to_representation(self, data):
        return [a.extension.number for a in data.all()]


class QueueSerializer(ActionJudgesValues, serializers.ModelSerializer):
    agents = AgentNumbersField(
        required=False,
        help_text="The agents' extension numbers in hunt order; when given, they replace the "
        "queue's.",
    )
    supervisors = ExtensionNumbersField(
        required=False,
        help_text="Extensions that may listen, whisper and barge in on the queue's calls.",
    )
    overflow = serializers.JSONField(required=False, allow_null=True, help_text=OVERFLOW_HELP)
    required_skills = serializers.JSONField(
        required=False, help_text="{skill: level 1..10} an agent needs (the skills strategy)."
    )
    vip = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Numbers or dial patterns of callers who go first (at most 200).",
    )
    blacklist = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text="Numbers or dial patterns of callers refused (at most 200).",
    )
    music_class = serializers.IntegerField(
        source="music_class_id",
        required=False,
        allow_null=True,
        help_text="The music class callers hear (an id); null: the tenant's default.",
    )
    greeting = serializers.IntegerField(
        source="greeting_id",
        required=False,
        allow_null=True,
        help_text="A prompt played once when a caller joins (an id); null: none.",
    )

    class Meta:
        model = Queue
        fields = ("id", *actions.QUEUE_FIELDS, "agents", "supervisors", "created_at")
        read_only_fields = ("created_at",)
        extra_kwargs = {
            "number": {"help_text": "Dialled like an extension; nothing else has it."},
            "ring_seconds": {"help_text": "Seconds an agent is rung, 5 to 300."},
            "max_wait_seconds": {"help_text": "Seconds a caller waits at most (0: no limit)."},
            "max_callers": {"help_text": "Callers waiting at most (0: no limit)."},
            "wrap_up_seconds": {"help_text": "Seconds after a queue call before the next one."},
            "announce_seconds": {
                "help_text": "Seconds between position/wait announcements (0: never)."
            },
            "auto_ready": {"help_text": "An agent without a stored state is ready."},
        }

    def action_fields(self) -> dict:
        data = dict(self.validated_data)
        for name in ("music_class", "greeting"):
            if f"{name}_id" in data:
                data[name] = data.pop(f"{name}_id")
        return data


class AgentStatusSerializer(serializers.Serializer):
    """An agent's state in one queue."""

    queue = serializers.CharField(help_text="The queue's number.")
    agent = serializers.CharField(help_text="The agent's extension number.")
    state = serializers.CharField(
        help_text="logged_out, not_ready, ready or wrap_up (a wrap-up that is over: ready)."
    )
    reason = serializers.CharField(help_text="Why not ready.")
    since = serializers.FloatField(help_text="Epoch seconds it has been in it (0: never set).")
    until = serializers.FloatField(help_text="When a wrap-up ends (epoch seconds; else 0).")
    by = serializers.CharField(help_text="Who set it: phone, api, portal, engine.")


class SetAgentStateSerializer(serializers.Serializer):
    state = serializers.CharField(help_text="logged_out, not_ready or ready.")
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        trim_whitespace=False,
        help_text="Why not ready (at most 40 characters).",
    )


class MeSetAgentStateSerializer(SetAgentStateSerializer):
    queue = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="One of your queues' numbers; absent or null: all of them.",
    )


class MeAgentSerializer(serializers.Serializer):
    extension = serializers.CharField(help_text="Your extension's number.")
    queues = AgentStatusSerializer(many=True)


class SkillsSerializer(serializers.Serializer):
    extension = serializers.CharField(read_only=True, help_text="The extension's number.")
    skills = serializers.DictField(
        child=serializers.IntegerField(), help_text="{skill: level 1..10}; replaces them all."
    )


class SuperviseSerializer(serializers.Serializer):
    supervisor = serializers.CharField(
        required=False,
        help_text="The supervisor's extension (one of the queue's); an end user's own by default.",
    )
    agent = serializers.CharField(help_text="The agent's extension, whose call to join.")
    mode = serializers.ChoiceField(choices=SupervisionMode.choices, default=SupervisionMode.LISTEN)
