"""Tenant-schema models: the event outbox, webhook endpoints and their delivery log."""

from django.db import models
from django.utils import timezone

from pbx.crypto import decrypt

from .choices import DeliveryState


class WebhookEndpoint(models.Model):
    """A URL the tenant's events are POSTed to, signed with the endpoint's secret.

    ``event_types`` holds event types (``call.ended``), topics (``calls``) or ``*``. A disabled
    endpoint is not sent anything and gets no new deliveries; its queue waits until it is
    enabled again.
    """

    url = models.URLField(max_length=500)
    description = models.CharField(max_length=255, blank=True)
    event_types = models.JSONField(default=list)
    secret_encrypted = models.TextField(editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.url

    @property
    def secret(self) -> str:
        return decrypt(self.secret_encrypted)


class OutboxEvent(models.Model):
    """One event of the tenant, kept for webhooks, replays and ``/api/v1/events/``.

    Ids are monotonic in commit order within the tenant: the table is per schema, and appends
    are serialised by a transaction-scoped advisory lock (see ``events.actions``), so a reader
    that has seen id N will never later find a smaller committed id.
    """

    type = models.CharField(max_length=64, db_index=True)
    topic = models.CharField(max_length=32)
    payload = models.JSONField(default=dict)
    occurred_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Stream entry id and position: a stream entry handled twice adds nothing the second time.
    source_key = models.CharField(max_length=160, unique=True, null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.type}"


class WebhookDelivery(models.Model):
    """Sending one event to one endpoint: attempts, outcome, and when to try next.

    An endpoint's deliveries go out strictly in event order: the oldest pending one blocks the
    rest until it is delivered or given up. A replay adds new rows; old rows stay as the log.
    """

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.ForeignKey(OutboxEvent, on_delete=models.CASCADE, related_name="deliveries")
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempt = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)
    error = models.CharField(max_length=255, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    replay = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["endpoint", "event", "id"],
                condition=models.Q(state="pending"),
                name="delivery_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id}/{self.event_id} {self.state}"
