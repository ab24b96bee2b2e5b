"""Event types, the topics clients subscribe to, and delivery states."""

from django.db import models

from telephony.sip.contract import CALL_EVENTS, QUEUE_EVENTS

TOPIC_EXTENSION_STATUS = "extension.status"
TOPIC_CALLS = "calls"
TOPIC_QUEUES = "queues"
TOPICS = frozenset({TOPIC_EXTENSION_STATUS, TOPIC_CALLS, TOPIC_QUEUES})

EXTENSION_STATUS = "extension.status"
# The engine's call events reach clients under their own type (``telephony.sip.contract``).
CALL_EVENT_TYPES = CALL_EVENTS
# So do the contact centre's: queue.joined, queue.answered, queue.left (abandoned, overflow),
# queue.sla, queue.callback, queue.supervision and agent.state, under the topic "queues".
QUEUE_EVENT_TYPES = QUEUE_EVENTS
EVENT_TYPES = frozenset({EXTENSION_STATUS, *CALL_EVENT_TYPES, *QUEUE_EVENT_TYPES})


def topic_of(event_type: str) -> str:
    """The topic an event type is published under."""
    if event_type.startswith("call."):
        return TOPIC_CALLS
    if event_type in QUEUE_EVENT_TYPES:
        return TOPIC_QUEUES
    return TOPIC_EXTENSION_STATUS


def matches(selectors: list[str], event_type: str) -> bool:
    """Whether a webhook's ``event_types`` (types, topics or ``*``) select ``event_type``."""
    return "*" in selectors or event_type in selectors or topic_of(event_type) in selectors


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Given up"
    CANCELLED = "cancelled", "Cancelled"
