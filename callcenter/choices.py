"""The contact centre's choices, with the values the engine's contract uses
(``telephony.sip.contract``: QueueStrategy, AgentState, QueueExit, SupervisionMode)."""

from django.db import models


class QueueStrategy(models.TextChoices):
    RING_ALL = "ring_all", "Ring all available agents"
    HUNT = "hunt", "In order"
    LONGEST_IDLE = "longest_idle", "Longest idle agent"
    ROUND_ROBIN = "round_robin", "Round robin"
    FEWEST_CALLS = "fewest_calls", "Fewest calls today"
    SKILLS = "skills", "Skills-based"


class AgentState(models.TextChoices):
    LOGGED_OUT = "logged_out", "Logged out"
    NOT_READY = "not_ready", "Not ready"
    READY = "ready", "Ready"
    WRAP_UP = "wrap_up", "Wrap-up"


class QueueOutcome(models.TextChoices):
    """How a caller's visit to a queue ended: answered, or a ``contract.QueueExit``."""

    WAITING = "waiting", "Waiting"
    ANSWERED = "answered", "Answered"
    ABANDONED = "abandoned", "Abandoned"
    MAX_WAIT = "max_wait", "Overflow: waited too long"
    MAX_CALLERS = "max_callers", "Overflow: queue full"
    NO_AGENTS = "no_agents", "Overflow: no agents"
    CALLBACK = "callback", "Callback requested"
    BLACKLISTED = "blacklisted", "Refused (blacklist)"
    FAILED = "failed", "Failed"


class SupervisionMode(models.TextChoices):
    LISTEN = "listen", "Listen"
    WHISPER = "whisper", "Whisper"
    BARGE = "barge", "Barge in"
