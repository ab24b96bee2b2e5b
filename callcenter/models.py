"""The contact centre (tenant schema): call queues, their agents and supervisors, agents'
skills, and the statistics of queue calls and agent states.

The live state (callers waiting, agents' current states) is in Redis
(``contract.QUEUE_LIVE``, ``contract.AGENTS``); these tables hold configuration and history.
"""

from django.db import models
from django.utils import timezone

from tenants.choices import RecordingPolicy

from .choices import AgentState, QueueOutcome, QueueStrategy


class Queue(models.Model):
    """A call queue (``contract.Queue``: every field means what it means there): callers wait
    with music and announcements and are offered to its agents by ``strategy``.
    ``overflow`` is ``{"kind", "target"}`` like an inbound rule's (None: goodbye, hang-up)."""

    number = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    enabled = models.BooleanField(default=True)
    strategy = models.CharField(
        max_length=16, choices=QueueStrategy.choices, default=QueueStrategy.LONGEST_IDLE
    )
    required_skills = models.JSONField(default=dict, blank=True)  # skill -> level 1..10
    ring_seconds = models.PositiveSmallIntegerField(default=20)
    max_wait_seconds = models.PositiveIntegerField(default=600)  # 0: no limit
    max_callers = models.PositiveSmallIntegerField(default=0)  # 0: no limit
    overflow = models.JSONField(null=True, blank=True)
    wait_without_agents = models.BooleanField(default=False)
    wrap_up_seconds = models.PositiveSmallIntegerField(default=10)
    music_class = models.ForeignKey(
        "audio.MusicClass", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    greeting = models.ForeignKey(
        "audio.Prompt", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    announce_position = models.BooleanField(default=True)
    announce_wait = models.BooleanField(default=True)
    announce_seconds = models.PositiveSmallIntegerField(default=30)  # 0: never
    sla_seconds = models.PositiveSmallIntegerField(default=20)
    sla_percent = models.PositiveSmallIntegerField(default=80)
    sticky = models.BooleanField(default=False)
    vip = models.JSONField(default=list, blank=True)  # numbers or dial patterns
    blacklist = models.JSONField(default=list, blank=True)  # numbers or dial patterns
    callback = models.BooleanField(default=False)
    callback_prefix = models.CharField(max_length=8, blank=True)
    auto_ready = models.BooleanField(default=True)
    recording = models.CharField(max_length=16, choices=RecordingPolicy.choices, blank=True)
    caller_id_prefix = models.CharField(max_length=16, blank=True)
    supervisors = models.ManyToManyField(
        "telephony.Extension", blank=True, related_name="supervised_queues"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"{self.number} {self.name}"


class QueueAgent(models.Model):
    """An extension that takes a queue's calls, at ``position`` (0 first: the hunt order).
    A deleted extension leaves its queues with it (the row cascades)."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="agents")
    extension = models.ForeignKey(
        "telephony.Extension", on_delete=models.CASCADE, related_name="queue_agents"
    )
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["queue_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "extension"], name="queue_agent_once"),
        ]

    def __str__(self) -> str:
        return f"{self.queue.number}: {self.extension.number}"


class AgentSkill(models.Model):
    """An extension's level (1..10) in a named skill, for skills-based queues."""

    extension = models.ForeignKey(
        "telephony.Extension", on_delete=models.CASCADE, related_name="skills"
    )
    skill = models.SlugField(max_length=40)
    level = models.PositiveSmallIntegerField(default=1)

    class Meta:
        ordering = ["extension_id", "skill"]
        constraints = [
            models.UniqueConstraint(fields=["extension", "skill"], name="agent_skill_once"),
            models.CheckConstraint(
                condition=models.Q(level__gte=1, level__lte=10), name="agent_skill_level"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.skill}={self.level}"


class QueueCall(models.Model):
    """One caller's visit to a queue, from the engine's queue events (the statistics and
    reports read these): when it joined, was answered or left, by whom, and how."""

    call_id = models.CharField(max_length=128)
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    queue_number = models.CharField(max_length=64)
    caller = models.CharField(max_length=64, blank=True)
    caller_name = models.CharField(max_length=120, blank=True)
    vip = models.BooleanField(default=False)
    joined_at = models.DateTimeField()
    answered_at = models.DateTimeField(null=True, blank=True)
    left_at = models.DateTimeField(null=True, blank=True)
    agent = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(
        max_length=16, choices=QueueOutcome.choices, default=QueueOutcome.WAITING
    )
    waited_seconds = models.FloatField(default=0)
    talk_seconds = models.FloatField(default=0)
    within_sla = models.BooleanField(default=False)
    sla_breached = models.BooleanField(default=False)
    callback_number = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-joined_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["call_id", "queue_number", "joined_at"], name="queue_call_once"
            ),
        ]
        indexes = [
            models.Index(fields=["queue_number", "joined_at"]),
            models.Index(fields=["agent", "joined_at"]),
            models.Index(fields=["call_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.queue_number} {self.call_id} {self.outcome}"


class AgentStateChange(models.Model):
    """An agent's state change in a queue (from ``agent.state`` events): the history the
    agent reports sum up (time logged in, ready, not ready and why)."""

    extension = models.CharField(max_length=64)
    queue_number = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=AgentState.choices)
    reason = models.CharField(max_length=40, blank=True)
    by = models.CharField(max_length=16, blank=True)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["extension", "at"]),
            models.Index(fields=["queue_number", "at"]),
        ]

    def __str__(self) -> str:
        return f"{self.extension}@{self.queue_number} {self.state}"
